//! Hardening: untrusted peers (bad headers, bad names, planted symlinks, silent peers), faults (kill -9, a cut connection, a full disk, a source that changes, an unusable output) and load, against real `zc` processes over 127.0.0.1.
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::*;
use zc::held::Record;
use zc::protocol::tree::{
    Action, Begin, Entry, EntryKind, FileEnd, Manifest, Reply, TreeEnd, TreeOffer,
};
use zc::protocol::{self as proto, kind, Answer, RefuseCode, ToReceiver, ToSender};

/// No child may outlive this; a hung test is a failed test. This suite's
/// own bound, longer than common's `TIMEOUT` (60 s), as it always was.
const SUITE_TIMEOUT: Duration = Duration::from_secs(90);
/// For the heavy cases on a slow, shared machine (common's `LONG_TIMEOUT`
/// is 180 s).
const LONG: Duration = Duration::from_secs(300);
/// How long a raw client waits for the receiver to answer or hang up.
const CLIENT_WAIT: Duration = Duration::from_secs(20);
/// Every `zc` here runs without a progress display.
const QUIET: [&str; 2] = ["--progress", "none"];

// ---------------------------------------------------------------------------
// Processes

/// A child whose stderr is collected as it comes, so a test can wait for a
/// line or look for a panic while the child still runs (common's `start`
/// only has stderr once the child ended); killed and reaped if the test ends
/// while it runs.
struct Proc {
    child: Guard,
    what: String,
    err: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Proc {
    fn start(mut cmd: Command, what: &str, stdin: Stdio) -> Proc {
        cmd.stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = Guard(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("spawning {what}: {e}")),
        );
        let mut pipe = child.stderr.take().expect("piped stderr");
        let err = Arc::new(Mutex::new(Vec::new()));
        let sink = err.clone();
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Proc {
            child,
            what: what.to_string(),
            err,
            reader: Some(reader),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits until stderr contains `needle`; panics if the child ends first
    /// or it takes longer than `timeout`.
    fn wait_stderr(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.stderr();
            if text.contains(needle) {
                return text;
            }
            if let Some(status) = self.exited() {
                // the last lines may still be in the pipe
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                let text = self.stderr();
                if text.contains(needle) {
                    return text;
                }
                panic!(
                    "{} ended ({status}) before saying {needle:?}; stderr:\n{text}",
                    self.what
                );
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!(
                    "{} did not say {needle:?} within {timeout:?}; stderr:\n{}",
                    self.what,
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(&mut self) {
        kill_tree(&mut self.child);
    }

    /// Waits (bounded) for the child to exit; kills it and panics, with
    /// its stderr, when it overstays.
    fn finish(&mut self, timeout: Duration) -> Outcome {
        let Some(status) = wait_or_kill(&mut self.child, timeout, &self.what) else {
            panic!(
                "{} still running after {timeout:?}; killed. stderr:\n{}",
                self.what,
                self.stderr()
            );
        };
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        Outcome {
            code: code_of(status),
            stdout: Vec::new(),
            stderr: self.stderr(),
        }
    }
}

/// A running `zc recv -l 127.0.0.1:0 -o DIR ...` whose address is known.
struct Recv {
    p: Proc,
    addr: SocketAddr,
}

impl Recv {
    fn start(output: &Path, extra: &[&str]) -> Recv {
        let mut cmd = recv_cmd(output, &QUIET);
        cmd.args(extra);
        Recv::start_cmd(cmd)
    }

    fn start_cmd(cmd: Command) -> Recv {
        let mut p = Proc::start(cmd, "zc recv", Stdio::null());
        let text = p.wait_stderr("listening on ", SUITE_TIMEOUT);
        let line = text
            .lines()
            .find(|l| l.contains("listening on "))
            .expect("the listening line");
        let addr = listening_addr(line).unwrap_or_else(|| panic!("no address in {line:?}"));
        Recv { p, addr }
    }

    /// As [`Recv::start`], with `--json`: the address from its listening event.
    fn start_json(output: &Path, extra: &[&str]) -> Recv {
        let mut cmd = recv_cmd(output, &["--json"]);
        cmd.args(extra);
        let mut p = Proc::start(cmd, "zc recv --json", Stdio::null());
        let text = p.wait_stderr("\"listening\"", SUITE_TIMEOUT);
        let event: serde_json::Value = serde_json::from_str(text.lines().next().unwrap_or(""))
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {text}"));
        let addr = event["addr"].as_str().and_then(|a| a.parse().ok());
        let addr = addr.unwrap_or_else(|| panic!("no address in {event}"));
        Recv { p, addr }
    }

    fn dest(&self) -> String {
        self.addr.to_string()
    }

    fn finish(&mut self, timeout: Duration) -> Outcome {
        self.p.finish(timeout)
    }

    /// The receiver is still up and stderr shows no panic.
    fn check_alive(&mut self, what: &str) {
        if let Some(status) = self.p.exited() {
            panic!(
                "{what}: the receiver exited ({status}); stderr:\n{}",
                self.p.stderr()
            );
        }
        assert_no_panic(what, &self.p.stderr());
    }
}

/// `zc send --progress none ARGS`.
fn quiet_send_cmd(args: &[&str]) -> Command {
    let mut cmd = send_cmd(&QUIET);
    cmd.args(args);
    cmd
}

/// `zc send ARGS` through a [`Proc`], stdin from `stdin` (or closed),
/// bounded by `timeout`: unlike common's `send`, quiet and with the
/// stderr checks of a [`Proc`].
fn send_bounded(args: &[&str], stdin: Option<&Path>, timeout: Duration) -> Outcome {
    send_async(args, stdin).finish(timeout)
}

fn send_async(args: &[&str], stdin: Option<&Path>) -> Proc {
    let input = match stdin {
        Some(path) => Stdio::from(File::open(path).expect("opening the sender's stdin")),
        None => Stdio::null(),
    };
    Proc::start(quiet_send_cmd(args), "zc send", input)
}

// ---------------------------------------------------------------------------
// Data and files

/// Panics unless `part` holds exactly the first `part.len()` bytes of `src`.
fn assert_prefix_of(src: &Path, part: &Path) -> u64 {
    let got = fs::read(part).unwrap();
    let mut want = vec![0u8; got.len()];
    File::open(src).unwrap().read_exact(&mut want).unwrap();
    if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
        panic!(
            "{} is not a prefix of {}: byte {i} differs",
            part.display(),
            src.display()
        );
    }
    got.len() as u64
}

/// Every range the held record claims lies in the part and matches the
/// source; returns the bytes claimed.
fn assert_record_truthful(src: &Path, part: &Path) -> u64 {
    let text = fs::read_to_string(zc::held::record_path(part))
        .unwrap_or_else(|e| panic!("{}.held: {e}", part.display()));
    let rec = Record::decode(&text).unwrap_or_else(|| panic!("malformed record:\n{text}"));
    let len = fs::metadata(part).unwrap().len();
    let (a, b) = (File::open(src).unwrap(), File::open(part).unwrap());
    for &(start, end) in rec.held.pairs() {
        assert!(
            end <= len,
            "the record claims {start}..{end} but the part has {len} bytes"
        );
        let mut at = start;
        let (mut x, mut y) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
        while at < end {
            let n = (end - at).min(MIB) as usize;
            a.read_exact_at(&mut x[..n], at).unwrap();
            b.read_exact_at(&mut y[..n], at).unwrap();
            assert!(
                x[..n] == y[..n],
                "held bytes {at}..{} differ from the source",
                at + n as u64
            );
            at += n as u64;
        }
    }
    rec.held.total()
}

/// Everything under `root` (not following links): path → kind, size, and a
/// content digest, so any write, creation or removal shows.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let what = if meta.file_type().is_symlink() {
                format!("link -> {}", fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                walk(&path, out);
                "dir".into()
            } else {
                let data = fs::read(&path).unwrap();
                let h = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                    (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
                });
                format!("file {} {h:016x}", meta.len())
            };
            out.insert(path, what);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, &mut out);
    out
}

// ---------------------------------------------------------------------------
// Raw clients

fn client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connecting");
    s.set_read_timeout(Some(CLIENT_WAIT)).unwrap();
    s.set_write_timeout(Some(CLIENT_WAIT)).unwrap();
    s
}

fn preamble(version: u16) -> Vec<u8> {
    let mut v = proto::MAGIC.to_vec();
    v.extend_from_slice(&version.to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v
}

/// Preamble and OFFER, as a sender would open.
fn hello(offer_body: &[u8]) -> Vec<u8> {
    let mut v = preamble(proto::VERSION);
    v.extend_from_slice(&frame(kind::OFFER, offer_body));
    v
}

/// The OFFER of a session of one file announcing 10 bytes, without
/// verification.
fn single_offer() -> TreeOffer {
    TreeOffer {
        entries: 1,
        bytes: 10,
        single: true,
        ..TreeOffer::default()
    }
}

/// A TLV field, built by hand (for values the encoder cannot make).
fn field(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    v.extend_from_slice(value);
    v
}

/// How a raw conversation ended.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// The receiver closed (EOF or reset).
    Closed,
    /// Nothing for [`CLIENT_WAIT`].
    Silent,
}

/// Reads until the receiver hangs up (or goes silent for [`CLIENT_WAIT`]).
fn drain(s: &mut TcpStream) -> (Vec<u8>, Ending) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, Ending::Closed),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return (got, Ending::Silent)
            }
            Err(_) => return (got, Ending::Closed),
        }
    }
}

/// Sends `bytes` and closes the sending side (ignoring a receiver that
/// hung up first), then returns what came back until the receiver closed;
/// panics if it went silent instead.
fn converse(addr: SocketAddr, bytes: &[u8], what: &str) -> Vec<u8> {
    let mut c = client(addr);
    let _ = c.write_all(bytes);
    let _ = c.shutdown(Shutdown::Write);
    let (got, ending) = drain(&mut c);
    assert_eq!(
        ending,
        Ending::Closed,
        "{what}: the receiver neither answered nor hung up within {CLIENT_WAIT:?}"
    );
    got
}

/// Parses the single frame a receiver answered with.
fn answer_of(bytes: &[u8], what: &str) -> Answer {
    let f = proto::read_frame(&mut &bytes[..])
        .unwrap_or_else(|e| panic!("{what}: no whole frame in {bytes:?}: {e:#}"));
    assert_eq!(
        f.kind,
        kind::ANSWER,
        "{what}: frame {:#x} instead of an answer",
        f.kind
    );
    Answer::decode(&f.body).unwrap_or_else(|e| panic!("{what}: bad answer: {e:#}"))
}

fn refusal(bytes: &[u8], what: &str) -> (RefuseCode, String) {
    match answer_of(bytes, what) {
        Answer::Refuse { code, reason } => (code, String::from_utf8_lossy(reason.wire()).into()),
        other => panic!("{what}: the receiver accepted: {other:?}"),
    }
}

/// A file entry of a session of one, as a hostile sender may write it.
fn file_entry(name: &str, size: u64, range: Option<(u64, u64)>, stream: bool) -> Entry {
    Entry {
        id: 0,
        path: name.as_bytes().to_vec(),
        kind: EntryKind::File,
        size,
        mode: 0o644,
        mtime_ns: 1_700_000_000_000_000_000,
        target: Vec::new(),
        range,
        stream,
    }
}

/// What a sender of one file writes before it waits for GO: the preamble,
/// a `single` OFFER of one entry announcing 10 bytes (whatever the entry
/// says: the offer's count is the sender's word too), the ENTRY and the
/// MANIFEST. Without verification, so that only the receiver's bounds stand
/// between a lie and the disk.
fn session_of_one(entry: &Entry) -> Vec<u8> {
    let mut v = hello(&single_offer().encode());
    ToReceiver::Entry(entry.clone()).append_to(&mut v);
    ToReceiver::Manifest(Manifest {
        entries: 1,
        failed: 0,
    })
    .append_to(&mut v);
    v
}

/// Reads the receiver's frames into `heard` until one matches `last`
/// (true) or the receiver hangs up (false); panics if it goes silent for
/// [`CLIENT_WAIT`] or writes a frame that does not decode.
fn hear(
    c: &mut TcpStream,
    heard: &mut Vec<ToSender>,
    what: &str,
    last: fn(&ToSender) -> bool,
) -> bool {
    loop {
        let frame = match proto::read_frame(c) {
            Ok(frame) => frame,
            Err(e) => {
                let silent = e.downcast_ref::<io::Error>().is_some_and(|e| {
                    matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    )
                });
                assert!(
                    !silent,
                    "{what}: the receiver neither answered nor hung up within {CLIENT_WAIT:?}; it said {heard:?}"
                );
                return false;
            }
        };
        let m = ToSender::decode(&frame)
            .unwrap_or_else(|e| panic!("{what}: the receiver wrote a bad frame: {e:#}"));
        let done = last(&m);
        heard.push(m);
        if done {
            return true;
        }
    }
}

/// What the receiver said to a hostile session of one file.
struct Heard {
    msgs: Vec<ToSender>,
    /// It said GO (and the data followed).
    go: bool,
}

impl Heard {
    /// Its REPLY to the entry.
    fn reply(&self) -> Option<&Action> {
        self.msgs.iter().find_map(|m| match m {
            ToSender::Reply(Reply { id: 0, action }) => Some(action),
            _ => None,
        })
    }

    /// An ANSWER refusing the session.
    fn refusal(&self) -> Option<(RefuseCode, String)> {
        self.msgs.iter().find_map(|m| match m {
            ToSender::Answer(Answer::Refuse { code, reason }) => {
                Some((*code, String::from_utf8_lossy(reason.wire()).into()))
            }
            _ => None,
        })
    }

    /// A FILE RESULT or RESULT saying the file is in (landed or held).
    fn took_it(&self) -> bool {
        self.msgs.iter().any(|m| {
            matches!(m, ToSender::FileResult(_, o) | ToSender::Result(o) if o.status == proto::Status::Ok)
        })
    }
}

/// A session of one `entry` by a hostile sender: OFFER, ENTRY and MANIFEST;
/// then, when the receiver says GO (whatever it replied to the entry),
/// BEGIN, a DATA frame for each `(offset, len)` of `data` (with `len`
/// bytes of payload, at most 1 MiB of them), FILE END and END claiming all
/// that payload as sent. Returns what the receiver said until it hung up.
fn lie(addr: SocketAddr, entry: &Entry, data: &[(u64, u64)], what: &str) -> Heard {
    let mut c = client(addr);
    c.write_all(&session_of_one(entry))
        .unwrap_or_else(|e| panic!("{what}: writing the offer: {e}"));
    let mut msgs = Vec::new();
    let go = hear(&mut c, &mut msgs, what, |m| {
        matches!(m, ToSender::Go | ToSender::Answer(Answer::Refuse { .. }))
    }) && msgs.last() == Some(&ToSender::Go);
    if go {
        let mut bytes = Vec::new();
        let begin = Begin {
            id: entry.id,
            path: entry.path.clone(),
        };
        ToReceiver::Begin(begin).append_to(&mut bytes);
        let mut sent = 0u64;
        for &(offset, len) in data {
            bytes.extend_from_slice(&proto::data_header(offset, len));
            let payload = len.min(MIB);
            bytes.resize(bytes.len() + payload as usize, b'z');
            sent += payload;
        }
        let end = FileEnd {
            id: entry.id,
            sent,
            ..FileEnd::default()
        };
        ToReceiver::FileEnd(end).append_to(&mut bytes);
        ToReceiver::End(TreeEnd { sent, failed: 0 }).append_to(&mut bytes);
        // the receiver may hang up in the middle of it
        let _ = c.write_all(&bytes);
    }
    let _ = c.shutdown(Shutdown::Write);
    hear(&mut c, &mut msgs, what, |_| false);
    Heard { msgs, go }
}

/// Sends a real file through `zc send` and checks it landed intact.
fn real_transfer(r: &Recv, out: &Path, name: &str, size: u64, seed: u64) {
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join(name);
    random_file(&src, size, seed);
    send_bounded(&[s(&src), &r.dest()], None, SUITE_TIMEOUT)
        .expect_clean(0, &format!("sending {name}"));
    assert_same_file(&src, &out.join(name));
}

// ---------------------------------------------------------------------------
// tmpfs

// (`Mount`, a tmpfs for one test, is in tests/common.)

// ---------------------------------------------------------------------------
// /proc

fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// True while a thread called `name` runs in process `pid`.
fn has_thread(pid: u32, name: &str) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks
        .filter_map(|t| t.ok())
        .any(|t| fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
}

/// Waits until `cond` holds, up to `timeout`; false if it never did.
fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A root with the receiver's output directory `out` inside, so anything
/// written beside it (a `../x`) shows in a snapshot of the root.
fn layout() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    fs::create_dir(&out).unwrap();
    (root, out)
}

// ===========================================================================
// Malicious headers

#[test]
fn non_zc_connections_are_dropped_and_a_one_shot_receiver_goes_on() {
    let (root, out) = layout();
    let mut r = Recv::start(&out, &[]);
    let mut rng = XorShift::new(1);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("nothing, then close", vec![]),
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        ("unknown magic", b"ZCPX\x00\x01\x00\x00".to_vec()),
        ("lower-case magic", b"zcpf\x00\x01\x00\x00".to_vec()),
        ("truncated preamble", b"ZCP".to_vec()),
        ("magic only", b"ZCPF".to_vec()),
        ("4 KiB of garbage", rng.bytes(4096)),
        ("an SSH banner", b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()),
    ];
    for (what, bytes) in &cases {
        let got = converse(r.addr, bytes, what);
        assert!(got.is_empty(), "{what}: the receiver answered {got:?}");
        r.check_alive(what);
    }
    // Still there for a real sender, and one transfer ends it as usual.
    real_transfer(&r, &out, "real.bin", 100_000, 2);
    let got = r.finish(SUITE_TIMEOUT);
    got.expect_clean(0, "the receiver after the junk");
    assert!(
        got.stderr.matches("dropped").count() >= cases.len(),
        "each junk connection is reported; stderr:\n{}",
        got.stderr
    );
    assert_eq!(list_dir(&out), vec!["real.bin"]);
    assert_eq!(list_dir(root.path()), vec!["out"]);
}

#[test]
fn a_one_shot_receiver_goes_on_after_peers_that_never_made_a_whole_offer() {
    // A peer that never sent a complete, well-formed OFFER is treated like
    // one that sent bad magic. Before, anything past a good preamble ended
    // a one-shot receiver: a truncated OFFER with exit 1, a refused one 4.
    let (root, out) = layout();
    let mut r = Recv::start(&out, &[]);
    let with = |tail: &[u8]| [preamble(proto::VERSION), tail.to_vec()].concat();
    let mut truncated = with(&[kind::OFFER, 0, 0, 0, 100]);
    truncated.extend_from_slice(&[1, 0, 5, b'a']);
    let silent: Vec<(&str, Vec<u8>)> = vec![
        ("a truncated offer", truncated),
        ("an offer over 64 KiB", with(&[kind::OFFER, 0, 1, 0, 1])),
    ];
    for (what, bytes) in &silent {
        let got = converse(r.addr, bytes, what);
        assert!(got.is_empty(), "{what}: answered {got:?}");
        r.check_alive(what);
    }
    let refused: Vec<(&str, Vec<u8>)> = vec![
        ("a DATA frame first", with(&frame(kind::DATA, &[0; 16]))),
        ("an offer without the tree field", hello(&field(1, b"x"))),
        ("a tree field of 15 bytes", hello(&field(0x8a, &[0; 15]))),
        (
            "a verify flag of 2",
            hello(&[single_offer().encode(), field(5, &[2])].concat()),
        ),
    ];
    for (what, bytes) in &refused {
        let got = converse(r.addr, bytes, what);
        let (code, reason) = refusal(&got, what);
        assert_eq!(code, RefuseCode::BadOffer, "{what}: {reason}");
        r.check_alive(what);
    }
    real_transfer(&r, &out, "real.bin", 100_000, 5);
    let got = r.finish(SUITE_TIMEOUT);
    got.expect_clean(0, "the receiver after the broken offers");
    assert!(
        got.stderr.matches("refused").count() >= refused.len(),
        "each refusal is reported; stderr:\n{}",
        got.stderr
    );
    assert_eq!(list_dir(&out), vec!["real.bin"]);
    assert_eq!(list_dir(root.path()), vec!["out"]);
}

#[test]
fn a_hello_without_its_kind_of_secret_is_refused_and_is_no_attempt() {
    // HELLO's `secret` is required (docs/PROTOCOL.md). Before, a sender's
    // HELLO without it went on to the key exchange: the receiver answered
    // with its own HELLO and confirmation, which a guesser can test offline.
    let key = "correct horse battery staple";
    let (_root, out) = layout();
    let mut r = Recv::start(&out, &["--key", key]);
    // 'A', then the Ed25519 base point: a valid SPAKE2 message, so nothing
    // but the missing field is wrong
    let mut pake = vec![b'A', 0x58];
    pake.extend_from_slice(&[0x66; 31]);
    let sealed = |body: &[u8]| [preamble(2), frame(kind::HELLO, body)].concat();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a hello without its secret",
            sealed(&field(0x82, &pake)),
            "no kind of secret",
        ),
        (
            "a hello with a secret of kind 2",
            sealed(&[field(0x81, &[2]), field(0x82, &pake)].concat()),
            "unknown kind of secret",
        ),
        (
            "a sender's hello with a confirmation",
            sealed(&[field(0x81, &[1]), field(0x82, &pake), field(0x83, &[0; 32])].concat()),
            "a confirmation from the sender",
        ),
    ];
    for (what, bytes, why) in &cases {
        let got = converse(r.addr, bytes, what);
        let (code, reason) = refusal(&got, what);
        assert_eq!(code, RefuseCode::Auth, "{what}: {reason}");
        assert!(reason.contains(why), "{what}: {reason}");
        r.check_alive(what);
    }
    let mut cut = preamble(2);
    cut.extend_from_slice(&[kind::HELLO, 0, 0, 0, 50, 0x82]);
    let got = converse(r.addr, &cut, "a truncated hello");
    assert!(got.is_empty(), "a truncated hello: answered {got:?}");
    r.check_alive("a truncated hello");
    // none of them was an attempt: the key still works, for a real sender
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("keyed.bin");
    random_file(&src, 50_000, 6);
    send_bounded(&["--key", key, s(&src), &r.dest()], None, SUITE_TIMEOUT)
        .expect_clean(0, "a sender with the key");
    r.finish(SUITE_TIMEOUT)
        .expect_clean(0, "the keyed receiver");
    assert_same_file(&src, &out.join("keyed.bin"));
}

#[test]
fn unknown_versions_get_a_version_refusal() {
    let (root, out) = layout();
    let mut r = Recv::start(&out, &["-k"]);
    // (2 is known now: an encrypted session, tests/encryption.rs)
    for version in [0u16, 3, 0x0100, u16::MAX] {
        let what = format!("version {version}");
        let mut bytes = preamble(version);
        bytes.extend_from_slice(&hello(&single_offer().encode())[8..]);
        let got = converse(r.addr, &bytes, &what);
        // The refusal, byte by byte, as docs/PROTOCOL.md lays it out.
        assert!(got.len() > 5, "{what}: answer {got:?}");
        assert_eq!(got[0], b'A', "{what}: an ANSWER frame: {got:?}");
        let len = u32::from_be_bytes(got[1..5].try_into().unwrap()) as usize;
        assert_eq!(got.len(), 5 + len, "{what}: one frame, then close: {got:?}");
        let body = &got[5..];
        assert_eq!(&body[..4], &[1, 0, 1, 1], "{what}: status field = refuse");
        assert_eq!(
            &body[4..8],
            &[2, 0, 1, 5],
            "{what}: code field = 5 (version)"
        );
        assert_eq!(body[8], 3, "{what}: then the reason field");
        let rlen = u16::from_be_bytes([body[9], body[10]]) as usize;
        assert_eq!(body.len(), 11 + rlen, "{what}: nothing after the reason");
        let reason = std::str::from_utf8(&body[11..]).expect("the reason is UTF-8");
        assert!(
            reason.contains("protocol") && reason.contains(&version.to_string()),
            "{what}: the reason names both versions: {reason:?}"
        );
        r.check_alive(&what);
    }
    real_transfer(&r, &out, "after.bin", 50_000, 3);
    assert_eq!(list_dir(&out), vec!["after.bin"]);
    assert_eq!(list_dir(root.path()), vec!["out"]);
}

#[test]
fn broken_frames_and_garbage_are_refused_cleanly() {
    let (root, out) = layout();
    let mut r = Recv::start(&out, &["-k"]);
    let pre = preamble(proto::VERSION);
    let with = |tail: &[u8]| [pre.as_slice(), tail].concat();
    let head = |kind: u8, len: u32| {
        let mut v = vec![kind];
        v.extend_from_slice(&len.to_be_bytes());
        v
    };

    // Frames over 64 KiB: dropped before the body is read. The bodies
    // are whole, valid offers (padded with optional fields), so a receiver
    // that read them would answer.
    for len in [proto::MAX_FRAME + 1, 1 << 24] {
        let what = format!("an OFFER of {len} bytes");
        let mut body = single_offer().encode();
        while body.len() < len as usize {
            let room = (len as usize - body.len()).min(0xffff + 3);
            let pad = if room < 3 { 3 } else { room };
            body.extend_from_slice(&field(0x10, &vec![0; pad - 3]));
        }
        body.truncate(len as usize);
        assert_eq!(body.len(), len as usize);
        assert!(TreeOffer::decode(&body).is_ok(), "{what}: a valid offer");
        let got = converse(r.addr, &hello(&body), &what);
        assert!(got.is_empty(), "{what}: answered {got:?}");
        r.check_alive(&what);
    }
    let what = "an OFFER claiming 4 GiB";
    let got = converse(r.addr, &with(&head(kind::OFFER, u32::MAX)), what);
    assert!(got.is_empty(), "{what}: answered {got:?}");
    // A frame of exactly 64 KiB is allowed by the framing: read whole, it
    // is accepted as an offer, or refused for its very last field.
    let padded = |tail: &[u8]| {
        let mut body = single_offer().encode();
        let pad = proto::MAX_FRAME as usize - body.len() - tail.len() - 3;
        body.extend_from_slice(&field(0x10, &vec![0; pad]));
        body.extend_from_slice(tail);
        assert_eq!(body.len(), proto::MAX_FRAME as usize);
        body
    };
    let what = "a 64 KiB offer";
    let got = converse(r.addr, &hello(&padded(&[])), what);
    let f = proto::read_frame(&mut &got[..])
        .unwrap_or_else(|e| panic!("{what}: no whole frame in {got:?}: {e:#}"));
    let answer = Answer::decode(&f.body).unwrap();
    assert!(
        f.kind == kind::ANSWER && matches!(answer, Answer::Accept { .. }),
        "{what}: answered {answer:?}"
    );
    r.check_alive(what);
    let what = "a 64 KiB offer ending in an unknown required field";
    let got = converse(r.addr, &hello(&padded(&field(0x90, b""))), what);
    let (code, reason) = refusal(&got, what);
    assert_eq!(code, RefuseCode::BadOffer, "{what}: {reason}");
    assert!(
        reason.contains("unknown required field 0x90"),
        "{what}: {reason}"
    );
    r.check_alive(what);

    // A truncated offer, then close.
    let mut truncated = with(&head(kind::OFFER, 100));
    truncated.extend_from_slice(&[1, 0, 5, b'a']);
    let got = converse(r.addr, &truncated, "a truncated offer");
    assert!(got.is_empty(), "a truncated offer: answered {got:?}");

    // Something else than an OFFER first: refused with code 7.
    for k in [kind::DATA, kind::END, kind::KEEPALIVE, kind::ANSWER, b'Z'] {
        let what = format!("frame {k:#x} first");
        let got = converse(r.addr, &with(&frame(k, &[0; 16])), &what);
        let (code, reason) = refusal(&got, &what);
        assert_eq!(code, RefuseCode::BadOffer, "{what}: {reason}");
    }

    // Malformed offers: each carries the tree field, so it is refused for
    // what is wrong with it, not for being an offer from before trees.
    let tree = field(0x8a, &[0; 16]);
    let with_tree = |rest: &[u8]| [tree.as_slice(), rest].concat();
    let bad_offers: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a tree field of 15 bytes",
            field(0x8a, &[0; 15]),
            "tree field: expected 16 bytes",
        ),
        (
            "a tree field of 17 bytes",
            field(0x8a, &[0; 17]),
            "tree field: expected 16 bytes",
        ),
        (
            "a tree field of 60000 bytes",
            field(0x8a, &vec![0; 60_000]),
            "tree field: expected 16 bytes",
        ),
        (
            "an unknown required field",
            with_tree(&field(0x90, b"")),
            "unknown required field 0x90",
        ),
        (
            "an unknown required field before the tree field",
            [field(0xff, b"x"), tree.clone()].concat(),
            "unknown required field 0xff",
        ),
        (
            "a single file's name",
            with_tree(&field(1, b"x")),
            "a single file's field 1",
        ),
        (
            "a single file's size",
            with_tree(&field(2, &1u64.to_be_bytes())),
            "a single file's field 2",
        ),
        (
            "a single file's offset",
            with_tree(&field(3, &0u64.to_be_bytes())),
            "a single file's field 3",
        ),
        (
            "a 31-byte key nonce",
            with_tree(&field(0x89, &[0; 31])),
            "expected a 32-byte digest",
        ),
        (
            "a 33-byte key nonce",
            with_tree(&field(0x89, &[0; 33])),
            "expected a 32-byte digest",
        ),
    ];
    for (what, body, why) in &bad_offers {
        assert!(proto::tree::is_tree(body), "{what}: a tree offer");
        let got = converse(r.addr, &hello(body), what);
        let (code, reason) = refusal(&got, what);
        assert_eq!(code, RefuseCode::BadOffer, "{what}: {reason}");
        assert!(
            reason.starts_with("bad offer: ") && reason.contains(why),
            "{what}: refused for {reason:?}, not for {why:?}"
        );
        r.check_alive(what);
    }
    // A field that runs past the body's end, or a tag without a length:
    // the fields cannot be read, so the tree field cannot be found either,
    // and the offer is refused as one from before trees, as is a single
    // file's offer from before trees itself.
    let old = "an offer without the tree field";
    let broken: Vec<(&str, Vec<u8>)> = vec![
        (
            "a field running past the end",
            with_tree(&[1, 0xff, 0xff, b'a']),
        ),
        ("a dangling tag", with_tree(&[2])),
        (
            "a tree field cut short",
            field(0x8a, &[0; 16])[..10].to_vec(),
        ),
        (
            "a single file's offer",
            [field(1, b"x"), field(2, &[0; 8])].concat(),
        ),
    ];
    for (what, body) in &broken {
        let got = converse(r.addr, &hello(body), what);
        let (code, reason) = refusal(&got, what);
        assert_eq!(code, RefuseCode::BadOffer, "{what}: {reason}");
        assert!(reason.starts_with(old), "{what}: {reason}");
        r.check_alive(what);
    }

    // Arbitrary garbage after a valid preamble, and without one.
    let mut rng = XorShift::new(7);
    for i in 0..60 {
        let len = rng.below(3000) as usize;
        let mut bytes = if i % 2 == 0 { pre.clone() } else { vec![] };
        if i % 3 == 0 {
            bytes.push(kind::OFFER);
            bytes.extend_from_slice(&(rng.below(200) as u32).to_be_bytes());
        }
        bytes.extend_from_slice(&rng.bytes(len));
        let what = format!("garbage #{i}");
        let mut c = client(r.addr);
        let _ = c.write_all(&bytes);
        // Some garbage is a frame waiting for more bytes: hang up ourselves.
        let _ = c.shutdown(Shutdown::Write);
        let (_, ending) = drain(&mut c);
        assert_eq!(
            ending,
            Ending::Closed,
            "{what}: the receiver did not hang up"
        );
        r.check_alive(&what);
    }
    real_transfer(&r, &out, "after.bin", 300_000, 4);
    let files = list_dir(&out);
    assert!(
        files
            .iter()
            .all(|f| f == "after.bin" || fs::metadata(out.join(f)).unwrap().len() == 0),
        "no garbage may write bytes: {files:?}"
    );
    assert!(out.join("after.bin").exists());
    assert_eq!(list_dir(root.path()), vec!["out"]);
}

/// A session of one `entry` by a sender that does not wait for any answer:
/// OFFER, ENTRY, MANIFEST, BEGIN, a DATA frame of `payload`, FILE END and END
/// in one write. Returns what the receiver said until it hung up.
fn rush(addr: SocketAddr, entry: &Entry, payload: &[u8], what: &str) -> Vec<ToSender> {
    let mut bytes = session_of_one(entry);
    let begin = Begin {
        id: entry.id,
        path: entry.path.clone(),
    };
    ToReceiver::Begin(begin).append_to(&mut bytes);
    bytes.extend_from_slice(&proto::data_header(0, payload.len() as u64));
    bytes.extend_from_slice(payload);
    let sent = payload.len() as u64;
    let end = FileEnd {
        id: entry.id,
        sent,
        ..FileEnd::default()
    };
    ToReceiver::FileEnd(end).append_to(&mut bytes);
    ToReceiver::End(TreeEnd { sent, failed: 0 }).append_to(&mut bytes);
    let mut c = client(addr);
    // the receiver may hang up in the middle of it
    let _ = c.write_all(&bytes);
    let _ = c.shutdown(Shutdown::Write);
    let mut msgs = Vec::new();
    hear(&mut c, &mut msgs, what, |_| false);
    msgs
}

/// A file entry of `size` bytes at a path that need not be UTF-8.
fn entry_at(path: &[u8], size: u64) -> Entry {
    Entry {
        path: path.to_vec(),
        ..file_entry("", size, None, false)
    }
}

#[test]
fn bad_names_are_refused_and_nothing_is_written() {
    let (root, out) = layout();
    let victim = root.path().join("abs-victim");
    let passwd_before = fs::read("/etc/passwd").ok();
    let before = snapshot(root.path());
    let mut r = Recv::start(&out, &["-k"]);
    let abs = victim.to_str().unwrap().to_string();
    let long = "a".repeat(256);
    // Each is the path of the one entry of a `single` session, whose name
    // has the stricter rule of SECURITY.md (no control character at all,
    // no backslash, UTF-8 only); the same bytes in a tree may be legal
    // (tests/trees.rs).
    let names: Vec<&[u8]> = vec![
        b"../x",
        b"../../x",
        b"/etc/passwd",
        abs.as_bytes(),
        // a path of two components: a file alone is one
        b"a/b",
        b"a//b",
        b"a/",
        b"./x",
        b"..",
        b".",
        b"",
        b"a\0b",
        b"\0",
        b"a\rb",
        b"\x1b[2J",
        b"del\x7f",
        b"bell\x07",
        long.as_bytes(),
        b"x.zcpart",
        b"x.zcpart.held",
        b"x.zcpart.held.tmp",
        b"out/../x",
        // not UTF-8, and hostile for another reason
        b"\xff/../x",
        b"bad\xff\x1b.bin",
        b"..\xff/x",
        b"\xfe.zcpart",
        // legal in a tree on Unix, not as the name of a file alone
        b"a\nb",
        b"tab\there",
        b"a\\b",
        b"..\\x",
        b"bad\xff.bin",
        // C1 controls, as UTF-8 (C2 85, C2 9B, C2 9D)
        "\u{85}next-line".as_bytes(),
        "csi\u{9b}2J".as_bytes(),
        "osc\u{9d}0;t\u{9c}".as_bytes(),
    ];
    let payload = b"EVIL!";
    for name in &names {
        let what = format!("name {:?}", String::from_utf8_lossy(name));
        let entry = entry_at(name, payload.len() as u64);
        // A sender that ignores the refusal: after GO (a session whose one
        // entry is refused wants nothing, and says GO), the data anyway.
        let heard = lie(r.addr, &entry, &[(0, payload.len() as u64)], &what);
        match heard.reply() {
            Some(Action::Refuse { code, reason }) => {
                assert_eq!(*code, RefuseCode::BadName, "{what}: {reason}")
            }
            other => panic!(
                "{what}: the entry was answered {other:?}; heard {:?}",
                heard.msgs
            ),
        }
        assert!(!heard.took_it(), "{what}: taken: {:?}", heard.msgs);
        r.check_alive(&what);
        // A sender that does not wait at all: MANIFEST, BEGIN, DATA, FILE
        // END and END in one write. The receiver hangs up on data before
        // GO, mostly before its REPLY (held back to go out with GO) leaves;
        // if the REPLY does come, it is the same refusal.
        let what = format!("{what}, not waiting");
        let msgs = rush(r.addr, &entry, payload, &what);
        for m in &msgs {
            match m {
                ToSender::Reply(Reply {
                    action: Action::Refuse { code, reason },
                    ..
                }) => assert_eq!(*code, RefuseCode::BadName, "{what}: {reason}"),
                ToSender::Reply(_) => panic!("{what}: the entry was not refused: {msgs:?}"),
                ToSender::FileResult(_, o) | ToSender::Result(o)
                    if o.status == proto::Status::Ok =>
                {
                    panic!("{what}: taken: {msgs:?}")
                }
                _ => {}
            }
        }
        r.check_alive(&what);
    }
    assert_eq!(
        snapshot(root.path()),
        before,
        "a bad name wrote something (inside or outside the output directory)"
    );
    assert!(!victim.exists());
    assert_eq!(
        fs::read("/etc/passwd").ok(),
        passwd_before,
        "/etc/passwd changed"
    );
    // Names a user might think odd but that are plain file names on Unix
    // land, under exactly those bytes.
    let odd: [&[u8]; 3] = [
        b"x.zcpart.bak",
        "\u{a0}nbsp-\u{e9}".as_bytes(),
        "right-to-left\u{202e}txt.exe".as_bytes(),
    ];
    for name in odd {
        let what = format!("legal name {:?}", String::from_utf8_lossy(name));
        let heard = lie(r.addr, &entry_at(name, 5), &[(0, 5)], &what);
        assert!(
            matches!(heard.reply(), Some(Action::Send { .. })) && heard.go && heard.took_it(),
            "{what}: {:?}",
            heard.msgs
        );
        let path = out.join(std::ffi::OsStr::from_bytes(name));
        assert_eq!(fs::read(&path).unwrap(), b"zzzzz", "{what}");
        fs::remove_file(&path).unwrap();
        r.check_alive(&what);
    }
    for (i, name) in ["..x", "x..", ".hidden", "-dash", "sp ace", "ünï €"]
        .iter()
        .enumerate()
    {
        real_transfer(&r, &out, name, 1000 + i as u64, 10 + i as u64);
    }
    assert_eq!(list_dir(root.path()), vec!["out"]);
    let r_out = r.p.stderr();
    assert_no_panic("receiver", &r_out);
    assert_terminal_safe(&r_out, "the receiver named every name escaped");
}

/// A session of one file whose sender waits for GO (whatever the REPLY
/// said), then writes `after`. Returns what the receiver said until it
/// hung up.
fn after_go(addr: SocketAddr, entry: &Entry, after: &[u8], what: &str) -> Heard {
    let mut c = client(addr);
    c.write_all(&session_of_one(entry))
        .unwrap_or_else(|e| panic!("{what}: writing the offer: {e}"));
    let mut msgs = Vec::new();
    let go = hear(&mut c, &mut msgs, what, |m| {
        matches!(m, ToSender::Go | ToSender::Answer(Answer::Refuse { .. }))
    }) && msgs.last() == Some(&ToSender::Go);
    assert!(go, "{what}: no GO: {msgs:?}");
    let _ = c.write_all(after);
    let _ = c.shutdown(Shutdown::Write);
    hear(&mut c, &mut msgs, what, |_| false);
    Heard { msgs, go }
}

/// What a sender whose source vanished writes after GO: the data (zeros),
/// a FILE END that says why in `failed`, and END.
fn gave_up(entry: &Entry, why: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    let begin = Begin {
        id: entry.id,
        path: entry.path.clone(),
    };
    ToReceiver::Begin(begin).append_to(&mut bytes);
    bytes.extend_from_slice(&proto::data_header(0, entry.size));
    bytes.resize(bytes.len() + entry.size as usize, 0);
    let end = FileEnd {
        id: entry.id,
        sent: entry.size,
        sha256: None,
        failed: Some(why.into()),
    };
    ToReceiver::FileEnd(end).append_to(&mut bytes);
    let sent = entry.size;
    ToReceiver::End(TreeEnd { sent, failed: 0 }).append_to(&mut bytes);
    bytes
}

/// What a sender chooses reaches the receiver's stderr escaped: FILE END's
/// `failed`, a name with C1 controls (refused, and named in the refusal),
/// a name with a bidi override (it lands; the summary line names it). No
/// escape sequence, C1 control or forged line; `--json` carries the name
/// as data.
#[test]
fn a_senders_words_reach_the_receivers_terminal_escaped() {
    let c1 = "csi\u{9b}2J\u{9d}0;title\u{9c}.bin";
    let c1_shown = "csi\\u{9b}2J\\u{9d}0;title\\u{9c}.bin";
    let rtl = "right-to-left\u{202e}txt.exe";
    let rtl_shown = "right-to-left\\u{202e}txt.exe";
    for json in [false, true] {
        let (_root, out) = layout();
        let mut r = match json {
            true => Recv::start_json(&out, &["-k"]),
            false => Recv::start(&out, &["-k"]),
        };
        let what = format!("FILE END failed (json {json})");
        let entry = file_entry("gave-up.bin", 5, None, false);
        after_go(r.addr, &entry, &gave_up(&entry, HOSTILE_TEXT), &what);
        r.p.wait_stderr("FORGED", SUITE_TIMEOUT);
        let what = format!("a name with C1 controls (json {json})");
        // a sender that heeds the refusal: END, and no data
        let mut nothing = Vec::new();
        ToReceiver::End(TreeEnd { sent: 0, failed: 0 }).append_to(&mut nothing);
        let heard = after_go(r.addr, &file_entry(c1, 5, None, false), &nothing, &what);
        assert!(
            matches!(
                heard.reply(),
                Some(Action::Refuse {
                    code: RefuseCode::BadName,
                    ..
                })
            ),
            "{what}: {:?}",
            heard.msgs
        );
        r.p.wait_stderr("title", SUITE_TIMEOUT);
        let what = format!("a name with a bidi override (json {json})");
        let heard = lie(r.addr, &file_entry(rtl, 5, None, false), &[(0, 5)], &what);
        assert!(heard.took_it(), "{what}: {:?}", heard.msgs);
        let text = r.p.wait_stderr("txt.exe", SUITE_TIMEOUT);
        r.check_alive(&what);
        let what = format!("the receiver's stderr (json {json})");
        if !json {
            assert_terminal_safe(&text, &what);
            for shown in [HOSTILE_SHOWN, c1_shown, rtl_shown] {
                assert!(text.contains(shown), "{what}: no {shown:?} in\n{text}");
            }
            continue;
        }
        let events = json_lines(&text, &what);
        let messages: Vec<&str> = events
            .iter()
            .filter_map(|e| e["message"].as_str())
            .collect();
        for shown in [HOSTILE_SHOWN, c1_shown] {
            assert!(
                messages.iter().any(|m| m.contains(shown)),
                "{what}: no {shown:?} in\n{text}"
            );
        }
        let done = events
            .iter()
            .find(|e| e["event"] == "done")
            .unwrap_or_else(|| panic!("{what}: no done event:\n{text}"));
        assert_eq!(done["name"], rtl, "{what}: the name as data");
        let path = done["path"].as_str().unwrap_or_default();
        assert!(path.ends_with(rtl), "{what}: {done}");
    }
}

/// What a receiver must do with one hostile session of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The entry is answered `send`, then the session refused for want of
    /// space (ANSWER refuse, code 3) instead of GO.
    NoSpace,
    /// The entry is refused (REPLY refuse, code 2).
    TooLarge,
    /// The ENTRY does not decode: the receiver hangs up without a REPLY.
    Undecodable,
    /// The entry is fine and gets GO; its DATA lies, and the receiver hangs
    /// up (or fails the session) without taking the file.
    Lie,
    /// As `Lie`, but the DATA is legal: the file system may take it, sparse,
    /// or refuse it.
    MayLand,
}

/// One hostile session of one file.
struct Case {
    what: &'static str,
    entry: Entry,
    /// The DATA frames sent after GO: `(offset, len)`.
    data: Vec<(u64, u64)>,
    expect: Expect,
    /// The most bytes the part may hold afterwards (its length).
    most: u64,
}

fn case(what: &'static str, entry: Entry, data: &[(u64, u64)], expect: Expect, most: u64) -> Case {
    Case {
        what,
        entry,
        data: data.to_vec(),
        expect,
        most,
    }
}

/// Runs each case against `r` (writing into `out`): the expected answer,
/// nothing published, no part past `most`, nothing big on disk, the
/// receiver alive and without a panic.
fn run_cases(r: &mut Recv, out: &Path, prefix: &str, cases: Vec<Case>) {
    for (i, mut c) in cases.into_iter().enumerate() {
        let name = format!("{prefix}{i}.bin");
        c.entry.path = name.clone().into_bytes();
        let what = format!("{} ({name})", c.what);
        let heard = lie(r.addr, &c.entry, &c.data, &what);
        let msgs = &heard.msgs;
        let send = matches!(heard.reply(), Some(Action::Send { .. }));
        match c.expect {
            Expect::NoSpace => {
                assert!(send, "{what}: the entry itself is fine: {msgs:?}");
                assert!(!heard.go, "{what}: GO for what cannot fit: {msgs:?}");
                let (code, reason) = heard
                    .refusal()
                    .unwrap_or_else(|| panic!("{what}: no refusal: {msgs:?}"));
                assert_eq!(code, RefuseCode::NoSpace, "{what}: {reason}");
                assert!(
                    reason.contains("needs") && reason.contains("free"),
                    "{what}: the reason says needed and free space: {reason}"
                );
            }
            Expect::TooLarge => assert!(
                matches!(
                    heard.reply(),
                    Some(Action::Refuse {
                        code: RefuseCode::TooLarge,
                        ..
                    })
                ),
                "{what}: the entry is refused as too large: {msgs:?}"
            ),
            Expect::Undecodable => assert!(
                heard.reply().is_none() && !heard.go && heard.refusal().is_none(),
                "{what}: an entry that does not decode ends the session unanswered: {msgs:?}"
            ),
            Expect::Lie | Expect::MayLand => {
                assert!(
                    send && heard.go,
                    "{what}: the entry itself is fine: {msgs:?}"
                );
            }
        }
        if c.expect != Expect::MayLand {
            assert!(!heard.took_it(), "{what}: the receiver took it: {msgs:?}");
        }
        r.check_alive(&what);
        assert!(!out.join(&name).exists(), "{what}: published");
        let part = out.join(format!("{name}.zcpart"));
        let len = fs::metadata(&part).map_or(0, |m| m.len());
        assert!(
            len <= c.most,
            "{what}: the part has {len} bytes, past {}",
            c.most
        );
        no_bytes(out, &what);
    }
}

/// Nothing in `out` takes more than 1 MiB of disk.
fn no_bytes(out: &Path, what: &str) {
    for f in list_dir(out) {
        let meta = fs::metadata(out.join(&f)).unwrap();
        assert!(
            meta.blocks() * 512 <= MIB,
            "{what}: {f} takes {} bytes of disk",
            meta.blocks() * 512
        );
    }
}

/// Hostile sessions of one file (a test's own sender, not zc): absurd
/// sizes and ranges in the ENTRY are refused before any data, and DATA
/// that lies about an accepted entry (past its size or range, past 2^64,
/// out of order or past the cap of a stream) never gets in.
#[test]
fn absurd_sizes_and_offsets_are_refused() {
    use Expect::*;
    let (root, out) = layout();
    let mut r = Recv::start(&out, &["-k"]);
    let max = u64::MAX;
    let file = |size, range| file_entry("", size, range, false);
    let stream = |cap: Option<u64>| file_entry("", 0, cap.map(|c| (0, c)), true);
    // Absurd entries, refused before any data: GO never comes, so the data
    // listed is never sent.
    let mut cases = vec![
        case("size 2^64-1", file(max, None), &[(0, 64)], NoSpace, 0),
        case("1 EiB", file(1 << 60, None), &[(0, 64)], NoSpace, 0),
        case(
            "a range of 2^64-2 bytes",
            file(max, Some((1, max))),
            &[(1, 64)],
            NoSpace,
            0,
        ),
        case(
            "a range from 2^63 to 2^64-1",
            file(max, Some((1 << 63, max))),
            &[(1 << 63, 64)],
            NoSpace,
            0,
        ),
        case(
            "a stream capped at 2^64-1",
            stream(Some(max)),
            &[(0, 64)],
            NoSpace,
            0,
        ),
        case(
            "a stream of size 2^64-1",
            file_entry("", max, None, true),
            &[(0, 64)],
            NoSpace,
            0,
        ),
        case(
            "a range past the size",
            file(10, Some((5, 11))),
            &[(5, 6)],
            Undecodable,
            0,
        ),
        case(
            "a range of a 0-byte file",
            file(0, Some((0, 1))),
            &[(0, 1)],
            Undecodable,
            0,
        ),
        case(
            "an empty range past the size",
            file(10, Some((11, 11))),
            &[(11, 1)],
            Undecodable,
            0,
        ),
        case(
            "a range that ends before it starts",
            file(10, Some((7, 3))),
            &[(7, 3)],
            Undecodable,
            0,
        ),
        case(
            "a range ending at 2^64-1 of a 10-byte file",
            file(10, Some((max - 1, max))),
            &[(max - 1, 1)],
            Undecodable,
            0,
        ),
    ];
    // Accepted entries whose DATA then lies: each ends the session without
    // writing past the size or taking the file. (The 2^62 case is a legal
    // range; the file system may take it, sparse, or refuse it.) The other
    // DATA rows run without sockets: protocol::loopback's
    // data_that_lies_about_its_entry_is_a_violation.
    cases.extend([
        case("DATA past the size", file(10, None), &[(0, 15)], Lie, 10),
        case(
            "DATA at 2^62-1 of a 2^62-byte file",
            file(1 << 62, Some(((1 << 62) - 1, 1 << 62))),
            &[((1 << 62) - 1, 1)],
            MayLand,
            1 << 62,
        ),
        case(
            "a stream's first DATA at byte 100",
            stream(None),
            &[(100, 1)],
            Lie,
            0,
        ),
        case(
            "DATA past the stream's cap",
            stream(Some(4)),
            &[(0, 8)],
            Lie,
            4,
        ),
    ]);
    run_cases(&mut r, &out, "lie", cases);
    real_transfer(&r, &out, "after.bin", 70_000, 5);
    assert_eq!(list_dir(root.path()), vec!["out"]);

    // --max-size bounds what the entries offer, whatever the OFFER
    // announced (it says 10 bytes), and a stream without a cap.
    let (root, out) = layout();
    let mut r = Recv::start(&out, &["-k", "--max-size", "4096"]);
    let cases = vec![
        case(
            "a file over --max-size",
            file(5000, None),
            &[(0, 5000)],
            TooLarge,
            0,
        ),
        case(
            "a stream capped over --max-size",
            stream(Some(5000)),
            &[(0, 5000)],
            TooLarge,
            0,
        ),
        case(
            "a stream past --max-size",
            stream(None),
            &[(0, 4096), (4096, 904)],
            Lie,
            4096,
        ),
    ];
    run_cases(&mut r, &out, "big", cases);
    real_transfer(&r, &out, "after.bin", 4000, 6);
    assert_eq!(list_dir(root.path()), vec!["out"]);
}

/// `--max-size` bounds a file's declared size, not only the bytes it
/// offers: 10 bytes at the end of a 15 TiB file would leave a part of
/// 15 TiB (sparse, but a size every later reader believes).
#[test]
fn max_size_bounds_a_files_declared_size_not_only_the_range_offered() {
    use Expect::*;
    let (root, out) = layout();
    let mut r = Recv::start(&out, &["-k", "--max-size", "100K"]);
    let huge = 15u64 << 40;
    let cases = vec![
        case(
            "10 bytes at the end of a 15 TiB file",
            file_entry("", huge, Some((huge - 10, huge)), false),
            &[(huge - 10, 10)],
            TooLarge,
            0,
        ),
        case(
            "10 bytes at the start of a 200 KiB file",
            file_entry("", 200 << 10, Some((0, 10)), false),
            &[(0, 10)],
            TooLarge,
            0,
        ),
    ];
    run_cases(&mut r, &out, "declared", cases);
    assert_eq!(list_dir(&out), Vec::<String>::new(), "left in OUT");
    real_transfer(&r, &out, "after.bin", 4000, 7);
    assert_eq!(list_dir(root.path()), vec!["out"]);
}

/// The free-space check covers the offered range; DATA outside it must not
/// get in, or one offer of 1 byte fills the disk.
#[test]
fn data_outside_the_offered_range_is_refused() {
    let (_root, out) = layout();
    let mut r = Recv::start(&out, &["-k"]);
    let what = "1 MiB of DATA for a range of 1 byte";
    let entry = file_entry("sneak.bin", MIB, Some((0, 1)), false);
    let heard = lie(r.addr, &entry, &[(0, MIB)], what);
    assert!(
        matches!(heard.reply(), Some(Action::Send { .. })) && heard.go,
        "{what}: the entry itself is fine: {:?}",
        heard.msgs
    );
    assert!(
        !heard.took_it(),
        "{what}: the receiver took it: {:?}",
        heard.msgs
    );
    r.check_alive(what);
    let held: u64 = list_dir(&out)
        .iter()
        .map(|f| fs::metadata(out.join(f)).unwrap().blocks() * 512)
        .sum();
    assert!(
        held <= 64 << 10 && !out.join("sneak.bin").exists(),
        "an offer of 1 byte wrote {held} bytes: {:?}",
        list_dir(&out)
    );
}

// ===========================================================================
// Symlinks

#[test]
fn planted_symlinks_are_never_written_through() {
    let src_dir = tempfile::tempdir().unwrap();
    for force in [false, true] {
        let (root, out) = layout();
        let outside = root.path().join("outside");
        let outside2 = root.path().join("outside2");
        let outside3 = root.path().join("outside3");
        let outside4 = root.path().join("outside4");
        for p in [&outside, &outside2, &outside3, &outside4] {
            fs::write(p, b"precious, not to be touched\n").unwrap();
        }
        // DIR/NAME -> ../outside, DIR/NAME.zcpart -> ../outside2, dangling
        // variants, and links at the record's names.
        symlink("../outside", out.join("a.bin")).unwrap();
        symlink("../missing-a", out.join("b.bin")).unwrap();
        symlink("../outside2", out.join("c.bin.zcpart")).unwrap();
        symlink("../missing-c", out.join("d.bin.zcpart")).unwrap();
        symlink("../outside3", out.join("e.bin.zcpart.held")).unwrap();
        symlink("../outside4", out.join("e.bin.zcpart.held.tmp")).unwrap();
        let before_outside = snapshot(root.path())
            .into_iter()
            .filter(|(p, _)| !p.starts_with(&out))
            .collect::<BTreeMap<_, _>>();

        let extra: &[&str] = if force { &["-k", "--force"] } else { &["-k"] };
        let mut r = Recv::start(&out, extra);
        for (i, name) in ["a.bin", "b.bin", "c.bin", "d.bin", "e.bin"]
            .iter()
            .enumerate()
        {
            let what = format!("{name} (force: {force})");
            let src = src_dir.path().join(name);
            // e.bin is big enough for a checkpoint to store a record mid-way
            let size = if *name == "e.bin" { 24 * MIB } else { 200_000 };
            random_file(&src, size, 20 + i as u64);
            let sent = send_bounded(&[s(&src), &r.dest()], None, SUITE_TIMEOUT);
            assert_no_panic(&what, &sent.stderr);
            r.check_alive(&what);
            let dest = out.join(name);
            match sent.code {
                0 => {
                    let meta = fs::symlink_metadata(&dest).unwrap();
                    assert!(meta.is_file(), "{what}: sent, so the link must be replaced");
                    assert_same_file(&src, &dest);
                }
                4 => {}
                other => panic!("{what}: exit {other}; stderr:\n{}", sent.stderr),
            }
            if !force && (*name == "a.bin" || *name == "b.bin") {
                let why = format!("{what}: an existing link is an existing file");
                sent.expect(4, &["exists"], &why);
            }
            if *name == "e.bin" {
                assert_eq!(sent.code, 0, "{what}: {}", sent.stderr);
            }
        }
        let after_outside = snapshot(root.path())
            .into_iter()
            .filter(|(p, _)| !p.starts_with(&out))
            .collect::<BTreeMap<_, _>>();
        assert_eq!(
            after_outside, before_outside,
            "a link target outside the output directory was written (force: {force})"
        );
        for missing in ["missing-a", "missing-c"] {
            assert!(!root.path().join(missing).exists(), "{missing} was created");
        }
        assert_no_panic("receiver", &r.p.stderr());
    }
}

// ===========================================================================
// Silent peers

#[test]
fn silent_peers_are_dropped_after_the_timeout_and_block_nothing() {
    let (_root, out) = layout();
    let mut r = Recv::start(&out, &["-k", "--timeout", "2"]);
    let pre = preamble(proto::VERSION);
    let mut half_offer = pre.clone();
    half_offer.extend_from_slice(&[kind::OFFER, 0, 0, 0, 40, 1, 0, 9, b'h']);
    let mut peers: Vec<(&str, TcpStream)> = Vec::new();
    for (what, bytes) in [
        ("connects and sends nothing", vec![]),
        ("sends half a preamble", pre[..5].to_vec()),
        ("sends half an offer", half_offer),
    ] {
        let mut c = client(r.addr);
        c.write_all(&bytes).unwrap();
        peers.push((what, c));
    }
    // Meanwhile, a real transfer goes through.
    real_transfer(&r, &out, "meanwhile.bin", 2 * MIB, 30);
    for (what, c) in &mut peers {
        let (got, ending) = drain(c);
        assert_eq!(
            ending,
            Ending::Closed,
            "a peer that {what} was not dropped within {CLIENT_WAIT:?} (--timeout 2)"
        );
        assert!(got.is_empty(), "a peer that {what} got {got:?}");
    }
    r.check_alive("after the silent peers");
    // The report follows the hang-up: give it a moment to arrive.
    let reported = eventually(CLIENT_WAIT, || {
        r.p.stderr().matches("--timeout").count() >= 3
    });
    assert!(
        reported,
        "each silent peer is reported as timed out; stderr:\n{}",
        r.p.stderr()
    );
    assert_eq!(list_dir(&out), vec!["meanwhile.bin"]);
}

#[test]
fn a_silent_peer_only_delays_a_one_shot_receiver() {
    let (_root, out) = layout();
    let mut r = Recv::start(&out, &["--timeout", "2"]);
    let mut silent = client(r.addr);
    // The real sender connects behind it and waits in the backlog.
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("patient.bin");
    random_file(&src, 300_000, 31);
    send_bounded(&[s(&src), &r.dest()], None, SUITE_TIMEOUT)
        .expect_clean(0, "the sender behind a silent peer");
    let (_, ending) = drain(&mut silent);
    assert_eq!(ending, Ending::Closed, "the silent peer was not dropped");
    r.finish(SUITE_TIMEOUT).expect_clean(0, "the receiver");
    assert_same_file(&src, &out.join("patient.bin"));
}

#[test]
fn a_sender_silent_in_the_middle_of_a_frame_is_dropped_after_the_timeout() {
    // The receiver asks the kernel to wake it once a good part of the frame
    // is queued; a sender that stops half-way must still be timed out on
    // time, not after some longer wait for data that never comes. Both
    // receive paths: verified (read) and --no-verify (splice).
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("halted.bin");
    random_file(&src, 8 * MIB, 32);
    for flags in [&[][..], &["--no-verify"][..]] {
        let (_root, out) = layout();
        let mut args = vec!["--timeout", "1"];
        args.extend_from_slice(flags);
        let mut r = Recv::start(&out, &args);
        let proxy = CuttingProxy::counting(r.addr);
        proxy.hold_at(3 * MIB);
        let mut send_args = vec!["--timeout", PATIENT];
        send_args.extend_from_slice(flags);
        let dest = proxy.addr.to_string();
        send_args.extend([s(&src), dest.as_str()]);
        let mut sender = send_async(&send_args, None);
        proxy.wait_for(3 * MIB, &mut sender.child, "zc send");
        let held = Instant::now();
        let got = r.finish(CLIENT_WAIT);
        let waited = held.elapsed();
        let _ = sender.child.kill();
        let what = format!("a sender silent after 3 MiB of 8 {flags:?}");
        println!("{what}: the receiver gave up after {waited:?}");
        got.expect(1, &["--timeout"], &format!("zc recv --timeout 1, {what}"));
        // 1 s of silence, a tick, and 1 s more for the sender to come back
        // and resume; 7 s leaves a busy machine room
        assert!(
            waited < Duration::from_secs(7),
            "{what}: the receiver took {waited:?} to give up"
        );
        let part = fs::metadata(out.join("halted.bin.zcpart")).map_or(0, |m| m.len());
        assert!(part > 0, "{what}: the part with what arrived is kept");
    }
}

// ===========================================================================
// Faults

/// Long enough that no idle timeout fires while a test holds a transfer:
/// a record that appears then can only come from the periodic checkpoint.
const PATIENT: &str = "120";

/// Starts `zc send SRC` through a proxy that holds at `hold`, and waits
/// until the hold is reached and the receiver's checkpoint has recorded
/// held bytes (it does so every second; 20 s is plenty).
fn send_and_hold(src: &Path, proxy: &CuttingProxy, hold: u64, part: &Path) -> Proc {
    proxy.hold_at(hold);
    let dest = proxy.addr.to_string();
    let mut sender = send_async(&["--timeout", PATIENT, s(src), &dest], None);
    proxy.wait_for(hold, &mut sender.child, "zc send");
    let recorded = eventually(Duration::from_secs(20), || {
        fs::read_to_string(zc::held::record_path(part))
            .ok()
            .and_then(|t| Record::decode(&t))
            .is_some_and(|r| r.held.total() > 0)
    });
    assert!(
        recorded,
        "no checkpoint record beside {} while the transfer is held",
        part.display()
    );
    sender
}

#[test]
fn receiver_sigkill_mid_transfer_keeps_what_arrived_and_the_next_attempt_completes() {
    let (_root, out) = layout();
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("k.bin");
    let size = 48 * MIB;
    random_file(&src, size, 40);
    let part = out.join("k.bin.zcpart");

    let mut r1 = Recv::start(&out, &["--timeout", PATIENT]);
    let proxy = CuttingProxy::counting(r1.addr);
    let mut sender = send_and_hold(&src, &proxy, 16 * MIB, &part);
    r1.p.kill();
    proxy.release();
    let sent = sender.finish(SUITE_TIMEOUT);
    assert_eq!(
        sent.code, 1,
        "the sender loses its receiver: {}",
        sent.stderr
    );
    assert_no_panic("sender", &sent.stderr);
    assert!(!out.join("k.bin").exists(), "published after a kill");
    let held = assert_record_truthful(&src, &part);
    assert!(held > 0 && held < size);

    let r2 = Recv::start(&out, &[]);
    let counting = CuttingProxy::counting(r2.addr);
    let dest = counting.addr.to_string();
    let again = send_bounded(&[s(&src), &dest], None, LONG);
    again.expect_clean(0, "the second attempt");
    assert_same_file(&src, &out.join("k.bin"));
    assert_eq!(list_dir(&out), vec!["k.bin"], "no .zcpart or record left");
    assert!(
        counting.forwarded.load(Ordering::SeqCst) <= size - held + MIB,
        "the second attempt re-sent {} bytes though {held} were held",
        counting.forwarded.load(Ordering::SeqCst)
    );
    let mut r2 = r2;
    r2.finish(SUITE_TIMEOUT)
        .expect_clean(0, "the second receiver");
}

#[test]
fn sender_sigkill_mid_transfer_keeps_what_arrived_and_the_next_attempt_completes() {
    let (_root, out) = layout();
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("s.bin");
    let size = 48 * MIB;
    random_file(&src, size, 41);
    let part = out.join("s.bin.zcpart");

    let mut r = Recv::start(&out, &["--timeout", PATIENT]);
    let proxy = CuttingProxy::counting(r.addr);
    let mut sender = send_and_hold(&src, &proxy, 16 * MIB, &part);
    sender.kill();
    proxy.release();
    // The receiver keeps the part and waits for the sender to come back.
    r.p.wait_stderr("waiting up to", SUITE_TIMEOUT);
    let held = assert_record_truthful(&src, &part);
    assert!(held > 0 && held < size);
    assert!(!out.join("s.bin").exists());

    send_bounded(&[s(&src), &r.dest()], None, LONG).expect_clean(0, "the second attempt");
    r.finish(SUITE_TIMEOUT).expect_clean(0, "the receiver");
    assert_same_file(&src, &out.join("s.bin"));
    assert_eq!(list_dir(&out), vec!["s.bin"]);
}

#[test]
fn a_connection_cut_mid_stream_keeps_the_part_and_the_next_attempt_completes() {
    let (_root, out) = layout();
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("cut.bin");
    let size = 40 * MIB;
    random_file(&src, size, 42);

    let mut r = Recv::start(&out, &[]);
    let proxy = CuttingProxy::start(r.addr, 12 * MIB, 1);
    let sent = send_bounded(&[s(&src), &proxy.addr.to_string()], None, SUITE_TIMEOUT);
    sent.expect(1, &["resume with"], "a cut connection");
    assert_no_panic("sender", &sent.stderr);
    let text = r.p.wait_stderr("waiting up to", SUITE_TIMEOUT);
    assert!(
        text.contains("kept"),
        "the receiver says what it kept: {text}"
    );
    let files = list_dir(&out);
    assert_eq!(
        files,
        vec!["cut.bin.zcpart", "cut.bin.zcpart.held"],
        "what was received stays"
    );
    let part = out.join("cut.bin.zcpart");
    let held = assert_record_truthful(&src, &part);
    assert!(held > 0 && held <= 12 * MIB, "held {held}");

    send_bounded(&[s(&src), &r.dest()], None, LONG).expect_clean(0, "the next attempt");
    r.finish(SUITE_TIMEOUT).expect_clean(0, "the receiver");
    assert_same_file(&src, &out.join("cut.bin"));
    assert_eq!(list_dir(&out), vec!["cut.bin"]);
}

// ===========================================================================
// A full disk

#[test]
fn full_disk_known_size_is_refused_up_front() {
    let (_root, out) = layout();
    let Some(_mount) = Mount::tmpfs(&out, "size=8m", "full_disk_known_size_is_refused_up_front")
    else {
        return;
    };
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("big.bin");
    random_file(&src, 16 * MIB, 50);
    let mut r = Recv::start(&out, &[]);
    let proxy = CuttingProxy::counting(r.addr);
    let sent = send_bounded(&[s(&src), &proxy.addr.to_string()], None, SUITE_TIMEOUT);
    sent.expect_clean(4, "a 16 MiB file into 8 MiB")
        .says(&["needs", "16.0 MiB", "free"]);
    assert!(
        proxy.forwarded.load(Ordering::SeqCst) < 4096,
        "the sender sent {} bytes before the refusal",
        proxy.forwarded.load(Ordering::SeqCst)
    );
    r.finish(SUITE_TIMEOUT)
        .expect_clean(4, "the receiver refused");
    for f in list_dir(&out) {
        assert_eq!(
            fs::metadata(out.join(&f)).unwrap().len(),
            0,
            "{f} has bytes"
        );
    }
    assert!(!out.join("big.bin").exists());
}

#[test]
fn a_tree_that_does_not_fit_is_refused_before_any_data() {
    // The free space is checked for the whole tree after its manifest and
    // before any byte of data: nothing lands, not even the (empty)
    // directories the manifest made.
    let (_root, out) = layout();
    let test = "a_tree_that_does_not_fit_is_refused_before_any_data";
    let Some(_mount) = Mount::tmpfs(&out, "size=8m", test) else {
        return;
    };
    let src_dir = tempfile::tempdir().unwrap();
    let top = src_dir.path().join("tree");
    fs::create_dir_all(top.join("sub")).unwrap();
    for i in 0..6 {
        random_file(&top.join(format!("sub/f{i}.bin")), 2 * MIB, 60 + i);
    }
    let mut r = Recv::start(&out, &[]);
    let proxy = CuttingProxy::counting(r.addr);
    let sent = send_bounded(&[s(&top), &proxy.addr.to_string()], None, SUITE_TIMEOUT);
    sent.expect_clean(4, "a 12 MiB tree into 8 MiB")
        .says(&["free"]);
    // the manifest and its frames, no data
    let forwarded = proxy.forwarded.load(Ordering::SeqCst);
    assert!(
        forwarded < 8192,
        "{forwarded} bytes went out before the refusal"
    );
    r.finish(SUITE_TIMEOUT)
        .expect_clean(4, "the receiver refused");
    let mut files = Vec::new();
    let mut stack = vec![out.clone()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    assert!(files.is_empty(), "files were created: {files:?}");
    let left: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left in the output directory: {left:?}");
}

#[test]
fn full_disk_mid_stream_is_reported_by_both_and_keeps_the_part() {
    let (_root, out) = layout();
    let Some(_mount) = Mount::tmpfs(
        &out,
        "size=8m",
        "full_disk_mid_stream_is_reported_by_both_and_keeps_the_part",
    ) else {
        return;
    };
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("stream.bin");
    random_file(&src, 16 * MIB, 51);
    let mut r = Recv::start(&out, &[]);
    let sent = send_bounded(
        &["--name", "stream.bin", "-", &r.dest()],
        Some(&src),
        SUITE_TIMEOUT,
    );
    let got = r.finish(SUITE_TIMEOUT);
    assert_no_panic("sender", &sent.stderr);
    assert_no_panic("receiver", &got.stderr);
    assert_ne!(sent.code, 0, "the sender cannot succeed: {}", sent.stderr);
    sent.says(&["No space left"]);
    assert_ne!(got.code, 0, "the receiver: {}", got.stderr);
    got.says(&["No space left"]);
    assert!(
        !out.join("stream.bin").exists(),
        "published a partial stream"
    );
    let kept = assert_prefix_of(&src, &out.join("stream.bin.zcpart"));
    assert!(
        kept > 4 * MIB,
        "the part holds only {kept} bytes of an 8 MiB disk"
    );
}

/// A disk filled to the last page by the data leaves no room for the held
/// record: its temporary (`NAME.zcpart.held.tmp`) must not stay behind.
#[test]
fn a_record_that_does_not_fit_on_a_full_disk_leaves_no_temporary() {
    let (_root, out) = layout();
    let test = "a_record_that_does_not_fit_on_a_full_disk_leaves_no_temporary";
    let Some(_mount) = Mount::tmpfs(&out, "size=1m", test) else {
        return;
    };
    // fill the disk, then free exactly 64 KiB for the data
    let filler = out.join("filler");
    let mut f = fs::File::create(&filler).unwrap();
    let page = vec![7u8; 4096];
    let mut size = 0u64;
    while f.write_all(&page).is_ok() {
        size += 4096;
    }
    drop(f);
    let range = 64 << 10;
    OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(size - range)
        .unwrap();
    let mut r = Recv::start(&out, &["-k"]);
    let entry = file_entry("full.bin", 2 * range, Some((0, range)), false);
    let heard = lie(r.addr, &entry, &[(0, range)], test);
    assert!(heard.go, "the range fits: {:?}", heard.msgs);
    r.check_alive(test);
    let names = list_dir(&out);
    assert!(
        !names.iter().any(|n| n.ends_with(".tmp")),
        "left behind on the full disk: {names:?}"
    );
}

// ===========================================================================
// A source that changes during the send

#[test]
fn a_source_truncated_during_the_send_fails_with_exit_1() {
    for extra in [&[][..], &["--no-sendfile"][..]] {
        let (_root, out) = layout();
        let src_dir = tempfile::tempdir().unwrap();
        let src = src_dir.path().join("shrinks.bin");
        let size = 64 * MIB;
        random_file(&src, size, 60);
        let mut r = Recv::start(&out, &["-k"]);
        let proxy = CuttingProxy::counting(r.addr);
        proxy.hold_at(2 * MIB);
        let dest = proxy.addr.to_string();
        let mut args = extra.to_vec();
        args.extend([s(&src), &dest]);
        let mut sender = send_async(&args, None);
        proxy.wait_for(2 * MIB, &mut sender.child, "zc send");
        // Once the sender's whole-file digest (thread zc-hash) is done, only
        // the data path can notice the change.
        let pid = sender.pid();
        assert!(
            eventually(SUITE_TIMEOUT, || !has_thread(pid, "zc-hash")),
            "the sender's hashing thread did not finish"
        );
        // At most a few MiB sit in socket buffers: half the file is still to come.
        OpenOptions::new()
            .write(true)
            .open(&src)
            .unwrap()
            .set_len(size / 2)
            .unwrap();
        proxy.release();
        let sent = sender.finish(SUITE_TIMEOUT);
        let what = format!("truncated source {extra:?}");
        sent.expect_clean(1, &what)
            .says(&["changed during the transfer", "shrinks.bin"]);
        r.check_alive(&what);
        assert!(!out.join("shrinks.bin").exists(), "{what}: published");
    }
}

#[test]
fn a_source_modified_in_place_during_the_send_is_caught() {
    let src_dir = tempfile::tempdir().unwrap();
    let size = 64 * MIB;
    // (what, region overwritten once the sender hashed the file and the
    // proxy holds at 2 MiB)
    let cases = [
        ("a region not yet sent", 40 * MIB, MIB),
        ("a region sent and one not yet sent", 0, 60 * MIB),
    ];
    for (i, (what, at, len)) in cases.into_iter().enumerate() {
        let (_root, out) = layout();
        let src = src_dir.path().join(format!("m{i}.bin"));
        random_file(&src, size, 61);
        let mut r = Recv::start(&out, &[]);
        let proxy = CuttingProxy::counting(r.addr);
        proxy.hold_at(2 * MIB);
        let dest = proxy.addr.to_string();
        let mut sender = send_async(&[s(&src), &dest], None);
        proxy.wait_for(2 * MIB, &mut sender.child, "zc send");
        // The sender's whole-file digest runs on a thread named zc-hash:
        // once it has ended, the digest covers the old bytes.
        let pid = sender.pid();
        assert!(
            eventually(SUITE_TIMEOUT, || !has_thread(pid, "zc-hash")),
            "{what}: the sender's hashing thread did not finish"
        );
        let f = OpenOptions::new().write(true).open(&src).unwrap();
        f.write_all_at(&XorShift::new(99).bytes(len as usize), at)
            .unwrap();
        drop(f);
        proxy.release();
        let sent = sender.finish(SUITE_TIMEOUT);
        let got = r.finish(SUITE_TIMEOUT);
        // caught by its new mtime before the end (1, "changed"), or by the
        // digest (3, "mismatch"); never published either way
        let code = sent.code;
        assert!(
            matches!(code, 1 | 3),
            "{what}: exit {code}: {}",
            sent.stderr
        );
        let word = if code == 1 { "changed" } else { "mismatch" };
        sent.expect_clean(code, &format!("sender, {what}"))
            .says(&[word]);
        got.expect_clean(code, &format!("receiver, {what}"));
        assert!(!out.join(format!("m{i}.bin")).exists(), "{what}: published");
    }
}

/// Overwriting only bytes that were already read, hashed and sent cannot be
/// seen by a digest: the receiver then holds the file as it was read. What
/// must never happen is exit 0 with a file that is neither.
#[test]
fn a_source_rewritten_behind_the_send_never_lands_torn() {
    let (_root, out) = layout();
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("behind.bin");
    let size = 64 * MIB;
    random_file(&src, size, 62);
    let original = src_dir.path().join("original.bin");
    fs::copy(&src, &original).unwrap();
    let mut r = Recv::start(&out, &[]);
    let proxy = CuttingProxy::counting(r.addr);
    proxy.hold_at(2 * MIB);
    let dest = proxy.addr.to_string();
    let mut sender = send_async(&[s(&src), &dest], None);
    proxy.wait_for(2 * MIB, &mut sender.child, "zc send");
    let pid = sender.pid();
    assert!(eventually(SUITE_TIMEOUT, || !has_thread(pid, "zc-hash")));
    let f = OpenOptions::new().write(true).open(&src).unwrap();
    f.write_all_at(&XorShift::new(98).bytes(MIB as usize), 0)
        .unwrap();
    drop(f);
    proxy.release();
    let sent = sender.finish(SUITE_TIMEOUT);
    let got = r.finish(SUITE_TIMEOUT);
    match (sent.code, got.code) {
        (0, 0) => assert_same_file(&original, &out.join("behind.bin")),
        // a digest mismatch, or the sender saw the new mtime first
        (3, 3) | (1, 1) => assert!(!out.join("behind.bin").exists()),
        other => panic!(
            "exit codes {other:?}; sender:\n{}\nreceiver:\n{}",
            sent.stderr, got.stderr
        ),
    }
    assert_no_panic("sender", &sent.stderr);
    assert_no_panic("receiver", &got.stderr);
}

// ===========================================================================
// Tampering in transit, with a key and --no-encrypt

/// What a tampering proxy did.
#[derive(Default)]
struct Tampered {
    /// Bytes of DATA payload flipped (one, in the first payload).
    flipped: AtomicU64,
    /// FILE END frames that carried a digest, passed on without it.
    stripped: AtomicU64,
}

/// A man in the middle for one connection: parses the sender's frames,
/// flips one byte of the first DATA payload and, with `strip`, removes
/// the digest from each FILE END (fixing the frame length). The OFFER and
/// the key handshake pass untouched.
fn tampering_proxy(upstream: SocketAddr, strip: bool) -> (SocketAddr, Arc<Tampered>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let tampered = Arc::new(Tampered::default());
    let seen = tampered.clone();
    thread::spawn(move || {
        let Ok((client, _)) = listener.accept() else {
            return;
        };
        let Ok(server) = TcpStream::connect(upstream) else {
            return;
        };
        let (mut down_from, mut down_to) =
            (server.try_clone().unwrap(), client.try_clone().unwrap());
        thread::spawn(move || {
            let _ = io::copy(&mut down_from, &mut down_to);
            let _ = down_to.shutdown(Shutdown::Write);
        });
        let _ = relay_tampered(client, server, strip, &seen);
    });
    (addr, tampered)
}

fn relay_tampered(
    mut from: TcpStream,
    mut to: TcpStream,
    strip: bool,
    seen: &Tampered,
) -> io::Result<()> {
    let mut pre = [0u8; proto::PREAMBLE_LEN];
    from.read_exact(&mut pre)?;
    to.write_all(&pre)?;
    loop {
        let f = match proto::read_frame(&mut from) {
            Ok(f) => f,
            Err(_) => {
                let _ = to.shutdown(Shutdown::Write);
                return Ok(());
            }
        };
        match f.kind {
            kind::DATA => {
                to.write_all(&frame(f.kind, &f.body))?;
                let (_, mut left) = proto::parse_data(&f.body).map_err(io::Error::other)?;
                let mut buf = vec![0u8; 64 << 10];
                while left > 0 {
                    let n = from.read(&mut buf[..left.min(64 << 10) as usize])?;
                    if n == 0 {
                        return Ok(());
                    }
                    if seen.flipped.load(Ordering::SeqCst) == 0 {
                        buf[0] ^= 0x5a;
                        seen.flipped.store(1, Ordering::SeqCst);
                    }
                    to.write_all(&buf[..n])?;
                    left -= n as u64;
                }
            }
            kind::FILE_END if strip => {
                let ToReceiver::FileEnd(mut end) =
                    ToReceiver::decode(&f).map_err(io::Error::other)?
                else {
                    unreachable!("a FILE END frame decodes as one");
                };
                if end.sha256.take().is_some() {
                    seen.stripped.fetch_add(1, Ordering::SeqCst);
                }
                let mut out = Vec::new();
                ToReceiver::FileEnd(end).append_to(&mut out);
                to.write_all(&out)?;
            }
            _ => to.write_all(&frame(f.kind, &f.body))?,
        }
    }
}

fn keyed_transfer_through_tampering(strip: bool) {
    let (_root, out) = layout();
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("signed.bin");
    random_file(&src, 3 * MIB, 80);
    // the authenticated plaintext mode: a man in the middle can read the
    // frames, and the keyed digests must catch what he changes (an
    // encrypted session is tested in tests/encryption.rs)
    let mut rcmd = recv_cmd(&out, &QUIET);
    rcmd.env("ZC_KEY", "correct horse battery staple")
        .arg("--no-encrypt");
    let mut r = Recv::start_cmd(rcmd);
    let (mitm, tampered) = tampering_proxy(r.addr, strip);
    let mut scmd = quiet_send_cmd(&["--no-encrypt", s(&src), &mitm.to_string()]);
    scmd.env("ZC_KEY", "correct horse battery staple");
    let sent = Proc::start(scmd, "zc send", Stdio::null()).finish(SUITE_TIMEOUT);
    let got = r.finish(SUITE_TIMEOUT);
    let what = if strip {
        "a flipped byte, the digest stripped from FILE END"
    } else {
        "a flipped byte"
    };
    assert_no_panic("sender", &sent.stderr);
    assert_no_panic("receiver", &got.stderr);
    assert_eq!(
        tampered.flipped.load(Ordering::SeqCst),
        1,
        "{what}: no DATA went through the proxy"
    );
    if strip {
        assert_eq!(
            tampered.stripped.load(Ordering::SeqCst),
            1,
            "{what}: the proxy found no digest to strip"
        );
    }
    assert_ne!(
        sent.code, 0,
        "{what}: the sender reported success: {}",
        sent.stderr
    );
    assert_ne!(
        got.code, 0,
        "{what}: the receiver reported success: {}",
        got.stderr
    );
    assert!(
        !out.join("signed.bin").exists(),
        "{what}: altered data was published"
    );
    // a digest that does not come is a mismatch, as a wrong one is
    sent.expect_clean(3, what);
    got.expect_clean(3, what);
}

#[test]
fn with_a_key_data_altered_in_transit_is_detected() {
    keyed_transfer_through_tampering(false);
}

#[test]
fn with_a_key_stripping_the_digest_does_not_hide_tampering() {
    keyed_transfer_through_tampering(true);
}

// ===========================================================================
// Unusable outputs

#[test]
fn a_read_only_output_is_refused_before_any_data() {
    let (_root, out) = layout();
    let Some(_mount) = Mount::tmpfs(
        &out,
        "ro,size=1m",
        "a_read_only_output_is_refused_before_any_data",
    ) else {
        return;
    };
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("ro.bin");
    random_file(&src, 100_000, 70);
    let mut r = Recv::start(&out, &[]);
    let proxy = CuttingProxy::counting(r.addr);
    let sent = send_bounded(&[s(&src), &proxy.addr.to_string()], None, SUITE_TIMEOUT);
    assert!(
        matches!(sent.code, 1 | 4),
        "exit {} (wanted 4 or 1): {}",
        sent.code,
        sent.stderr
    );
    assert_no_panic("sender", &sent.stderr);
    // a sender without the key hears why, not where the receiver writes
    assert!(
        !sent.stderr.contains(s(&out)),
        "the sender is told the receiver's path {}: {}",
        out.display(),
        sent.stderr
    );
    assert!(
        sent.stderr.to_lowercase().contains("read-only"),
        "the message says why: {}",
        sent.stderr
    );
    assert!(
        proxy.forwarded.load(Ordering::SeqCst) < 4096,
        "the sender sent {} bytes before the refusal",
        proxy.forwarded.load(Ordering::SeqCst)
    );
    let got = r.finish(SUITE_TIMEOUT);
    assert_ne!(got.code, 0);
    assert_no_panic("receiver", &got.stderr);
    got.says(&[s(&out)]);
    assert!(list_dir(&out).is_empty());
}

#[test]
fn an_output_in_a_missing_directory_is_a_usage_error_at_start() {
    for output in [
        "/nonexistent/dir/file",
        "/nonexistent/dir/",
        "/nonexistent/dir",
    ] {
        for extra in [&[][..], &["-k"][..]] {
            let mut cmd = zc();
            cmd.args(["recv", "-l", "127.0.0.1:0", "-o", output])
                .args(extra);
            let mut p = Proc::start(cmd, "zc recv", Stdio::null());
            let got = p.finish(SUITE_TIMEOUT);
            let what = format!("-o {output} {extra:?}");
            got.expect_clean(2, &what).says(&["/nonexistent"]);
            assert!(!got.stderr.contains("listening"), "{what}: {}", got.stderr);
        }
    }
}

// ===========================================================================
// Load

#[test]
fn load_16_concurrent_senders_of_64_mib() {
    let (_root, out) = layout();
    let src_dir = tempfile::tempdir().unwrap();
    let r = Recv::start(&out, &["-k"]);
    let names: Vec<String> = (0..16).map(|i| format!("load-{i:02}.bin")).collect();
    for (i, name) in names.iter().enumerate() {
        random_file(&src_dir.path().join(name), 64 * MIB, 100 + i as u64);
    }
    let dest = r.dest();
    let mut senders: Vec<Proc> = names
        .iter()
        .map(|n| send_async(&[s(&src_dir.path().join(n)), &dest], None))
        .collect();
    for (sender, name) in senders.iter_mut().zip(&names) {
        sender.finish(LONG).expect_clean(0, name);
    }
    for name in &names {
        assert_same_file(&src_dir.path().join(name), &out.join(name));
    }
    assert_eq!(list_dir(&out), names);
    let mut r = r;
    r.check_alive("after 16 transfers");
}

#[test]
fn load_200_junk_connections_with_real_transfers() {
    let (_root, out) = layout();
    let src_dir = tempfile::tempdir().unwrap();
    let mut r = Recv::start(&out, &["-k"]);
    let pid = r.p.pid();
    let fds_at_start = fd_count(pid);
    assert!(fds_at_start > 0);

    let names: Vec<String> = (0..4).map(|i| format!("real-{i}.bin")).collect();
    for (i, name) in names.iter().enumerate() {
        random_file(&src_dir.path().join(name), 16 * MIB, 200 + i as u64);
    }
    let mut rng = XorShift::new(8);
    let mut junk = Vec::new();
    let mut senders = Vec::new();
    let mut peak_rss = 0;
    for i in 0..200 {
        let mut c = client(r.addr);
        let bytes = match i % 4 {
            0 => vec![],
            1 => {
                let n = rng.below(2000) as usize;
                rng.bytes(n)
            }
            2 => {
                let mut v = preamble(proto::VERSION);
                v.push(kind::OFFER);
                v.extend_from_slice(&proto::MAX_FRAME.to_be_bytes());
                v.extend_from_slice(&rng.bytes(1000));
                v
            }
            _ => preamble(proto::VERSION)[..6].to_vec(),
        };
        let _ = c.write_all(&bytes);
        junk.push(c);
        if i % 50 == 25 {
            let n = &names[senders.len()];
            senders.push((
                n.clone(),
                send_async(&[s(&src_dir.path().join(n)), &r.dest()], None),
            ));
        }
        peak_rss = peak_rss.max(vm_rss_kib(pid));
    }
    for (name, sender) in &mut senders {
        let deadline = Instant::now() + LONG;
        while sender.exited().is_none() && Instant::now() < deadline {
            peak_rss = peak_rss.max(vm_rss_kib(pid));
            thread::sleep(Duration::from_millis(50));
        }
        sender.finish(SUITE_TIMEOUT).expect_clean(0, name);
    }
    for name in &names {
        assert_same_file(&src_dir.path().join(name), &out.join(name));
    }
    r.check_alive("with 200 junk connections open");
    peak_rss = peak_rss.max(vm_rss_kib(pid));
    drop(junk);
    let settled = eventually(SUITE_TIMEOUT, || fd_count(pid) == fds_at_start);
    assert!(
        settled,
        "the receiver holds {} descriptors, {fds_at_start} at the start",
        fd_count(pid)
    );
    let rss = vm_rss_kib(pid);
    eprintln!(
        "load: {fds_at_start} descriptors at the start and the end; VmRSS peak {peak_rss} KiB, {rss} KiB at the end"
    );
    assert!(
        peak_rss < 64 * 1024 && rss < 64 * 1024,
        "VmRSS peaked at {peak_rss} KiB, {rss} KiB at the end"
    );
    r.check_alive("after the junk");
    assert_eq!(list_dir(&out), names);
}

/// A `-k` receiver that runs out of descriptors (many idle connections)
/// must wait and accept again once they close, not exit: otherwise anyone
/// who can open enough connections ends it for good. At most 16
/// connections are in their handshake at once, two descriptors each: the
/// limit is low enough for them to fill it.
#[test]
fn descriptor_exhaustion_does_not_end_a_k_receiver() {
    use std::os::unix::process::CommandExt;
    let (_root, out) = layout();
    let mut cmd = recv_cmd(&out, &QUIET);
    cmd.arg("-k");
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 24,
                rlim_max: 24,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut r = Recv::start_cmd(cmd);
    let pid = r.p.pid();
    let idle: Vec<TcpStream> = (0..80).map(|_| client(r.addr)).collect();
    assert!(
        eventually(SUITE_TIMEOUT, || fd_count(pid) >= 20
            || r.p.exited().is_some()),
        "the receiver never filled its descriptor table ({} open)",
        fd_count(pid)
    );
    thread::sleep(Duration::from_millis(500));
    drop(idle);
    assert!(
        eventually(SUITE_TIMEOUT, || fd_count(pid) <= 8
            || r.p.exited().is_some()),
        "the idle connections were not released"
    );
    r.check_alive("after running out of descriptors");
    real_transfer(&r, &out, "after-emfile.bin", 100_000, 90);
    r.check_alive("after the transfer");
}

// ---------------------------------------------------------------------------
// The handshake deadline covers a key's PROOF

/// Writes `bytes` one at a time, `every` apart, until the peer cuts the
/// connection; returns how many went out before it did (as in
/// tests/admission.rs).
fn trickle(conn: &mut TcpStream, bytes: &[u8], every: Duration) -> usize {
    for (sent, b) in bytes.iter().enumerate() {
        if conn.write_all(&[*b]).is_err() {
            return sent;
        }
        thread::sleep(every);
        // a cut connection reads its end (or a refusal) at once
        conn.set_nonblocking(true).unwrap();
        let ended = match conn.read(&mut [0u8; 256]) {
            Ok(_) => true,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        };
        conn.set_nonblocking(false).unwrap();
        if ended {
            return sent + 1;
        }
    }
    bytes.len()
}

/// `zc recv -k --key --no-encrypt --timeout 3`: a peer that sends a valid
/// OFFER with a key's nonce, then its PROOF a byte at a time (each well
/// inside --timeout), has not proven anything yet: it is cut at the
/// handshake deadline (3 s), before its PROOF is whole, not held on for as
/// long as it trickles.
#[test]
fn a_peer_that_trickles_its_proof_is_cut_at_the_handshake_deadline() {
    let (_root, out) = layout();
    let mut cmd = recv_cmd(&out, &["-k", "--no-encrypt", "--timeout", "3"]);
    cmd.env("ZC_KEY", "correct horse battery staple");
    let r = spawn_receiver(cmd, Stdout::Null);
    let mut c = client(r.addr);
    let offer = TreeOffer {
        nonce: Some([5; 32]),
        ..single_offer()
    };
    c.write_all(&hello(&offer.encode())).unwrap();
    let challenge = proto::read_frame(&mut c).expect("the receiver's CHALLENGE");
    assert_eq!(challenge.kind, kind::CHALLENGE);
    let proof = frame(kind::PROOF, &[7; 32]);
    let sent = trickle(&mut c, &proof, Duration::from_millis(700));
    // without the deadline the whole PROOF goes out (26 s), then "wrong key"
    assert!(
        sent < proof.len(),
        "the receiver waited for the whole trickled PROOF"
    );
    sigint(&r.child);
    let done = r.finish(SUITE_TIMEOUT);
    done.says(&["handshake took longer"]);
}
