//! The Windows build, run: `zc.exe` (x86_64-pc-windows-gnu, linked with
//! mingw) under Wine talks to the Linux `zc` over 127.0.0.1 in both
//! directions, framed, encrypted (a code made on Windows, a key) and `--raw`,
//! and reads stdin through a real pipe; whole
//! trees cross both ways too, and a Windows receiver refuses, one by one, the
//! names and links Windows cannot hold.
//!
//! Needs Wine and a built `zc.exe`; `scripts/test.sh` installs and builds both:
//!
//!     apt-get install --no-install-recommends wine wine64 gcc-mingw-w64-x86-64
//!     cargo build --release --target x86_64-pc-windows-gnu
//!     x86_64-w64-mingw32-gcc -shared -O2 -s -o target/x86_64-pc-windows-gnu/release/bcryptprimitives.dll .ci/wine/bcryptprimitives.c -ladvapi32
//!
//! Where either is missing the tests say `SKIP: ...` and pass, unless
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

mod common;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    all_paths, code_in, code_of, expect_summary_sha, hex, s, say, sha256_file,
    skip_unless_required, wait_timeout, Guard, Outcome, CACHE, MIB,
};
use sha2::{Digest, Sha256};
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
            // Wine maps Unix file names through the locale's character set:
            // under C/POSIX (LANG unset, as on a fresh container or chroot)
            // `été` is not a valid name. C.UTF-8 is built into Debian's libc.
            .env("LC_ALL", "C.UTF-8")
            // No Mono or Gecko installer prompts while the prefix is created.
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null());
        cmd
    }

    /// `wine zc.exe recv -l 127.0.0.1:0 ARGS...`.
    fn recv(&self, args: &[&str]) -> Command {
        let mut cmd = self.zc(&["recv", "-l", "127.0.0.1:0"]);
        cmd.args(args);
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
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.code == 0 && version.starts_with("zc "),
        "`wine zc.exe --version` failed (exit {}); stdout: {:?}; stderr:\n{}\n\
         (Wine 8 lacks bcryptprimitives.dll, which Rust's std needs: the stub {} \
         is built from .ci/wine/bcryptprimitives.c by scripts/test.sh; it {})",
        out.code,
        version,
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
        version.trim(),
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
            skip_unless_required("ZC_WINE_REQUIRED", "Windows interop tests under Wine", &why);
            None
        }
    })
    .as_ref()
}

/// A child whose stdout and stderr go to files.
struct Logged {
    child: Guard,
    stdout: PathBuf,
    stderr: PathBuf,
    what: String,
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
            if let Some(status) = self.child.try_wait().unwrap() {
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
        let status = wait_timeout(&mut self.child, timeout, &self.what);
        Outcome {
            code: code_of(status),
            stdout: fs::read(&self.stdout).unwrap_or_default(),
            stderr: self.stderr_text(),
        }
    }
}

fn run_logged(cmd: Command, dir: &Path, name: &str, timeout: Duration) -> Outcome {
    spawn_logged(cmd, dir, name, Stdio::null()).finish(timeout)
}

/// The Linux `zc`.
fn linux_zc(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zc"));
    cmd.args(args)
        .stdin(Stdio::null())
        .env("XDG_CACHE_HOME", CACHE);
    cmd
}

/// `zc recv -l 127.0.0.1:0 ARGS...` on Linux.
fn linux_recv(args: &[&str]) -> Command {
    let mut cmd = linux_zc(&["recv", "-l", "127.0.0.1:0"]);
    cmd.args(args);
    cmd
}

/// `cmd` with `ZC_KEY` set to `key`.
fn with_key(mut cmd: Command, key: &str) -> Command {
    cmd.env("ZC_KEY", key);
    cmd
}

/// Which `zc` a command runs: a name for its logs, and one for messages.
fn side(cmd: &Command) -> (&'static str, &'static str) {
    if cmd.get_program() == Path::new(env!("CARGO_BIN_EXE_zc")) {
        ("linux", "zc")
    } else {
        ("wine", "zc.exe")
    }
}

/// An absolute Unix path as Wine sees it (drive Z: is `/`).
fn win(path: &Path) -> String {
    assert!(path.is_absolute(), "{} is not absolute", path.display());
    format!("Z:{}", path.to_str().unwrap().replace('/', "\\"))
}

/// Pseudo-random bytes, xorshift64*, seeded: the test data (an odd seed is
/// its own start) and the files of the trees.
fn random_bytes(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(size);
    out
}

/// Panics unless `got` holds exactly the bytes of `want`, the test data.
fn assert_same(want: &Path, got: &Path, what: &str) {
    let b = fs::read(got).unwrap_or_else(|e| panic!("{what}: {}: {e}", got.display()));
    assert_is_data(want, &b, &format!("{what}: {}", got.display()));
}

/// [`assert_same`] for bytes in memory (a receiver's stdout).
fn assert_is_data(want: &Path, got: &[u8], what: &str) {
    let a = fs::read(want).unwrap();
    if a != got {
        let first = a.iter().zip(got).position(|(x, y)| x != y);
        panic!(
            "{what} differs from the source: {} bytes vs {}, first difference at {:?}",
            got.len(),
            a.len(),
            first
        );
    }
    assert_eq!(hex(&Sha256::digest(got)), DATA_SHA256, "{what}");
}

/// One test: Wine, a scratch directory (its files and its children's logs)
/// and when the test began, for its report line.
struct Case {
    wine: &'static Wine,
    dir: tempfile::TempDir,
    began: Instant,
}

/// A [`portable_tree`] at `top`, and an empty directory `out` to receive it.
struct Tree {
    top: PathBuf,
    out: PathBuf,
    files: usize,
    bytes: u64,
}

impl Case {
    /// `None` where Wine cannot run here (the skip is said once).
    fn new() -> Option<Case> {
        let wine = wine()?;
        Some(Case {
            wine,
            dir: tempfile::tempdir().unwrap(),
            began: Instant::now(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A new, empty directory `name`.
    fn mkdir(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        fs::create_dir(&path).unwrap();
        path
    }

    /// The test data as `data.bin`, checked.
    fn data(&self) -> PathBuf {
        let src = self.path("data.bin");
        fs::write(&src, random_bytes(SIZE as usize, SEED)).unwrap();
        assert_eq!(
            sha256_file(&src),
            DATA_SHA256,
            "the test data generator changed"
        );
        src
    }

    /// [`portable_tree`] at `top` with what `more` adds to it, its times
    /// stamped, and an empty `out`.
    fn tree(&self, more: impl FnOnce(&Path)) -> Tree {
        let (top, out) = (self.path("top"), self.mkdir("out"));
        let (files, bytes) = portable_tree(&top);
        more(&top);
        stamp_times(&top);
        Tree {
            top,
            out,
            files,
            bytes,
        }
    }

    /// Starts the receiver `recv` (listening on 127.0.0.1:0), logged as
    /// `name`: it, once it says where it listens, and that `HOST:PORT`.
    fn listen(&self, recv: Command, name: &str) -> (Logged, String) {
        let mut recv = spawn_logged(recv, self.dir.path(), name, Stdio::null());
        let dest = format!("127.0.0.1:{}", recv.port(TIMEOUT));
        (recv, dest)
    }

    /// `cmd` run to its end, logged as `name`.
    fn run(&self, cmd: Command, name: &str) -> Outcome {
        run_logged(cmd, self.dir.path(), name, TIMEOUT)
    }

    /// The receiver `recv`, then the sender `send(HOST:PORT)` to it, both
    /// exiting `code`: the sender's outcome, then the receiver's.
    fn transfer(
        &self,
        code: i32,
        recv: Command,
        send: impl FnOnce(&str) -> Command,
    ) -> (Outcome, Outcome) {
        let (recv_log, recv_zc) = side(&recv);
        let (recv, dest) = self.listen(recv, &format!("{recv_log}-recv"));
        let send = send(&dest);
        let (send_log, send_zc) = side(&send);
        let sent = self.run(send, &format!("{send_log}-send"));
        // The sender first: a receiver may wait for a sender that failed.
        assert_eq!(
            sent.code,
            code,
            "{send_zc} send: exit {} (wanted {code}); stderr:\n{}\n{recv_zc} recv's stderr so far:\n{}",
            sent.code,
            sent.stderr,
            recv.stderr_text()
        );
        let got = recv.finish(TIMEOUT);
        got.expect_code(code, &format!("{recv_zc} recv"));
        (sent, got)
    }

    fn report(&self, what: &str) {
        say(&format!(
            "wine: {what}: {SIZE} bytes, sha256 {}..., identical, {:.2} s",
            &DATA_SHA256[..16],
            self.began.elapsed().as_secs_f64()
        ));
    }

    fn report_tree(&self, what: &str, files: usize, bytes: u64) {
        say(&format!(
            "wine: {what}: {files} files, {bytes} bytes, identical, {:.2} s",
            self.began.elapsed().as_secs_f64()
        ));
    }

    /// `zc send TOP` on Linux to `zc.exe recv -o OUT` under Wine, both
    /// exiting `code`: the sender's outcome, then the receiver's.
    fn tree_to_windows(&self, tree: &Tree, code: i32) -> (Outcome, Outcome) {
        let recv = self.wine.recv(&["-o", &win(&tree.out)]);
        self.transfer(code, recv, |dest| linux_zc(&["send", s(&tree.top), dest]))
    }
}

#[test]
fn windows_sends_framed_to_linux() {
    let Some(t) = Case::new() else { return };
    let (src, out) = (t.data(), t.mkdir("out"));
    let (sent, got) = t.transfer(0, linux_recv(&["-o", s(&out)]), |dest| {
        t.wine.zc(&["send", &win(&src), dest])
    });
    assert_same(&src, &out.join("data.bin"), "zc.exe send -> linux recv");
    assert_eq!(expect_summary_sha(&sent.stderr, "zc.exe send"), DATA_SHA256);
    assert_eq!(expect_summary_sha(&got.stderr, "linux recv"), DATA_SHA256);
    // Windows has no sendfile(2): the buffered path must have carried it.
    sent.expect(0, &["buffered"], "zc.exe send");
    assert!(
        !sent.stderr.contains("zero-copy"),
        "zc.exe should report the buffered path:\n{}",
        sent.stderr
    );
    t.report("zc.exe send (framed) -> linux zc recv");
}

#[test]
fn linux_sends_framed_to_windows() {
    let Some(t) = Case::new() else { return };
    let (src, out) = (t.data(), t.mkdir("out"));
    let (sent, got) = t.transfer(0, t.wine.recv(&["-o", &win(&out)]), |dest| {
        linux_zc(&["send", s(&src), dest])
    });
    assert_same(&src, &out.join("data.bin"), "linux send -> zc.exe recv");
    assert!(
        !out.join("data.bin.zcpart").exists(),
        "zc.exe recv left its .zcpart behind"
    );
    assert_eq!(expect_summary_sha(&sent.stderr, "linux send"), DATA_SHA256);
    assert_eq!(expect_summary_sha(&got.stderr, "zc.exe recv"), DATA_SHA256);
    t.report("linux zc send (framed) -> zc.exe recv");
}

#[test]
fn windows_makes_a_code_and_receives_encrypted_from_linux() {
    let Some(t) = Case::new() else { return };
    let (src, out) = (t.data(), t.mkdir("out"));
    let recv = t.wine.recv(&["-o", &win(&out), "--code"]);
    let (recv, dest) = t.listen(recv, "wine-recv-code");
    let code = code_in(&recv.stderr_text());
    let sent = t.run(
        linux_zc(&["send", s(&src), &dest, "--code", &code]),
        "linux-send-code",
    );
    sent.expect(0, &["encrypted"], "linux zc send --code");
    let got = recv.finish(TIMEOUT);
    got.expect(0, &["encrypted"], "zc.exe recv --code");
    assert_same(
        &src,
        &out.join("data.bin"),
        "linux send --code -> zc.exe recv",
    );
    assert_eq!(expect_summary_sha(&got.stderr, "zc.exe recv"), DATA_SHA256);
    t.report("linux zc send --code -> zc.exe recv --code (encrypted)");
}

#[test]
fn windows_sends_encrypted_with_a_key_to_linux() {
    let Some(t) = Case::new() else { return };
    let (src, out) = (t.data(), t.mkdir("out"));
    let key = "a key both sides hold";
    let send = |dest: &str, key: &str| with_key(t.wine.zc(&["send", &win(&src), dest]), key);
    let recv = || with_key(linux_recv(&["-o", s(&out)]), key);
    let (sent, got) = t.transfer(0, recv(), |dest| send(dest, key));
    assert_same(
        &src,
        &out.join("data.bin"),
        "zc.exe send -> linux recv, keyed",
    );
    assert_eq!(expect_summary_sha(&sent.stderr, "zc.exe send"), DATA_SHA256);
    sent.expect(0, &["encrypted"], "zc.exe send with ZC_KEY");
    got.expect(0, &["encrypted"], "linux zc recv with ZC_KEY");
    // a wrong key from Windows is refused before anything lands
    fs::remove_file(out.join("data.bin")).unwrap();
    let (sent, _) = t.transfer(4, recv(), |dest| send(dest, "not the key"));
    sent.expect(4, &["wrong key"], "zc.exe send with the wrong key");
    assert!(
        fs::read_dir(&out).unwrap().next().is_none(),
        "something landed"
    );
    t.report("zc.exe send -> linux zc recv with ZC_KEY (encrypted), and a wrong key");
}

#[test]
fn windows_sends_raw_to_linux() {
    let Some(t) = Case::new() else { return };
    let (src, out) = (t.data(), t.path("raw.out"));
    t.transfer(0, linux_recv(&["--raw", "-o", s(&out)]), |dest| {
        t.wine.zc(&["send", "--raw", &win(&src), dest])
    });
    assert_same(&src, &out, "zc.exe send --raw -> linux recv --raw");
    t.report("zc.exe send --raw -> linux zc recv --raw");
}

#[test]
fn linux_sends_raw_to_windows_stdout() {
    let Some(t) = Case::new() else { return };
    let src = t.data();
    // No -o: the bytes go to zc.exe's stdout, which must stay binary-clean
    // (no CRLF translation) on Windows.
    let (_, got) = t.transfer(0, t.wine.recv(&["--raw"]), |dest| {
        linux_zc(&["send", "--raw", s(&src), dest])
    });
    assert_is_data(
        &src,
        &got.stdout,
        "linux send --raw -> zc.exe recv --raw (stdout)",
    );
    t.report("linux zc send --raw -> zc.exe recv --raw > stdout");
}

#[test]
fn stdin_pipe_into_windows_send() {
    let Some(t) = Case::new() else { return };
    let (src, out) = (t.data(), t.path("from-stdin.bin"));
    let (recv, dest) = t.listen(linux_recv(&["-o", s(&out)]), "linux-recv");
    let mut send = spawn_logged(
        t.wine.zc(&["send", "-", &dest]),
        t.dir.path(),
        "wine-send-stdin",
        Stdio::piped(),
    );
    // A real pipe, written in pieces from a thread, closed at the end.
    let mut pipe = send.child.stdin.take().unwrap();
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
    sent.expect_code(0, "zc.exe send -");
    feeder.join().unwrap();
    recv.finish(TIMEOUT).expect_code(0, "linux zc recv");
    assert_same(&src, &out, "pipe | zc.exe send - -> linux recv");
    assert_eq!(
        expect_summary_sha(&sent.stderr, "zc.exe send -"),
        DATA_SHA256
    );
    t.report("pipe | zc.exe send - (framed) -> linux zc recv");
}

// ---------------------------------------------------------------------------
// Trees: a directory in one session, each way

/// Windows keeps file times in 100 ns units: a time crossing to or from it
/// lands cut down to one (Rust's std and Wine both truncate).
const WINDOWS_TICK_NS: u64 = 100;

/// Writes `data` at `top/rel`, creating the parents.
fn put(top: &Path, rel: &str, data: &[u8]) {
    let path = top.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// A tree any system can hold: nested directories, an empty directory
/// (two levels down too), an empty file, random files from a few KiB to just
/// over 1 MiB, a read-only file, names with a space and with non-ASCII
/// letters. Its modes are the three a Windows sender can express (0o644,
/// 0o444 read-only, 0o755 for directories), so they survive both ways.
fn portable_tree(top: &Path) -> (usize, u64) {
    let files: [(&str, usize); 8] = [
        ("a/b/c/deep.bin", MIB as usize + 7),
        ("a/b/mid.bin", 200_003),
        ("a/small.txt", 3_001),
        ("with space.txt", 4_096),
        ("été/ünïcödé.txt", 5_555),
        ("empty.bin", 0),
        ("a/read-only.txt", 1_234),
        ("z.bin", 65_537),
    ];
    let mut bytes = 0;
    for (i, (rel, size)) in files.iter().enumerate() {
        put(top, rel, &random_bytes(*size, SEED + i as u64));
        bytes += *size as u64;
    }
    fs::create_dir_all(top.join("empty dir")).unwrap();
    fs::create_dir_all(top.join("a/b/c/empty")).unwrap();
    for path in all_paths(top) {
        chmod(&path, if path.is_dir() { 0o755 } else { 0o644 });
    }
    chmod(&top.join("a/read-only.txt"), 0o444);
    (files.len(), bytes)
}

/// Gives every file and directory under `top` (and `top`) a distinct time
/// with a nanosecond part that is not a whole Windows tick, deepest first,
/// so that a directory's time is set after its content is complete.
fn stamp_times(top: &Path) {
    let mut paths = all_paths(top);
    paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, path) in paths.iter().enumerate() {
        let meta = fs::symlink_metadata(path).unwrap();
        if meta.is_file() || meta.is_dir() {
            let ns = 1_600_000_000_000_000_000 + i as u64 * 1_000_003_007 + 987_654_321;
            File::open(path)
                .and_then(|f| {
                    f.set_times(
                        fs::FileTimes::new()
                            .set_modified(std::time::UNIX_EPOCH + Duration::from_nanos(ns)),
                    )
                })
                .unwrap_or_else(|e| panic!("setting the time of {}: {e}", path.display()));
        }
    }
}

fn mtime_ns(meta: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime() as u64 * 1_000_000_000 + meta.mtime_nsec() as u64
}

/// What a receiver can keep of the permission bits.
#[derive(Clone, Copy)]
enum Modes {
    /// Every bit (a Linux receiver of a Windows sender's 0o644/0o444/0o755).
    Exact,
    /// A file's owner write bit only (Windows' read-only attribute, which
    /// Wine shows as no write bits); directories keep none.
    ReadOnly,
}

/// The first difference between the tree at `want` and the one at `got`,
/// leaving out the paths in `refused` (on the `want` side): kind, names,
/// content, permission bits as `modes` says, modification time cut to a
/// Windows tick.
fn tree_diff(want: &Path, got: &Path, refused: &[PathBuf], modes: Modes) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let w = fs::symlink_metadata(want).unwrap();
    let g = fs::symlink_metadata(got).map_err(|e| format!("{}: missing ({e})", got.display()))?;
    if (w.is_file(), w.is_dir()) != (g.is_file(), g.is_dir()) || g.file_type().is_symlink() {
        return Err(format!(
            "{}: a {:?}, expected a {:?}",
            got.display(),
            g.file_type(),
            w.file_type()
        ));
    }
    let (wm, gm) = (
        w.permissions().mode() & 0o777,
        g.permissions().mode() & 0o777,
    );
    let modes_differ = match modes {
        Modes::Exact => wm != gm,
        Modes::ReadOnly => g.is_file() && (wm & 0o200) != (gm & 0o200),
    };
    if modes_differ {
        return Err(format!("{}: mode {gm:o}, expected {wm:o}", got.display()));
    }
    if g.is_file() {
        let (a, b) = (fs::read(want).unwrap(), fs::read(got).unwrap());
        if a != b {
            return Err(format!(
                "{}: {} bytes, expected {}, first difference at {:?}",
                got.display(),
                b.len(),
                a.len(),
                a.iter().zip(&b).position(|(x, y)| x != y)
            ));
        }
    } else {
        let names = |dir: &Path, skip: &[PathBuf]| -> Vec<std::ffi::OsString> {
            let mut v: Vec<_> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap())
                .filter(|e| !skip.contains(&e.path()))
                .map(|e| e.file_name())
                .collect();
            v.sort();
            v
        };
        let (wn, gn) = (names(want, refused), names(got, &[]));
        if wn != gn {
            return Err(format!("{}: holds {gn:?}, expected {wn:?}", got.display()));
        }
        for name in &wn {
            tree_diff(&want.join(name), &got.join(name), refused, modes)?;
        }
    }
    let (wt, gt) = (mtime_ns(&w), mtime_ns(&g));
    if gt != wt / WINDOWS_TICK_NS * WINDOWS_TICK_NS {
        return Err(format!(
            "{}: mtime {gt} ns, expected {wt} ns cut to a {WINDOWS_TICK_NS} ns tick",
            got.display()
        ));
    }
    Ok(())
}

fn assert_same_tree(want: &Path, got: &Path, refused: &[PathBuf], modes: Modes, what: &str) {
    if let Err(diff) = tree_diff(want, got, refused, modes) {
        panic!("{what}: the trees differ: {diff}");
    }
}

#[test]
fn linux_sends_a_tree_to_windows() {
    let Some(t) = Case::new() else { return };
    let tree = t.tree(|_| {});
    let (sent, got) = t.tree_to_windows(&tree, 0);
    assert_same_tree(
        &tree.top,
        &tree.out.join("top"),
        &[],
        Modes::ReadOnly,
        "linux send TREE -> zc.exe recv",
    );
    let count = format!("{} files", tree.files);
    sent.expect(0, &[&count], "the sender");
    got.expect(0, &[&count], "the zc.exe receiver");
    t.report_tree(
        "linux zc send TREE -> zc.exe recv -o DIR",
        tree.files,
        tree.bytes,
    );
}

#[test]
fn windows_refuses_names_it_cannot_hold_and_the_rest_of_the_tree_lands() {
    use std::os::unix::ffi::OsStrExt;
    let Some(t) = Case::new() else { return };
    let not_utf8 = t
        .path("top")
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"));
    let tree = t.tree(|top| {
        // Legal on Linux, not on Windows: each refused on its own (a directory
        // with what it holds), and a link, which a Windows receiver does not make.
        put(top, "CON.txt", b"a device name\n");
        put(
            top,
            "a/aux.c",
            b"a device name, whatever the case and extension\n",
        );
        put(top, "a/x:y", b"a stream name\n");
        put(top, "what?/inner.txt", b"beneath a refused directory\n");
        put(top, "trailing.", b"Windows drops the dot\n");
        fs::write(&not_utf8, b"latin-1\n").unwrap();
        std::os::unix::fs::symlink("small.txt", top.join("a/link")).unwrap();
        // Names that differ only in case: the first in the sender's (sorted)
        // order lands, the second is refused rather than written over it.
        put(top, "README.txt", b"upper\n");
        put(top, "Readme.txt", b"mixed\n");
    });
    let (sent, got) = t.tree_to_windows(&tree, 5);
    let refused = [
        "CON.txt",
        "a/aux.c",
        "a/x:y",
        "what?",
        "trailing.",
        "a/link",
        "Readme.txt",
    ];
    for name in refused.iter().chain(&["caf\\xe9.txt"]) {
        for (side, stderr) in [("sender", &sent.stderr), ("zc.exe receiver", &got.stderr)] {
            assert!(
                stderr
                    .lines()
                    .any(|l| l.contains("refused") && l.contains(*name)),
                "the {side} should name {name} as refused:\n{stderr}"
            );
        }
    }
    // what?/inner.txt did not land either
    let gone = format!("{} did not land", refused.len() + 2);
    sent.expect(5, &[&gone], "the sender");
    got.expect(5, &[&gone], "the zc.exe receiver");
    let mut skip: Vec<PathBuf> = refused.iter().map(|r| tree.top.join(r)).collect();
    skip.push(not_utf8);
    assert_same_tree(
        &tree.top,
        &tree.out.join("top"),
        &skip,
        Modes::ReadOnly,
        "linux send TREE with names Windows refuses -> zc.exe recv",
    );
    assert_eq!(
        fs::read(tree.out.join("top/README.txt")).unwrap(),
        b"upper\n",
        "README.txt (sorted before Readme.txt) should land"
    );
    t.report_tree(
        "linux zc send TREE -> zc.exe recv: Windows names refused one by one, exit 5",
        tree.files + 1,
        tree.bytes + 6,
    );
}

#[test]
fn windows_sends_a_tree_to_linux() {
    let Some(t) = Case::new() else { return };
    let tree = t.tree(|_| {});
    let (sent, got) = t.transfer(0, linux_recv(&["-o", s(&tree.out)]), |dest| {
        t.wine.zc(&["send", &win(&tree.top), dest])
    });
    assert_same_tree(
        &tree.top,
        &tree.out.join("top"),
        &[],
        Modes::Exact,
        "zc.exe send TREE -> linux recv",
    );
    let count = format!("{} files", tree.files);
    // Windows has no sendfile(2): the buffered path must have carried it.
    sent.expect(0, &[&count, "buffered"], "the zc.exe sender");
    got.expect(0, &[&count], "the receiver");
    assert!(
        !sent.stderr.contains("zero-copy"),
        "zc.exe should report the buffered path:\n{}",
        sent.stderr
    );
    t.report_tree(
        "zc.exe send Z:\\...\\TREE -> linux zc recv -o DIR",
        tree.files,
        tree.bytes,
    );
}

#[test]
fn sending_the_same_tree_again_to_windows_finds_it_up_to_date() {
    let Some(t) = Case::new() else { return };
    let tree = t.tree(|_| {});
    t.tree_to_windows(&tree, 0);
    let (sent, got) = t.tree_to_windows(&tree, 0);
    let up_to_date = format!("{} up to date", tree.files);
    sent.expect(0, &[&up_to_date, "0 files, 0 B"], "the sender");
    got.expect(0, &[&up_to_date, "0 files, 0 B"], "the zc.exe receiver");
    assert_same_tree(
        &tree.top,
        &tree.out.join("top"),
        &[],
        Modes::ReadOnly,
        "linux send TREE twice -> zc.exe recv",
    );
    t.report_tree(
        "linux zc send TREE again -> zc.exe recv: all up to date",
        tree.files,
        tree.bytes,
    );
}
