//! `--limit-rate` on either side, with real sender and receiver processes
//! on loopback and the rate measured around them. Loopback moves GB/s, so
//! the upper bound (the limit plus 25%) fails at once without pacing; the
//! lower bound (half the limit) catches a pacer that stalls. Neither is a
//! timing race: a paced transfer cannot beat its limit.
#![cfg(unix)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// 4 MiB/s, and 12 MiB to move: about 3 s a case.
const LIMIT: u64 = 4 * MIB;
const LIMIT_ARG: &str = "4M";
const SIZE: u64 = 12 * MIB;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Sender,
    Receiver,
}

/// What goes over the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// A framed single file (sendfile).
    File,
    /// stdin, framed.
    Stdin,
    /// `--raw` on both sides.
    Raw,
    /// A directory: small files packed together, and a large one.
    Tree,
}

/// A tree of `SIZE` bytes: 160 files of 48 KiB (packed into shared writes)
/// and one large file (sendfile).
fn tree(top: &Path) {
    fs::create_dir_all(top.join("small")).unwrap();
    let small = 48 << 10;
    for i in 0..160u64 {
        random_file(&top.join(format!("small/s{i:03}.bin")), small, i);
    }
    random_file(&top.join("large.bin"), SIZE - 160 * small, 999);
}

/// `bytes` over `elapsed` must be within [half the limit, the limit + 25%].
fn assert_rate(bytes: u64, elapsed: Duration, what: &str) {
    let rate = bytes as f64 / elapsed.as_secs_f64();
    let ratio = rate / LIMIT as f64;
    println!(
        "{what}: {bytes} bytes in {:.2} s = {:.2} MiB/s, {ratio:.3} of the limit",
        elapsed.as_secs_f64(),
        rate / MIB as f64
    );
    assert!(
        ratio <= 1.25,
        "{what}: {:.2} MiB/s is over the {LIMIT_ARG} limit",
        rate / MIB as f64
    );
    assert!(
        ratio >= 0.5,
        "{what}: {:.2} MiB/s is under half the {LIMIT_ARG} limit",
        rate / MIB as f64
    );
}

/// One transfer of `SIZE` bytes with `--limit-rate` on `side`: both exit 0,
/// the bytes land intact, and the rate, timed from the sender's start to
/// the end of both processes, holds.
fn paced(case: Case, side: Side) {
    let what = format!("{case:?} paced by the {side:?}");
    let tmp = tempfile::tempdir().unwrap();
    let (src, out) = (tmp.path().join("src"), tmp.path().join("out"));
    fs::create_dir_all(&src).unwrap();
    fs::create_dir_all(&out).unwrap();
    let source = src.join("paced.bin");
    match case {
        Case::Tree => tree(&source),
        _ => random_file(&source, SIZE, 7),
    }
    let mut rx_args = vec!["--progress", "none"];
    let mut tx_args = vec!["--progress", "none"];
    match side {
        Side::Sender => tx_args.extend(["--limit-rate", LIMIT_ARG]),
        Side::Receiver => rx_args.extend(["--limit-rate", LIMIT_ARG]),
    }
    let output = match case {
        Case::Raw => {
            rx_args.push("--raw");
            tx_args.push("--raw");
            out.join("paced.bin")
        }
        _ => out.clone(),
    };
    let rx = receiver(&output, &rx_args, Stdout::Null);
    let dest = rx.dest();
    let began = Instant::now();
    let sent = match case {
        Case::Stdin => {
            tx_args.extend(["--name", "paced.bin", "-", &dest]);
            run(send_cmd(&tx_args), Some(&source), TIMEOUT)
        }
        _ => {
            tx_args.extend([s(&source), &dest]);
            run(send_cmd(&tx_args), None, TIMEOUT)
        }
    };
    let got = rx.finish(TIMEOUT);
    let elapsed = began.elapsed();
    sent.expect_clean(0, &format!("zc send, {what}"));
    got.expect_clean(0, &format!("zc recv, {what}"));
    match case {
        Case::Tree => assert_same_tree_contents(&source, &out.join("paced.bin")),
        _ => assert_same_file(&source, &out.join("paced.bin")),
    }
    if matches!(case, Case::File | Case::Raw) {
        // pacing shrinks what each sendfile call is handed, nothing more
        sent.says(&["zero-copy"]);
    }
    assert_rate(SIZE, elapsed, &what);
}

/// Runs the cases side by side: a paced transfer mostly sleeps.
fn all(cases: &[(Case, Side)]) {
    thread::scope(|scope| {
        let running: Vec<_> = cases
            .iter()
            .map(|&(case, side)| scope.spawn(move || paced(case, side)))
            .collect();
        for handle in running {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

#[test]
fn a_paced_sender_holds_the_rate_for_a_file_stdin_and_raw() {
    all(&[
        (Case::File, Side::Sender),
        (Case::Stdin, Side::Sender),
        (Case::Raw, Side::Sender),
    ]);
}

#[test]
fn a_paced_receiver_holds_the_rate_for_a_file_stdin_and_raw() {
    all(&[
        (Case::File, Side::Receiver),
        (Case::Stdin, Side::Receiver),
        (Case::Raw, Side::Receiver),
    ]);
}

#[test]
fn a_tree_with_packed_small_files_is_paced_on_either_side() {
    all(&[(Case::Tree, Side::Sender), (Case::Tree, Side::Receiver)]);
}

/// The sender's `--timeout` here, under the time the paced receiver needs.
const SENDER_TIMEOUT: &str = "3.5";

#[test]
fn a_slow_receiver_does_not_make_its_sender_time_out() {
    // 500 KiB fits loopback's socket buffers: the sender hands it all over
    // at once, then waits for the result while the receiver, paced to
    // 100 KiB/s, takes 5 s to read it. Only the receiver's keepalives tell
    // the sender, whose --timeout is 3.5 s, that it is still there.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let file = tmp.path().join("slow.bin");
    random_file(&file, 500 << 10, 3);
    let top = tmp.path().join("slowtree");
    fs::create_dir_all(&top).unwrap();
    random_file(&top.join("large.bin"), 250 << 10, 4);
    for i in 0..10 {
        random_file(&top.join(format!("s{i}.bin")), 25 << 10, 5 + i);
    }
    let case = |source: PathBuf, landed: PathBuf| {
        let rx = receiver(&out, &["--limit-rate", "100K"], Stdout::Null);
        let began = Instant::now();
        let args = ["--timeout", SENDER_TIMEOUT, s(&source), &rx.dest()];
        let sent = run(send_cmd(&args), None, TIMEOUT);
        let got = rx.finish(TIMEOUT);
        let elapsed = began.elapsed();
        let what = format!("{} to a receiver at 100K", source.display());
        println!("{what}: {:.2} s", elapsed.as_secs_f64());
        sent.expect_clean(0, &format!("zc send --timeout {SENDER_TIMEOUT}, {what}"));
        got.expect_clean(0, &format!("zc recv, {what}"));
        assert!(
            elapsed > Duration::from_secs(4),
            "{what}: {elapsed:?} is not past the sender's timeout: the case proves nothing"
        );
        if landed.is_dir() {
            assert_same_tree_contents(&source, &landed);
        } else {
            assert_same_file(&source, &landed);
        }
    };
    thread::scope(|scope| {
        let single = scope.spawn(|| case(file.clone(), out.join("slow.bin")));
        case(top.clone(), out.join("slowtree"));
        if let Err(panic) = single.join() {
            std::panic::resume_unwind(panic);
        }
    });
}

#[test]
fn ctrl_c_is_prompt_on_either_paced_side() {
    // At 64 KiB/s the first DATA frame alone (1 MiB) would take 16 s: a
    // sender interrupted inside it finishes the frame unpaced, says STOP,
    // and exits 130 at once; a paced receiver stops reading.
    for side in [Side::Sender, Side::Receiver] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        fs::create_dir_all(&out).unwrap();
        let file = tmp.path().join("big.bin");
        random_file(&file, 8 * MIB, 9);
        let (rx_limit, tx_limit): (&[&str], &[&str]) = match side {
            Side::Sender => (&[], &["--limit-rate", "64K"]),
            Side::Receiver => (&["--limit-rate", "64K"], &[]),
        };
        let rx = receiver(&out, rx_limit, Stdout::Null);
        let mut args = tx_limit.to_vec();
        let dest = rx.dest();
        args.extend([s(&file), &dest]);
        let tx = start(send_cmd(&args));
        thread::sleep(Duration::from_secs(1));
        let asked = Instant::now();
        let (stopped, other) = match side {
            Side::Sender => {
                sigint(&tx.child);
                (tx.finish(TIMEOUT), rx.finish(TIMEOUT))
            }
            Side::Receiver => {
                sigint(&rx.child);
                let got = rx.finish(TIMEOUT);
                (got, tx.finish(TIMEOUT))
            }
        };
        let took = asked.elapsed();
        println!(
            "Ctrl-C on the paced {side:?}: {:.2} s to exit\n{}",
            took.as_secs_f64(),
            stopped.stderr
        );
        stopped.expect_clean(130, &format!("the paced {side:?} after SIGINT"));
        assert_no_panic("the other side", &other.stderr);
        assert!(
            took < Duration::from_secs(3),
            "the paced {side:?} took {took:?} to stop"
        );
        assert!(
            out.join("big.bin.zcpart").exists(),
            "the receiver keeps its part for a resume"
        );
    }
}

#[test]
fn a_zero_or_unreadable_rate_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f.bin");
    random_file(&file, 10, 1);
    let cases: [&[&str]; 5] = [
        &["send", "--limit-rate", "0", s(&file), "127.0.0.1:9"],
        &["send", "--limit-rate", "0K", s(&file), "127.0.0.1:9"],
        &["send", "--limit-rate", "abc", s(&file), "127.0.0.1:9"],
        &["recv", "--limit-rate", "0"],
        &["recv", "--limit-rate", "10X"],
    ];
    for args in cases {
        let mut cmd = zc();
        cmd.args(args);
        let out = run(cmd, None, TIMEOUT);
        out.expect_clean(2, &format!("zc {args:?}"));
        assert!(out.stdout.is_empty(), "{args:?}: usage errors go to stderr");
        let first = out.stderr.lines().next().unwrap_or_default();
        assert!(
            first.contains("--limit-rate"),
            "{args:?}: the first line should name the flag: {:?}",
            out.stderr
        );
        let mut json = zc();
        json.args(args).arg("--json");
        let out = run(json, None, TIMEOUT);
        out.expect_clean(2, &format!("zc {args:?} --json"));
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?} --json: one line: {lines:?}");
        let event: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(event["code"], 2, "{event}");
    }
    // and a rate that reads well is taken
    let mut ok = zc();
    ok.args(["send", "--limit-rate", "1.5G", "--help"]);
    run(ok, None, TIMEOUT).expect_clean(0, "zc send --limit-rate 1.5G --help");
}

#[test]
fn a_trickle_below_the_receivers_low_water_mark_is_no_silent_peer() {
    // The receiver asks to be woken once 256 KiB of a frame are queued. A
    // sender paced to 64 KiB/s takes 4 s to fill that mark; the receiver's
    // --timeout is 1 s, so it must take what trickled in at every tick, or
    // it calls a live peer silent. Both receive paths: verified (read) and
    // --no-verify (splice).
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("trickle.bin");
    random_file(&file, 160 << 10, 9);
    for flags in [&[][..], &["--no-verify"][..]] {
        let out = tmp.path().join(format!("out{}", flags.len()));
        fs::create_dir_all(&out).unwrap();
        let mut rx_flags = vec!["--timeout", "1"];
        rx_flags.extend_from_slice(flags);
        let rx = receiver(&out, &rx_flags, Stdout::Null);
        let began = Instant::now();
        let mut args = vec!["--limit-rate", "64K"];
        args.extend_from_slice(flags);
        let dest = rx.dest();
        args.extend([s(&file), dest.as_str()]);
        let sent = run(send_cmd(&args), None, TIMEOUT);
        let got = rx.finish(TIMEOUT);
        let what = format!("a 64K/s sender to a receiver with --timeout 1 {flags:?}");
        sent.expect_clean(0, &format!("zc send, {what}"));
        got.expect_clean(0, &format!("zc recv, {what}"));
        assert!(
            began.elapsed() > Duration::from_millis(2000),
            "{what}: {:?} is not past the receiver's timeout: the case proves nothing",
            began.elapsed()
        );
        assert_same_file(&file, &out.join("trickle.bin"));
    }
}
