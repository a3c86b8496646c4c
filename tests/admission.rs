//! Strangers on a listening zc: key guesses that arrive together, and
//! peers that trickle their handshake to hold a listener's places. The
//! hostile side is written here, frame by frame; the listener is the real
//! binary.
// The shared helpers signal children with libc (Unix only).
#![cfg(unix)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use spake2::{Ed25519Group, Identity, Password, Spake2};
use zc::protocol::hello::{Hello, SecretKind};
use zc::protocol::{kind, preamble, read_frame, write_frame, VERSION, VERSION_SEALED};

const KEY: &str = "correct horse battery staple";
/// More guesses than a key allows a minute (5), all under way at once.
const GUESSES: usize = 12;

fn with_key(mut cmd: std::process::Command, key: &str) -> std::process::Command {
    cmd.env("ZC_KEY", key);
    cmd
}

/// A HELLO for a guess, as side `a` (the sender) or `b` (the receiver).
fn guess_hello(guess: &str, sender: bool, confirm: bool) -> Vec<u8> {
    let pw = Password::new(format!("zc2 key {guess}").as_bytes());
    let (ids, idr) = (Identity::new(b"zc sender"), Identity::new(b"zc receiver"));
    let (_, pake) = match sender {
        true => Spake2::<Ed25519Group>::start_a(&pw, &ids, &idr),
        false => Spake2::<Ed25519Group>::start_b(&pw, &ids, &idr),
    };
    let hello = Hello {
        secret: sender.then_some(SecretKind::Key),
        pake,
        confirm: confirm.then_some([7; 32]),
    };
    hello.encode()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connecting to the listener");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
}

/// Many wrong key guesses against `zc recv -k`, all sent before any is
/// answered: the receiver's confirmation, which lets a guess be checked
/// offline, goes to at most five of them.
#[test]
fn key_guesses_at_once_get_at_most_five_confirmations_from_a_receiver() {
    let out = tempfile::tempdir().unwrap();
    let rx = spawn_receiver(with_key(recv_cmd(out.path(), &["-k"]), KEY), Stdout::Null);
    let mut guessers: Vec<TcpStream> = (0..GUESSES)
        .map(|i| {
            let mut conn = connect(rx.addr);
            let mut hello = preamble(VERSION_SEALED).to_vec();
            write_frame(
                &mut hello,
                kind::HELLO,
                &guess_hello(&format!("guess {i}"), true, false),
            )
            .unwrap();
            conn.write_all(&hello).unwrap();
            conn
        })
        .collect();
    let mut confirmed = 0;
    for conn in guessers.iter_mut() {
        let frame = read_frame(conn).expect("an answer to each guess");
        let hello = frame.kind == kind::HELLO;
        assert!(
            hello || frame.kind == kind::ANSWER,
            "frame {:#x}",
            frame.kind
        );
        if hello && Hello::decode(&frame.body).unwrap().confirm.is_some() {
            confirmed += 1;
        }
    }
    assert!(
        confirmed <= 5,
        "{confirmed} of {GUESSES} guesses under way got a confirmation"
    );
    drop(guessers);
    sigint(&rx.child);
    let done = rx.finish(TIMEOUT);
    done.says(&["under way"]);
}

/// The same against `zc send --listen -k`, where the receiver guesses: at
/// most five guesses are taken at once; the others are refused before the
/// sender's half of the exchange.
#[test]
fn key_guesses_at_once_reach_a_serving_sender_at_most_five_times() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("secret.bin");
    random_file(&src, 4096, 5);
    let mut cmd = zc();
    cmd.args(["send", "--listen", "127.0.0.1:0", "-k"])
        .arg(&src);
    let tx = spawn_receiver(with_key(cmd, KEY), Stdout::Null);
    let mut guessers: Vec<TcpStream> = (0..GUESSES).map(|_| connect(tx.addr)).collect();
    // every connection hears the sender first, before any guess is made
    let firsts: Vec<u8> = guessers
        .iter_mut()
        .map(|conn| {
            let mut head = [0u8; 8];
            conn.read_exact(&mut head).unwrap();
            read_frame(conn).expect("the sender's first frame").kind
        })
        .collect();
    let mut taken = 0;
    for (i, (conn, first)) in guessers.iter_mut().zip(firsts).enumerate() {
        if first == kind::HELLO {
            taken += 1;
            // the guess, which the sender checks and refuses
            let mut reply = Vec::new();
            let hello = guess_hello(&format!("guess {i}"), false, true);
            write_frame(&mut reply, kind::HELLO, &hello).unwrap();
            conn.write_all(&reply).unwrap();
        } else {
            assert_eq!(first, kind::ANSWER, "frame {first:#x}");
        }
    }
    assert!(taken <= 5, "{taken} of {GUESSES} guesses were taken");
    drop(guessers);
    sigint(&tx.child);
    tx.finish(TIMEOUT);
}

/// Writes `bytes` one at a time, `every` apart, until the peer cuts the
/// connection; returns how long it held on.
fn trickle(mut conn: TcpStream, bytes: &[u8], every: Duration) -> Duration {
    let start = Instant::now();
    for b in bytes {
        if conn.write_all(&[*b]).is_err() {
            break;
        }
        thread::sleep(every);
        // a cut connection reads its end (or a refusal) at once
        conn.set_nonblocking(true).unwrap();
        let ended = match conn.read(&mut [0u8; 256]) {
            Ok(_) => true,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        };
        conn.set_nonblocking(false).unwrap();
        if ended {
            break;
        }
    }
    start.elapsed()
}

/// A zc preamble and the start of an offer: what a trickler sends.
fn slow_offer() -> Vec<u8> {
    let mut bytes = preamble(VERSION).to_vec();
    bytes.extend_from_slice(&[kind::OFFER, 0, 0, 1, 0]);
    bytes.extend([0u8; 64]);
    bytes
}

/// A peer that sends a byte a second, well inside `--timeout 3`, is cut
/// when its handshake as a whole has taken longer than that; the
/// one-shot receiver then takes a real sender.
#[test]
fn a_trickling_handshake_is_cut_at_its_deadline() {
    let out = tempfile::tempdir().unwrap();
    let rx = receiver(out.path(), &["--timeout", "3"], Stdout::Null);
    let held = trickle(connect(rx.addr), &slow_offer(), Duration::from_secs(1));
    // without a deadline it holds on for all 77 bytes, a byte a second
    assert!(held < Duration::from_secs(20), "held the receiver {held:?}");

    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("real.bin");
    random_file(&src, 64 << 10, 9);
    send(&[s(&src), &rx.dest()]).expect_clean(0, "a real sender after the trickler");
    let done = rx.finish(TIMEOUT);
    done.says(&["handshake took longer"]);
    assert_same_file(&src, &out.path().join("real.bin"));
}

/// Tricklers that take every place of `zc recv -k --max-conns 2` give way
/// to a real sender instead of shutting it out.
#[test]
fn tricklers_give_way_to_a_real_sender() {
    let out = tempfile::tempdir().unwrap();
    let rx = receiver(out.path(), &["-k", "--max-conns", "2"], Stdout::Null);
    let tricklers: Vec<_> = (0..2)
        .map(|_| {
            let conn = connect(rx.addr);
            thread::spawn(move || trickle(conn, &slow_offer(), Duration::from_millis(500)))
        })
        .collect();
    // both have had their fair time in their handshake
    thread::sleep(Duration::from_millis(1500));
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("real.bin");
    random_file(&src, 64 << 10, 10);
    // without giving way, it waits behind them until its --timeout
    send(&[s(&src), &rx.dest(), "--timeout", "8"]).expect_clean(0, "a real sender");
    assert_same_file(&src, &out.path().join("real.bin"));
    for t in tricklers {
        let held = t.join().unwrap();
        assert!(
            held < Duration::from_secs(30),
            "a trickler held on {held:?}"
        );
    }
    sigint(&rx.child);
    let done = rx.finish(TIMEOUT);
    done.says(&["make room"]);
}
