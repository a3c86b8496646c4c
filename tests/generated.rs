//! The committed completion scripts and man page must be exactly what the
//! binary's clap definition generates. Regenerate them with:
//!
//!     ZC_REGENERATE=1 cargo test --test generated

use std::path::Path;
use std::process::Command;

use clap_complete::Shell;

fn check(path: &str, generated: &[u8]) {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if std::env::var_os("ZC_REGENERATE").is_some() {
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, generated).unwrap();
        return;
    }
    let committed = std::fs::read(&full).unwrap_or_default();
    assert!(
        committed == generated,
        "{path} is out of date: run `ZC_REGENERATE=1 cargo test --test generated`"
    );
}

#[test]
fn completions_match_the_cli() {
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::PowerShell,
    ] {
        check(
            &zc::docgen::completion_path(shell),
            &zc::docgen::completion(shell),
        );
    }
}

#[test]
fn completions_subcommand_prints_the_same() {
    let out = Command::new(env!("CARGO_BIN_EXE_zc"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, zc::docgen::completion(Shell::Bash));
}

#[test]
fn man_page_matches_the_cli() {
    let page = zc::docgen::man_page();
    assert!(page.contains(".SH EXAMPLES") && page.contains(".SH \"EXIT STATUS\""));
    check("man/zc.1", page.as_bytes());
}

#[test]
fn man_page_renders_without_warnings() {
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("man/zc.1");
    let Ok(out) = Command::new("man")
        .args(["--warnings", "-E", "UTF-8", "-l"])
        .arg(&man)
        .env("MANWIDTH", "80")
        .env("MAN_KEEP_STDERR", "1")
        .output()
    else {
        panic!("man is not installed: .ci/run installs man-db");
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "man failed: {stderr}");
    assert!(stderr.trim().is_empty(), "man warned: {stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("EXIT STATUS"));
}
