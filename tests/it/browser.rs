//! The status page in a real browser: headless Chromium (Debian's package, which .ci/run
//! installs) loads `/` from a running `--demo` exporter, and the DOM it built shows a failed
//! association first, with its counts as the JSON has them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::{Process, exporter};
use crate::harness::get;

/// Only a bound for a browser or fleet that misbehaves; each try ends on its own.
const PATIENCE: Duration = Duration::from_secs(90);

/// The browser's command line, or `None` (with a note) when it is missing outside CI.
fn chromium() -> Option<&'static str> {
    match Command::new("chromium").arg("--version").output() {
        Ok(out) if out.status.success() => Some("chromium"),
        found if std::env::var_os("CI").is_some() => panic!(
            "chromium is required in CI (.ci/run installs Debian's chromium package): {found:?}"
        ),
        _ => {
            eprintln!(
                "chromium not runnable; install Debian's chromium package to run the browser test, as .ci/run does"
            );
            None
        }
    }
}

/// Runs headless Chromium on `url` with `args`; its standard output.
fn browse(browser: &str, profile: &Path, url: &str, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .arg("60")
        .arg(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 DOM")
}

/// The text between `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

/// What the first row of the associations table shows: its class, its link's ID, its name,
/// its status badge and its target counts.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    class: String,
    id: String,
    name: String,
    status: String,
    counts: Vec<String>,
}

fn first_row(dom: &str) -> Option<Row> {
    let table = between(dom, "<table id=\"associations\">", "</table>")?;
    let body = between(table, "<tbody>", "</tbody>")?;
    let row = between(body, "<tr", "</tr>")?;
    let cells: Vec<&str> = row.split("<td").skip(1).collect();
    let badges = |cell: &str| -> Vec<String> {
        cell.split("<span class=\"c ")
            .skip(1)
            .filter_map(|s| between(s, ">", "</span>").map(str::to_owned))
            .collect()
    };
    Some(Row {
        class: if row.starts_with(" class=\"failed\"") {
            "failed".to_owned()
        } else {
            String::new()
        },
        id: between(row, "href=\"/association/", "\"")?.to_owned(),
        name: between(row, "\">", "</a>")
            .and_then(|s| s.rsplit('>').next())
            .unwrap_or_default()
            .to_owned(),
        status: badges(cells.get(3)?).concat(),
        counts: badges(cells.get(4)?),
    })
}

/// The row the JSON's first association should make.
fn expected_row(status: &Value) -> Option<Row> {
    let a = &status["associations"][0];
    let counts = a["targets_by_status"]
        .as_object()?
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    Some(Row {
        class: if a["failed"] == Value::Bool(true) {
            "failed".to_owned()
        } else {
            String::new()
        },
        id: a["association_id"].as_str()?.to_owned(),
        name: a["name"].as_str()?.to_owned(),
        status: a["execution"]["status"].as_str()?.to_owned(),
        counts,
    })
}

fn generation_in(dom: &str) -> Option<u64> {
    between(dom, "· generation ", " ·")?.parse().ok()
}

#[test]
fn chromium_shows_the_failed_association_first_with_its_counts() {
    let Some(browser) = chromium() else {
        return;
    };
    let profile: PathBuf =
        std::env::temp_dir().join(format!("sae-chromium-{}", std::process::id()));
    std::fs::create_dir_all(&profile).expect("profile dir");
    let process = Process::spawn(exporter(&["--demo", "--web.listen-address", "127.0.0.1:0"]));
    let addr = process.address();
    process.wait_for("poll cycle finished");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let json = || -> Value {
        let response = runtime.block_on(get(addr, "/api/v1/status"));
        assert_eq!(response.status, 200, "{}", response.body);
        serde_json::from_str(&response.body).expect("JSON")
    };
    let url = format!("http://{addr}/");

    // The demo fleet evolves: compare the DOM with the JSON of the same rendering, taken
    // before and after the browser's load, until one try sees a failed run first.
    let deadline = Instant::now() + PATIENCE;
    let (dom, row) = loop {
        assert!(
            Instant::now() < deadline,
            "no stable rendering with a failed run first"
        );
        let before = json();
        let dom = browse(browser, &profile, &url, &["--dump-dom"]);
        let after = json();
        let generation = before["generation"].as_u64();
        if generation != after["generation"].as_u64() || generation != generation_in(&dom) {
            continue;
        }
        let Some(expected) = expected_row(&before) else {
            continue;
        };
        if expected.status != "Failed" {
            continue;
        }
        let row = first_row(&dom).expect("an associations table with a row");
        assert_eq!(row, expected, "{dom}");
        break (dom, row);
    };
    assert_eq!(row.class, "failed");
    assert!(!row.counts.is_empty(), "{row:?}");
    for link in [
        "href=\"/metrics\"",
        "href=\"/-/healthy\"",
        "href=\"/-/ready\"",
        "href=\"/?status=Failed\"",
    ] {
        assert!(dom.contains(link), "{link} missing from\n{dom}");
    }

    // The screenshot the README shows; UPDATE_SCREENSHOT=1 refreshes docs/status.png.
    let shot = profile.join("status.png");
    browse(
        browser,
        &profile,
        &url,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,900",
        ],
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/status.png");
        std::fs::write(docs, &png).expect("write docs/status.png");
    }
    assert_eq!(process.terminate(), Some(0));
    let _ = std::fs::remove_dir_all(&profile);
}
