//! `zc send --http` as a server under pressure: a path resolved beneath its
//! source while the tree changes under it, `--max-conns` against many
//! idle connections, and a bar per client on a terminal.

#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::http::*;
use common::pty::{render, OnPty};

/// Swaps `dir/sub` between a real directory and a link to `outside`,
/// by renames, until `stop`.
fn swapper(dir: &Path, outside: &Path, stop: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    let (real, link, sub) = (dir.join("real"), dir.join("link"), dir.join("sub"));
    std::os::unix::fs::symlink(outside, &link).unwrap();
    thread::spawn(move || {
        let mut swaps = 0;
        while !stop.load(Ordering::Relaxed) {
            for held in [&real, &link] {
                std::fs::rename(held, &sub).unwrap();
                std::fs::rename(&sub, held).unwrap();
                swaps += 1;
            }
        }
        swaps
    })
}

#[test]
fn http_a_directory_swapped_for_a_link_never_serves_what_is_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(src.join("real")).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(src.join("real/f"), b"inside").unwrap();
    std::fs::write(outside.join("f"), b"not served").unwrap();
    let server = serve(&[], &[&src]);
    let path = format!("{}src/sub/f", server.prefix());
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = swapper(&src, &outside, stop.clone());
    let (mut inside, mut escaped) = (0, 0);
    for _ in 0..3000 {
        let got = raw(server.addr, &get(&path, ""));
        inside += usize::from(got.ends_with("\r\n\r\ninside"));
        escaped += usize::from(got.contains("not served"));
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swaps.join().unwrap();
    assert_eq!(
        escaped, 0,
        "{escaped} of 3000 requests read outside the source ({inside} inside, {swaps} swaps)"
    );
    // the check is a real one: the file inside was reached between swaps
    assert!(inside > 0, "never served from inside ({swaps} swaps)");
}

/// The same swaps against a directory's listing: the page of `sub/`
/// lists the directory that was opened, never the names of where a link
/// put in its place leads.
#[test]
fn http_a_directory_swapped_for_a_link_never_lists_what_is_outside() {
    // the directory's index page, and SHA256SUMS (walked, each file
    // opened beneath the source): neither shows a name from outside
    for (what, target) in [("index page", "src/sub/"), ("SHA256SUMS", "SHA256SUMS")] {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(src.join("real")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(src.join("real/inside-name"), b"inside").unwrap();
        std::fs::write(outside.join("outside-name"), b"not listed").unwrap();
        let server = serve(&[], &[&src]);
        let path = format!("{}{target}", server.prefix());
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = swapper(&src, &outside, stop.clone());
        let (mut inside, mut escaped) = (0, 0);
        for _ in 0..2000 {
            let got = raw(server.addr, &get(&path, ""));
            inside += usize::from(got.contains("inside-name"));
            escaped += usize::from(got.contains("outside-name"));
        }
        stop.store(true, Ordering::Relaxed);
        let swaps = swaps.join().unwrap();
        assert_eq!(
            escaped, 0,
            "{what}: {escaped} of 2000 showed outside names ({inside} inside, {swaps} swaps)"
        );
        assert!(
            inside > 0,
            "{what}: never listed from inside ({swaps} swaps)"
        );
    }
}

/// How many descriptors `pid` holds.
fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn http_max_conns_16_holds_against_500_idle_connections_and_curl_is_served() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("f.bin");
    common::random_file(&src, 100_000, 31);
    let server = serve(&["--max-conns", "16"], &[&src]);
    let pid = server.child.id();
    let before = descriptors(pid);
    // 500 connections that never say a word; connected without waiting,
    // since those past the listen backlog are held back by the kernel
    let addr = socket2::SockAddr::from(server.addr);
    let idle: Vec<socket2::Socket> = (0..500)
        .map(|_| {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.set_nonblocking(true).unwrap();
            let _ = s.connect(&addr);
            s
        })
        .collect();
    // the server takes at most 16 of them at a time: the rest wait in the
    // kernel's backlog, where they hold no descriptor of its. Each one
    // taken is two descriptors (the socket, and admission's handle to cut
    // it), and one may be taken while the one it replaces is let go.
    let bound = before + 2 * 17;
    let mut most = 0;
    for _ in 0..20 {
        most = most.max(descriptors(pid));
        thread::sleep(Duration::from_millis(100));
    }
    assert!(
        most <= bound,
        "{most} descriptors with 500 idle clients ({before} before)"
    );
    // a real client behind all of them is served once a place frees
    let got = curl(&[
        "-f",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--connect-timeout",
        "150",
        "--max-time",
        "200",
        &server.url,
    ]);
    assert_eq!(String::from_utf8_lossy(&got.stdout), "200", "{got:?}");
    // every idle one the server took is cut once it has had its time: its
    // descriptors all go back (some connects past the full backlog never
    // reach it: the kernel drops their handshake, so they count as neither)
    let mut left = descriptors(pid);
    for _ in 0..1500 {
        if left <= before {
            break;
        }
        thread::sleep(Duration::from_millis(100));
        left = descriptors(pid);
    }
    assert!(
        left <= before,
        "{left} descriptors long after ({before} before)"
    );
    let mut cut = 0;
    for s in &idle {
        let mut buf = [std::mem::MaybeUninit::new(0u8); 64];
        let end = s.recv(&mut buf);
        cut += usize::from(
            matches!(end, Ok(0))
                || end.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        );
    }
    // at least the 16 taken first and the 128 of the listen backlog
    assert!(cut >= 144, "only {cut} of 500 idle connections were cut");
}

/// The body's pace for curl: slow enough that a 16 MiB download is drawn
/// many times over (a bar redraws 10 times a second).
const SLOW: &str = "8M";

/// Where `text` says `zc: CLIENT METHOD PATH STATUS`: the offset of that
/// line and the client.
fn access_line(text: &str, method: &str, path: &str, status: u16) -> Option<(usize, String)> {
    let at = text.find(&format!(" {method} {path} {status} "))?;
    let start = text[..at].rfind("zc: ")?;
    Some((start, text[start + 4..at].to_string()))
}

/// The URL of a `zc: browser: URL` line in `text`.
fn browser_url(text: &str) -> Option<String> {
    let rest = text.split("zc: browser: ").nth(1)?;
    Some(rest.split_whitespace().next()?.to_string())
}

/// A bar row of a client's request, as drawn: `zc: CLIENT GET PATH [==>  ]`.
fn bar_of(client: &str, method: &str, path: &str) -> String {
    format!("zc: {client} {method} {path} [")
}

/// `bar` was drawn before `at` (the request's access line) and not from
/// there to `next` (a later request's access line: all that the first
/// one's end drew comes before it).
fn bar_only_before(seen: &str, (at, next): (usize, usize), bar: &str) {
    assert!(
        seen[..at].contains(bar),
        "no bar {bar:?} while the body moved:\n{seen:?}"
    );
    assert!(
        !seen[at..next].contains(bar),
        "{bar:?} is drawn again after its access line:\n{seen:?}"
    );
}

#[test]
fn http_a_client_has_a_bar_on_a_terminal_while_its_body_moves_and_none_after() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("big.bin");
    common::random_file(&src, 16 << 20, 41);
    let path = "/TOKEN/big.bin";

    let mut pty = OnPty::spawn(common::send_cmd(&[
        "--http",
        "--listen",
        "127.0.0.1:0",
        common::s(&src),
    ]));
    let url = pty.wait_for("zc send --http", browser_url);
    let got = curl(&["-f", "-o", "/dev/null", "--limit-rate", SLOW, &url]);
    assert!(got.status.success(), "{got:?}");
    let (at, client) = pty.wait_for("zc send --http", |t| access_line(t, "GET", path, 200));
    assert!(client.starts_with("127.0.0.1:"), "client {client:?}");
    // a request with no body after it: its access line comes after all
    // that the first one's end drew
    let got = curl(&["-f", "-I", &url]);
    assert!(got.status.success(), "{got:?}");
    let (next, _) = pty.wait_for("zc send --http", |t| access_line(t, "HEAD", path, 200));
    let seen = pty.text();
    bar_only_before(&seen, (at, next), &bar_of(&client, "GET", path));
    assert!(!seen.contains(&bar_of(&client, "HEAD", path)), "{seen:?}");
    // what stays on the screen: the access lines, no bar
    let screen = render(&seen[..next]);
    println!("the screen:\n{}", screen.join("\n"));
    assert!(
        screen.iter().all(|row| !row.contains(" [")),
        "a bar left on the screen: {screen:#?}"
    );
    let last = screen.last().expect("a screen");
    assert!(
        last.contains(&format!("{client} GET {path} 200 ")),
        "{screen:#?}"
    );

    no_bar_with_json_on_a_terminal(&src);
    no_bar_off_a_terminal(&src, path);
}

/// `send --http --json` on a pty: JSON lines only, no bar drawn.
fn no_bar_with_json_on_a_terminal(src: &Path) {
    let mut json = OnPty::spawn(common::send_cmd(&[
        "--http",
        "--json",
        "--listen",
        "127.0.0.1:0",
        common::s(src),
    ]));
    let url = json.wait_for("zc send --http --json", |whole| {
        let event: serde_json::Value = serde_json::from_str(whole.lines().next()?).ok()?;
        Some(event["url"].as_str()?.to_string())
    });
    let got = curl(&["-f", "-o", "/dev/null", "--limit-rate", SLOW, &url]);
    assert!(got.status.success(), "{got:?}");
    json.wait_for("zc send --http --json", |t| {
        t.contains("\"event\":\"request\"").then_some(())
    });
    let seen = json.text();
    assert!(!seen.contains("\x1b["), "drawn with --json:\n{seen:?}");
    for line in seen.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "{line:?}"
        );
    }
}

/// `send --http` with stderr a pipe: lines, no terminal codes.
fn no_bar_off_a_terminal(src: &Path, path: &str) {
    let mut piped = common::send_cmd(&["--http", "--listen", "127.0.0.1:0", common::s(src)]);
    let mut piped = common::Guard(piped.stderr(Stdio::piped()).spawn().unwrap());
    let mut lines = BufReader::new(piped.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    let url = loop {
        let line = lines.next().expect("a browser line").unwrap();
        said.push(line.clone());
        if let Some(url) = line.strip_prefix("zc: browser: ") {
            break url.to_string();
        }
    };
    let got = curl(&["-f", "-o", "/dev/null", "--limit-rate", SLOW, &url]);
    assert!(got.status.success(), "{got:?}");
    loop {
        let line = lines.next().expect("an access line").unwrap();
        said.push(line.clone());
        if access_line(&line, "GET", path, 200).is_some() {
            break;
        }
    }
    assert!(
        said.iter()
            .all(|l| !l.contains('\r') && !l.contains('\x1b')),
        "drawn off a terminal: {said:#?}"
    );
}

#[test]
fn http_an_upload_has_a_bar_on_a_terminal_while_its_body_comes_in() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("up.bin");
    let inbox = tmp.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    common::random_file(&src, 16 << 20, 43);
    let path = "/TOKEN/up.bin";

    let mut recv = common::zc();
    recv.args(["recv", "--http", "--listen", "127.0.0.1:0", "-o"])
        .arg(&inbox);
    let mut pty = OnPty::spawn(recv);
    let url = pty.wait_for("zc recv --http", browser_url);
    let got = curl(&[
        "-f",
        "-o",
        "/dev/null",
        "--limit-rate",
        SLOW,
        "-T",
        common::s(&src),
        &url,
    ]);
    assert!(got.status.success(), "{got:?}");
    let (at, client) = pty.wait_for("zc recv --http", |t| access_line(t, "PUT", path, 201));
    common::assert_same_file(&src, &inbox.join("up.bin"));
    let got = curl(&["-I", &format!("{url}up.bin")]);
    assert!(got.status.success(), "{got:?}");
    let (next, _) = pty.wait_for("zc recv --http", |t| access_line(t, "HEAD", path, 404));
    let seen = pty.text();
    bar_only_before(&seen, (at, next), &bar_of(&client, "PUT", path));
}

#[test]
fn http_a_tar_stream_never_serves_what_is_outside_while_a_directory_is_swapped_for_a_link() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(src.join("real")).unwrap();
    std::fs::create_dir(&outside).unwrap();
    // the same size: the member's length in the plan fits either
    std::fs::write(src.join("real/f"), b"inside....").unwrap();
    std::fs::write(outside.join("f"), b"not served").unwrap();
    let server = serve(&[], &[&src]);
    let path = format!("{}src.tar", server.prefix());
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = swapper(&src, &outside, stop.clone());
    let (mut inside, mut escaped) = (0, 0);
    for _ in 0..3000 {
        let got = raw(server.addr, &get(&path, ""));
        inside += usize::from(got.contains("inside...."));
        escaped += usize::from(got.contains("not served"));
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swaps.join().unwrap();
    assert_eq!(
        escaped, 0,
        "{escaped} of 3000 archives held a file outside the source ({inside} inside, {swaps} swaps)"
    );
    assert!(inside > 0, "never served from inside ({swaps} swaps)");
}
