//! `--raw` prints the SHA-256 of what each side sent or received, so that it
//! can be compared by eye with `sha256sum` on the other end.
#![cfg(unix)]

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

use common::*;

/// SHA-256 of bytes [from, from+len) of `path`, computed here.
fn sha_of_range(path: &Path, from: u64, len: u64) -> String {
    let data = fs::read(path).unwrap();
    hex(&Sha256::digest(&data[from as usize..(from + len) as usize]))
}

/// The summary line (`zc: sent ...` / `zc: received ...`) of `stderr`.
fn summary<'a>(stderr: &'a str, role: &str) -> &'a str {
    let prefix = format!("zc: {role} ");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert_eq!(lines.len(), 1, "one summary line wanted in:\n{stderr}");
    lines[0]
}

/// The 64-digit hex after `, sha256 ` on `role`'s one summary line, as
/// `sha256sum` prints it, or `None` when the line has no digest. Stricter
/// than common's [`summary_sha`]: a digest of another length fails the test
/// here instead of reading as none.
fn role_sha(stderr: &str, role: &str) -> Option<String> {
    let line = summary(stderr, role);
    let from = line.find(", sha256 ")?;
    let sha = summary_sha(&line[from..]);
    assert!(sha.is_some(), "a digest that is not 64 hex digits: {line}");
    sha
}

/// A raw receiver into `out` with `extra` flags, then `zc send --raw ARGS`
/// into it; both must succeed. Returns (sender, receiver).
fn raw_pair(out: &Path, extra: &[&str], send_args: &[&str]) -> (Outcome, Outcome) {
    let mut rx_args = vec!["--raw"];
    rx_args.extend_from_slice(extra);
    let rx = receiver(out, &rx_args, Stdout::Null);
    let mut args = vec!["--raw"];
    args.extend_from_slice(send_args);
    let dest = rx.dest();
    args.push(&dest);
    let sent = send(&args);
    let got = rx.finish(TIMEOUT);
    println!("sender:\n{}receiver:\n{}", sent.stderr, got.stderr);
    sent.expect_clean(0, "zc send --raw");
    got.expect_clean(0, "zc recv --raw");
    (sent, got)
}

#[test]
fn both_sides_print_the_files_digest() {
    // 0 bytes; one piece; several pieces and several of the hashing pipe's buffers
    for size in [0, 5000, 5 * MIB + 7] {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src.bin");
        let out = tmp.path().join("out.bin");
        random_file(&src, size, 40);
        let (sent, got) = raw_pair(&out, &[], &[s(&src)]);
        assert_same_file(&src, &out);
        let want = sha256_file(&src);
        assert_eq!(
            role_sha(&sent.stderr, "sent"),
            Some(want.clone()),
            "{size} B"
        );
        assert_eq!(role_sha(&got.stderr, "received"), Some(want), "{size} B");
        assert!(
            summary(&sent.stderr, "sent").contains("zero-copy") || size == 0,
            "hashing must not cost the sender sendfile: {}",
            sent.stderr
        );
    }
}

#[test]
fn a_range_has_the_ranges_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src.bin");
    let out = tmp.path().join("out.bin");
    let size = 4 * MIB + 3;
    random_file(&src, size, 41);
    let (from, count) = (1000, 2 * MIB + 11);
    let (from_s, count_s) = (from.to_string(), count.to_string());
    let (sent, got) = raw_pair(
        &out,
        &[],
        &["--offset", &from_s, "--count", &count_s, s(&src)],
    );
    let want = sha_of_range(&src, from, count);
    assert_ne!(want, sha256_file(&src));
    assert_eq!(sha256_file(&out), want, "the receiver wrote the range");
    assert_eq!(role_sha(&sent.stderr, "sent"), Some(want.clone()));
    assert_eq!(role_sha(&got.stderr, "received"), Some(want));
    let said = format!("sha256 of the {count} bytes sent, from byte {from}");
    assert!(
        summary(&sent.stderr, "sent").contains(&said),
        "the sender says what its digest covers: {}",
        sent.stderr
    );
}

/// `recv --raw --offset N` writes into a file that already holds bytes: the
/// digest covers the bytes received only, and says so.
#[test]
fn receiver_offset_digest_covers_the_bytes_received() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src.bin");
    let out = tmp.path().join("out.bin");
    let size = 3 * MIB + 5;
    random_file(&src, size, 42);
    let at = MIB + 1;
    fs::write(&out, &fs::read(&src).unwrap()[..at as usize]).unwrap();
    let at_s = at.to_string();
    let (sent, got) = raw_pair(&out, &["--offset", &at_s], &["--offset", &at_s, s(&src)]);
    assert_same_file(&src, &out);
    let want = sha_of_range(&src, at, size - at);
    assert_ne!(want, sha256_file(&out));
    assert_eq!(role_sha(&sent.stderr, "sent"), Some(want.clone()));
    assert_eq!(role_sha(&got.stderr, "received"), Some(want));
    let said = format!("sha256 of the {} bytes received, from byte {at}", size - at);
    assert!(
        summary(&got.stderr, "received").contains(&said),
        "the receiver says what its digest covers: {}",
        got.stderr
    );
}

/// stdin on the sender (hashed as it passes) into a receiver whose stdout
/// is /dev/null, a device that splice(2) served when nothing was hashed.
#[test]
fn stdin_into_a_device_has_the_streams_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src.bin");
    let size = 3 * MIB + 9;
    random_file(&src, size, 43);
    let rx = receiver(Path::new("-"), &["--raw"], Stdout::Null);
    let sent = send_stdin(&["--raw", "-", &rx.dest()], &src, TIMEOUT);
    let got = rx.finish(TIMEOUT);
    println!("sender:\n{}receiver:\n{}", sent.stderr, got.stderr);
    sent.expect_clean(0, "zc send --raw -");
    got.expect_clean(0, "zc recv --raw -o - >/dev/null");
    let want = sha256_file(&src);
    assert_eq!(role_sha(&sent.stderr, "sent"), Some(want.clone()));
    assert_eq!(role_sha(&got.stderr, "received"), Some(want));
    let said = format!("sha256 of the {size} bytes received");
    assert!(
        summary(&got.stderr, "received").contains(&said),
        "{}",
        got.stderr
    );
}

#[test]
fn nc_into_zc_recv_raw_prints_what_nc_sent() {
    let nc_found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("nc").is_file()));
    assert!(
        nc_found,
        "`nc` is not installed: apt-get install netcat-openbsd"
    );
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src.bin");
    let out = tmp.path().join("out.bin");
    random_file(&src, 2 * MIB + 1, 44);
    let rx = receiver(&out, &["--raw"], Stdout::Null);
    let mut nc = Command::new("nc");
    nc.args(["-N", "127.0.0.1", &rx.addr.port().to_string()]);
    let nc = run(nc, Some(&src), TIMEOUT);
    let got = rx.finish(TIMEOUT);
    println!("nc:\n{}receiver:\n{}", nc.stderr, got.stderr);
    nc.expect_code(0, "nc -N (netcat-openbsd)");
    got.expect_clean(0, "zc recv --raw from nc");
    assert_same_file(&src, &out);
    assert_eq!(role_sha(&got.stderr, "received"), Some(sha256_file(&src)));
}

/// `--no-verify` on either side: that side prints no digest, the other
/// still does.
#[test]
fn no_verify_prints_no_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src.bin");
    random_file(&src, MIB + 3, 45);
    let want = sha256_file(&src);
    for (rx_extra, tx_extra) in [(&["--no-verify"][..], &[][..]), (&[], &["--no-verify"])] {
        let out = tmp.path().join(format!("out-{}.bin", rx_extra.len()));
        let mut args = tx_extra.to_vec();
        args.push(s(&src));
        let (sent, got) = raw_pair(&out, rx_extra, &args);
        assert_same_file(&src, &out);
        for (outcome, role, off) in [(&sent, "sent", tx_extra), (&got, "received", rx_extra)] {
            let line = summary(&outcome.stderr, role);
            if off.is_empty() {
                assert_eq!(role_sha(&outcome.stderr, role), Some(want.clone()));
            } else {
                assert!(
                    !line.contains("sha256") && line.contains("not verified"),
                    "--no-verify: no digest wanted: {line}"
                );
            }
        }
    }
}

/// The one `done` event of a `--json` stderr.
fn done_event(stderr: &str) -> Value {
    let done: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "done")
        .collect();
    assert_eq!(done.len(), 1, "one `done` event wanted in:\n{stderr}");
    done[0].clone()
}

#[test]
fn json_done_events_carry_the_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src.bin");
    let out = tmp.path().join("out.bin");
    random_file(&src, 2 * MIB + 5, 46);
    let (sent, got) = raw_pair(&out, &["--json"], &["--json", s(&src)]);
    let want = sha256_file(&src);
    assert_eq!(done_event(&sent.stderr)["sha256"], want.as_str());
    assert_eq!(done_event(&got.stderr)["sha256"], want.as_str());

    let out = tmp.path().join("out-nv.bin");
    let (sent, got) = raw_pair(
        &out,
        &["--json", "--no-verify"],
        &["--json", "--no-verify", s(&src)],
    );
    assert!(
        done_event(&sent.stderr)["sha256"].is_null(),
        "{}",
        sent.stderr
    );
    assert!(
        done_event(&got.stderr)["sha256"].is_null(),
        "{}",
        got.stderr
    );
}

/// A send cut short prints no digest: it would not be of the whole range.
#[test]
fn a_cut_send_prints_no_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src.bin");
    let out = tmp.path().join("out.bin");
    // Far more than the socket buffers on both sides of the proxy hold, so
    // the cut cannot let the sender finish its writes.
    random_file(&src, 40 * MIB, 47);
    let rx = receiver(&out, &["--raw"], Stdout::Null);
    let proxy = CuttingProxy::start(rx.addr, 4 * MIB, 1);
    let sent = send(&["--raw", s(&src), &proxy.addr.to_string()]);
    let got = rx.finish(TIMEOUT);
    println!("sender:\n{}receiver:\n{}", sent.stderr, got.stderr);
    sent.expect_clean(1, "zc send --raw through a cut");
    assert!(
        !sent.stderr.contains("sha256"),
        "a cut send printed a digest:\n{}",
        sent.stderr
    );
    // The receiver cannot tell a cut from an end; what it prints must be
    // the digest of what it wrote, beside its exact end.
    if got.code == 0 {
        let have = fs::metadata(&out).unwrap().len();
        assert!(have < 40 * MIB, "the cut let everything through");
        assert_eq!(role_sha(&got.stderr, "received"), Some(sha256_file(&out)));
        assert!(
            summary(&got.stderr, "received").contains(&format!("ends at byte {have}")),
            "{}",
            got.stderr
        );
    } else {
        assert!(!got.stderr.contains("sha256"), "{}", got.stderr);
    }
}

/// A raw stream has no frames to stop between: Ctrl-C on a receiver whose
/// sender never pauses must still end it promptly (exit 130, what it holds
/// said), not when the sender is done. Before the fix the receiver only
/// looked at Ctrl-C when a read waited, so a steady stream kept it going.
#[test]
fn ctrl_c_stops_a_raw_receiver_while_data_keeps_coming() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("endless.bin");
    let rx = receiver(&out, &["--raw"], Stdout::Null);
    let src = dir.path().join("big.bin");
    sparse_file(&src, 64 << 30);
    // 200 MiB/s for 64 GiB: five minutes of data unless the receiver stops
    let mut tx = start({
        let mut cmd = zc();
        cmd.args(["send", "--raw", "--limit-rate", "200M", s(&src), &rx.dest()]);
        cmd
    });
    std::thread::sleep(std::time::Duration::from_millis(800));
    let began = std::time::Instant::now();
    sigint(&rx.child);
    let got = rx.finish(std::time::Duration::from_secs(20));
    let took = began.elapsed();
    kill_tree(&mut tx.child);
    println!("receiver:\n{}", got.stderr);
    got.expect(130, &["holds"], "a raw receiver after SIGINT");
    assert!(took.as_secs() < 10, "it took {took:?} to stop");
}
