//! Helpers shared by the integration tests: spawning the real `zc` binary,
//! learning a receiver's port, bounded waits, test data and comparisons.

// Every test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod http;
#[cfg(unix)]
pub mod pty;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// No child may run longer than this; a hung test is a failed test.
pub const TIMEOUT: Duration = Duration::from_secs(60);
/// For the 100 MiB / 1 GiB cases on a slow (debug, shared) machine.
pub const LONG_TIMEOUT: Duration = Duration::from_secs(180);

pub const MIB: u64 = 1 << 20;

pub fn zc() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zc"));
    cmd.env("XDG_CACHE_HOME", CACHE);
    cmd
}

/// The cache a receiver keeps its measured receive paths in, under the
/// build's own tmp: a test run writes nothing into the runner's home.
pub const CACHE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/xdg-cache");

/// `zc ARGS...` with no key in its environment, whatever the runner's is.
pub fn zcmd(args: &[&str]) -> Command {
    let mut cmd = zc();
    cmd.env_remove("ZC_KEY").args(args);
    cmd
}

/// `zc send ARGS...`, for callers that adjust it before running it.
pub fn send_cmd(args: &[&str]) -> Command {
    let mut cmd = zc();
    cmd.arg("send").args(args);
    cmd
}

/// Kills `child` and its own children (a `zc` under `/usr/bin/time`), then
/// reaps it.
pub fn kill_tree(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let pid = child.id();
    let path = format!("/proc/{pid}/task/{pid}/children");
    if let Ok(kids) = std::fs::read_to_string(path) {
        for kid in kids
            .split_whitespace()
            .filter_map(|k| k.parse::<i32>().ok())
        {
            // SAFETY: kill(2) on a pid we just read; no memory is involved.
            unsafe { libc::kill(kid, libc::SIGKILL) };
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A child that is killed (with its children) if the test ends, by success
/// or panic, while it still runs: no test leaves a listener behind.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        kill_tree(&mut self.0);
    }
}

impl std::ops::Deref for Guard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Guard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Waits for `child` at most `timeout`; kills it and panics when it overstays.
pub fn wait_timeout(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    wait_or_kill(child, timeout, what)
        .unwrap_or_else(|| panic!("{what}: still running after {timeout:?}; killed"))
}

/// Waits for `child` at most `timeout`; `None` once it overstayed and was
/// killed, for callers whose panic says more than [`wait_timeout`]'s.
pub fn wait_or_kill(child: &mut Child, timeout: Duration, what: &str) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(e) => panic!("{what}: waiting failed: {e}"),
        }
        if Instant::now() >= deadline {
            kill_tree(child);
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The exit code, or -(signal) when a signal ended the process.
pub fn code_of(status: ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return -sig;
        }
    }
    i32::MIN
}

/// Reads a pipe to its end on a thread of its own, so the child never blocks
/// on a full pipe.
fn collect<R: Read + Send + 'static>(mut pipe: R) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut all = Vec::new();
        let _ = pipe.read_to_end(&mut all);
        all
    })
}

/// Copies a pipe into a file on a thread of its own (large stdout captures).
fn collect_to_file<R: Read + Send + 'static>(mut pipe: R, path: PathBuf) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut out = File::create(&path).expect("creating the stdout capture");
        io::copy(&mut pipe, &mut out).expect("capturing stdout");
        Vec::new()
    })
}

/// What a finished child left behind.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Outcome {
    /// Panics with everything known about the process unless it exited `code`.
    pub fn expect_code(&self, code: i32, what: &str) -> &Self {
        assert_eq!(
            self.code, code,
            "{what}: exit code {} (wanted {code}); stderr:\n{}",
            self.code, self.stderr
        );
        self
    }

    /// [`Outcome::expect_code`], and no panic on stderr.
    pub fn expect_clean(&self, code: i32, what: &str) -> &Self {
        self.expect_code(code, what);
        assert_no_panic(what, &self.stderr);
        self
    }

    /// Panics unless the process exited `code` and its stderr holds each of
    /// `needles`, showing the code, stdout and stderr.
    #[track_caller]
    pub fn expect(&self, code: i32, needles: &[&str], what: &str) -> &Self {
        self.check(Some(code), needles, what)
    }

    /// Panics unless stderr holds each of `needles`, showing the code,
    /// stdout and stderr: for an exit code checked otherwise (after
    /// [`Outcome::expect_clean`]), or not at all.
    #[track_caller]
    pub fn says(&self, needles: &[&str]) -> &Self {
        self.check(None, needles, "the process")
    }

    #[track_caller]
    fn check(&self, code: Option<i32>, needles: &[&str], what: &str) -> &Self {
        let missing: Vec<&str> = needles
            .iter()
            .copied()
            .filter(|needle| !self.stderr.contains(needle))
            .collect();
        if code.is_some_and(|code| code != self.code) || !missing.is_empty() {
            let wanted = code.map_or(String::new(), |code| format!(" (wanted {code})"));
            let stdout = String::from_utf8_lossy(&self.stdout);
            // A receiver's stdout can be the file itself: show its start.
            let shown: String = stdout.chars().take(2000).collect();
            let cut = if shown.len() < stdout.len() {
                "..."
            } else {
                ""
            };
            panic!(
                "{what}: exit code {}{wanted}; stderr lacks {missing:?}\n\
                 stdout:\n{shown}{cut}\nstderr:\n{}",
                self.code, self.stderr
            );
        }
        self
    }
}

/// Panics if `stderr` shows that the process panicked.
pub fn assert_no_panic(what: &str, stderr: &str) {
    assert!(
        !stderr.contains("panicked"),
        "{what} panicked; stderr:\n{stderr}"
    );
}

/// Where a receiver's stdout goes.
pub enum Stdout {
    /// Discarded (`Stdio::null()`).
    Null,
    /// Kept in memory, for small transfers.
    Memory,
    /// Streamed into this file through a real pipe.
    File(PathBuf),
}

/// A running receiver whose address is known.
pub struct Receiver {
    pub child: Guard,
    pub addr: SocketAddr,
    /// Every stderr line up to and including the `listening` one.
    pub head: String,
    stderr: Option<JoinHandle<Vec<u8>>>,
    stdout: Option<JoinHandle<Vec<u8>>>,
}

impl Receiver {
    /// `HOST:PORT` for `zc send`.
    pub fn dest(&self) -> String {
        self.addr.to_string()
    }

    /// Waits for the receiver to exit and returns what it said.
    pub fn finish(mut self, timeout: Duration) -> Outcome {
        let status = wait_timeout(&mut self.child, timeout, "zc recv");
        let rest = self.stderr.take().map(|h| h.join().unwrap());
        let stdout = self.stdout.take().map(|h| h.join().unwrap());
        Outcome {
            code: code_of(status),
            stdout: stdout.unwrap_or_default(),
            stderr: std::mem::take(&mut self.head)
                + &String::from_utf8_lossy(&rest.unwrap_or_default()),
        }
    }
}

/// The address in a `zc: listening on ADDR` or `{"event":"listening",...}` line.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    if let Some(rest) = line.split("listening on ").nth(1) {
        return rest.trim().parse().ok();
    }
    if line.contains("\"event\":\"listening\"") {
        let start = line.find("\"addr\":\"")? + "\"addr\":\"".len();
        let len = line[start..].find('"')?;
        return line[start..start + len].parse().ok();
    }
    None
}

/// Reads `stderr` up to the listening line; panics (after killing the child)
/// if the child ends or goes quiet first.
fn read_until_listening(
    child: &mut Child,
    stderr: ChildStderr,
) -> (SocketAddr, String, JoinHandle<Vec<u8>>) {
    // The read happens on a thread so a receiver that never prints cannot
    // hang the test: the main thread waits on a channel with a deadline.
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || {
        let mut reader = BufReader::new(stderr);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(Err(head));
                    return Vec::new();
                }
                Ok(_) => {}
            }
            head.push_str(&line);
            if let Some(addr) = listening_addr(&line) {
                let _ = tx.send(Ok((addr, head)));
                break;
            }
        }
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
        rest
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(Ok((addr, head))) => (addr, head, reader),
        Ok(Err(head)) => {
            let status = wait_timeout(child, TIMEOUT, "zc recv");
            panic!("zc recv ended ({status}) before listening; stderr:\n{head}");
        }
        Err(_) => {
            kill_tree(child);
            panic!("zc recv did not say where it listens within {TIMEOUT:?}");
        }
    }
}

/// Starts `cmd` (a `zc recv ...`, possibly wrapped) and waits until it listens.
pub fn spawn_receiver(mut cmd: Command, stdout: Stdout) -> Receiver {
    cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    match &stdout {
        Stdout::Null => cmd.stdout(Stdio::null()),
        Stdout::Memory | Stdout::File(_) => cmd.stdout(Stdio::piped()),
    };
    let mut child = Guard(cmd.spawn().expect("spawning zc recv"));
    let out = child.stdout.take().map(|pipe| match stdout {
        Stdout::File(path) => collect_to_file(pipe, path),
        _ => collect(pipe),
    });
    let err = child.stderr.take().expect("piped stderr");
    let (addr, head, stderr) = read_until_listening(&mut child, err);
    Receiver {
        child,
        addr,
        head,
        stderr: Some(stderr),
        stdout: out,
    }
}

/// `zc recv -l 127.0.0.1:0 -o OUTPUT EXTRA...`, listening.
pub fn receiver(output: &Path, extra: &[&str], stdout: Stdout) -> Receiver {
    spawn_receiver(recv_cmd(output, extra), stdout)
}

/// The command line `receiver` runs, for callers that adjust it.
pub fn recv_cmd(output: &Path, extra: &[&str]) -> Command {
    let mut cmd = zc();
    cmd.args(["recv", "-l", "127.0.0.1:0", "-o"])
        .arg(output)
        .args(extra);
    cmd
}

/// Runs a command to its end (bounded by `timeout`), optionally feeding
/// `stdin` from a file through a pipe.
pub fn run(mut cmd: Command, stdin: Option<&Path>, timeout: Duration) -> Outcome {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = Guard(cmd.spawn().expect("spawning a child"));
    let feeder = stdin.map(|path| {
        let mut pipe = child.stdin.take().expect("piped stdin");
        let mut file = File::open(path).expect("opening the stdin source");
        thread::spawn(move || {
            // The child may stop reading early (and the test then says why).
            let _ = io::copy(&mut file, &mut pipe);
        })
    });
    let out = collect(child.stdout.take().unwrap());
    let err = collect(child.stderr.take().unwrap());
    let status = wait_timeout(&mut child, timeout, "child");
    if let Some(f) = feeder {
        f.join().unwrap();
    }
    Outcome {
        code: code_of(status),
        stdout: out.join().unwrap(),
        stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
    }
}

/// `zc send ARGS...` to its end.
pub fn send(args: &[&str]) -> Outcome {
    run(send_cmd(args), None, TIMEOUT)
}

/// `zc send ARGS...` with a file piped into its stdin.
pub fn send_stdin(args: &[&str], stdin: &Path, timeout: Duration) -> Outcome {
    run(send_cmd(args), Some(stdin), timeout)
}

pub fn send_timeout(args: &[&str], timeout: Duration) -> Outcome {
    run(send_cmd(args), None, timeout)
}

/// A path as a `&str` for argument lists.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// xorshift64*: fast, deterministic, no crates.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// A number in [0, n) (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// `n` fresh bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }
}

/// Writes `size` pseudo-random bytes (seeded) to `path`.
pub fn random_file(path: &Path, size: u64, seed: u64) {
    let mut rng = XorShift::new(seed ^ size);
    let mut out = io::BufWriter::new(File::create(path).expect("creating a test file"));
    let mut buf = vec![0u8; MIB as usize];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..n]);
        out.write_all(&buf[..n]).expect("writing a test file");
        left -= n as u64;
    }
    out.flush().unwrap();
}

/// A file of `size` bytes that takes no disk space (all zeros).
pub fn sparse_file(path: &Path, size: u64) {
    File::create(path)
        .and_then(|f| f.set_len(size))
        .expect("creating a sparse file");
}

/// Reads as much as fits in `buf` (short only at the end of the stream).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// Panics unless the two readers yield the same bytes; names the first
/// difference. Reads in chunks: a 1 GiB comparison needs 2 MiB of memory.
pub fn assert_same_stream(mut a: impl Read, mut b: impl Read, what: &str) {
    let mut ba = vec![0u8; MIB as usize];
    let mut bb = vec![0u8; MIB as usize];
    let mut pos = 0u64;
    loop {
        let na = read_full(&mut a, &mut ba).expect("reading the expected bytes");
        let nb = read_full(&mut b, &mut bb).expect("reading the actual bytes");
        let n = na.min(nb);
        if let Some(i) = (0..n).find(|&i| ba[i] != bb[i]) {
            panic!("{what}: first difference at byte {}", pos + i as u64);
        }
        if na != nb {
            panic!(
                "{what}: lengths differ: expected {} bytes, got {}",
                pos + na as u64,
                pos + nb as u64
            );
        }
        if na == 0 {
            return;
        }
        pos += n as u64;
    }
}

/// Panics unless the two files hold the same bytes.
pub fn assert_same_file(expected: &Path, actual: &Path) {
    let a = File::open(expected).unwrap_or_else(|e| panic!("{}: {e}", expected.display()));
    let b = File::open(actual).unwrap_or_else(|e| panic!("{}: {e}", actual.display()));
    assert_same_stream(
        a,
        b,
        &format!("{} vs {}", expected.display(), actual.display()),
    );
}

/// Panics unless `bytes` is the content of `expected`.
pub fn assert_file_is(expected: &Path, bytes: &[u8]) {
    let a = File::open(expected).unwrap_or_else(|e| panic!("{}: {e}", expected.display()));
    assert_same_stream(a, bytes, &format!("{} vs captured", expected.display()));
}

/// The names in a directory, sorted.
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("listing a directory")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Lower-case hex, as `sha256sum` prints a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of a file's bytes in lower-case hex, read 1 MiB at a time.
pub fn sha256_file(path: &Path) -> String {
    let mut file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; MIB as usize];
    loop {
        match file.read(&mut buf).expect("reading for a digest") {
            0 => break,
            n => hasher.update(&buf[..n]),
        }
    }
    hex(&hasher.finalize())
}

/// The run of hex digits after the first `sha256 ` in `text` (a summary
/// line, or a stderr holding one) when it is 64 digits long; `None` when
/// there is no `sha256 ` or the run has another length.
pub fn summary_sha(text: &str) -> Option<String> {
    let rest = text.split("sha256 ").nth(1)?;
    let hex: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    (hex.len() == 64).then_some(hex)
}

/// [`summary_sha`], or a panic that shows `stderr`.
pub fn expect_summary_sha(stderr: &str, what: &str) -> String {
    summary_sha(stderr)
        .unwrap_or_else(|| panic!("{what}: no 64-digit sha256 in the summary:\n{stderr}"))
}

/// Panics unless every file under `expected` has its bytes at the same
/// place under `actual`. Only contents: modes, times, links and anything
/// extra under `actual` are not compared (tests/trees.rs and tests/wine.rs
/// have their own `assert_same_tree` for those).
pub fn assert_same_tree_contents(expected: &Path, actual: &Path) {
    for entry in std::fs::read_dir(expected).unwrap() {
        let entry = entry.unwrap();
        let (from, to) = (entry.path(), actual.join(entry.file_name()));
        if entry.file_type().unwrap().is_dir() {
            assert_same_tree_contents(&from, &to);
        } else {
            assert_same_file(&from, &to);
        }
    }
}

/// Every path under `top` (and `top`), not following links.
pub fn all_paths(top: &Path) -> Vec<PathBuf> {
    let mut out = vec![top.to_path_buf()];
    if std::fs::symlink_metadata(top).unwrap().is_dir() {
        for entry in std::fs::read_dir(top).unwrap() {
            out.extend(all_paths(&entry.unwrap().path()));
        }
    }
    out
}

/// For a test that cannot run here (`why`): a `SKIP: TESTS: WHY` line and a
/// pass, unless the environment variable `required` is `1` (`.ci/run` sets
/// one for each kind of test CI must run), which makes the skip a failure.
pub fn skip_unless_required(required: &str, tests: &str, why: &str) {
    let must_run = std::env::var(required).is_ok_and(|v| v == "1");
    assert!(!must_run, "{required}=1 but {why}");
    say(&format!("SKIP: {tests}: {why}"));
}

/// Writes straight to the process's stderr, past the test harness's capture,
/// so a skip or a timing is visible in a plain `cargo test` log.
pub fn say(line: &str) {
    let _ = writeln!(io::stderr(), "{line}");
}

/// The code a listening side printed before its listening line.
pub fn code_in(head: &str) -> String {
    let line = line_with(head, "zc: code ").unwrap_or_else(|| panic!("no code in:\n{head}"));
    let code = line.trim_start_matches("zc: code ").split_whitespace();
    code.into_iter().next().unwrap().to_string()
}

/// A protocol frame: its kind, its body's length (u32, big-endian), the body.
pub fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

/// An address on 127.0.0.1 that refuses connections for as long as the
/// returned socket lives: bound and never listening, so no other test can
/// take the port in the meantime (a port that was merely free can be).
pub fn refusing_addr() -> (socket2::Socket, String) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).expect("binding 127.0.0.1:0");
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    (socket, format!("127.0.0.1:{port}"))
}

/// True when something listens on 127.0.0.1:`port` (IPv4 or IPv6 table),
/// checked without connecting (a connect would use up a one-shot listener).
pub fn is_listening(port: u16) -> bool {
    let needle = format!(":{port:04X} ");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table).is_ok_and(|text| {
            text.lines().skip(1).any(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                cols.len() > 3 && format!("{} ", cols[1]).ends_with(&needle) && cols[3] == "0A"
            })
        })
    })
}

/// Waits until a listener appears on `port`; kills `child` and panics if it
/// never does.
pub fn wait_listening(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + TIMEOUT;
    while !is_listening(port) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited ({status}) before listening on port {port}");
        }
        if Instant::now() >= deadline {
            kill_tree(child);
            panic!("{what} did not listen on port {port} within {TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// A one-connection TCP proxy that forwards client→server in small chunks
/// with a pause between them (server→client at full speed), so a test can
/// act while a transfer is surely in flight.
pub struct SlowProxy {
    pub addr: SocketAddr,
    /// Bytes forwarded client→server so far.
    pub forwarded: Arc<AtomicU64>,
    /// Set to stop throttling.
    pub fast: Arc<AtomicBool>,
}

impl SlowProxy {
    pub fn start(upstream: SocketAddr, chunk: usize, pause: Duration) -> SlowProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let addr = listener.local_addr().unwrap();
        let forwarded = Arc::new(AtomicU64::new(0));
        let fast = Arc::new(AtomicBool::new(false));
        let (count, go) = (forwarded.clone(), fast.clone());
        thread::spawn(move || {
            let Ok((client, _)) = listener.accept() else {
                return;
            };
            let Ok(server) = TcpStream::connect(upstream) else {
                return;
            };
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            thread::spawn(move || pump(s2, c2, usize::MAX, Duration::ZERO, None, None));
            pump(client, server, chunk, pause, Some(count), Some(go));
        });
        SlowProxy {
            addr,
            forwarded,
            fast,
        }
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    chunk: usize,
    pause: Duration,
    count: Option<Arc<AtomicU64>>,
    fast: Option<Arc<AtomicBool>>,
) {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let quick = fast.as_ref().is_some_and(|f| f.load(Ordering::SeqCst));
        let want = if quick {
            buf.len()
        } else {
            chunk.min(buf.len())
        };
        let n = match from.read(&mut buf[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        if let Some(c) = &count {
            c.fetch_add(n as u64, Ordering::SeqCst);
        }
        if !quick && !pause.is_zero() {
            thread::sleep(pause);
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// The first line of `text` that contains `needle`, for assertion messages.
pub fn line_with<'a>(text: &'a str, needle: &str) -> Option<&'a str> {
    text.lines().find(|l| l.contains(needle))
}

/// A child started with [`start`]: stdout and stderr are collected on
/// threads of their own while the test acts on it (signals, kill -9).
pub struct Running {
    pub child: Guard,
    out: Option<JoinHandle<Vec<u8>>>,
    err: Option<JoinHandle<Vec<u8>>>,
}

impl Running {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for the child to exit (bounded) and returns what it said.
    pub fn finish(mut self, timeout: Duration) -> Outcome {
        let status = wait_timeout(&mut self.child, timeout, "child");
        let out = self.out.take().map(|h| h.join().unwrap());
        let err = self.err.take().map(|h| h.join().unwrap());
        Outcome {
            code: code_of(status),
            stdout: out.unwrap_or_default(),
            stderr: String::from_utf8_lossy(&err.unwrap_or_default()).into_owned(),
        }
    }
}

/// Starts `cmd` with stdin closed and stdout/stderr collected.
pub fn start(mut cmd: Command) -> Running {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Guard(cmd.spawn().expect("spawning a child"));
    let out = child.stdout.take().map(collect);
    let err = child.stderr.take().map(collect);
    Running { child, out, err }
}

/// Sends SIGINT (what Ctrl-C sends) to `child`.
pub fn sigint(child: &Child) {
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(rc, 0, "kill(SIGINT) failed: {}", io::Error::last_os_error());
}

/// A TCP proxy for many connections, forwarding both ways, that counts the
/// bytes going client→server (the direction of a `zc send`) and can:
///
/// - cut: close both sockets after forwarding `cut_after` bytes upstream, on
///   each of the first `cuts` connections (later ones are forwarded whole),
///   like a pulled cable;
/// - hold: stop forwarding upstream once the total reaches [`hold_at`],
///   so a test can act (kill, signal) at a known point of a transfer;
/// - throttle: forward upstream in `chunk`-byte reads with a pause after each.
///
/// [`hold_at`]: CuttingProxy::hold_at
pub struct CuttingProxy {
    pub addr: SocketAddr,
    /// Bytes forwarded client→server, over all connections.
    pub forwarded: Arc<AtomicU64>,
    /// Client→server bytes of each connection, in the order accepted.
    per_conn: Arc<std::sync::Mutex<Vec<u64>>>,
    hold: Arc<AtomicU64>,
    slow: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

/// What one connection of a [`CuttingProxy`] does.
#[derive(Clone)]
struct ProxyShared {
    forwarded: Arc<AtomicU64>,
    per_conn: Arc<std::sync::Mutex<Vec<u64>>>,
    hold: Arc<AtomicU64>,
    slow: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    chunk: usize,
    pause: Duration,
}

impl CuttingProxy {
    /// Cuts each of the first `cuts` connections after `cut_after` bytes
    /// upstream.
    pub fn start(upstream: SocketAddr, cut_after: u64, cuts: usize) -> CuttingProxy {
        Self::build(upstream, cut_after, cuts, None)
    }

    /// Forwards everything, counting.
    pub fn counting(upstream: SocketAddr) -> CuttingProxy {
        Self::build(upstream, u64::MAX, 0, None)
    }

    /// Forwards everything, upstream in `chunk`-byte steps with `pause`
    /// after each (until [`CuttingProxy::unthrottle`]).
    pub fn throttled(upstream: SocketAddr, chunk: usize, pause: Duration) -> CuttingProxy {
        Self::build(upstream, u64::MAX, 0, Some((chunk, pause)))
    }

    fn build(
        upstream: SocketAddr,
        cut_after: u64,
        cuts: usize,
        throttle: Option<(usize, Duration)>,
    ) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let (chunk, pause) = throttle.unwrap_or((usize::MAX, Duration::ZERO));
        let shared = ProxyShared {
            forwarded: Arc::new(AtomicU64::new(0)),
            per_conn: Arc::new(std::sync::Mutex::new(Vec::new())),
            hold: Arc::new(AtomicU64::new(u64::MAX)),
            slow: Arc::new(AtomicBool::new(throttle.is_some())),
            stop: Arc::new(AtomicBool::new(false)),
            chunk,
            pause,
        };
        let proxy = CuttingProxy {
            addr,
            forwarded: shared.forwarded.clone(),
            per_conn: shared.per_conn.clone(),
            hold: shared.hold.clone(),
            slow: shared.slow.clone(),
            stop: shared.stop.clone(),
        };
        thread::spawn(move || {
            while !shared.stop.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(_) => return,
                };
                let _ = client.set_nonblocking(false);
                let index = {
                    let mut conns = shared.per_conn.lock().unwrap();
                    conns.push(0);
                    conns.len() - 1
                };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let cut = (index < cuts).then_some(cut_after);
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                thread::spawn(move || pump(s2, c2, usize::MAX, Duration::ZERO, None, None));
                let shared = shared.clone();
                thread::spawn(move || pump_upstream(client, server, index, cut, &shared));
            }
        });
        proxy
    }

    /// Pauses upstream forwarding once `n` bytes (in all) have gone through.
    pub fn hold_at(&self, n: u64) {
        self.hold.store(n, Ordering::SeqCst);
    }

    /// Lifts [`CuttingProxy::hold_at`].
    pub fn release(&self) {
        self.hold.store(u64::MAX, Ordering::SeqCst);
    }

    /// Stops throttling.
    pub fn unthrottle(&self) {
        self.slow.store(false, Ordering::SeqCst);
    }

    /// Client→server bytes of each connection so far.
    pub fn connections(&self) -> Vec<u64> {
        self.per_conn.lock().unwrap().clone()
    }

    /// Ctrl-C to the sender `tx` once `n` bytes went through (where
    /// [`CuttingProxy::hold_at`] holds it): what the sender said. A sender
    /// finishes the DATA frame in flight before it stops, so the handler is
    /// given time to see the signal before that frame is let through.
    pub fn interrupt_at(&self, n: u64, mut tx: Running) -> Outcome {
        self.wait_for(n, &mut tx.child, "zc send");
        sigint(&tx.child);
        thread::sleep(Duration::from_millis(200));
        self.release();
        tx.finish(TIMEOUT)
    }

    /// Waits until `n` bytes went upstream; panics (killing `child`) if
    /// `child` exits first or it takes longer than [`TIMEOUT`].
    pub fn wait_for(&self, n: u64, child: &mut Child, what: &str) {
        let deadline = Instant::now() + TIMEOUT;
        while self.forwarded.load(Ordering::SeqCst) < n {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{what} exited ({status}) after {} bytes, before {n} went through the proxy",
                    self.forwarded.load(Ordering::SeqCst)
                );
            }
            if Instant::now() >= deadline {
                kill_tree(child);
                panic!("{what}: {n} bytes did not go through the proxy within {TIMEOUT:?}");
            }
            thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Client→server for one connection of a [`CuttingProxy`].
fn pump_upstream(
    mut from: TcpStream,
    mut to: TcpStream,
    index: usize,
    mut cut: Option<u64>,
    sh: &ProxyShared,
) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut clean = true;
    loop {
        if sh.stop.load(Ordering::SeqCst) {
            clean = false;
            break;
        }
        if cut == Some(0) {
            clean = false;
            break;
        }
        let (held_at, done) = (
            sh.hold.load(Ordering::SeqCst),
            sh.forwarded.load(Ordering::SeqCst),
        );
        if done >= held_at {
            thread::sleep(Duration::from_millis(2));
            continue;
        }
        let slow = sh.slow.load(Ordering::SeqCst);
        let mut want = buf.len() as u64;
        if slow {
            want = want.min(sh.chunk as u64);
        }
        want = want.min(held_at - done).min(cut.unwrap_or(u64::MAX));
        let n = match from.read(&mut buf[..want as usize]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            clean = false;
            break;
        }
        sh.forwarded.fetch_add(n as u64, Ordering::SeqCst);
        sh.per_conn.lock().unwrap()[index] += n as u64;
        if let Some(left) = cut.as_mut() {
            *left -= n as u64;
        }
        if slow && !sh.pause.is_zero() {
            thread::sleep(sh.pause);
        }
    }
    if clean {
        // The client finished: pass its end of stream on.
        let _ = to.shutdown(Shutdown::Write);
        let _ = from.shutdown(Shutdown::Read);
    } else {
        // A cut (or a dead server): both connections end here. The other
        // direction's thread sees its read end and drops its handles, so
        // both sockets are closed for real.
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    }
}

/// Words a hostile peer may choose for any text it sends (a reason, a
/// message, a name): OSC (set the window title) and CSI (clear the screen)
/// sequences, a newline that would forge a line of zc's own, and the C1
/// forms of CSI and OSC (U+009B, U+009D) that some terminals obey as well.
pub const HOSTILE_TEXT: &str =
    "MARK \u{1b}]0;owned\u{7}\u{1b}[2J\nzc: FORGED LINE \u{9b}31m\u{9d}0;t\u{9c} \u{202e}end";

/// What [`HOSTILE_TEXT`] looks like once escaped for a terminal.
pub const HOSTILE_SHOWN: &str =
    "MARK \\u{1b}]0;owned\\u{7}\\u{1b}[2J\\nzc: FORGED LINE \\u{9b}31m\\u{9d}0;t\\u{9c} \\u{202e}end";

/// Panics unless `stderr` holds nothing a terminal obeys: no ESC, no C1
/// control (U+0080..U+009F, the UTF-8 bytes C2 80..C2 9F), no bidi override,
/// and no line that a peer's newline began.
pub fn assert_terminal_safe(stderr: &str, what: &str) {
    let bad = stderr
        .chars()
        .find(|&c| c == '\u{1b}' || ('\u{80}'..='\u{9f}').contains(&c) || c == '\u{202e}');
    assert!(bad.is_none(), "{what}: {bad:?} reached stderr:\n{stderr:?}");
    assert!(
        !stderr.lines().any(|l| l.starts_with("zc: FORGED")),
        "{what}: a peer's newline began a line of stderr:\n{stderr}"
    );
}

/// [`assert_terminal_safe`] for `--json` output, and every line one JSON
/// object; returns them.
pub fn json_lines(stderr: &str, what: &str) -> Vec<serde_json::Value> {
    assert_terminal_safe(stderr, what);
    stderr
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {l:?}\n{stderr}"))
        })
        .collect()
}

/// A tmpfs mounted for one test, unmounted when dropped.
pub struct Mount(PathBuf);

impl Mount {
    /// Mounts a tmpfs at `path`; `None` (with a SKIP line) where mounting is
    /// not allowed, or a failure under `ZC_ROOT_REQUIRED=1` (CI, as root).
    pub fn tmpfs(path: &Path, options: &str, test: &str) -> Option<Mount> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(path)
            .output();
        let why = match out {
            Ok(o) if o.status.success() => return Some(Mount(path.to_path_buf())),
            Ok(o) => format!(
                "cannot mount a tmpfs ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => format!("cannot run mount: {e}"),
        };
        skip_unless_required("ZC_ROOT_REQUIRED", test, &why);
        None
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}
