//! One sender, many receivers: `zc send --listen ADDR -k` serves its
//! sources to every `zc recv HOST:PORT` that connects, concurrently, until
//! Ctrl-C, hashing each file once; `--max-conns` bounds both sides' `-k`.
//! Real `zc` processes over 127.0.0.1.
#![cfg(unix)]

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A file's digest is kept only once its last change is this far behind
/// (src/send/digests.rs, SETTLE, plus a margin): the tests that count
/// cache hits wait this long after writing their source.
const SETTLE: Duration = Duration::from_millis(2300);

/// `zc send --json --listen 127.0.0.1:0 -k EXTRA... SOURCES...`, listening.
fn server(extra: &[&str], sources: &[&Path]) -> Receiver {
    let mut cmd = zcmd(&["send", "--json", "--listen", "127.0.0.1:0", "-k"]);
    cmd.args(extra).args(sources);
    spawn_receiver(cmd, Stdout::Null)
}

/// `zc recv --json -o OUT EXTRA... ADDR`, started.
fn pull(out: &Path, addr: &str, extra: &[&str]) -> Running {
    let mut cmd = zcmd(&["recv", "--json", "-o", s(out)]);
    cmd.args(extra).arg(addr);
    start(cmd)
}

/// Ctrl-C to a serving side: it must end with 130, without a panic.
fn stop(side: Receiver, who: &str) -> Outcome {
    sigint(&side.child);
    let out = side.finish(TIMEOUT);
    out.expect_clean(130, who);
    out
}

/// The JSON events of `stderr` that are `kind`.
fn events(stderr: &str, kind: &str) -> Vec<Value> {
    stderr
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v| v["event"] == kind)
        .collect()
}

/// The sender's `digest` field of each finished session, in order.
fn digests(stderr: &str) -> Vec<String> {
    events(stderr, "done")
        .iter()
        .map(|d| d["digest"].as_str().unwrap_or("none").to_string())
        .collect()
}

/// Panics if two sessions overlapped: each `start` must follow the
/// previous session's `done`.
fn one_at_a_time(stderr: &str, who: &str) {
    let mut open = false;
    for line in stderr.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        match v["event"].as_str() {
            Some("start") => {
                assert!(!open, "{who}: two sessions at once:\n{stderr}");
                open = true;
            }
            Some("done") => open = false,
            _ => {}
        }
    }
}

fn outs(root: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let dir = root.join(format!("out{i}"));
            fs::create_dir(&dir).unwrap();
            dir
        })
        .collect()
}

#[test]
fn three_receivers_at_once_and_the_file_is_hashed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("big.iso");
    random_file(&src, 8 * MIB + 3, 1);
    thread::sleep(SETTLE);
    let tx = server(&[], &[&src]);
    let dirs = outs(tmp.path(), 4);
    let pulls: Vec<Running> = dirs[..3].iter().map(|d| pull(d, &tx.dest(), &[])).collect();
    for (i, p) in pulls.into_iter().enumerate() {
        p.finish(TIMEOUT).expect_clean(0, &format!("receiver {i}"));
    }
    // one more, after the others: the digest is still there
    pull(&dirs[3], &tx.dest(), &[])
        .finish(TIMEOUT)
        .expect_clean(0, "receiver 3");
    for d in &dirs {
        assert_same_file(&src, &d.join("big.iso"));
    }
    let sent = stop(tx, "zc send -k");
    let mut got = digests(&sent.stderr);
    got.sort();
    // concurrent misses wait for the one session that hashes
    assert_eq!(
        got,
        ["cached", "cached", "cached", "computed"],
        "{}",
        sent.stderr
    );
    assert_eq!(events(&sent.stderr, "start").len(), 4, "{}", sent.stderr);
}

#[test]
fn a_slow_receiver_does_not_hold_up_the_digest_for_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("shared.bin");
    let size = 32 * MIB;
    random_file(&src, size, 11);
    thread::sleep(SETTLE);
    let tx = server(&[], &[&src]);
    let dirs = outs(tmp.path(), 2);
    // the first receiver reads slowly (16 s): its session hashes for everyone
    let slow = pull(&dirs[0], &tx.dest(), &["--limit-rate", "2M"]);
    let part = dirs[0].join("shared.bin.zcpart");
    wait_for_part(&part);
    pull(&dirs[1], &tx.dest(), &[])
        .finish(TIMEOUT)
        .expect_clean(0, "the fast receiver");
    assert_same_file(&src, &dirs[1].join("shared.bin"));
    // Had the digest waited for the slow session's sending, the fast one
    // could not end before all but the socket buffers (10 MiB at most on
    // loopback) had gone to the slow one.
    let held = fs::metadata(&part).unwrap().len();
    assert!(
        held < size / 2,
        "the fast receiver ended only once the slow one held {held} bytes"
    );
    // the slow one would take its time to read Ctrl-C's STOP: it goes first
    let mut slow = slow;
    kill_tree(&mut slow.child);
    let sent = stop(tx, "zc send -k");
    assert_eq!(digests(&sent.stderr), ["cached"], "{}", sent.stderr);
}

/// Waits until a receiver's part holds some bytes: its transfer is under way.
fn wait_for_part(part: &Path) {
    let mut waited = Duration::ZERO;
    while fs::metadata(part).map_or(0, |m| m.len()) == 0 {
        assert!(
            waited < TIMEOUT,
            "{}: the transfer never began",
            part.display()
        );
        thread::sleep(Duration::from_millis(20));
        waited += Duration::from_millis(20);
    }
}

#[test]
fn a_changed_file_is_hashed_again_and_sent_as_it_now_is() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("data.bin");
    random_file(&src, 6 * MIB, 2);
    thread::sleep(SETTLE);
    let tx = server(&[], &[&src]);
    let dirs = outs(tmp.path(), 3);
    pull(&dirs[0], &tx.dest(), &[])
        .finish(TIMEOUT)
        .expect_clean(0, "receiver 0");
    assert_same_file(&src, &dirs[0].join("data.bin"));
    // rewritten in place, same size, and its mtime put back: only the
    // ctime tells (a cache keyed on size and mtime would serve the old
    // digest, and the receiver would refuse the file: exit 3)
    let mtime = fs::metadata(&src).unwrap().modified().unwrap();
    let v2 = XorShift::new(3).bytes(6 * MIB as usize);
    let mut file = OpenOptions::new().write(true).open(&src).unwrap();
    file.write_all(&v2).unwrap();
    file.set_modified(mtime).unwrap();
    drop(file);
    pull(&dirs[1], &tx.dest(), &[])
        .finish(TIMEOUT)
        .expect_clean(0, "receiver 1");
    assert_file_is(&dirs[1].join("data.bin"), &v2);
    // replaced by a file of another size: offered as it now is
    let next = tmp.path().join("next.bin");
    random_file(&next, 5 * MIB + 11, 4);
    fs::rename(&next, &src).unwrap();
    pull(&dirs[2], &tx.dest(), &[])
        .finish(TIMEOUT)
        .expect_clean(0, "receiver 2");
    assert_same_file(&src, &dirs[2].join("data.bin"));
    let sent = stop(tx, "zc send -k");
    assert_eq!(
        digests(&sent.stderr),
        ["computed", "computed", "computed"],
        "{}",
        sent.stderr
    );
}

#[test]
fn a_tree_with_a_key_is_served_and_its_digests_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("photos");
    fs::create_dir(&top).unwrap();
    random_file(&top.join("a.raw"), 3 * MIB, 5);
    random_file(&top.join("b.raw"), MIB + 1, 6);
    fs::write(
        top.join("note.txt"),
        b"small, packed, hashed from its buffer",
    )
    .unwrap();
    thread::sleep(SETTLE);
    let tx = server(&["--key", "lab"], &[&top]);
    let dirs = outs(tmp.path(), 2);
    for (i, d) in dirs.iter().enumerate() {
        pull(d, &tx.dest(), &["--key", "lab"])
            .finish(TIMEOUT)
            .expect_clean(0, &format!("receiver {i}"));
        for name in ["a.raw", "b.raw", "note.txt"] {
            assert_same_file(&top.join(name), &d.join("photos").join(name));
        }
    }
    let sent = stop(tx, "zc send -k DIR");
    let done = events(&sent.stderr, "done");
    let counts: Vec<(u64, u64)> = done
        .iter()
        .map(|d| {
            let n = |k: &str| d[k].as_u64().unwrap_or(u64::MAX);
            (n("digests_computed"), n("digests_cached"))
        })
        .collect();
    // the two large files hashed by the first session only
    assert_eq!(counts, [(3, 0), (1, 2)], "{}", sent.stderr);
}

#[test]
fn max_conns_one_serves_receivers_in_turn() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("turn.bin");
    random_file(&src, 3 * MIB, 7);
    // slow enough that two sessions at once would surely overlap
    let tx = server(&["--max-conns", "1", "--limit-rate", "8M"], &[&src]);
    let dirs = outs(tmp.path(), 2);
    let pulls: Vec<Running> = dirs.iter().map(|d| pull(d, &tx.dest(), &[])).collect();
    for (i, p) in pulls.into_iter().enumerate() {
        p.finish(TIMEOUT).expect_clean(0, &format!("receiver {i}"));
    }
    for d in &dirs {
        assert_same_file(&src, &d.join("turn.bin"));
    }
    let sent = stop(tx, "zc send -k --max-conns 1");
    assert_eq!(events(&sent.stderr, "done").len(), 2, "{}", sent.stderr);
    one_at_a_time(&sent.stderr, "zc send -k --max-conns 1");
}

#[test]
fn recv_max_conns_one_takes_senders_in_turn() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    let files: Vec<PathBuf> = (0..2)
        .map(|i| {
            let f = tmp.path().join(format!("f{i}.bin"));
            random_file(&f, 3 * MIB, 10 + i);
            f
        })
        .collect();
    let mut cmd = recv_cmd(&out, &["--json", "-k", "--max-conns", "1"]);
    cmd.env_remove("ZC_KEY");
    let rx = spawn_receiver(cmd, Stdout::Null);
    let sends: Vec<Running> = files
        .iter()
        .map(|f| {
            let mut cmd = zcmd(&["send", "-q", "--limit-rate", "8M"]);
            cmd.arg(f).arg(rx.dest());
            start(cmd)
        })
        .collect();
    for (i, p) in sends.into_iter().enumerate() {
        p.finish(TIMEOUT).expect_clean(0, &format!("sender {i}"));
    }
    for f in &files {
        assert_same_file(f, &out.join(f.file_name().unwrap()));
    }
    let got = stop(rx, "zc recv -k --max-conns 1");
    one_at_a_time(&got.stderr, "zc recv -k --max-conns 1");
}

#[test]
fn a_refusing_receiver_is_reported_and_the_others_are_served() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("doc.bin");
    random_file(&src, 2 * MIB, 8);
    let tx = server(&[], &[&src]);
    let dirs = outs(tmp.path(), 2);
    // a different file of that name, and no --force: refused
    fs::write(dirs[0].join("doc.bin"), b"something else").unwrap();
    let refused = pull(&dirs[0], &tx.dest(), &[]).finish(TIMEOUT);
    refused.expect_clean(4, "the refusing receiver");
    pull(&dirs[1], &tx.dest(), &[])
        .finish(TIMEOUT)
        .expect_clean(0, "the next receiver");
    assert_same_file(&src, &dirs[1].join("doc.bin"));
    let sent = stop(tx, "zc send -k");
    let errors = events(&sent.stderr, "error");
    // the refusal, with the receiver's address, then the Ctrl-C
    assert_eq!(errors.len(), 2, "{}", sent.stderr);
    assert_eq!(errors[0]["code"], 4, "{}", sent.stderr);
    let said = errors[0]["message"].as_str().unwrap();
    assert!(said.starts_with("127.0.0.1:"), "{said}");
    assert_eq!(errors[1]["code"], 130, "{}", sent.stderr);
}

#[test]
fn ctrl_c_mid_transfer_stops_the_sender_with_130() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("slow.bin");
    random_file(&src, 8 * MIB, 9);
    let tx = server(&["--limit-rate", "2M"], &[&src]);
    let dirs = outs(tmp.path(), 1);
    let rx = pull(&dirs[0], &tx.dest(), &[]);
    let part = dirs[0].join("slow.bin.zcpart");
    wait_for_part(&part);
    let sent = stop(tx, "zc send -k, interrupted");
    sent.says(&["interrupted after sending"]);
    let got = rx.finish(TIMEOUT);
    assert_ne!(got.code, 0, "{}", got.stderr);
    assert!(part.exists(), "the receiver keeps its part for resuming");
}

#[test]
fn usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("f");
    File::create(&src).unwrap();
    let f = s(&src);
    let cases: [&[&str]; 8] = [
        &["send", "-k", f, "127.0.0.1:9"],
        &["send", "-k", f],
        &["send", "--listen", "127.0.0.1:0", "-k", "-"],
        &["send", "--listen", "127.0.0.1:0", "-k", "--raw", f],
        &["send", "--listen", "127.0.0.1:0", "-k", "--retry", "3", f],
        &[
            "send",
            "--listen",
            "127.0.0.1:0",
            "-k",
            "--max-conns",
            "0",
            f,
        ],
        &["send", "--listen", "127.0.0.1:0", "--max-conns", "2", f],
        &["recv", "-l", "127.0.0.1:0", "-k", "--max-conns", "0"],
    ];
    for args in cases {
        let out = run(zcmd(args), None, TIMEOUT);
        out.expect_clean(2, &args.join(" "));
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
    }
}
