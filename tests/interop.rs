//! `--raw` against the tools it promises to talk to: OpenBSD netcat and socat.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

const SIZES: [u64; 2] = [0, MIB + 7];

/// Panics with a clear message if `tool` is not installed.
fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    assert!(
        found,
        "`{tool}` is not installed: the interop tests need netcat-openbsd and socat \
         (.ci/run installs them; on Debian/Ubuntu: apt-get install netcat-openbsd socat)"
    );
}

/// Starts a one-shot listener (nc or socat) and waits until it listens.
fn start_listener(mut cmd: Command, port: u16, what: &str) -> Guard {
    // stdout is the caller's (nc writes the received bytes there).
    cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    let mut child = Guard(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("spawning {what}: {e}")),
    );
    wait_listening(port, &mut child, what);
    child
}

fn finish_tool(mut child: Guard, what: &str) {
    let status = wait_timeout(&mut child, TIMEOUT, what);
    let mut err = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut err);
    }
    assert!(status.success(), "{what} failed ({status}):\n{err}");
}

/// zc send --raw FILE into a listening tool that writes `out`.
fn zc_into(tool: &str, listener: impl Fn(u16, &Path) -> Command) {
    require(tool);
    for size in SIZES {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src.bin");
        let out = tmp.path().join("out.bin");
        random_file(&src, size, 10);
        let port = free_port();
        let child = start_listener(listener(port, &out), port, tool);
        let sent = send(&["--raw", s(&src), &format!("127.0.0.1:{port}")]);
        // A failed send first: the listener would wait for it forever.
        sent.expect_code(0, &format!("zc send --raw into {tool}, {size} bytes"));
        finish_tool(child, tool);
        assert_same_file(&src, &out);
    }
}

/// A tool reads FILE and connects to `zc recv --raw -o out`.
fn tool_into_zc(tool: &str, sender: impl Fn(u16, &Path) -> Command) {
    require(tool);
    for size in SIZES {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src.bin");
        let out = tmp.path().join("out.bin");
        random_file(&src, size, 11);
        let rx = receiver(&out, &["--raw"], Stdout::Memory);
        let mut cmd = sender(rx.addr.port(), &src);
        run_tool(&mut cmd, tool);
        let got = rx.finish(TIMEOUT);
        got.expect_code(0, &format!("zc recv --raw from {tool}, {size} bytes"));
        assert_same_file(&src, &out);
        assert!(
            got.stdout.is_empty(),
            "zc recv --raw -o FILE wrote to stdout"
        );
    }
}

/// Runs a connecting tool (its stdin is set by the caller) to its end.
fn run_tool(cmd: &mut Command, what: &str) {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let child = Guard(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("spawning {what}: {e}")),
    );
    finish_tool(child, what);
}

#[test]
fn zc_send_raw_into_nc_listen() {
    zc_into("nc", |port, out| {
        let mut cmd = Command::new("nc");
        cmd.args(["-l", "127.0.0.1", &port.to_string()])
            .stdout(std::fs::File::create(out).unwrap());
        cmd
    });
}

#[test]
fn nc_into_zc_recv_raw() {
    tool_into_zc("nc", |port, src| {
        let mut cmd = Command::new("nc");
        cmd.args(["-N", "127.0.0.1", &port.to_string()])
            .stdin(std::fs::File::open(src).unwrap());
        cmd
    });
}

#[test]
fn zc_send_raw_into_socat_listen() {
    zc_into("socat", |port, out| {
        let mut cmd = Command::new("socat");
        cmd.args([
            "-u",
            &format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"),
            &format!("OPEN:{},creat,trunc", s(out)),
        ])
        .stdout(Stdio::null());
        cmd
    });
}

#[test]
fn socat_into_zc_recv_raw() {
    tool_into_zc("socat", |port, src| {
        let mut cmd = Command::new("socat");
        cmd.args([
            "-u",
            &format!("OPEN:{}", s(src)),
            &format!("TCP:127.0.0.1:{port}"),
        ]);
        cmd
    });
}
