//! Progress, scripting and shell integration end to end: the bar under a real
//! pseudo-terminal and clean pipes, `--json` on both sides, every exit code,
//! `zc recv -o - | tar x`, `-k` with concurrent senders, reverse mode, keys.
#![cfg(unix)]

mod common;

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::pty::*;
use common::*;
use serde_json::Value;

// --- helpers ---------------------------------------------------------------

/// `zc recv -l 127.0.0.1:0 -o OUTPUT EXTRA...`, listening, without ZC_KEY.
fn listen_recv(output: &Path, extra: &[&str], stdout: Stdout) -> Receiver {
    let mut cmd = recv_cmd(output, extra);
    cmd.env_remove("ZC_KEY");
    spawn_receiver(cmd, stdout)
}

/// `zc send ARGS...` to its end.
fn send_args(args: &[&str]) -> Outcome {
    let mut all = vec!["send"];
    all.extend_from_slice(args);
    run(zcmd(&all), None, TIMEOUT)
}

/// `zc send ARGS...`, started (for signals, kills and concurrency).
fn start_send(args: &[&str]) -> Running {
    let mut all = vec!["send"];
    all.extend_from_slice(args);
    start(zcmd(&all))
}

/// A temporary tree with `src/` and `out/`.
struct Dirs {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    src: PathBuf,
    out: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let (src, out) = (root.join("src"), root.join("out"));
    fs::create_dir(&src).unwrap();
    fs::create_dir(&out).unwrap();
    Dirs {
        _tmp: tmp,
        root,
        src,
        out,
    }
}

impl Dirs {
    /// A random file `src/NAME` of `size` bytes.
    fn file(&self, name: &str, size: u64, seed: u64) -> PathBuf {
        let path = self.src.join(name);
        random_file(&path, size, seed);
        path
    }
}

/// The address in a `zc: listening on ADDR` line or a `listening` event.
fn addr_in(line: &str) -> Option<SocketAddr> {
    if let Some(rest) = line.split("listening on ").nth(1) {
        let end = rest
            .find(|c: char| c.is_whitespace() || c.is_control())
            .unwrap_or(rest.len());
        return rest[..end].parse().ok();
    }
    let value: Value = serde_json::from_str(line.trim()).ok()?;
    if value["event"] == "listening" {
        return value["addr"].as_str()?.parse().ok();
    }
    None
}

/// A listening child whose stdout is left as the caller set it (a pipe into
/// another process).
struct Listener {
    child: Guard,
    addr: SocketAddr,
    stderr: Option<JoinHandle<String>>,
}

impl Listener {
    fn finish(mut self, what: &str) -> Outcome {
        let status = wait_timeout(&mut self.child, TIMEOUT, what);
        let stderr = self.stderr.take().unwrap().join().unwrap();
        Outcome {
            code: code_of(status),
            stdout: Vec::new(),
            stderr,
        }
    }
}

fn spawn_listening(mut cmd: Command, what: &str) -> Listener {
    cmd.stderr(Stdio::piped());
    let mut child = Guard(cmd.spawn().expect("spawning a listener"));
    // The command holds our copies of any pipe ends handed to the child.
    drop(cmd);
    let err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut reader = BufReader::new(err);
        let mut all = String::new();
        let mut told = false;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if !told {
                if let Some(addr) = addr_in(&line) {
                    let _ = tx.send(addr);
                    told = true;
                }
            }
            all.push_str(&line);
        }
        all
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(addr) => Listener {
            child,
            addr,
            stderr: Some(reader),
        },
        Err(_) => {
            kill_tree(&mut child);
            panic!("{what} did not listen; stderr:\n{}", reader.join().unwrap());
        }
    }
}

/// Runs a prepared command (its stdin already set) to its end, bounded.
fn run_prepared(mut cmd: Command, what: &str) -> Outcome {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Guard(cmd.spawn().expect("spawning a child"));
    drop(cmd);
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut all = Vec::new();
        let _ = out.read_to_end(&mut all);
        all
    });
    let err = thread::spawn(move || {
        let mut all = Vec::new();
        let _ = err.read_to_end(&mut all);
        all
    });
    let status = wait_timeout(&mut child, TIMEOUT, what);
    Outcome {
        code: code_of(status),
        stdout: out.join().unwrap(),
        stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
    }
}

/// Asserts that no byte of `text` is a terminal control code.
fn assert_no_control_codes(text: &str, who: &str) {
    assert!(
        !text.contains('\x1b'),
        "{who}: an ESC byte went into a pipe:\n{text:?}"
    );
    assert!(
        !text.contains('\r'),
        "{who}: a carriage return went into a pipe:\n{text:?}"
    );
}

// --- JSON events -------------------------------------------------------------

fn is_str(v: &Value) -> bool {
    v.is_string()
}
fn is_u64(v: &Value) -> bool {
    v.is_u64()
}
fn is_num(v: &Value) -> bool {
    v.as_f64().is_some_and(|x| x.is_finite() && x >= 0.0)
}
fn is_bool(v: &Value) -> bool {
    v.is_boolean()
}
fn u64_or_null(v: &Value) -> bool {
    v.is_null() || v.is_u64()
}
fn str_or_null(v: &Value) -> bool {
    v.is_null() || v.is_string()
}
fn is_role(v: &Value) -> bool {
    v == "send" || v == "recv"
}
fn is_addr(v: &Value) -> bool {
    v.as_str().is_some_and(|a| a.parse::<SocketAddr>().is_ok())
}
fn hex64_or_null(v: &Value) -> bool {
    v.is_null()
        || v.as_str().is_some_and(|h| {
            h.len() == 64
                && h.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
}
fn is_exit_code(v: &Value) -> bool {
    v.as_i64().is_some_and(|c| [1, 2, 3, 4, 130].contains(&c))
}

fn is_http_url(v: &Value) -> bool {
    v.as_str().is_some_and(|u| u.starts_with("http://"))
}

/// Checks one event against the fields the README documents.
fn check_event(value: &Value, who: &str) {
    let obj = value
        .as_object()
        .unwrap_or_else(|| panic!("{who}: a JSON line that is not an object: {value}"));
    let event = obj
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{who}: no \"event\" in {value}"));
    let need = |key: &str, ok: fn(&Value) -> bool| {
        assert!(
            obj.get(key).is_some_and(ok),
            "{who}: `{event}` event with a missing or mistyped {key:?}: {value}"
        );
    };
    let may = |key: &str, ok: fn(&Value) -> bool| {
        if let Some(v) = obj.get(key) {
            assert!(
                ok(v),
                "{who}: `{event}` event with a mistyped {key:?}: {value}"
            );
        }
    };
    match event {
        "listening" => {
            need("addr", is_addr);
            // `--http`: the URLs to give the other side, all three or none
            if obj.contains_key("url") {
                need("url", is_http_url);
                need("curl", is_str);
                need("wget", is_str);
            }
            may("code", is_str);
            may("command", is_str);
        }
        "request" => {
            need("client", is_addr);
            need("method", is_str);
            need("path", |v| {
                v.as_str().is_some_and(|p| p.starts_with('/') || p == "?")
            });
            need("status", |v| {
                v.as_u64().is_some_and(|s| (100..600).contains(&s))
            });
            need("range", str_or_null);
            need("bytes", is_u64);
            need("seconds", is_num);
        }
        "start" => {
            need("role", is_role);
            need("name", is_str);
            need("peer", is_str);
            need("size", u64_or_null);
            need("offset", is_u64);
            need("count", u64_or_null);
            need("resumed_from", is_u64);
        }
        "progress" => {
            need("name", is_str);
            need("bytes", is_u64);
            need("total", u64_or_null);
            need("rate", is_num);
        }
        "verify" => {
            need("name", is_str);
            need("bytes", is_u64);
            need("total", is_u64);
            may("good", is_u64);
            may("bad_blocks", is_u64);
            may("seconds", is_num);
            may("done", is_bool);
        }
        "warning" => need("message", is_str),
        "retry" => {
            need("attempt", is_u64);
            need("of", is_u64);
            need("wait_seconds", is_num);
            need("message", is_str);
        }
        "done" => {
            need("role", is_role);
            need("name", is_str);
            need("path", str_or_null);
            need("bytes", is_u64);
            need("seconds", is_num);
            need("rate", is_num);
            need("zero_copy", is_bool);
            need("sha256", hex64_or_null);
            need("resumed_from", is_u64);
            need("note", str_or_null);
        }
        "error" => {
            need("message", |v| v.as_str().is_some_and(|m| !m.is_empty()));
            need("code", is_exit_code);
        }
        other => panic!("{who}: an unknown event {other:?}: {value}"),
    }
}

/// Every line of `stderr` as a checked JSON event; panics on any other line.
fn json_events(stderr: &str, who: &str) -> Vec<Value> {
    assert!(!stderr.is_empty(), "{who}: nothing on stderr");
    assert!(
        stderr.ends_with('\n'),
        "{who}: stderr does not end with a newline:\n{stderr}"
    );
    stderr
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("{who}: a stderr line that is not JSON ({e}): {line:?}\nstderr:\n{stderr}")
            });
            check_event(&value, who);
            value
        })
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("?"))
        .collect()
}

/// The one event of `kind`; panics when there is none or several.
fn only<'a>(events: &'a [Value], kind: &str, who: &str) -> &'a Value {
    let found: Vec<&Value> = events.iter().filter(|e| e["event"] == kind).collect();
    assert_eq!(
        found.len(),
        1,
        "{who}: wanted one `{kind}` event, got {:?}",
        kinds(events)
    );
    found[0]
}

/// A successful side: events end with `done`, which says `bytes` and `sha`
/// (`None`: the digest is null, as with `--no-verify`).
fn assert_done<'a>(
    events: &'a [Value],
    role: &str,
    bytes: u64,
    sha: Option<&str>,
    who: &str,
) -> &'a Value {
    let done = only(events, "done", who);
    assert_eq!(
        events.last(),
        Some(done),
        "{who}: `done` is not the last event: {:?}",
        kinds(events)
    );
    assert_eq!(done["role"], role, "{who}: {done}");
    assert_eq!(
        done["bytes"].as_u64(),
        Some(bytes),
        "{who}: bytes in {done}"
    );
    match sha {
        Some(sha) => assert_eq!(done["sha256"], sha, "{who}: sha256 in {done}"),
        None => assert!(done["sha256"].is_null(), "{who}: sha256 in {done}"),
    }
    let start = events.iter().position(|e| e["event"] == "start");
    let start = start.unwrap_or_else(|| panic!("{who}: no `start` event: {:?}", kinds(events)));
    assert_eq!(events[start]["role"], role, "{who}: {}", events[start]);
    done
}

/// The last event is `error` with the exit code.
fn assert_error_event(events: &[Value], code: i32, who: &str) -> Value {
    let last = events.last().unwrap_or_else(|| panic!("{who}: no events"));
    assert_eq!(last["event"], "error", "{who}: {:?}", kinds(events));
    assert_eq!(
        last["code"].as_i64(),
        Some(code as i64),
        "{who}: the error event's code is not the exit status: {last}"
    );
    last.clone()
}

/// A failed transfer: no `done`, and the last event is `error` with the
/// exit code.
fn assert_failed(events: &[Value], code: i32, who: &str) -> Value {
    assert!(
        !events.iter().any(|e| e["event"] == "done"),
        "{who}: a failed run reported `done`: {:?}",
        kinds(events)
    );
    assert_error_event(events, code, who)
}

/// The receiver's events: `listening` first.
fn receiver_events(stderr: &str, who: &str) -> Vec<Value> {
    let events = json_events(stderr, who);
    assert_eq!(
        events[0]["event"],
        "listening",
        "{who}: the first event is not `listening`: {:?}",
        kinds(&events)
    );
    events
}

// --- a proxy that flips one byte -------------------------------------------

/// Forwards one connection both ways, flipping the byte at offset `at` of
/// the client→server stream.
fn flipping_proxy(upstream: SocketAddr, at: u64) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let Ok((mut client, _)) = listener.accept() else {
            return;
        };
        let Ok(mut server) = TcpStream::connect(upstream) else {
            return;
        };
        let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        thread::spawn(move || {
            let _ = io::copy(&mut s2, &mut c2);
            let _ = c2.shutdown(Shutdown::Write);
        });
        let mut buf = vec![0u8; 64 * 1024];
        let mut pos = 0u64;
        loop {
            let n = match client.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if (pos..pos + n as u64).contains(&at) {
                buf[(at - pos) as usize] ^= 0x20;
            }
            if server.write_all(&buf[..n]).is_err() {
                break;
            }
            pos += n as u64;
        }
        let _ = server.shutdown(Shutdown::Write);
    });
    addr
}

/// A bar row: `NAME [===>   ] 12.00 MiB/64.00 MiB 18% ...`.
fn is_bar_row(row: &str, name: &str) -> bool {
    let pct = bar_percent(row);
    row.contains(name) && row.contains('[') && row.contains(']') && pct.is_some_and(|p| p <= 100)
}

/// The percentage shown by a bar row.
fn bar_percent(row: &str) -> Option<u32> {
    row.split_whitespace()
        .find(|w| w.ends_with('%') && w.len() > 1)
        .and_then(|w| w.trim_end_matches('%').parse::<u32>().ok())
}

/// The screen as it stood after the redraw (redraws start with a carriage
/// return) whose bar is nearest to 50%.
fn mid_frame(text: &str, name: &str) -> Option<Vec<String>> {
    let mut best: Option<(u32, Vec<String>)> = None;
    for (at, _) in text.match_indices('\r') {
        let rows = render(&text[..at]);
        let pct = rows
            .iter()
            .filter(|r| is_bar_row(r, name))
            .find_map(|r| bar_percent(r));
        if let Some(pct) = pct.filter(|p| (1..100).contains(p)) {
            let off = pct.abs_diff(50);
            if best.as_ref().is_none_or(|(b, _)| off < *b) {
                best = Some((off, rows));
            }
        }
    }
    best.map(|(_, rows)| rows)
}

// --- a pseudo-terminal ---------------------------------------------------------

impl OnPty {
    /// Waits for the `listening on ADDR` line.
    fn listening(&mut self) -> SocketAddr {
        self.wait_for("zc recv", |whole| whole.lines().find_map(addr_in))
    }
}

// --- 1. a terminal, and pipes ------------------------------------------------

#[test]
fn under_a_pty_the_bar_is_drawn_and_the_summary_ends_the_output() {
    let d = dirs();
    let name = "pty.bin";
    let src = d.file(name, 64 * MIB, 1);
    let sha = sha256_file(&src);

    let mut rx = OnPty::spawn(zcmd(&["recv", "-l", "127.0.0.1:0", "-o", s(&d.out)]));
    let addr = rx.listening();
    // ~64 MiB at about 32 MiB/s at most: the bar redraws many times.
    let proxy = CuttingProxy::throttled(addr, 64 * 1024, Duration::from_millis(2));
    let tx = OnPty::spawn(zcmd(&["send", s(&src), &proxy.addr.to_string()]));
    let (tx_code, tx_seen) = tx.finish("zc send on a pty");
    let (rx_code, rx_seen) = rx.finish("zc recv on a pty");
    assert_eq!(tx_code, 0, "zc send on a pty:\n{tx_seen:?}");
    assert_eq!(rx_code, 0, "zc recv on a pty:\n{rx_seen:?}");
    assert_same_file(&src, &d.out.join(name));

    for (who, seen) in [("zc send", &tx_seen), ("zc recv", &rx_seen)] {
        assert!(
            seen.contains("\x1b["),
            "{who}: no escape sequence on a terminal:\n{seen:?}"
        );
        assert!(
            seen.contains('\r'),
            "{who}: no carriage return on a terminal:\n{seen:?}"
        );
        let frame = mid_frame(seen, name)
            .unwrap_or_else(|| panic!("{who}: no bar frame between 0% and 100%:\n{seen:?}"));
        println!("{who}, a frame of the bar:\n{}\n", frame.join("\n"));
    }

    // What stays on the screen: the bar is cleared, the summary is last.
    let tx_screen = render(&tx_seen);
    assert_eq!(tx_screen.len(), 1, "zc send's final screen: {tx_screen:#?}");
    let summary = &tx_screen[0];
    assert!(
        summary.starts_with(&format!("zc: sent {name}: 64.0 MiB in ")),
        "{summary}"
    );
    assert_eq!(
        summary_sha(summary).as_deref(),
        Some(sha.as_str()),
        "{summary}"
    );
    let rx_screen = render(&rx_seen);
    assert_eq!(rx_screen.len(), 2, "zc recv's final screen: {rx_screen:#?}");
    assert_eq!(rx_screen[0], format!("zc: listening on {addr}"));
    let landed = d.out.join(name);
    assert!(
        rx_screen[1].starts_with(&format!(
            "zc: received {name} -> {}: 64.0 MiB in ",
            landed.display()
        )),
        "{}",
        rx_screen[1]
    );
    assert_eq!(summary_sha(&rx_screen[1]).as_deref(), Some(sha.as_str()));
    // The byte stream agrees: without its control sequences, the last line
    // written is the summary.
    let last = strip_csi(&tx_seen)
        .split(['\r', '\n'])
        .map(str::trim_end)
        .rfind(|l| !l.is_empty())
        .map(str::to_string);
    assert_eq!(last.as_deref(), Some(summary.as_str()), "{tx_seen:?}");
}

/// `text` without `ESC [ ... final` sequences.
fn strip_csi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('\x40'..='\x7e').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A slowed transfer through pipes with `flags` on both sides.
fn piped_transfer(flags: &[&str], name: &str) -> (Outcome, Outcome, String) {
    let d = dirs();
    let src = d.file(name, 32 * MIB, 2);
    let rx = listen_recv(&d.out, flags, Stdout::Memory);
    // At least 2 s: 1024 pauses of 2 ms.
    let proxy = CuttingProxy::throttled(rx.addr, 32 * 1024, Duration::from_millis(2));
    let mut args = flags.to_vec();
    let dest = proxy.addr.to_string();
    args.extend([s(&src), dest.as_str()]);
    let tx = send_args(&args);
    let got = rx.finish(TIMEOUT);
    tx.expect_code(0, "zc send");
    got.expect_code(0, "zc recv");
    assert_same_file(&src, &d.out.join(name));
    assert!(got.stdout.is_empty(), "zc recv wrote to stdout");
    assert!(tx.stdout.is_empty(), "zc send wrote to stdout");
    (tx, got, sha256_file(&src))
}

#[test]
fn through_a_pipe_auto_prints_the_summary_and_no_control_codes() {
    for flags in [&[][..], &["--progress", "auto"][..]] {
        let name = "auto.bin";
        let (tx, rx, sha) = piped_transfer(flags, name);
        assert_no_control_codes(&tx.stderr, "zc send");
        assert_no_control_codes(&rx.stderr, "zc recv");
        let lines: Vec<&str> = tx.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{flags:?}: zc send said:\n{}", tx.stderr);
        assert!(lines[0].starts_with(&format!("zc: sent {name}: 32.0 MiB in ")));
        assert_eq!(summary_sha(lines[0]).as_deref(), Some(sha.as_str()));
        let lines: Vec<&str> = rx.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{flags:?}: zc recv said:\n{}", rx.stderr);
        assert!(lines[0].starts_with("zc: listening on 127.0.0.1:"));
        assert!(lines[1].starts_with(&format!("zc: received {name} -> ")));
        assert_eq!(summary_sha(lines[1]).as_deref(), Some(sha.as_str()));
    }
}

#[test]
fn through_a_pipe_even_progress_bar_writes_no_control_codes() {
    let name = "bar.bin";
    let (tx, rx, sha) = piped_transfer(&["--progress", "bar"], name);
    for (who, out, summary) in [
        ("zc send", &tx, format!("zc: sent {name}: ")),
        ("zc recv", &rx, format!("zc: received {name} -> ")),
    ] {
        assert_no_control_codes(&out.stderr, who);
        let last = out.stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with(&summary), "{who}: last line: {last}");
        assert_eq!(
            summary_sha(last).as_deref(),
            Some(sha.as_str()),
            "{who}: {last}"
        );
    }
}

#[test]
fn through_a_pipe_plain_prints_progress_lines_and_no_control_codes() {
    let name = "plain.bin";
    let (tx, rx, sha) = piped_transfer(&["--progress", "plain"], name);
    for (who, out, summary, skip) in [
        ("zc send", &tx, format!("zc: sent {name}: "), 0),
        ("zc recv", &rx, format!("zc: received {name} -> "), 1),
    ] {
        assert_no_control_codes(&out.stderr, who);
        let lines: Vec<&str> = out.stderr.lines().skip(skip).collect();
        let (last, progress) = lines.split_last().expect("some lines");
        assert!(last.starts_with(&summary), "{who}: last line: {last}");
        assert_eq!(
            summary_sha(last).as_deref(),
            Some(sha.as_str()),
            "{who}: {last}"
        );
        assert!(
            !progress.is_empty(),
            "{who}: no progress line in a transfer of 2 s or more:\n{}",
            out.stderr
        );
        for line in progress {
            let ok = line.starts_with(&format!("zc: {name}: "))
                && line.contains(" of 32.0 MiB (")
                && line.contains("%), ");
            assert!(ok, "{who}: not a progress line: {line:?}");
        }
    }
}

#[test]
fn quiet_says_nothing_on_success_and_still_reports_errors() {
    let d = dirs();
    let src = d.file("q.bin", 3 * MIB, 3);
    // -q hides the listening line too: listen on a known port.
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut rx = start(zcmd(&["recv", "-q", "-l", &addr, "-o", s(&d.out)]));
    wait_listening(port, &mut rx.child, "zc recv -q");
    let tx = send_args(&["-q", s(&src), &addr]);
    let got = rx.finish(TIMEOUT);
    tx.expect_code(0, "zc send -q");
    got.expect_code(0, "zc recv -q");
    assert_eq!(tx.stderr, "", "zc send -q");
    assert_eq!(got.stderr, "", "zc recv -q");
    assert_same_file(&src, &d.out.join("q.bin"));

    let (_refusing, dead) = refusing_addr();
    let tx = send_args(&["-q", s(&src), &dead]);
    tx.expect_code(1, "zc send -q to nobody");
    assert_eq!(tx.stderr.lines().count(), 1, "{}", tx.stderr);
    assert!(tx.stderr.starts_with("zc: ") && tx.stderr.contains(&dead));
}

// --- 2. --json on both sides -------------------------------------------------

#[test]
fn json_framed_transfer() {
    let d = dirs();
    let size = 5 * MIB + 17;
    let src = d.file("framed.bin", size, 4);
    let sha = sha256_file(&src);
    let rx = listen_recv(&d.out, &["--json"], Stdout::Memory);
    let tx = send_args(&["--json", s(&src), &rx.dest()]);
    let got = rx.finish(TIMEOUT);
    println!("sender:\n{}receiver:\n{}", tx.stderr, got.stderr);
    tx.expect_code(0, "zc send --json");
    got.expect_code(0, "zc recv --json");
    assert_same_file(&src, &d.out.join("framed.bin"));

    let tx_events = json_events(&tx.stderr, "zc send");
    let done = assert_done(&tx_events, "send", size, Some(&sha), "zc send");
    assert_eq!(done["name"], "framed.bin");
    assert_eq!(done["resumed_from"], 0);
    assert!(done["path"].is_null(), "{done}");
    if cfg!(target_os = "linux") {
        assert_eq!(
            done["zero_copy"], true,
            "a file goes through sendfile: {done}"
        );
    }
    let start = only(&tx_events, "start", "zc send");
    assert_eq!(start["size"].as_u64(), Some(size), "{start}");
    assert_eq!(start["count"].as_u64(), Some(size), "{start}");
    assert_eq!(start["offset"], 0, "{start}");

    let rx_events = receiver_events(&got.stderr, "zc recv");
    assert_eq!(
        rx_events[0]["addr"]
            .as_str()
            .unwrap()
            .parse::<SocketAddr>()
            .ok(),
        Some(tx_events[0]["peer"].as_str().unwrap().parse().unwrap()),
        "the receiver listens where the sender connected"
    );
    let done = assert_done(&rx_events, "recv", size, Some(&sha), "zc recv");
    assert_eq!(
        done["path"].as_str(),
        Some(d.out.join("framed.bin").to_str().unwrap())
    );
    assert_eq!(
        only(&rx_events, "start", "zc recv")["size"].as_u64(),
        Some(size)
    );
}

#[test]
fn json_raw_transfer() {
    let d = dirs();
    let size = 3 * MIB + 5;
    let src = d.file("raw.bin", size, 5);
    let sha = sha256_file(&src);
    let dest = d.out.join("raw-copy.bin");
    let rx = listen_recv(&dest, &["--raw", "--json"], Stdout::Memory);
    let tx = send_args(&["--raw", "--json", s(&src), &rx.dest()]);
    let got = rx.finish(TIMEOUT);
    println!("sender:\n{}receiver:\n{}", tx.stderr, got.stderr);
    tx.expect_code(0, "zc send --raw --json");
    got.expect_code(0, "zc recv --raw --json");
    assert_same_file(&src, &dest);
    assert!(got.stdout.is_empty(), "-o FILE: nothing on stdout");

    // Raw mode checks nothing end to end, but each side reports the digest
    // of what it moved, for the user to compare.
    let tx_events = json_events(&tx.stderr, "zc send");
    assert_done(&tx_events, "send", size, Some(&sha), "zc send");
    let rx_events = receiver_events(&got.stderr, "zc recv");
    let done = assert_done(&rx_events, "recv", size, Some(&sha), "zc recv");
    assert_eq!(done["path"].as_str(), Some(dest.to_str().unwrap()));
}

#[test]
fn json_stdin_transfer() {
    let d = dirs();
    let size = 4 * MIB + 3;
    let src = d.file("piped.bin", size, 6);
    let sha = sha256_file(&src);
    let rx = listen_recv(&d.out, &["--json"], Stdout::Memory);
    let cmd = zcmd(&["send", "--json", "--name", "piped.bin", "-", &rx.dest()]);
    let tx = run(cmd, Some(&src), TIMEOUT);
    let got = rx.finish(TIMEOUT);
    println!("sender:\n{}receiver:\n{}", tx.stderr, got.stderr);
    tx.expect_code(0, "zc send - --json");
    got.expect_code(0, "zc recv --json");
    assert_same_file(&src, &d.out.join("piped.bin"));

    let tx_events = json_events(&tx.stderr, "zc send");
    let start = only(&tx_events, "start", "zc send");
    assert!(start["size"].is_null(), "stdin has no size: {start}");
    let done = assert_done(&tx_events, "send", size, Some(&sha), "zc send");
    assert_eq!(done["zero_copy"], false, "stdin is copied: {done}");
    let rx_events = receiver_events(&got.stderr, "zc recv");
    assert_done(&rx_events, "recv", size, Some(&sha), "zc recv");
}

/// A transfer cut by killing its sender (SIGKILL) once 6 MiB went through,
/// then sent again to the waiting receiver, `--json` on every side. Returns
/// the second sender's events, the receiver's, and where the second resumed.
fn resumed_transfer() -> (Vec<Value>, Vec<Value>, u64) {
    let d = dirs();
    let size = 32 * MIB;
    let name = "resumed.bin";
    let src = d.file(name, size, 7);
    let sha = sha256_file(&src);
    let rx = listen_recv(&d.out, &["--json", "--timeout", "20"], Stdout::Memory);
    let proxy = CuttingProxy::counting(rx.addr);
    let stop_at = 6 * MIB;
    proxy.hold_at(stop_at);
    let mut first = start_send(&["--json", s(&src), &proxy.addr.to_string()]);
    proxy.wait_for(stop_at, &mut first.child, "the first zc send");
    first.child.kill().expect("killing the first sender");
    proxy.release();
    let first = first.finish(TIMEOUT);
    // Killed mid-run: each line it finished is still one JSON object.
    let complete = &first.stderr[..first.stderr.rfind('\n').map_or(0, |i| i + 1)];
    if !complete.is_empty() {
        json_events(complete, "the killed zc send");
    }

    let second = send_args(&["--json", s(&src), &rx.dest()]);
    let got = rx.finish(TIMEOUT);
    println!("sender:\n{}receiver:\n{}", second.stderr, got.stderr);
    second.expect_code(0, "the second zc send");
    got.expect_code(0, "zc recv");
    assert_same_file(&src, &d.out.join(name));

    let tx_events = json_events(&second.stderr, "the second zc send");
    let done = only(&tx_events, "done", "the second zc send");
    let from = done["resumed_from"].as_u64().unwrap();
    assert!(
        from >= stop_at - MIB && from < size,
        "resumed_from {from} after {stop_at} bytes went through: {done}"
    );
    let who = "the second zc send";
    assert_done(&tx_events, "send", size - from, Some(&sha), who);
    assert_eq!(
        only(&tx_events, "start", who)["resumed_from"].as_u64(),
        Some(from)
    );

    let rx_events = receiver_events(&got.stderr, "zc recv");
    let warning = only(&rx_events, "warning", "zc recv");
    assert!(
        warning["message"].as_str().unwrap().contains(name),
        "{warning}"
    );
    let done = assert_done(&rx_events, "recv", size - from, Some(&sha), "zc recv");
    assert_eq!(done["resumed_from"].as_u64(), Some(from), "{done}");
    (tx_events, rx_events, from)
}

#[test]
fn json_resumed_transfer() {
    resumed_transfer();
}

#[test]
fn json_resumed_transfer_receiver_start_says_where_it_resumes() {
    let (_, rx_events, from) = resumed_transfer();
    let starts: Vec<&Value> = rx_events.iter().filter(|e| e["event"] == "start").collect();
    assert_eq!(starts.len(), 2, "{:?}", kinds(&rx_events));
    assert_eq!(
        starts[1]["resumed_from"].as_u64(),
        Some(from),
        "the second start event: {}",
        starts[1]
    );
}

// --- 3. exit codes -------------------------------------------------------------

#[test]
fn exit_1_connection_refused() {
    let d = dirs();
    let src = d.file("nobody.bin", 1024, 8);
    let (_refusing, dead) = refusing_addr();
    let plain = send_args(&[s(&src), &dead]);
    plain.expect(1, &[&dead, "zc recv"], "zc send to nobody");
    let json = send_args(&["--json", s(&src), &dead]);
    json.expect_code(1, "zc send --json to nobody");
    let events = json_events(&json.stderr, "zc send --json");
    let error = assert_failed(&events, 1, "zc send --json");
    assert!(
        error["message"].as_str().unwrap().contains(&dead),
        "{error}"
    );
}

#[test]
fn exit_1_receiver_killed_mid_transfer() {
    let d = dirs();
    let src = d.file("victim.bin", 16 * MIB, 9);
    let mut rx = listen_recv(&d.out, &[], Stdout::Null);
    let proxy = CuttingProxy::counting(rx.addr);
    proxy.hold_at(4 * MIB);
    let mut tx = start_send(&["--json", s(&src), &proxy.addr.to_string()]);
    proxy.wait_for(4 * MIB, &mut tx.child, "zc send");
    rx.child.kill().expect("killing the receiver");
    let _ = rx.child.wait();
    proxy.release();
    let out = tx.finish(TIMEOUT);
    out.expect_code(1, "zc send whose receiver died");
    let events = json_events(&out.stderr, "zc send");
    assert_failed(&events, 1, "zc send");
    assert!(!d.out.join("victim.bin").exists(), "nothing was published");
}

#[test]
fn exit_2_usage_errors() {
    let d = dirs();
    let src = d.file("usage.bin", 10, 10);
    let cases: [&[&str]; 5] = [
        &["send", "--bogus", s(&src), "127.0.0.1:9"],
        &["send", "--offset", "1Q", s(&src), "127.0.0.1:9"],
        &["send", s(&src), "not-an-address"],
        &["recv", "--progress", "sometimes"],
        &["recv", "-k", "-o", "-"],
    ];
    for args in cases {
        let out = run(zcmd(args), None, TIMEOUT);
        out.expect_code(2, &format!("zc {args:?}"));
        assert!(out.stdout.is_empty(), "{args:?}: usage errors go to stderr");
        assert!(!out.stderr.trim().is_empty(), "{args:?}: says nothing");
    }
    // Errors found after parsing are JSON events under --json.
    for args in [
        &["send", "--json", s(&src), "not-an-address"][..],
        &["recv", "--json", "-k", "-o", "-"][..],
    ] {
        let out = run(zcmd(args), None, TIMEOUT);
        out.expect_code(2, &format!("zc {args:?}"));
        let events = json_events(&out.stderr, &format!("zc {args:?}"));
        assert_failed(&events, 2, &format!("zc {args:?}"));
    }
}

#[test]
fn exit_2_from_the_parser_is_a_json_event_under_json() {
    let d = dirs();
    let src = d.file("usage.bin", 10, 10);
    for args in [
        &["send", "--json", "--bogus", s(&src), "127.0.0.1:9"][..],
        &["send", "--json", "--offset", "1Q", s(&src), "127.0.0.1:9"][..],
        &["recv", "--json", "--progress", "sometimes"][..],
    ] {
        let out = run(zcmd(args), None, TIMEOUT);
        out.expect_code(2, &format!("zc {args:?}"));
        let events = json_events(&out.stderr, &format!("zc {args:?}"));
        assert_failed(&events, 2, &format!("zc {args:?}"));
    }
}

#[test]
fn exit_3_a_byte_flipped_on_the_wire() {
    let d = dirs();
    let name = "flipped.bin";
    let src = d.file(name, 4 * MIB, 11);
    let rx = listen_recv(&d.out, &["--json"], Stdout::Memory);
    // The first DATA frame carries the first MiB; 960 KiB into the stream is
    // inside its payload, far past the preamble and the offer.
    let proxy = flipping_proxy(rx.addr, 960 * 1024);
    let tx = send_args(&["--json", s(&src), &proxy.to_string()]);
    let got = rx.finish(TIMEOUT);
    println!("sender:\n{}receiver:\n{}", tx.stderr, got.stderr);
    tx.expect_code(3, "zc send through a corrupting proxy");
    got.expect_code(3, "zc recv through a corrupting proxy");
    let error = assert_failed(&json_events(&tx.stderr, "zc send"), 3, "zc send");
    assert!(
        error["message"].as_str().unwrap().contains("SHA-256"),
        "{error}"
    );
    assert_failed(&receiver_events(&got.stderr, "zc recv"), 3, "zc recv");
    let left = list_dir(&d.out);
    assert!(
        left.iter().all(|f| f == &format!("{name}.zcpart")),
        "only {name}.zcpart may remain: {left:?}"
    );
}

#[test]
fn exit_4_file_exists_without_force() {
    let d = dirs();
    let name = "exists.bin";
    let src = d.file(name, MIB, 12);
    let old = d.out.join(name);
    fs::write(&old, b"the old copy").unwrap();
    let rx = listen_recv(&d.out, &["--json"], Stdout::Memory);
    let tx = send_args(&["--json", s(&src), &rx.dest()]);
    let got = rx.finish(TIMEOUT);
    tx.expect_code(4, "zc send onto an existing file");
    got.expect_code(4, "zc recv with an existing file");
    let error = assert_failed(&json_events(&tx.stderr, "zc send"), 4, "zc send");
    assert!(
        error["message"].as_str().unwrap().contains("exists"),
        "{error}"
    );
    assert_failed(&receiver_events(&got.stderr, "zc recv"), 4, "zc recv");
    assert_eq!(fs::read(&old).unwrap(), b"the old copy");
    assert_eq!(list_dir(&d.out), vec![name.to_string()]);
}

#[test]
fn exit_130_sigint_to_a_sender_mid_transfer() {
    let d = dirs();
    let name = "ctrlc.bin";
    // 100 MiB of zeros: the frame in flight (at most 64 MiB) ends well
    // before the file does.
    let src = d.src.join(name);
    sparse_file(&src, 100 * MIB);
    let rx = listen_recv(&d.out, &["--json", "--timeout", "20"], Stdout::Memory);
    let proxy = CuttingProxy::counting(rx.addr);
    proxy.hold_at(8 * MIB);
    let tx = start_send(&["--json", s(&src), &proxy.addr.to_string()]);
    let out = proxy.interrupt_at(8 * MIB, tx);
    let got = rx.finish(TIMEOUT);
    println!("sender:\n{}receiver:\n{}", out.stderr, got.stderr);
    out.expect_code(130, "zc send after SIGINT");
    let error = assert_failed(&json_events(&out.stderr, "zc send"), 130, "zc send");
    assert!(
        error["message"].as_str().unwrap().contains("interrupted"),
        "{error}"
    );
    got.expect_code(130, "zc recv whose sender stopped");
    assert_failed(&receiver_events(&got.stderr, "zc recv"), 130, "zc recv");
    assert!(
        !d.out.join(name).exists(),
        "an interrupted file was published"
    );
    assert!(d.out.join(format!("{name}.zcpart")).exists());
}

#[test]
fn exit_130_sigint_to_a_receiver_waiting_for_a_connection() {
    let d = dirs();
    for json in [false, true] {
        let flags: &[&str] = if json { &["--json"] } else { &[] };
        let rx = listen_recv(&d.out, flags, Stdout::Memory);
        sigint(&rx.child);
        let got = rx.finish(TIMEOUT);
        got.expect_code(130, "zc recv interrupted while waiting");
        if json {
            let events = receiver_events(&got.stderr, "zc recv --json");
            assert_failed(&events, 130, "zc recv --json");
        } else {
            assert!(
                got.stderr.lines().last().unwrap().contains("interrupted"),
                "{}",
                got.stderr
            );
        }
    }
    assert!(list_dir(&d.out).is_empty());
}

// --- 4. stdout carries the data only ----------------------------------------

fn tar_tree(d: &Dirs) -> PathBuf {
    let tree = d.root.join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    random_file(&tree.join("sub/big.bin"), 3 * MIB + 11, 13);
    fs::write(tree.join("notes.txt"), "zc: not a log line\n").unwrap();
    tree
}

#[test]
fn tar_c_into_zc_send_and_zc_recv_into_tar_x() {
    let d = dirs();
    let tree = tar_tree(&d);
    let unpacked = d.root.join("unpacked");
    fs::create_dir(&unpacked).unwrap();

    // zc recv -o - | tar x -C unpacked
    let mut untar = Command::new("tar");
    untar
        .args(["x", "-f", "-", "-C"])
        .arg(&unpacked)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut untar = Guard(untar.spawn().expect("spawning tar x"));
    let mut recv = zcmd(&["recv", "-l", "127.0.0.1:0", "-o", "-"]);
    recv.stdin(Stdio::null())
        .stdout(Stdio::from(untar.stdin.take().unwrap()));
    let rx = spawn_listening(recv, "zc recv -o -");

    // tar c -C tree . | zc send - ADDR
    let mut tar = Command::new("tar");
    tar.args(["c", "-f", "-", "-C"])
        .arg(&tree)
        .arg(".")
        .stdout(Stdio::piped());
    let mut tar = Guard(tar.spawn().expect("spawning tar c"));
    let mut send = zcmd(&["send", "-", &rx.addr.to_string()]);
    send.stdin(Stdio::from(tar.stdout.take().unwrap()));
    let tx = run_prepared(send, "zc send -");

    let got = rx.finish("zc recv -o -");
    let tar_status = wait_timeout(&mut tar, TIMEOUT, "tar c");
    let untar_status = wait_timeout(&mut untar, TIMEOUT, "tar x");
    let mut untar_err = String::new();
    let _ = untar.stderr.take().unwrap().read_to_string(&mut untar_err);
    tx.expect_code(0, "zc send -");
    got.expect(0, &["zc: received"], "zc recv -o -");
    assert!(tar_status.success(), "tar c: {tar_status}");
    assert!(untar_status.success(), "tar x: {untar_status}: {untar_err}");
    assert!(tx.stdout.is_empty());
    assert_same_file(&tree.join("sub/big.bin"), &unpacked.join("sub/big.bin"));
    assert_same_file(&tree.join("notes.txt"), &unpacked.join("notes.txt"));
}

#[test]
fn recv_to_stdout_writes_exactly_the_stream() {
    let d = dirs();
    let tree = tar_tree(&d);
    let archive = d.root.join("tree.tar");
    let status = Command::new("tar")
        .args(["c", "-f"])
        .arg(&archive)
        .arg("-C")
        .arg(&tree)
        .arg(".")
        .status()
        .expect("running tar c");
    assert!(status.success());
    for flags in [&[][..], &["--json"][..], &["--progress", "plain"][..]] {
        let mut args = vec!["-o", "-"];
        args.extend_from_slice(flags);
        let rx = spawn_receiver(
            {
                let mut cmd = zcmd(&["recv", "-l", "127.0.0.1:0"]);
                cmd.args(&args);
                cmd
            },
            Stdout::Memory,
        );
        let mut send = vec!["send"];
        send.extend_from_slice(flags);
        let dest = rx.dest();
        send.extend(["-", dest.as_str()]);
        let tx = run(zcmd(&send), Some(&archive), TIMEOUT);
        let got = rx.finish(TIMEOUT);
        tx.expect_code(0, "zc send -");
        got.expect_code(0, "zc recv -o -");
        // Byte for byte the archive: no log text mixed in.
        assert_file_is(&archive, &got.stdout);
        let said = got.stderr.contains("zc: received") || got.stderr.contains(r#""event":"done""#);
        assert!(said, "{}", got.stderr);
    }
}

// --- 5. -k -------------------------------------------------------------------

#[test]
fn keep_open_takes_eight_concurrent_senders_then_exits_130() {
    let d = dirs();
    let files: Vec<(String, PathBuf, String)> = (0..8)
        .map(|i| {
            let name = format!("many-{i}.bin");
            let path = d.file(&name, 32 * MIB, 100 + i);
            let sha = sha256_file(&path);
            (name, path, sha)
        })
        .collect();
    let rx = listen_recv(&d.out, &["-k", "--json"], Stdout::Memory);
    let dest = rx.dest();
    let senders: Vec<Running> = files
        .iter()
        .map(|(_, path, _)| start_send(&["--progress", "none", s(path), &dest]))
        .collect();
    for (sender, (name, ..)) in senders.into_iter().zip(&files) {
        sender
            .finish(TIMEOUT)
            .expect_code(0, &format!("zc send {name}"));
    }
    sigint(&rx.child);
    let got = rx.finish(TIMEOUT);
    got.expect_code(130, "zc recv -k after SIGINT");

    // Every line of eight interleaved transfers is whole JSON.
    let events = receiver_events(&got.stderr, "zc recv -k");
    assert_error_event(&events, 130, "zc recv -k");
    for (name, path, sha) in &files {
        assert_same_file(path, &d.out.join(name));
        let done: Vec<&Value> = events
            .iter()
            .filter(|e| e["event"] == "done" && e["name"] == name.as_str())
            .collect();
        assert_eq!(done.len(), 1, "{name}: {:?}", kinds(&events));
        assert_eq!(done[0]["sha256"], sha.as_str(), "{}", done[0]);
        assert_eq!(done[0]["bytes"].as_u64(), Some(32 * MIB), "{}", done[0]);
    }
    let mut expected: Vec<String> = files.iter().map(|(n, ..)| n.clone()).collect();
    expected.sort();
    assert_eq!(list_dir(&d.out), expected, "nothing else is left");
}

#[test]
fn keep_open_two_senders_of_one_name_one_wins_one_is_refused() {
    let d = dirs();
    let name = "same.bin";
    fs::create_dir(d.src.join("a")).unwrap();
    fs::create_dir(d.src.join("b")).unwrap();
    let (a, b) = (d.src.join("a").join(name), d.src.join("b").join(name));
    random_file(&a, 8 * MIB, 21);
    random_file(&b, 8 * MIB, 22);
    // Same size: only the modification time tells the receiver's quick check
    // they differ, and two files written back to back can share a clock tick.
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(&b)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let rx = listen_recv(&d.out, &["-k"], Stdout::Memory);
    // Throttled to about 16 MiB/s each, the two transfers overlap.
    let pa = CuttingProxy::throttled(rx.addr, 32 * 1024, Duration::from_millis(2));
    let pb = CuttingProxy::throttled(rx.addr, 32 * 1024, Duration::from_millis(2));
    let ta = start_send(&["--progress", "none", s(&a), &pa.addr.to_string()]);
    let tb = start_send(&["--progress", "none", s(&b), &pb.addr.to_string()]);
    let (oa, ob) = (ta.finish(TIMEOUT), tb.finish(TIMEOUT));
    let (winner, loser, won, lost) = match (oa.code, ob.code) {
        (0, 4) => (&oa, &ob, &a, &b),
        (4, 0) => (&ob, &oa, &b, &a),
        _ => panic!(
            "wanted one 0 and one 4, got {} and {}:\nA:\n{}B:\n{}",
            oa.code, ob.code, oa.stderr, ob.stderr
        ),
    };
    winner.says(&["zc: sent same.bin"]);
    assert!(
        loser.stderr.contains("being received by another transfer")
            || loser.stderr.contains("exists"),
        "the refusal should say why:\n{}",
        loser.stderr
    );
    assert_same_file(won, &d.out.join(name));
    // And once it is there, a third sender of the other content is told
    // it exists (the winner's own file would be up to date).
    let third = send_args(&["--progress", "none", s(lost), &rx.dest()]);
    third.expect(4, &["exists"], "a third zc send of same.bin");
    assert_same_file(won, &d.out.join(name));
    sigint(&rx.child);
    rx.finish(TIMEOUT)
        .expect_code(130, "zc recv -k after SIGINT");
    assert_eq!(list_dir(&d.out), vec![name.to_string()]);
}

// --- 6. reverse mode -----------------------------------------------------------

#[test]
fn reverse_mode_framed() {
    let d = dirs();
    let size = 6 * MIB + 1;
    let src = d.file("pulled.bin", size, 30);
    let sha = sha256_file(&src);
    let mut cmd = zcmd(&["send", "--json", "--listen", "127.0.0.1:0"]);
    cmd.arg(&src);
    let tx = spawn_receiver(cmd, Stdout::Memory);
    let got = run(
        zcmd(&["recv", "--json", "-o", s(&d.out), &tx.dest()]),
        None,
        TIMEOUT,
    );
    let sent = tx.finish(TIMEOUT);
    println!("sender:\n{}receiver:\n{}", sent.stderr, got.stderr);
    got.expect_code(0, "zc recv HOST:PORT");
    sent.expect_code(0, "zc send --listen");
    assert_same_file(&src, &d.out.join("pulled.bin"));
    let events = json_events(&sent.stderr, "zc send --listen");
    assert_eq!(events[0]["event"], "listening", "{:?}", kinds(&events));
    assert_done(&events, "send", size, Some(&sha), "zc send --listen");
    let events = json_events(&got.stderr, "zc recv HOST:PORT");
    assert_done(&events, "recv", size, Some(&sha), "zc recv HOST:PORT");
}

#[test]
fn reverse_mode_raw() {
    let d = dirs();
    let src = d.file("pulled-raw.bin", 5 * MIB + 7, 31);
    let dest = d.out.join("copy.bin");
    let mut cmd = zcmd(&["send", "--raw", "--listen", "127.0.0.1:0"]);
    cmd.arg(&src);
    let tx = spawn_receiver(cmd, Stdout::Memory);
    let got = run(
        zcmd(&["recv", "--raw", "-o", s(&dest), &tx.dest()]),
        None,
        TIMEOUT,
    );
    let sent = tx.finish(TIMEOUT);
    got.expect_code(0, "zc recv --raw HOST:PORT");
    sent.expect_code(0, "zc send --raw --listen");
    assert_same_file(&src, &dest);
    assert!(got.stdout.is_empty() && sent.stdout.is_empty());
}

// --- 7. keys -------------------------------------------------------------------

#[test]
fn matching_keys_transfer_from_flag_and_environment() {
    let d = dirs();
    let src = d.file("keyed.bin", 2 * MIB, 40);
    let rx = listen_recv(&d.out, &["--key", "correct horse"], Stdout::Null);
    let mut cmd = zcmd(&["send", s(&src), &rx.dest()]);
    cmd.env("ZC_KEY", "correct horse");
    let tx = run(cmd, None, TIMEOUT);
    let got = rx.finish(TIMEOUT);
    tx.expect_code(0, "zc send with ZC_KEY");
    got.expect_code(0, "zc recv --key");
    assert_same_file(&src, &d.out.join("keyed.bin"));
}

#[test]
fn wrong_or_missing_key_is_refused_before_any_file_is_created() {
    let d = dirs();
    let src = d.file("secret.bin", 2 * MIB, 41);
    let cases: [(&[&str], &[&str]); 3] = [
        (&["--key", "right"], &["--key", "wrong"]),
        (&["--key", "right"], &[]),
        (&[], &["--key", "right"]),
    ];
    for (rx_flags, tx_flags) in cases {
        let what = format!("recv {rx_flags:?}, send {tx_flags:?}");
        let mut flags = vec!["--json"];
        flags.extend_from_slice(rx_flags);
        let rx = listen_recv(&d.out, &flags, Stdout::Memory);
        let mut args = vec!["--json"];
        args.extend_from_slice(tx_flags);
        let dest = rx.dest();
        args.extend([s(&src), dest.as_str()]);
        let tx = send_args(&args);
        let got = rx.finish(TIMEOUT);
        tx.expect_code(4, &format!("zc send, {what}"));
        got.expect_code(4, &format!("zc recv, {what}"));
        let error = assert_failed(&json_events(&tx.stderr, "zc send"), 4, &what);
        assert!(
            error["message"].as_str().unwrap().contains("key"),
            "{what}: {error}"
        );
        assert_failed(&receiver_events(&got.stderr, "zc recv"), 4, &what);
        assert!(
            list_dir(&d.out).is_empty(),
            "{what}: the receiver created {:?}",
            list_dir(&d.out)
        );
    }
}

// --- --http -------------------------------------------------------------------

#[test]
fn json_http_events_follow_the_schema_on_both_sides() {
    let d = dirs();
    let src = d.file("served.bin", 5000, 21);
    let mut send = zcmd(&["send", "--http", "--json", "--listen", "127.0.0.1:0"]);
    send.arg(&src).env_remove("ZC_KEY");
    let mut recv = zcmd(&["recv", "--http", "--json", "--listen", "127.0.0.1:0", "-o"]);
    recv.arg(&d.out).env_remove("ZC_KEY");
    for (cmd, request) in [
        (send, "GET /wrong/served.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-9\r\nConnection: close\r\n\r\n"),
        (recv, "PUT /wrong/up.bin HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"),
    ] {
        let who = format!("{:?}", cmd.get_args().nth(1));
        let listener = spawn_listening(cmd, &who);
        let answer = common::http::raw(listener.addr, request.as_bytes());
        assert_eq!(common::http::status_of(&answer), 404, "{who}: {answer}");
        let bad = common::http::raw(listener.addr, b"\x16\x03\x01\r\n\r\n");
        assert_eq!(common::http::status_of(&bad), 400, "{who}: {bad}");
        // the access events are written after each answer: wait for them
        thread::sleep(Duration::from_millis(500));
        sigint(&listener.child);
        let out = listener.finish(&who);
        out.expect_code(130, &who);
        let events = json_events(&out.stderr, &who);
        let listening = only(&events, "listening", &who);
        for key in ["url", "curl", "wget"] {
            assert!(listening[key].as_str().is_some_and(|u| u.contains("http://")), "{who}: {listening}");
        }
        let requests: Vec<&Value> = events.iter().filter(|e| e["event"] == "request").collect();
        assert_eq!(requests.len(), 2, "{who}: {:?}", kinds(&events));
        assert_eq!(requests[0]["status"], 404, "{who}");
        assert_eq!(requests[1]["method"], "?", "{who}: a head that does not parse");
        assert_error_event(&events, 130, &who);
    }
}

#[test]
fn exit_2_http_with_a_key_or_a_code_is_a_usage_error() {
    let d = dirs();
    let src = d.file("plain.bin", 10, 22);
    let out_dir = s(&d.out).to_string();
    let cases: [(&[&str], Option<&str>); 5] = [
        (&["send", "--http", s(&src)], Some("a key")),
        (&["send", "--http", "--key", "k", s(&src)], None),
        (&["send", "--http", "--code", s(&src)], None),
        (&["recv", "--http", "-o", &out_dir], Some("a key")),
        (
            &["recv", "--http", "--code", "7-abc-def", "-o", &out_dir],
            None,
        ),
    ];
    for (args, env_key) in cases {
        let mut cmd = zcmd(args);
        cmd.env_remove("ZC_KEY");
        if let Some(key) = env_key {
            cmd.env("ZC_KEY", key);
        }
        let what = format!("ZC_KEY={env_key:?} zc {args:?}");
        let out = run(cmd, None, TIMEOUT);
        out.expect_code(2, &what);
        assert!(out.stderr.contains("plain HTTP"), "{what}: {}", out.stderr);
    }
}
