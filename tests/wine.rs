//! The Windows build, run: `zc.exe` (x86_64-pc-windows-gnu, linked with
//! mingw) under Wine talks to the Linux `zc` over 127.0.0.1 in both
//! directions, framed and `--raw`, and reads stdin through a real pipe.
//!
//! Needs Wine and a built `zc.exe`; `scripts/test.sh` installs and builds both:
//!
//!     apt-get install --no-install-recommends wine wine64 gcc-mingw-w64-x86-64
//!     cargo build --release --target x86_64-pc-windows-gnu
//!     x86_64-w64-mingw32-gcc -shared -O2 -s -o target/x86_64-pc-windows-gnu/release/bcryptprimitives.dll .ci/wine/bcryptprimitives.c -ladvapi32
//!
//! Where either is missing the tests say `skipped: ...` and pass, unless
//! `ZC_WINE_REQUIRED=1` (set by `.ci/run`), which turns a skip into a failure.
//! `ZC_WINE_EXE` names another `zc.exe`, `ZC_WINE` another Wine launcher.
//! Wine runs in its own prefix under the target directory (created on the
//! first start, which takes a few seconds).
//!
//! Wine's helper processes (wineserver, services.exe, winedevice.exe) may
//! inherit a Windows process's stdio and outlive it, so a pipe from `wine`
//! may never reach EOF: every Wine child writes its stdout and stderr to
//! files, and only its exit is waited for.
#![cfg(unix)]

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const MIB: u64 = 1 << 20;
/// A few MiB, not a multiple of any buffer size.
const SIZE: u64 = 3 * MIB + 12_345;
const SEED: u64 = 0x5EED_0057_1DE5;
/// SHA-256 of the test data: proves the generator (and so the comparison)
/// did not change under our feet.
const DATA_SHA256: &str = "b09bfc8f07d02885625cdcc5539f326b0a3100f393f0e917fbb865a51fc657b8";

/// The first Wine start creates the prefix.
const START_TIMEOUT: Duration = Duration::from_secs(240);
/// Any one transfer, Wine start included.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Writes straight to the process's stderr, past the test harness's capture,
/// so a skip or a timing is visible in a plain `cargo test` log.
fn say(line: &str) {
    let _ = writeln!(io::stderr(), "{line}");
}

/// Where to find and how to run `zc.exe` under Wine.
struct Wine {
    launcher: PathBuf,
    exe: PathBuf,
    prefix: PathBuf,
}

impl Wine {
    /// `wine zc.exe ARGS...` in our prefix, quiet, with stdin from /dev/null.
    fn zc(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.launcher);
        cmd.arg(&self.exe)
            .args(args)
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            // No Mono or Gecko installer prompts while the prefix is created.
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null());
        cmd
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `target/` of this build, from the Linux binary's own path
/// (`target/release/zc`), so `CARGO_TARGET_DIR` is honoured.
fn target_dir() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_zc"));
    bin.parent()
        .and_then(Path::parent)
        .expect("the zc binary lives in target/PROFILE/")
        .to_path_buf()
}

/// Why Wine cannot be used here, or how to use it.
fn locate() -> Result<Wine, String> {
    let launcher = match std::env::var_os("ZC_WINE") {
        Some(w) => PathBuf::from(w),
        None => find_in_path("wine")
            .or_else(|| find_in_path("wine64"))
            .or_else(|| Some(PathBuf::from("/usr/lib/wine/wine64")).filter(|p| p.is_file()))
            .ok_or("Wine is not installed (apt-get install wine wine64)")?,
    };
    let exe = match std::env::var_os("ZC_WINE_EXE") {
        Some(e) => PathBuf::from(e),
        None => target_dir().join("x86_64-pc-windows-gnu/release/zc.exe"),
    };
    if !exe.is_file() {
        return Err(format!(
            "{} does not exist (cargo build --release --target x86_64-pc-windows-gnu)",
            exe.display()
        ));
    }
    let prefix = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wineprefix");
    Ok(Wine {
        launcher,
        exe,
        prefix,
    })
}

/// Starts Wine once for all tests (creating the prefix, which must not
/// happen concurrently) and checks that `zc.exe` runs at all.
fn start(wine: Wine) -> Wine {
    fs::create_dir_all(&wine.prefix).expect("creating the Wine prefix directory");
    let logs = tempfile::tempdir().unwrap();
    let began = Instant::now();
    let out = run_logged(
        wine.zc(&["--version"]),
        logs.path(),
        "version",
        START_TIMEOUT,
    );
    let dll = wine.exe.with_file_name("bcryptprimitives.dll");
    assert!(
        out.code == 0 && out.stdout_text().starts_with("zc "),
        "`wine zc.exe --version` failed (exit {}); stdout: {:?}; stderr:\n{}\n\
         (Wine 8 lacks bcryptprimitives.dll, which Rust's std needs: the stub {} \
         is built from .ci/wine/bcryptprimitives.c by scripts/test.sh; it {})",
        out.code,
        out.stdout_text(),
        out.stderr,
        dll.display(),
        if dll.is_file() {
            "is there"
        } else {
            "is MISSING"
        }
    );
    if let Some(newer) = newer_source(&wine.exe) {
        say(&format!(
            "wine: note: {} is newer than zc.exe; rebuild it \
             (cargo build --release --target x86_64-pc-windows-gnu) to test the current code",
            newer.display()
        ));
    }
    say(&format!(
        "wine: {} runs under {} ({}, first start {:.1} s)",
        wine.exe.display(),
        wine.launcher.display(),
        out.stdout_text().trim(),
        began.elapsed().as_secs_f64()
    ));
    wine
}

/// A file under src/ modified after `exe` was built, if any.
fn newer_source(exe: &Path) -> Option<PathBuf> {
    let built = fs::metadata(exe).and_then(|m| m.modified()).ok()?;
    let mut dirs = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            let meta = entry.metadata().ok()?;
            if meta.is_dir() {
                dirs.push(path);
            } else if meta.modified().is_ok_and(|m| m > built) {
                return Some(path);
            }
        }
    }
    None
}

/// Wine, ready; `None` (after saying why, once) where it cannot run here.
fn wine() -> Option<&'static Wine> {
    static WINE: OnceLock<Option<Wine>> = OnceLock::new();
    WINE.get_or_init(|| match locate() {
        Ok(wine) => Some(start(wine)),
        Err(why) => {
            let required = std::env::var("ZC_WINE_REQUIRED").is_ok_and(|v| v == "1");
            assert!(!required, "ZC_WINE_REQUIRED=1 but {why}");
            say(&format!("skipped: Windows interop tests under Wine: {why}"));
            None
        }
    })
    .as_ref()
}

/// A child that is killed if the test ends while it still runs.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn wait_timeout(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {timeout:?}; killed");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A child whose stdout and stderr go to files.
struct Logged {
    child: Guard,
    stdout: PathBuf,
    stderr: PathBuf,
    what: String,
}

struct Outcome {
    code: i32,
    stdout: PathBuf,
    stderr: String,
}

impl Outcome {
    fn stdout_text(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    fn expect_ok(&self, what: &str) -> &Self {
        assert_eq!(
            self.code, 0,
            "{what}: exit {}; stderr:\n{}",
            self.code, self.stderr
        );
        self
    }
}

fn spawn_logged(mut cmd: Command, dir: &Path, name: &str, stdin: Stdio) -> Logged {
    let stdout = dir.join(format!("{name}.stdout"));
    let stderr = dir.join(format!("{name}.stderr"));
    cmd.stdin(stdin)
        .stdout(File::create(&stdout).unwrap())
        .stderr(File::create(&stderr).unwrap());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
    Logged {
        child: Guard(child),
        stdout,
        stderr,
        what: name.to_string(),
    }
}

impl Logged {
    fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The port in `zc: listening on 127.0.0.1:PORT`, once it appears.
    fn port(&mut self, timeout: Duration) -> u16 {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.stderr_text();
            if let Some(rest) = text.split("listening on ").nth(1) {
                if let Some(line) = rest.lines().next().filter(|_| rest.contains('\n')) {
                    let port = line.trim().rsplit(':').next().and_then(|p| p.parse().ok());
                    return port.unwrap_or_else(|| panic!("{}: no port in {line:?}", self.what));
                }
            }
            if let Some(status) = self.child.0.try_wait().unwrap() {
                panic!(
                    "{} ended ({status}) before listening; stderr:\n{text}",
                    self.what
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not say where it listens within {timeout:?}; stderr:\n{text}",
                self.what
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn finish(mut self, timeout: Duration) -> Outcome {
        let status = wait_timeout(&mut self.child.0, timeout, &self.what);
        Outcome {
            code: status.code().unwrap_or(-1),
            stderr: self.stderr_text(),
            stdout: self.stdout.clone(),
        }
    }
}

fn run_logged(cmd: Command, dir: &Path, name: &str, timeout: Duration) -> Outcome {
    spawn_logged(cmd, dir, name, Stdio::null()).finish(timeout)
}

/// The Linux `zc`.
fn linux_zc(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zc"));
    cmd.args(args).stdin(Stdio::null());
    cmd
}

/// An absolute Unix path as Wine sees it (drive Z: is `/`).
fn win(path: &Path) -> String {
    assert!(path.is_absolute(), "{} is not absolute", path.display());
    format!("Z:{}", path.to_str().unwrap().replace('/', "\\"))
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// xorshift64*: deterministic test data without crates.
fn test_data(path: &Path) {
    let mut x = SEED;
    let mut out = io::BufWriter::new(File::create(path).unwrap());
    let mut left = SIZE;
    while left > 0 {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let word = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        let n = left.min(8) as usize;
        out.write_all(&word[..n]).unwrap();
        left -= n as u64;
    }
    out.flush().unwrap();
}

fn sha256_file(path: &Path) -> String {
    let mut file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; MIB as usize];
    loop {
        match file.read(&mut buf).unwrap() {
            0 => break,
            n => hasher.update(&buf[..n]),
        }
    }
    format!("{:x}", hasher.finalize())
}

/// A fresh directory holding the test data as `data.bin`, checked.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("data.bin");
    test_data(&src);
    assert_eq!(
        sha256_file(&src),
        DATA_SHA256,
        "the test data generator changed"
    );
    (dir, src)
}

/// Panics unless `got` holds exactly the bytes of `want`.
fn assert_same(want: &Path, got: &Path, what: &str) {
    let a = fs::read(want).unwrap();
    let b = fs::read(got).unwrap_or_else(|e| panic!("{what}: {}: {e}", got.display()));
    if a != b {
        let first = a.iter().zip(&b).position(|(x, y)| x != y);
        panic!(
            "{what}: {} differs from the source: {} bytes vs {}, first difference at {:?}",
            got.display(),
            b.len(),
            a.len(),
            first
        );
    }
    assert_eq!(sha256_file(got), DATA_SHA256, "{what}");
}

/// The `sha256 <hex>` a framed summary reports.
fn summary_sha(stderr: &str, what: &str) -> String {
    let rest = stderr
        .split("sha256 ")
        .nth(1)
        .unwrap_or_else(|| panic!("{what}: no sha256 in the summary:\n{stderr}"));
    rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect()
}

fn report(what: &str, began: Instant) {
    say(&format!(
        "wine: {what}: {SIZE} bytes, sha256 {}..., identical, {:.2} s",
        &DATA_SHA256[..16],
        began.elapsed().as_secs_f64()
    ));
}

#[test]
fn windows_sends_framed_to_linux() {
    let Some(wine) = wine() else { return };
    let began = Instant::now();
    let (dir, src) = setup();
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    let mut recv = spawn_logged(
        linux_zc(&["recv", "-l", "127.0.0.1:0", "-o", s(&out)]),
        dir.path(),
        "linux-recv",
        Stdio::null(),
    );
    let dest = format!("127.0.0.1:{}", recv.port(TIMEOUT));
    let sent = run_logged(
        wine.zc(&["send", &win(&src), &dest]),
        dir.path(),
        "wine-send",
        TIMEOUT,
    );
    sent.expect_ok("zc.exe send");
    let got = recv.finish(TIMEOUT);
    got.expect_ok("linux zc recv");
    assert_same(&src, &out.join("data.bin"), "zc.exe send -> linux recv");
    assert_eq!(summary_sha(&sent.stderr, "zc.exe send"), DATA_SHA256);
    assert_eq!(summary_sha(&got.stderr, "linux recv"), DATA_SHA256);
    // Windows has no sendfile(2): the buffered path must have carried it.
    assert!(
        sent.stderr.contains("buffered") && !sent.stderr.contains("zero-copy"),
        "zc.exe should report the buffered path:\n{}",
        sent.stderr
    );
    report("zc.exe send (framed) -> linux zc recv", began);
}

#[test]
fn linux_sends_framed_to_windows() {
    let Some(wine) = wine() else { return };
    let began = Instant::now();
    let (dir, src) = setup();
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    let mut recv = spawn_logged(
        wine.zc(&["recv", "-l", "127.0.0.1:0", "-o", &win(&out)]),
        dir.path(),
        "wine-recv",
        Stdio::null(),
    );
    let dest = format!("127.0.0.1:{}", recv.port(TIMEOUT));
    let sent = run_logged(
        linux_zc(&["send", s(&src), &dest]),
        dir.path(),
        "linux-send",
        TIMEOUT,
    );
    sent.expect_ok("linux zc send");
    let got = recv.finish(TIMEOUT);
    got.expect_ok("zc.exe recv");
    assert_same(&src, &out.join("data.bin"), "linux send -> zc.exe recv");
    assert!(
        !out.join("data.bin.zcpart").exists(),
        "zc.exe recv left its .zcpart behind"
    );
    assert_eq!(summary_sha(&sent.stderr, "linux send"), DATA_SHA256);
    assert_eq!(summary_sha(&got.stderr, "zc.exe recv"), DATA_SHA256);
    report("linux zc send (framed) -> zc.exe recv", began);
}

#[test]
fn windows_sends_raw_to_linux() {
    let Some(wine) = wine() else { return };
    let began = Instant::now();
    let (dir, src) = setup();
    let out = dir.path().join("raw.out");
    let mut recv = spawn_logged(
        linux_zc(&["recv", "--raw", "-l", "127.0.0.1:0", "-o", s(&out)]),
        dir.path(),
        "linux-recv",
        Stdio::null(),
    );
    let dest = format!("127.0.0.1:{}", recv.port(TIMEOUT));
    run_logged(
        wine.zc(&["send", "--raw", &win(&src), &dest]),
        dir.path(),
        "wine-send",
        TIMEOUT,
    )
    .expect_ok("zc.exe send --raw");
    recv.finish(TIMEOUT).expect_ok("linux zc recv --raw");
    assert_same(&src, &out, "zc.exe send --raw -> linux recv --raw");
    report("zc.exe send --raw -> linux zc recv --raw", began);
}

#[test]
fn linux_sends_raw_to_windows_stdout() {
    let Some(wine) = wine() else { return };
    let began = Instant::now();
    let (dir, src) = setup();
    // No -o: the bytes go to zc.exe's stdout, which must stay binary-clean
    // (no CRLF translation) on Windows.
    let mut recv = spawn_logged(
        wine.zc(&["recv", "--raw", "-l", "127.0.0.1:0"]),
        dir.path(),
        "wine-recv",
        Stdio::null(),
    );
    let dest = format!("127.0.0.1:{}", recv.port(TIMEOUT));
    run_logged(
        linux_zc(&["send", "--raw", s(&src), &dest]),
        dir.path(),
        "linux-send",
        TIMEOUT,
    )
    .expect_ok("linux zc send --raw");
    let got = recv.finish(TIMEOUT);
    got.expect_ok("zc.exe recv --raw");
    assert_same(
        &src,
        &got.stdout,
        "linux send --raw -> zc.exe recv --raw (stdout)",
    );
    report("linux zc send --raw -> zc.exe recv --raw > stdout", began);
}

#[test]
fn stdin_pipe_into_windows_send() {
    let Some(wine) = wine() else { return };
    let began = Instant::now();
    let (dir, src) = setup();
    let out = dir.path().join("from-stdin.bin");
    let mut recv = spawn_logged(
        linux_zc(&["recv", "-l", "127.0.0.1:0", "-o", s(&out)]),
        dir.path(),
        "linux-recv",
        Stdio::null(),
    );
    let dest = format!("127.0.0.1:{}", recv.port(TIMEOUT));
    let mut send = spawn_logged(
        wine.zc(&["send", "-", &dest]),
        dir.path(),
        "wine-send-stdin",
        Stdio::piped(),
    );
    // A real pipe, written in pieces from a thread, closed at the end.
    let mut pipe = send.child.0.stdin.take().unwrap();
    let source = src.clone();
    let feeder = thread::spawn(move || {
        let mut file = File::open(source).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            if pipe.write_all(&buf[..n]).is_err() {
                break; // the child stopped reading; its exit code says why
            }
        }
    });
    let sent = send.finish(TIMEOUT);
    // Only after a clean exit: Wine's helpers may hold the pipe's read end,
    // so a feeder whose reader died early could block forever.
    sent.expect_ok("zc.exe send -");
    feeder.join().unwrap();
    recv.finish(TIMEOUT).expect_ok("linux zc recv");
    assert_same(&src, &out, "pipe | zc.exe send - -> linux recv");
    assert_eq!(summary_sha(&sent.stderr, "zc.exe send -"), DATA_SHA256);
    report("pipe | zc.exe send - (framed) -> linux zc recv", began);
}
