//! Inputs the binary refuses at once, with exit code 2, instead of reading without end,
//! blocking, or spending a core: devices and FIFOs as files, bcrypt costs above the maximum.

use std::fs::OpenOptions;

use crate::cli::{exporter, logfmt, run, temp_file};

/// Exit code 2, with `message` in the log and nothing served.
fn refused_with(args: &[&str], message: &str) {
    let out = run(&mut exporter(args));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&logfmt(message)), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
}

#[test]
fn a_device_as_the_config_file_exits_2_without_reading_it() {
    for extra in [&[][..], &["--config.check"][..]] {
        let mut args = vec!["--config.file", "/dev/zero"];
        args.extend_from_slice(extra);
        refused_with(
            &args,
            "/dev/zero: is a character device, not a regular file",
        );
    }
}

#[test]
fn a_fifo_as_the_web_config_file_exits_2_without_opening_it() {
    let anchor = temp_file("fifo-anchor", "");
    let fifo = anchor.with_file_name("web-fifo.yml");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    // A writer that closes at once: should the exporter open the FIFO after all, it reads an
    // empty file and the test fails instead of hanging.
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || OpenOptions::new().write(true).open(&fifo).map(drop))
    };
    let path = fifo.to_str().expect("utf-8 path");
    refused_with(
        &["--web.config.file", path, "--config.check"],
        &format!("{path}: is a FIFO, not a regular file"),
    );
    // Opening a FIFO for reading and writing never blocks, and releases the writer.
    let release = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .expect("open the FIFO");
    writer.join().expect("writer thread").expect("writer opens");
    drop(release);
}

#[test]
fn a_bcrypt_cost_above_the_maximum_exits_2_before_any_hashing() {
    let hash = "$2y$15$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG";
    let web = temp_file(
        "costly-web.yml",
        &format!("basic_auth_users:\n  alice: {hash}\n"),
    );
    let path = web.to_str().expect("utf-8 path");
    refused_with(
        &[
            "--web.config.file",
            path,
            "--web.listen-address",
            "127.0.0.1:0",
        ],
        &format!(
            "{path}: basic_auth_users.alice: bcrypt cost 15 is above the maximum of 14 at line 2"
        ),
    );
}
