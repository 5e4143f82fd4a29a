//! Records what the binary was built from, for `--version` and the `build_info` metric: the
//! compiler's version, and the git revision and branch when built from a git checkout.

use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = output(Command::new(rustc).arg("--version"))
        .and_then(|text| text.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SAE_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-env-changed=RUSTC");

    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    let git = |args: &[&str]| output(Command::new("git").arg("-C").arg(&dir).args(args));
    let revision = git(&["rev-parse", "HEAD"]);
    let branch = git(&["rev-parse", "--abbrev-ref", "HEAD"]);
    let (revision, branch, described) = match (revision, branch) {
        (Some(revision), Some(branch)) => {
            let described = format!("revision {revision}, branch {branch}");
            (revision, branch, described)
        }
        // A source tarball, a vendored copy: say so rather than make a revision up.
        _ => (
            "unknown".to_owned(),
            "unknown".to_owned(),
            "not built from a git checkout: revision unknown".to_owned(),
        ),
    };
    println!("cargo:rustc-env=SAE_REVISION={revision}");
    println!("cargo:rustc-env=SAE_BRANCH={branch}");
    println!(
        "cargo:rustc-env=SAE_LONG_VERSION={} ({described}, rustc {version})",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default()
    );
    // A new commit or branch changes what HEAD points at. Git names the files, so that a
    // worktree (where `.git` is a file) is followed as well as a plain checkout. HEAD's log is
    // written by every commit, checkout and reset, which covers a branch whose ref lives only
    // in packed-refs.
    let branch = git(&["rev-parse", "--symbolic-full-name", "HEAD"]).filter(|r| r != "HEAD");
    let fixed = ["HEAD", "logs/HEAD", "packed-refs"].map(str::to_owned);
    for name in fixed.into_iter().chain(branch) {
        let path = git(&["rev-parse", "--path-format=absolute", "--git-path", &name]);
        // A missing file would make cargo run this script on every build.
        if let Some(path) = path.filter(|p| std::path::Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

/// A command's standard output, trimmed, if it ran and succeeded.
fn output(command: &mut Command) -> Option<String> {
    let out = command.output().ok().filter(|o| o.status.success())?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
