//! Scale: a sparse file past 4 GiB (past 32-bit offsets and sendfile's per-call cap) sent framed and raw.
#![cfg(unix)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

/// 4 GiB + 4 KiB + 7: past 2^32 and not a multiple of any block size.
const SIZE: u64 = (4 << 30) + 4096 + 7;
/// Non-zero bytes at known places: near the start, straddling byte 2^32,
/// and ending at the last byte.
const MARKS: [(u64, &[u8]); 3] = [
    (1000, b"near the start"),
    ((1 << 32) - 3, b"<2^32>"),
    (SIZE - 8, b"the end!"),
];
/// Generous: a 4 GiB transfer verified on both ends on a busy 2-core machine.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Where the files go: $ZC_SCALE_DIR, else /dev/shm when it has room for the
/// received copy (keeping the virtual disk out of it), else the temp dir.
fn work_dir() -> tempfile::TempDir {
    let base = std::env::var_os("ZC_SCALE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let shm = Path::new("/dev/shm");
            (shm.is_dir() && free_bytes(shm) > SIZE + (1 << 30)).then(|| shm.to_path_buf())
        })
        .unwrap_or_else(std::env::temp_dir);
    tempfile::Builder::new()
        .prefix("zc-scale-")
        .tempdir_in(base)
        .expect("creating the work dir")
}

fn free_bytes(path: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is NUL-terminated and outlives the call; `stat` is
    // read only after statvfs returned 0, having filled it.
    if unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return 0;
    }
    // SAFETY: see above.
    let stat = unsafe { stat.assume_init() };
    #[allow(clippy::unnecessary_cast)]
    (stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64)
}

/// The sparse source: SIZE bytes of holes but for the marks.
fn sparse_source(dir: &Path) -> PathBuf {
    let path = dir.join("big.bin");
    let file = File::create(&path).expect("creating the source");
    file.set_len(SIZE).expect("sizing the source");
    for (at, bytes) in MARKS {
        file.write_all_at(bytes, at).expect("writing a mark");
    }
    path
}

fn zc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zc"))
}

/// A child killed (and reaped) if the test ends while it still runs.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Waits for the child at most TIMEOUT, killing it past that; its exit code.
fn finish(child: &mut Running, what: &str) -> i32 {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.0.try_wait().expect("waiting") {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.0.kill();
            panic!("{what}: still running after {TIMEOUT:?}; killed");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A receiver on 127.0.0.1:0 whose address was read from its first
/// `listening` event; its stderr is collected in full on a thread.
struct Receiver {
    child: Running,
    addr: String,
    stderr: JoinHandle<Vec<String>>,
}

fn start_receiver(args: &[&str], stdout: Stdio) -> Receiver {
    let mut child = Running(
        zc().args(["recv", "--json", "--progress", "none", "-l", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting zc recv"),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let lines = thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) =
                event(&line, "listening").and_then(|e| e["addr"].as_str().map(String::from))
            {
                let _ = tx.send(addr);
            }
            all.push(line);
        }
        all
    });
    let Ok(addr) = rx.recv_timeout(Duration::from_secs(30)) else {
        drop(child);
        panic!("zc recv did not listen: {:?}", lines.join().unwrap());
    };
    Receiver {
        child,
        addr,
        stderr: lines,
    }
}

/// The JSON event `name` if `line` is one.
fn event(line: &str, name: &str) -> Option<Value> {
    let value: Value = serde_json::from_str(line).ok()?;
    (value["event"] == name).then_some(value)
}

/// Runs `zc send ARGS FILE ADDR` to its end; its exit code and stderr lines.
fn send(args: &[&str], file: &Path, addr: &str) -> (i32, Vec<String>) {
    let mut child = Running(
        zc().args(["send", "--json", "--progress", "none"])
            .args(args)
            .arg(file)
            .arg(addr)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting zc send"),
    );
    let mut stderr = child.0.stderr.take().unwrap();
    let reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let code = finish(&mut child, "zc send");
    let text = reader.join().unwrap();
    (code, text.lines().map(String::from).collect())
}

/// The one `done` event among `lines`.
fn done(lines: &[String], who: &str) -> Value {
    let all: Vec<Value> = lines.iter().filter_map(|l| event(l, "done")).collect();
    assert_eq!(all.len(), 1, "{who}: one done event expected in {lines:#?}");
    all.into_iter().next().unwrap()
}

/// Both sides' stderr, for failure messages.
fn both(sender: &[String], receiver: &[String]) -> String {
    format!("sender: {sender:#?}\nreceiver: {receiver:#?}")
}

/// Ignored by default: the receiver writes 4 GiB (to /dev/shm when it has
/// room, else the temp dir) and both ends hash it: 6-18 s in release on a
/// busy 2-core machine.
#[test]
#[ignore = "scale: 4 GiB, run with cargo test --release -- --ignored"]
fn framed_sparse_file_past_4_gib_arrives_whole_and_verified() {
    let dir = work_dir();
    let source = sparse_source(dir.path());
    let target = dir.path().join("received.bin");
    let mut receiver = start_receiver(&["-o", target.to_str().unwrap()], Stdio::null());
    let (send_code, send_lines) = send(&[], &source, &receiver.addr);
    let recv_code = finish(&mut receiver.child, "zc recv");
    let recv_lines = receiver.stderr.join().unwrap();
    assert_eq!(
        (send_code, recv_code),
        (0, 0),
        "{}",
        both(&send_lines, &recv_lines)
    );

    let sent = done(&send_lines, "sender");
    let got = done(&recv_lines, "receiver");
    assert_eq!(sent["bytes"], SIZE, "{sent}");
    assert_eq!(got["bytes"], SIZE, "{got}");
    let sha = sent["sha256"].as_str().expect("the sender's sha256");
    assert_eq!(sha.len(), 64, "{sent}");
    assert_eq!(
        got["sha256"].as_str(),
        Some(sha),
        "{}",
        both(&send_lines, &recv_lines)
    );

    let file = File::open(&target).expect("the received file");
    assert_eq!(file.metadata().unwrap().len(), SIZE);
    for (at, bytes) in MARKS {
        let mut buf = vec![0u8; bytes.len() + 2];
        let start = at - 1;
        let n = file.read_at(&mut buf, start).expect("reading a mark");
        let want_len = (SIZE - start).min(buf.len() as u64) as usize;
        assert_eq!(n, want_len, "bytes readable at {start}");
        assert_eq!(buf[0], 0, "the byte before the mark at {at}");
        assert_eq!(&buf[1..1 + bytes.len()], bytes, "the mark at {at}");
        if n > bytes.len() + 1 {
            assert_eq!(buf[bytes.len() + 1], 0, "the byte after the mark at {at}");
        }
    }
    assert!(
        !dir.path().join("received.bin.zcpart").exists(),
        "the part was renamed into place"
    );
}

/// Cheap enough to run always: the source is sparse and the bytes go to
/// /dev/null, so nothing is hashed or stored (~2 s).
#[test]
fn raw_sparse_file_past_4_gib_to_stdout_counts_every_byte() {
    let dir = work_dir();
    let source = sparse_source(dir.path());
    let mut receiver = start_receiver(&["--raw", "-o", "-"], Stdio::null());
    let (send_code, send_lines) = send(&["--raw"], &source, &receiver.addr);
    let recv_code = finish(&mut receiver.child, "zc recv");
    let recv_lines = receiver.stderr.join().unwrap();
    assert_eq!(
        (send_code, recv_code),
        (0, 0),
        "{}",
        both(&send_lines, &recv_lines)
    );
    assert_eq!(done(&send_lines, "sender")["bytes"], SIZE);
    assert_eq!(
        done(&recv_lines, "receiver")["bytes"],
        SIZE,
        "{}",
        both(&send_lines, &recv_lines)
    );
}
