//! Encrypted sessions (`--code`, a key) against real processes: what a
//! recording proxy sees, a wrong code, a flipped byte, a replay, a cut and
//! a resume, several senders at once, reverse mode, and the refusals
//! between a side that encrypts and one that does not.
// The harness signals its children (tests/common): Unix only, as the others.
#![cfg(unix)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const KEY: &str = "correct horse battery staple";

fn send_with(args: &[&str], key: Option<&str>) -> Outcome {
    let mut cmd = zcmd(&["send"]);
    cmd.args(args);
    if let Some(key) = key {
        cmd.env("ZC_KEY", key);
    }
    run(cmd, None, TIMEOUT)
}

/// A receiver on 127.0.0.1:0 into `out`, with `extra` flags and `key`.
fn recv_with(out: &Path, extra: &[&str], key: Option<&str>) -> Receiver {
    let mut cmd = recv_cmd(out, extra);
    cmd.env_remove("ZC_KEY");
    if let Some(key) = key {
        cmd.env("ZC_KEY", key);
    }
    spawn_receiver(cmd, Stdout::Null)
}

/// The same code with another number: well formed, and wrong.
fn other_code(code: &str) -> String {
    let (number, words) = code.split_once('-').unwrap();
    let n: u32 = number.parse().unwrap();
    format!("{}-{words}", n % 99 + 1)
}

struct Dirs {
    _tmp: tempfile::TempDir,
    src: std::path::PathBuf,
    out: std::path::PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let (src, out) = (tmp.path().join("src"), tmp.path().join("out"));
    std::fs::create_dir(&src).unwrap();
    std::fs::create_dir(&out).unwrap();
    Dirs {
        _tmp: tmp,
        src,
        out,
    }
}

// --- proxies -------------------------------------------------------------------

/// What went each way through a [`Proxy`], for each connection.
#[derive(Default)]
struct Capture {
    up: Vec<Vec<u8>>,
    down: Vec<Vec<u8>>,
}

/// A man in the middle on 127.0.0.1: records every byte each way and,
/// with `flip_at`, flips one bit of the sender's bytes at that offset of
/// the first connection.
struct Proxy {
    addr: SocketAddr,
    capture: Arc<Mutex<Capture>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: SocketAddr, flip_at: Option<u64>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let capture = Arc::new(Mutex::new(Capture::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (cap, halt) = (capture.clone(), stop.clone());
        thread::spawn(move || {
            let mut index = 0;
            while !halt.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                {
                    let mut c = cap.lock().unwrap();
                    c.up.push(Vec::new());
                    c.down.push(Vec::new());
                }
                let flip = if index == 0 { flip_at } else { None };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let cap2 = cap.clone();
                thread::spawn(move || relay(s2, c2, &cap2, index, false, None));
                let cap3 = cap.clone();
                thread::spawn(move || relay(client, server, &cap3, index, true, flip));
                index += 1;
            }
        });
        Proxy {
            addr,
            capture,
            stop,
        }
    }

    fn dest(&self) -> String {
        self.addr.to_string()
    }

    /// Everything the sender sent, on every connection.
    fn upstream(&self) -> Vec<Vec<u8>> {
        self.capture.lock().unwrap().up.clone()
    }

    fn everything(&self) -> Vec<u8> {
        let c = self.capture.lock().unwrap();
        c.up.iter()
            .chain(c.down.iter())
            .flatten()
            .copied()
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn relay(
    mut from: TcpStream,
    mut to: TcpStream,
    cap: &Mutex<Capture>,
    index: usize,
    up: bool,
    flip_at: Option<u64>,
) {
    let mut buf = vec![0u8; 64 << 10];
    let mut at = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(flip) = flip_at.filter(|f| (at..at + n as u64).contains(f)) {
            buf[(flip - at) as usize] ^= 0x20;
        }
        at += n as u64;
        {
            let mut c = cap.lock().unwrap();
            let side = if up { &mut c.up } else { &mut c.down };
            side[index].extend_from_slice(&buf[..n]);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Whether `hay` holds any 16-byte run of `file`.
fn holds_a_run_of(hay: &[u8], file: &[u8]) -> bool {
    const RUN: usize = 16;
    let runs: std::collections::HashSet<&[u8]> = file.windows(RUN).step_by(8).collect();
    hay.windows(RUN).any(|w| runs.contains(w))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// --- what crosses the wire -------------------------------------------------------

/// A code session through a recording proxy: the file lands, and nothing
/// of it (no 16-byte run of its bytes, not its name) is on the wire;
/// the same transfer without a code shows both (so the check can fail).
#[test]
fn a_capture_of_an_encrypted_session_holds_no_name_and_no_data() {
    let d = dirs();
    let name = "quarterly-secret-plans.bin";
    let src = d.src.join(name);
    random_file(&src, 3 * MIB, 11);
    let data = std::fs::read(&src).unwrap();
    let rx = receiver(&d.out, &["--code"], Stdout::Null);
    let code = code_in(&rx.head);
    let proxy = Proxy::start(rx.addr, None);
    let sent = send_with(&["--json", s(&src), &proxy.dest(), "--code", &code], None);
    let got = rx.finish(TIMEOUT);
    sent.expect_clean(0, "zc send --code")
        .says(&["\"encrypted\":true", "\"zero_copy\":false"]);
    got.expect_clean(0, "zc recv --code");
    assert_same_file(&src, &d.out.join(name));
    let wire = proxy.everything();
    assert!(wire.len() as u64 > 3 * MIB, "the proxy saw the transfer");
    assert!(!holds_a_run_of(&wire, &data), "file bytes in the capture");
    assert!(!contains(&wire, name.as_bytes()), "the name in the capture");
    assert!(
        !contains(&wire, &code.as_bytes()[2..]),
        "the code in the capture"
    );
    // after the handshake, TLS 1.3 application-data records
    let up = &proxy.upstream()[0];
    assert_eq!(&up[..6], b"ZCPF\0\x02", "protocol version 2");
    assert!(contains(up, &[23, 3, 3, 0x40, 0x11]), "16 KiB records");

    // the control: the same file in the clear is plainly visible
    std::fs::remove_file(d.out.join(name)).unwrap();
    let rx = receiver(&d.out, &[], Stdout::Null);
    let proxy = Proxy::start(rx.addr, None);
    send_with(&[s(&src), &proxy.dest()], None).expect_clean(0, "zc send");
    rx.finish(TIMEOUT).expect_clean(0, "zc recv");
    let wire = proxy.everything();
    assert!(holds_a_run_of(&wire, &data) && contains(&wire, name.as_bytes()));
}

/// A wrong code: both sides exit 4 after the key exchange, before a name
/// or a byte of data crosses, and the receiver says the code is burnt.
#[test]
fn a_wrong_code_is_refused_before_any_data_and_burns_the_code() {
    let d = dirs();
    let src = d.src.join("wanted.bin");
    random_file(&src, MIB, 12);
    let rx = receiver(&d.out, &["--code"], Stdout::Null);
    let (code, addr) = (code_in(&rx.head), rx.addr);
    let proxy = Proxy::start(rx.addr, None);
    let wrong = other_code(&code);
    let sent = send_with(&[s(&src), &proxy.dest(), "--code", &wrong], None);
    let got = rx.finish(TIMEOUT);
    sent.expect_clean(4, "zc send with a wrong code")
        .says(&["wrong code"]);
    got.expect_clean(4, "zc recv --code, met a wrong one")
        .says(&["burnt"]);
    assert!(list_dir(&d.out).is_empty(), "{:?}", list_dir(&d.out));
    // the preamble and one hello went up, and nothing after them
    let up = proxy.upstream().concat();
    assert!(up.len() < 100, "{} bytes went up", up.len());
    assert!(!contains(&up, b"wanted"), "the name crossed");
    // the right code comes too late: the receiver is gone with its code
    let again = send_with(&[s(&src), &addr.to_string(), "--code", &code], None);
    again.expect_clean(1, "the right code, after the wrong one");
    assert!(list_dir(&d.out).is_empty(), "{:?}", list_dir(&d.out));
}

/// A proxy flips one bit of ciphertext in the middle of the data: the
/// receiver stops (exit 3), keeps nothing under the final name, and the
/// sender exits non-zero.
#[test]
fn a_flipped_byte_of_ciphertext_stops_the_session() {
    let d = dirs();
    let src = d.src.join("fragile.bin");
    random_file(&src, 6 * MIB, 13);
    let rx = recv_with(&d.out, &[], Some(KEY));
    let proxy = Proxy::start(rx.addr, Some(2 * MIB + 777));
    let began = Instant::now();
    let sent = send_with(&[s(&src), &proxy.dest()], Some(KEY));
    let got = rx.finish(TIMEOUT);
    // it stops: no wait for a sender to come back, as after a cut
    let took = began.elapsed();
    assert!(took < Duration::from_secs(10), "the receiver took {took:?}");
    assert_no_panic("zc send", &sent.stderr);
    got.expect_clean(3, "zc recv, a record altered")
        .says(&["altered in transit"]);
    assert_ne!(sent.code, 0, "the sender reported success: {}", sent.stderr);
    assert!(!d.out.join("fragile.bin").exists(), "altered data landed");
}

/// The bytes a sender sent in one session, replayed on a new connection
/// to a `-k` receiver with the same key: refused, nothing lands, and the
/// receiver goes on serving.
#[test]
fn a_replayed_session_is_refused() {
    let d = dirs();
    let src = d.src.join("once.bin");
    random_file(&src, MIB, 14);
    let rx = recv_with(&d.out, &["-k"], Some(KEY));
    let proxy = Proxy::start(rx.addr, None);
    send_with(&[s(&src), &proxy.dest()], Some(KEY)).expect_clean(0, "the recorded session");
    assert_same_file(&src, &d.out.join("once.bin"));
    std::fs::remove_file(d.out.join("once.bin")).unwrap();
    let recording = proxy.upstream()[0].clone();
    let mut replay = TcpStream::connect(rx.addr).unwrap();
    replay.set_read_timeout(Some(TIMEOUT)).unwrap();
    let _ = replay.write_all(&recording);
    let mut answer = Vec::new();
    let _ = replay.read_to_end(&mut answer);
    // the receiver answered the hello with a fresh exchange, then hung up
    assert!(answer.len() < 200, "{} bytes came back", answer.len());
    thread::sleep(Duration::from_millis(300));
    assert!(list_dir(&d.out).is_empty(), "{:?}", list_dir(&d.out));
    // a real sender is still served
    let other = d.src.join("later.bin");
    random_file(&other, MIB, 15);
    send_with(&[s(&other), &rx.dest()], Some(KEY)).expect_clean(0, "a sender after the replay");
    assert_same_file(&other, &d.out.join("later.bin"));

    sigint(&rx.child);
    let got = rx.finish(TIMEOUT);
    got.says(&["did not prove it holds the key"]);
}

// --- resume, -k, reverse mode, trees ---------------------------------------------

/// A connection cut in the middle of an encrypted transfer: `--retry`
/// reconnects with a fresh key exchange (the code still good), and the
/// receiver's held blocks are resumed, not sent again.
#[test]
fn an_encrypted_transfer_resumes_after_a_cut() {
    let d = dirs();
    let size = 24 * MIB;
    let src = d.src.join("long.bin");
    random_file(&src, size, 16);
    let rx = receiver(&d.out, &["--code", "--timeout", "8"], Stdout::Null);
    let code = code_in(&rx.head);
    let cut = 12 * MIB;
    let proxy = CuttingProxy::start(rx.addr, cut, 1);
    let args = [
        "--retry",
        "3",
        s(&src),
        &proxy.addr.to_string(),
        "--code",
        &code,
    ];
    let sent = send_with(&args, None);
    let got = rx.finish(TIMEOUT);
    sent.expect_clean(0, "zc send --retry through a cut")
        .says(&["retry 1 of 3", "resumed from byte"]);
    got.expect_clean(0, "zc recv --code");
    assert_same_file(&src, &d.out.join("long.bin"));
    let conns = proxy.connections();
    assert_eq!((conns.len(), conns[0]), (2, cut), "{conns:?}");
    let total: u64 = conns.iter().sum();
    assert!(
        total < size + size / 2,
        "the second connection resumed: {total} bytes in all ({conns:?})"
    );
}

/// Several senders at once into one `-k` receiver with a key; a wrong
/// key among them is refused and the others land.
#[test]
fn several_senders_at_once_into_a_keyed_k_receiver() {
    let d = dirs();
    let rx = recv_with(&d.out, &["-k"], Some(KEY));
    let dest = rx.dest();
    let senders: Vec<_> = (0..3)
        .map(|i| {
            let src = d.src.join(format!("part{i}.bin"));
            random_file(&src, 4 * MIB + i, 20 + i);
            let dest = dest.clone();
            let path = src.clone();
            (
                src,
                thread::spawn(move || send_with(&[s(&path), &dest], Some(KEY))),
            )
        })
        .collect();
    let intruder = d.src.join("intruder.bin");
    random_file(&intruder, MIB, 30);
    let wrong = send_with(&[s(&intruder), &dest], Some("another key"));
    wrong
        .expect_clean(4, "a sender with another key")
        .says(&["wrong key"]);
    for (src, handle) in senders {
        handle
            .join()
            .unwrap()
            .expect_clean(0, "a concurrent sender");
        assert_same_file(&src, &d.out.join(src.file_name().unwrap()));
    }
    assert!(!d.out.join("intruder.bin").exists());

    sigint(&rx.child);
    rx.finish(TIMEOUT);
}

/// A `-k` receiver takes five wrong keys a minute; the sixth attempt,
/// even with the right key, is refused until the minute has passed.
#[test]
fn wrong_keys_are_rate_limited() {
    let d = dirs();
    let src = d.src.join("f.bin");
    random_file(&src, 64 << 10, 31);
    let rx = recv_with(&d.out, &["-k"], Some(KEY));
    for i in 0..5 {
        let wrong = format!("guess {i}");
        send_with(&[s(&src), &rx.dest()], Some(&wrong)).expect_clean(4, "a wrong key");
    }
    let right = send_with(&[s(&src), &rx.dest()], Some(KEY));
    right
        .expect_clean(4, "the right key after five wrong ones")
        .says(&["no more attempts"]);
    assert!(list_dir(&d.out).is_empty());

    sigint(&rx.child);
    rx.finish(TIMEOUT);
}

/// Reverse mode: `zc send --listen --code` makes the code; the receiver
/// connects with it and pulls a tree. A wrong code there is refused by
/// the sender, which burns it.
#[test]
fn reverse_mode_with_a_code_moves_a_tree() {
    let d = dirs();
    let top = d.src.join("album");
    std::fs::create_dir_all(top.join("inner")).unwrap();
    random_file(&top.join("a.bin"), 2 * MIB, 40);
    random_file(&top.join("inner/b.bin"), 100_000, 41);
    std::fs::write(top.join("note.txt"), b"small and packed").unwrap();
    let tx = spawn_receiver(
        zcmd(&["send", "--listen", "127.0.0.1:0", "--code", s(&top)]),
        Stdout::Null,
    );
    let code = code_in(&tx.head);
    assert!(
        tx.head.contains(&format!(
            "zc recv 127.0.0.1:{} --code {code}",
            tx.addr.port()
        )),
        "{}",
        tx.head
    );
    let mut cmd = zcmd(&["recv", &tx.dest(), "--code", &code, "-o"]);
    cmd.arg(&d.out);
    run(cmd, None, TIMEOUT).expect_clean(0, "zc recv HOST:PORT --code");
    tx.finish(TIMEOUT)
        .expect_clean(0, "zc send --listen --code");
    for rel in ["a.bin", "inner/b.bin", "note.txt"] {
        assert_same_file(&top.join(rel), &d.out.join("album").join(rel));
    }
    // a wrong code against a listening sender
    let tx = spawn_receiver(
        zcmd(&["send", "--listen", "127.0.0.1:0", "--code", s(&top)]),
        Stdout::Null,
    );
    let wrong = other_code(&code_in(&tx.head));
    let other = d.out.join("other");
    std::fs::create_dir(&other).unwrap();
    let mut cmd = zcmd(&["recv", &tx.dest(), "--code", &wrong, "-o"]);
    cmd.arg(&other);
    let got = run(cmd, None, TIMEOUT);
    got.expect_clean(4, "zc recv with a wrong code");
    let sent = tx.finish(TIMEOUT);
    sent.expect_clean(4, "zc send --listen --code, met a wrong one")
        .says(&["burnt"]);
    assert!(list_dir(&other).is_empty());
}

// --- mismatches and usage ---------------------------------------------------------

/// A side that encrypts and one that does not refuse each other (exit 4
/// on both) with a line that says what to change, and nothing lands.
#[test]
fn encrypting_and_plain_sides_refuse_each_other_clearly() {
    let d = dirs();
    let src = d.src.join("m.bin");
    random_file(&src, 64 << 10, 50);
    // receiver flags, receiver key, sender flags, sender key, what both say
    type Case<'a> = (
        &'a [&'a str],
        Option<&'a str>,
        &'a [&'a str],
        Option<&'a str>,
        &'a str,
    );
    let cases: [Case; 4] = [
        (&["--code"], None, &[], None, "--code"),
        (
            &[],
            None,
            &["--code", "7-plaza-quartz-ember"],
            None,
            "encrypted session",
        ),
        (&[], Some(KEY), &["--no-encrypt"], Some(KEY), "--no-encrypt"),
        (&["--no-encrypt"], Some(KEY), &[], Some(KEY), "--no-encrypt"),
    ];
    for (rflags, rkey, sflags, skey, says) in cases {
        let what = format!("recv {rflags:?} key {rkey:?}, send {sflags:?} key {skey:?}");
        let rx = recv_with(&d.out, rflags, rkey);
        let mut args = sflags.to_vec();
        let dest = rx.dest();
        args.extend([s(&src), dest.as_str()]);
        let sent = send_with(&args, skey);
        let got = rx.finish(TIMEOUT);
        sent.expect_clean(4, &what).says(&[says]);
        got.expect_clean(4, &what).says(&[says]);
        assert!(list_dir(&d.out).is_empty(), "{what}");
    }
}

/// `--no-encrypt` with a key keeps the authenticated plaintext mode and
/// its zero-copy send.
#[test]
fn no_encrypt_with_a_key_keeps_zero_copy() {
    let d = dirs();
    let src = d.src.join("fast.bin");
    random_file(&src, 4 * MIB, 51);
    let rx = recv_with(&d.out, &["--no-encrypt"], Some(KEY));
    let sent = send_with(&["--json", "--no-encrypt", s(&src), &rx.dest()], Some(KEY));
    rx.finish(TIMEOUT).expect_clean(0, "zc recv --no-encrypt");
    sent.expect_clean(0, "zc send --no-encrypt")
        .says(&["\"zero_copy\":true", "\"encrypted\":false"]);
    assert_same_file(&src, &d.out.join("fast.bin"));
}

#[test]
fn codes_are_checked_before_connecting() {
    let d = dirs();
    let out = s(&d.out);
    let cases: [(&[&str], &str); 6] = [
        (
            &["send", "x", "127.0.0.1:9", "--code"],
            "only the listening side",
        ),
        (
            &["send", "x", "127.0.0.1:9", "--code", "7-plaza-qartz-ember"],
            "'qartz'",
        ),
        (&["recv", "-k", "--code", "-o", out], "use a key"),
        (&["recv", "--raw", "--code", "-o", "f"], "--raw"),
        (
            &["recv", "--code", "--no-encrypt", "-o", out],
            "always encrypts",
        ),
        (&["recv", "--code", "--key", "k", "-o", out], "use one"),
    ];
    let began = Instant::now();
    for (args, says) in cases {
        let got = run(zcmd(args), None, TIMEOUT);
        got.expect_clean(2, &format!("{args:?}")).says(&[says]);
    }
    assert!(began.elapsed() < Duration::from_secs(10), "nothing waited");
}

/// Ranges (two halves into a `-k` receiver), stdin, stdout and a rate
/// limit, each encrypted with a key.
#[test]
fn ranges_streams_and_a_rate_limit_work_encrypted() {
    let d = dirs();
    let src = d.src.join("halves.bin");
    random_file(&src, 4 * MIB, 60);
    let rx = recv_with(&d.out, &["-k"], Some(KEY));
    for range in [
        ["--offset", "0", "--count", "2M"],
        ["--offset", "2M", "--count", "2M"],
    ] {
        let mut args = range.to_vec();
        let dest = rx.dest();
        args.extend([s(&src), dest.as_str()]);
        send_with(&args, Some(KEY)).expect_clean(0, &format!("{range:?}"));
    }
    assert_same_file(&src, &d.out.join("halves.bin"));
    // stdin, with a name
    let mut cmd = zcmd(&["send", "--name", "piped.bin", "-", &rx.dest()]);
    cmd.env("ZC_KEY", KEY);
    run(cmd, Some(&src), TIMEOUT).expect_clean(0, "zc send - (stdin)");
    assert_same_file(&src, &d.out.join("piped.bin"));
    // paced: 2 MiB at 4 MiB/s takes a while
    let began = Instant::now();
    let sent = send_with(
        &[
            "--limit-rate",
            "4M",
            "--name",
            "paced.bin",
            s(&src),
            &rx.dest(),
        ],
        Some(KEY),
    );
    sent.expect_clean(0, "zc send --limit-rate 4M");
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(700),
        "4 MiB at 4 MiB/s took {took:?}"
    );
    assert_same_file(&src, &d.out.join("paced.bin"));

    sigint(&rx.child);
    rx.finish(TIMEOUT);
    // stdout
    let mut cmd = recv_cmd(Path::new("-"), &[]);
    cmd.env("ZC_KEY", KEY);
    let rx = spawn_receiver(cmd, Stdout::Memory);
    send_with(&[s(&src), &rx.dest()], Some(KEY)).expect_clean(0, "zc send to stdout");
    let got = rx.finish(TIMEOUT);
    got.expect_clean(0, "zc recv -o -");
    assert_file_is(&src, &got.stdout);
}

/// Ctrl-C on an encrypted sender: the STOP goes through the records, the
/// receiver keeps what it got, and the same command resumes it.
#[test]
fn ctrl_c_stops_an_encrypted_sender_and_the_same_command_resumes() {
    let d = dirs();
    // as in tests/resume.rs: the sender finishes the DATA frame under way
    // (up to 64 MiB) before it stops, so the file is larger than that
    let size = 100 * MIB;
    let src = d.src.join("stopped.bin");
    random_file(&src, size, 61);
    let rx = recv_with(&d.out, &["--timeout", "10"], Some(KEY));
    let proxy = CuttingProxy::counting(rx.addr);
    proxy.hold_at(8 * MIB);
    let dest = proxy.addr.to_string();
    let mut cmd = zcmd(&["send", "--progress", "none", s(&src), &dest]);
    cmd.env("ZC_KEY", KEY);
    let first = proxy.interrupt_at(8 * MIB, start(cmd));
    let got = rx.finish(TIMEOUT);
    first
        .expect_clean(130, "zc send after SIGINT")
        .says(&["the receiver holds "]);
    got.expect_clean(130, "zc recv whose sender stopped");
    assert!(d.out.join("stopped.bin.zcpart").exists());
    let rx = recv_with(&d.out, &[], Some(KEY));
    let sent = send_with(&[s(&src), &rx.dest()], Some(KEY));
    rx.finish(TIMEOUT).expect_clean(0, "zc recv, resumed");
    sent.expect_clean(0, "zc send, resumed")
        .says(&["resumed from byte"]);
    assert_same_file(&src, &d.out.join("stopped.bin"));
}

/// The code and the other side's command come in the JSON listening
/// event, and as lines before it; with `-q`, which says nothing else,
/// the lines still come (without them the other side cannot connect).
#[test]
fn the_code_is_announced_in_json_and_even_with_q() {
    let d = dirs();
    let src = d.src.join("told.bin");
    random_file(&src, 64 << 10, 70);
    let rx = receiver(&d.out, &["--json", "--code"], Stdout::Null);
    let event = line_with(&rx.head, "\"event\":\"listening\"")
        .unwrap()
        .to_string();
    let code = event
        .split("\"code\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let command = format!("zc send FILE {} --code {code}", rx.dest());
    assert!(
        event.contains(&format!("\"command\":\"{command}\"")),
        "{event}"
    );
    send_with(&[s(&src), &rx.dest(), "--code", code], None).expect_clean(0, "zc send");
    rx.finish(TIMEOUT).expect_clean(0, "zc recv --json --code");

    let mut cmd = recv_cmd(&d.out, &["-q", "--code", "--force"]);
    let log = d.src.join("quiet.log");
    cmd.env_remove("ZC_KEY")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut rx = Guard(cmd.spawn().unwrap());
    // -q prints no listening line: the command line is the one to use
    let deadline = Instant::now() + TIMEOUT;
    let line = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) =
            line_with(&text, "on the other side run: ").filter(|_| text.ends_with('\n'))
        {
            break line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no command line with -q: {text:?}"
        );
        thread::sleep(Duration::from_millis(20));
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    let (dest, code) = (words[words.len() - 3], words[words.len() - 1]);
    send_with(&[s(&src), dest, "--code", code], None).expect_clean(0, "zc send to -q");
    let status = wait_timeout(&mut rx, TIMEOUT, "zc recv -q --code");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code_of(status), 0, "{text}");
    assert!(!text.contains("listening"), "{text}");
}
