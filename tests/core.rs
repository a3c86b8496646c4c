//! End-to-end tests of the built `zc` binary: real sender and receiver
//! processes talking over 127.0.0.1.
#![cfg(unix)]

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// Where a framed receiver is told to write.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// `-o DIR`: the file appears under the sender's base name.
    Dir,
    /// `-o FILE`.
    File,
    /// `-o -`, captured through a pipe.
    Stdout,
}

/// One framed transfer of a `size`-byte random file into `target`; checks the
/// bytes, the exit codes, the absence of leftovers and the digests.
fn framed_case(size: u64, target: Target, timeout: Duration) {
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    let out_dir = tmp.path().join("out");
    fs::create_dir(&src_dir).unwrap();
    fs::create_dir(&out_dir).unwrap();
    let name = format!("data-{size}.bin");
    let src = src_dir.join(&name);
    random_file(&src, size, 1);

    let capture = tmp.path().join("stdout.bin");
    let (output, landed, stdout) = match target {
        Target::Dir => (out_dir.clone(), out_dir.join(&name), Stdout::Null),
        Target::File => (
            out_dir.join("renamed.bin"),
            out_dir.join("renamed.bin"),
            Stdout::Null,
        ),
        Target::Stdout => ("-".into(), capture.clone(), Stdout::File(capture.clone())),
    };
    // The receiver runs inside the (empty) output directory, so a stray file
    // written by `-o -` would show.
    let mut cmd = recv_cmd(&output, &[]);
    cmd.current_dir(&out_dir);
    let rx = spawn_receiver(cmd, stdout);
    let sent = send_timeout(&[s(&src), &rx.dest()], timeout);
    let got = rx.finish(timeout);
    let what = format!("{size} bytes into {target:?}");
    sent.expect_code(0, &format!("zc send, {what}"));
    got.expect_code(0, &format!("zc recv, {what}"));
    assert!(
        sent.stdout.is_empty(),
        "{what}: zc send wrote to stdout: {:?}",
        String::from_utf8_lossy(&sent.stdout)
    );

    assert_same_file(&src, &landed);
    match target {
        Target::Dir | Target::File => {
            let want = landed.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(
                list_dir(&out_dir),
                vec![want],
                "{what}: the output directory holds exactly the received file (no .zcpart)"
            );
        }
        Target::Stdout => {
            assert!(
                list_dir(&out_dir).is_empty(),
                "{what}: -o - must not create files: {:?}",
                list_dir(&out_dir)
            );
        }
    }

    // Both sides report the same digest, and it is the file's.
    let sent_sha = expect_summary_sha(&sent.stderr, &format!("{what}, the sender"));
    let got_sha = expect_summary_sha(&got.stderr, &format!("{what}, the receiver"));
    assert_eq!(sent_sha, got_sha, "{what}: the two sides' digests differ");
    if size <= 8 * MIB {
        assert_eq!(
            sent_sha,
            sha256_file(&src),
            "{what}: the summary's sha256 is not the file's"
        );
    }
}

const SMALL_SIZES: [u64; 4] = [0, 1, 4095, MIB + 7];

#[test]
fn framed_small_sizes_into_directory() {
    for size in SMALL_SIZES {
        framed_case(size, Target::Dir, TIMEOUT);
    }
}

#[test]
fn framed_small_sizes_into_file() {
    for size in SMALL_SIZES {
        framed_case(size, Target::File, TIMEOUT);
    }
}

#[test]
fn framed_small_sizes_to_stdout() {
    for size in SMALL_SIZES {
        framed_case(size, Target::Stdout, TIMEOUT);
    }
}

#[test]
fn framed_100mib_into_directory() {
    framed_case(100 * MIB, Target::Dir, LONG_TIMEOUT);
}

#[test]
fn framed_100mib_into_file() {
    framed_case(100 * MIB, Target::File, LONG_TIMEOUT);
}

#[test]
fn framed_100mib_to_stdout() {
    framed_case(100 * MIB, Target::Stdout, LONG_TIMEOUT);
}

#[test]
fn raw_mode_into_file_and_stdout() {
    for size in [0, MIB + 7] {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src.bin");
        random_file(&src, size, 2);

        // --raw -o FILE
        let out = tmp.path().join("out.bin");
        let rx = receiver(&out, &["--raw"], Stdout::Memory);
        let sent = send(&["--raw", s(&src), &rx.dest()]);
        let got = rx.finish(TIMEOUT);
        sent.expect_code(0, &format!("zc send --raw, {size} bytes"));
        got.expect_code(0, &format!("zc recv --raw -o FILE, {size} bytes"));
        assert_same_file(&src, &out);
        assert!(got.stdout.is_empty(), "raw recv -o FILE wrote to stdout");

        // --raw without -o: stdout
        let mut cmd = zc();
        cmd.args(["recv", "--raw", "-l", "127.0.0.1:0"])
            .current_dir(tmp.path());
        let rx = spawn_receiver(cmd, Stdout::Memory);
        let sent = send(&["--raw", s(&src), &rx.dest()]);
        let got = rx.finish(TIMEOUT);
        sent.expect_code(0, &format!("zc send --raw, {size} bytes"));
        got.expect_code(0, &format!("zc recv --raw (stdout), {size} bytes"));
        assert_file_is(&src, &got.stdout);
        assert_eq!(
            list_dir(tmp.path()),
            vec!["out.bin".to_string(), "src.bin".to_string()],
            "raw recv to stdout must not create files"
        );
    }
}

#[test]
fn stdin_buffered_and_sendfile_paths_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src.bin");
    // Several buffers' worth, not a multiple of anything.
    random_file(&src, 5 * MIB + 12345, 3);

    let mut digests = Vec::new();
    for (label, args, piped) in [
        ("default", vec![], false),
        ("--no-sendfile", vec!["--no-sendfile"], false),
        ("stdin", vec![], true),
    ] {
        let out = tmp
            .path()
            .join(format!("out-{}.bin", label.trim_start_matches('-')));
        let rx = receiver(&out, &[], Stdout::Null);
        let dest = rx.dest();
        let mut argv: Vec<&str> = args.clone();
        if piped {
            argv.extend(["-", &dest]);
        } else {
            argv.extend([s(&src), &dest]);
        }
        let sent = if piped {
            send_stdin(&argv, &src, TIMEOUT)
        } else {
            send(&argv)
        };
        let got = rx.finish(TIMEOUT);
        sent.expect_code(0, &format!("zc send ({label})"));
        got.expect_code(0, &format!("zc recv ({label})"));
        assert_same_file(&src, &out);

        let summary = line_with(&sent.stderr, "sha256")
            .unwrap_or_else(|| panic!("{label}: no summary line:\n{}", sent.stderr));
        if label == "default" {
            assert!(
                summary.contains("zero-copy") && !summary.contains("buffered"),
                "{label}: the summary should say zero-copy: {summary}"
            );
        } else {
            assert!(
                summary.contains("buffered") && !summary.contains("zero-copy"),
                "{label}: the summary should say buffered: {summary}"
            );
        }
        digests.push(summary_sha(summary).unwrap());
    }
    assert!(
        digests.iter().all(|d| d == &digests[0]),
        "the three paths reported different digests: {digests:?}"
    );
    assert_eq!(digests[0], sha256_file(&src));
}

#[test]
fn existing_file_is_refused_without_force_and_replaced_with_it() {
    for into_dir in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let out_dir = tmp.path().join("out");
        fs::create_dir(&out_dir).unwrap();
        let src = tmp.path().join("report.bin");
        random_file(&src, 300_000, 4);
        let existing = out_dir.join("report.bin");
        let old = b"the old content, which must survive".to_vec();
        fs::write(&existing, &old).unwrap();
        let output = if into_dir {
            out_dir.clone()
        } else {
            existing.clone()
        };
        let what = if into_dir { "-o DIR" } else { "-o FILE" };

        let rx = receiver(&output, &[], Stdout::Null);
        let sent = send(&[s(&src), &rx.dest()]);
        let got = rx.finish(TIMEOUT);
        sent.expect(
            4,
            &["exists"],
            &format!("zc send to an existing file ({what})"),
        );
        assert_ne!(
            got.code, 0,
            "{what}: a receiver that refused its only transfer must not exit 0:\n{}",
            got.stderr
        );
        assert_eq!(
            fs::read(&existing).unwrap(),
            old,
            "{what}: the file was changed"
        );
        assert_eq!(
            list_dir(&out_dir),
            vec!["report.bin".to_string()],
            "{what}: a refused transfer leaves nothing behind"
        );

        let rx = receiver(&output, &["--force"], Stdout::Null);
        let sent = send(&[s(&src), &rx.dest()]);
        let got = rx.finish(TIMEOUT);
        sent.expect_code(0, &format!("zc send to recv --force ({what})"));
        got.expect_code(0, &format!("zc recv --force ({what})"));
        assert_same_file(&src, &existing);
        assert_eq!(list_dir(&out_dir), vec!["report.bin".to_string()]);
    }
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("ten.bin");
    random_file(&src, 10, 5);
    // Nobody listens there: a usage error must be found before connecting.
    let (_refusing, dest) = refusing_addr();

    let cases: [(&str, Vec<&str>, &str); 4] = [
        ("bad size", vec!["--count", "12X", s(&src), &dest], "12X"),
        (
            "--retry with --raw (nothing can resume)",
            vec!["--raw", "--retry", "3", s(&src), &dest],
            "--retry",
        ),
        ("bad address", vec![s(&src), "nohostport"], "nohostport"),
        (
            "offset past the end",
            vec!["--offset", "11", s(&src), &dest],
            "offset",
        ),
    ];
    for (what, args, mention) in cases {
        let out = send(&args);
        out.expect(2, &[mention], what);
        assert!(out.stdout.is_empty(), "{what}: stdout must stay empty");
    }
}

#[test]
fn sending_to_a_closed_port_fails_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("a.bin");
    random_file(&src, 1000, 6);
    let (_refusing, dest) = refusing_addr();
    let out = send(&[s(&src), &dest]);
    out.expect_code(1, "zc send to a closed port");
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got:\n{}", out.stderr);
    assert!(
        lines[0].contains(&dest),
        "the error should name {dest}: {}",
        lines[0]
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_file_that_shrinks_while_sent_fails_and_is_not_published() {
    shrinks_while_sent(&[]);
}

/// Encrypted, the file's bytes are read straight into their records: a
/// read that finds the file ended is the same failure.
#[test]
fn an_encrypted_file_that_shrinks_while_sent_fails_and_is_not_published() {
    shrinks_while_sent(&["--key", "0123456789abcdef0123456789abcdef"]);
}

fn shrinks_while_sent(flags: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let src = tmp.path().join("shrinking.bin");
    sparse_file(&src, 200 * MIB);

    // After a cut the receiver waits --timeout for the sender to resume.
    let rx = receiver(
        &out_dir,
        &[&["--timeout", "2"], flags].concat(),
        Stdout::Null,
    );
    // ~8 MiB/s at most, so the 200 MiB cannot be through before the cut.
    let proxy = SlowProxy::start(rx.addr, 16 * 1024, Duration::from_millis(2));
    let mut cmd = zc();
    cmd.args(["send", "--no-verify", s(&src)])
        .args(flags)
        .arg(proxy.addr.to_string());
    let sender = thread::spawn(move || run(cmd, None, TIMEOUT));

    let deadline = Instant::now() + TIMEOUT;
    while proxy.forwarded.load(Ordering::SeqCst) < 2 * MIB {
        if sender.is_finished() {
            let early = sender.join().unwrap();
            panic!(
                "the sender ended (exit {}) before 2 MiB went through the proxy:\n{}",
                early.code, early.stderr
            );
        }
        assert!(Instant::now() < deadline, "the transfer never got going");
        thread::sleep(Duration::from_millis(5));
    }
    fs::OpenOptions::new()
        .write(true)
        .open(&src)
        .and_then(|f| f.set_len(MIB))
        .expect("truncating the source");
    let moved = proxy.forwarded.load(Ordering::SeqCst);
    assert!(
        moved < 100 * MIB,
        "the proxy did not throttle ({moved} bytes)"
    );
    proxy.fast.store(true, Ordering::SeqCst);

    let sent = sender.join().unwrap();
    let got = rx.finish(TIMEOUT);
    // Shown when the test fails (or with --nocapture).
    println!("sender:\n{}receiver:\n{}", sent.stderr, got.stderr);
    assert_ne!(
        sent.code, 0,
        "zc send exited 0 although its file shrank mid-transfer:\n{}",
        sent.stderr
    );
    sent.expect(1, &["shrinking.bin"], "zc send of a shrinking file");
    assert_ne!(
        got.code, 0,
        "zc recv exited 0 for a cut transfer:\n{}",
        got.stderr
    );
    let left = list_dir(&out_dir);
    assert!(
        left.iter()
            .all(|n| n == "shrinking.bin.zcpart" || n == "shrinking.bin.zcpart.held"),
        "only the .zcpart and its record may remain, found {left:?}"
    );
}

/// Peak RSS in KiB, as `/usr/bin/time -f %M -o FILE` wrote it.
fn peak_kib(path: &Path) -> u64 {
    let text = fs::read_to_string(path).unwrap();
    text.lines()
        .rev()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no %M figure in {}: {text:?}", path.display()))
}

/// Peak RSS (KiB) of the sender and the receiver for one transfer.
fn measured_transfer(dir: &Path, src: &Path, send_extra: &[&str]) -> (u64, u64) {
    // An unoptimised SHA-256 runs at ~25 MiB/s: a debug build measures the
    // copy loops alone (the hashers use the same fixed-size buffers); the
    // release build (.ci/run) measures the verified transfer too.
    let verify: &[&str] = if cfg!(debug_assertions) {
        &["--no-verify"]
    } else {
        &[]
    };
    let send_rss = dir.join("send.rss");
    let recv_rss = dir.join("recv.rss");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.env("XDG_CACHE_HOME", CACHE)
        .args(["-f", "%M", "-o", s(&recv_rss), env!("CARGO_BIN_EXE_zc")])
        .args(["recv", "--json", "-l", "127.0.0.1:0", "-o", "-"])
        .args(verify);
    let rx = spawn_receiver(cmd, Stdout::Null);
    let mut cmd = Command::new("/usr/bin/time");
    cmd.env("XDG_CACHE_HOME", CACHE)
        .args(["-f", "%M", "-o", s(&send_rss), env!("CARGO_BIN_EXE_zc")])
        .arg("send")
        .args(verify)
        .args(send_extra)
        .arg(src)
        .arg(rx.dest());
    let sent = run(cmd, None, LONG_TIMEOUT);
    let got = rx.finish(LONG_TIMEOUT);
    sent.expect_code(0, "zc send (measured)");
    let size = fs::metadata(src).unwrap().len();
    got.expect(0, &[&format!("\"bytes\":{size},")], "zc recv (measured)");
    (peak_kib(&send_rss), peak_kib(&recv_rss))
}

#[test]
fn peak_memory_does_not_grow_with_file_size() {
    let time_works = Command::new("/usr/bin/time")
        .args(["-f", "%M", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        time_works,
        "GNU time (/usr/bin/time -f %M) measures the peak memory here and is missing: \
         install the Debian package `time` (./scripts/test.sh does)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("small.bin");
    let big = tmp.path().join("big.bin");
    sparse_file(&small, 10 * MIB);
    sparse_file(&big, 1 << 30);

    for extra in [&[][..], &["--no-sendfile"][..]] {
        let (s_small, r_small) = measured_transfer(tmp.path(), &small, extra);
        let (s_big, r_big) = measured_transfer(tmp.path(), &big, extra);
        println!(
            "peak RSS {extra:?}: send {s_small} -> {s_big} KiB, recv {r_small} -> {r_big} KiB"
        );
        for (side, a, b) in [("send", s_small, s_big), ("recv", r_small, r_big)] {
            assert!(
                b <= a + 4 * 1024,
                "{side} {extra:?}: peak RSS grew from {a} KiB (10 MiB) to {b} KiB (1 GiB)"
            );
            assert!(
                a < 16 * 1024 && b < 16 * 1024,
                "{side} {extra:?}: peak RSS over 16 MiB ({a} / {b} KiB)"
            );
        }
    }
    fs::remove_file(&big).unwrap();
}

/// `-o` naming a FIFO (or a device such as /dev/null) writes into it in
/// order; it must never be replaced by a renamed `.zcpart`. A FIFO stands in
/// for /dev/null so that a failure cannot damage the machine.
#[test]
fn output_into_a_fifo_writes_through_it_and_keeps_it() {
    use std::os::unix::fs::FileTypeExt;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("to-fifo.bin");
    random_file(&src, MIB + 7, 41);
    for raw in [false, true] {
        let fifo = tmp.path().join(format!("pipe-{raw}"));
        let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success(), "mkfifo failed");
        let reader = {
            let fifo = fifo.clone();
            thread::spawn(move || fs::read(fifo).unwrap())
        };
        let extra: &[&str] = if raw {
            &["--raw", "--force"]
        } else {
            &["--force"]
        };
        let rx = receiver(&fifo, extra, Stdout::Null);
        let mut args = vec![];
        if raw {
            args.push("--raw");
        }
        let dest = rx.dest();
        args.extend([s(&src), dest.as_str()]);
        send(&args).expect_code(0, "zc send into a FIFO");
        rx.finish(TIMEOUT).expect_code(0, "zc recv into a FIFO");
        let got = reader.join().unwrap();
        assert_eq!(
            got,
            fs::read(&src).unwrap(),
            "raw={raw}: bytes through the FIFO"
        );
        let kind = fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(
            kind.is_fifo(),
            "raw={raw}: the FIFO was replaced by {kind:?}"
        );
        assert!(!tmp.path().join(format!("pipe-{raw}.zcpart")).exists());
    }
}

/// The names of `pid`'s threads.
#[cfg(target_os = "linux")]
fn thread_names(pid: u32) -> Vec<String> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect()
}

/// Sends a 96 MiB file over loopback at 48 MiB/s (about two seconds),
/// with `flags` on both sides, and watches one side's threads meanwhile
/// (the sender's, or the receiver's): whether a hashing thread ran there.
/// The file must land whole, its digest checked.
#[cfg(target_os = "linux")]
fn a_hashing_thread_ran(on_sender: bool, flags: &[&str]) -> bool {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let src = tmp.path().join("large.bin");
    sparse_file(&src, 96 * MIB);
    let rx = receiver(&out_dir, flags, Stdout::Null);
    let addr = rx.addr.to_string();
    let mut args = flags.to_vec();
    args.extend(["--limit-rate", "48M", s(&src), &addr]);
    let mut tx = start(send_cmd(&args));
    let pid = if on_sender {
        tx.child.id()
    } else {
        rx.child.id()
    };
    let mut ran = false;
    while tx.child.try_wait().unwrap().is_none() {
        ran |= thread_names(pid).iter().any(|n| n == "zc-hash");
        thread::sleep(Duration::from_millis(10));
    }
    let sent = tx.finish(TIMEOUT);
    let got = rx.finish(TIMEOUT);
    assert_eq!(sent.code, 0, "sender:\n{}", sent.stderr);
    assert_eq!(got.code, 0, "receiver:\n{}", got.stderr);
    assert_eq!(
        fs::metadata(out_dir.join("large.bin")).unwrap().len(),
        96 * MIB
    );
    ran
}

/// A hashing thread runs beside a peer on this machine only from four
/// cores on (`hash::thread_pays`).
#[cfg(target_os = "linux")]
fn expect_a_thread_only_with_four_cores(ran: bool, side: &str) {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(
        ran,
        cores >= 4,
        "{cores} cores and the peer on this machine: a hashing thread {} in the {side}",
        if ran { "ran" } else { "never ran" }
    );
}

/// An encrypted sender takes a whole file's digest from what it reads to
/// seal, on its own thread, where a hashing thread beside it would only
/// take turns with a peer on the same cores (`hash::thread_pays`): here, a
/// receiver over loopback, below four cores. Either way the receiver
/// checks the digest, and the file lands.
#[cfg(target_os = "linux")]
#[test]
fn an_encrypted_sender_hashes_what_it_seals_where_the_peer_shares_its_cores() {
    let ran = a_hashing_thread_ran(true, &["--key", "0123456789abcdef0123456789abcdef"]);
    expect_a_thread_only_with_four_cores(ran, "sender");
}

/// A large file is hashed on a thread beside the receive loop only where
/// there are cores for it: a sender on the same machine (here, over
/// loopback) keeps two busy, so below four cores the receive loop hashes
/// it itself (`hash::thread_pays`). Either way it lands verified.
#[cfg(target_os = "linux")]
#[test]
fn a_receiver_hashes_on_a_thread_only_where_there_are_cores_for_it() {
    let ran = a_hashing_thread_ran(false, &[]);
    expect_a_thread_only_with_four_cores(ran, "receiver");
}
