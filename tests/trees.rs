//! Tree sessions (a directory, or several sources, in one connection), end
//! to end: real trees on disk, real `zc` processes over 127.0.0.1, proxies
//! that count, hold and cut, and hostile manifests written by hand from
//! docs/PROTOCOL.md ("Trees: several entries in one session").
//!
//! Trees are compared by walking both sides (kinds, bytes, permission bits,
//! modification times to the nanosecond, link targets), so any drift in
//! shape or metadata shows as the first difference found.
#![cfg(unix)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant, UNIX_EPOCH};

use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Frames around the data: entries, manifest, BEGIN / DATA / FILE END
/// headers. A resumed session may spend this much on top of the missing data.
const OVERHEAD: u64 = 256 * 1024;
/// Bytes a proxy forwarded that a stopped receiver may never have read.
/// (17.5 MB seen once on a loaded machine; the tree is 192 MiB.)
const IN_FLIGHT: u64 = 32 * 1024 * 1024;
/// How long a hand-written client waits for the receiver.
const CLIENT_WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Layout and tree building

/// `root/` holding `src/` (what is sent), `out/` (the receiver's) and
/// `outside/` (a sibling nothing may touch).
struct Layout {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    src: PathBuf,
    out: PathBuf,
    outside: PathBuf,
}

fn layout() -> Layout {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let (src, out, outside) = (root.join("src"), root.join("out"), root.join("outside"));
    for d in [&src, &out, &outside] {
        fs::create_dir(d).unwrap();
    }
    fs::write(
        outside.join("precious.txt"),
        b"precious, not to be touched\n",
    )
    .unwrap();
    fs::create_dir(outside.join("sub")).unwrap();
    fs::write(outside.join("sub/keep.txt"), b"keep me\n").unwrap();
    Layout {
        _tmp: tmp,
        root,
        src,
        out,
        outside,
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A path from raw bytes (names need not be UTF-8).
fn bpath(base: &Path, rel: &[u8]) -> PathBuf {
    base.join(OsStr::from_bytes(rel))
}

/// Writes `data` at `path`, creating parents.
fn put(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

/// Pseudo-random bytes (seeded).
fn bytes(size: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; size];
    XorShift::new(seed).fill(&mut v);
    v
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn set_mtime_ns(path: &Path, ns: u64) {
    let f = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.set_times(FileTimes::new().set_modified(UNIX_EPOCH + Duration::from_nanos(ns)))
        .unwrap_or_else(|e| panic!("setting the mtime of {}: {e}", path.display()));
}

fn mtime_ns(meta: &fs::Metadata) -> (i64, i64) {
    (meta.mtime(), meta.mtime_nsec())
}

/// Gives every file and directory under `top` (and `top`) a distinct
/// modification time with a nanosecond part, deepest first, so that a
/// directory's time is set after its content is complete.
fn stamp_times(top: &Path) {
    let mut paths = all_paths(top);
    paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, p) in paths.iter().enumerate() {
        let meta = fs::symlink_metadata(p).unwrap();
        if meta.is_file() || meta.is_dir() {
            set_mtime_ns(
                p,
                1_600_000_000_000_000_000 + i as u64 * 1_000_003_007 + 987,
            );
        }
    }
}

/// Sum of the sizes of the regular files under `top`.
fn data_bytes(top: &Path) -> u64 {
    all_paths(top)
        .iter()
        .map(|p| fs::symlink_metadata(p).unwrap())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// `count` files of `size` random bytes in `top/` and a few small ones in
/// `top/small/`, times stamped.
fn data_tree(top: &Path, count: usize, size: usize, seed: u64) {
    for i in 0..count {
        put(
            &top.join(format!("part{i:02}.bin")),
            &bytes(size, seed + i as u64),
        );
    }
    for i in 0..5 {
        put(
            &top.join(format!("small/s{i}.txt")),
            &bytes(1000 + i, seed + 100 + i as u64),
        );
    }
    stamp_times(top);
}

/// Checks the sender's exit code first (a failed sender must not leave the
/// test waiting for a receiver that still listens: it is killed, and both
/// sides' stderr are shown), then waits for the receiver.
fn both(sent: &Outcome, mut rx: Receiver, want: i32, what: &str) -> Outcome {
    if sent.code != want {
        let _ = rx.child.kill();
        let got = rx.finish(TIMEOUT);
        panic!(
            "{what}: exit code {} (wanted {want}); stderr:\n{}\nreceiver stderr:\n{}",
            sent.code, sent.stderr, got.stderr
        );
    }
    rx.finish(LONG_TIMEOUT)
}

// ---------------------------------------------------------------------------
// Comparing trees

fn kind_of(t: fs::FileType) -> &'static str {
    if t.is_symlink() {
        "link"
    } else if t.is_dir() {
        "directory"
    } else if t.is_file() {
        "file"
    } else {
        "special file"
    }
}

fn names(dir: &Path) -> BTreeSet<Vec<u8>> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect()
}

fn show(names: &BTreeSet<Vec<u8>>) -> Vec<String> {
    names
        .iter()
        .map(|n| format!("{:?}", String::from_utf8_lossy(n)))
        .collect()
}

/// How a received tree may differ from its source.
#[derive(Clone, Copy)]
struct Landing {
    /// The receiver's umask, which its modes lose (0: `--preserve-modes`).
    umask: u32,
    /// Directories keep the sender's mtimes: they were all made by the
    /// session (one that existed keeps its own, and the kernel's as files
    /// are added to it).
    dir_times: bool,
}

/// The first difference between the tree at `expected` and the one at
/// `actual`: kind, content, `mode & 0o777` less the umask, mtime (ns),
/// link target, names. Also a difference: any setuid/setgid/sticky bit on
/// the actual side.
fn tree_diff(expected: &Path, actual: &Path, how: Landing) -> Result<(), String> {
    let umask = how.umask;
    let e =
        fs::symlink_metadata(expected).map_err(|err| format!("{}: {err}", expected.display()))?;
    let a = fs::symlink_metadata(actual)
        .map_err(|err| format!("{}: missing ({err})", actual.display()))?;
    let (ek, ak) = (kind_of(e.file_type()), kind_of(a.file_type()));
    if ek != ak {
        return Err(format!("{}: a {ak}, expected a {ek}", actual.display()));
    }
    if a.file_type().is_symlink() {
        let (et, at) = (
            fs::read_link(expected).unwrap(),
            fs::read_link(actual).unwrap(),
        );
        if et != at {
            return Err(format!(
                "{}: link to {:?}, expected {:?}",
                actual.display(),
                at,
                et
            ));
        }
        return Ok(());
    }
    if a.mode() & 0o7000 != 0 {
        return Err(format!(
            "{}: mode {:o} keeps a setuid/setgid/sticky bit",
            actual.display(),
            a.mode() & 0o7777
        ));
    }
    if e.mode() & 0o777 & !umask != a.mode() & 0o777 {
        return Err(format!(
            "{}: mode {:o}, expected {:o}",
            actual.display(),
            a.mode() & 0o777,
            e.mode() & 0o777 & !umask
        ));
    }
    if a.is_file() {
        if e.len() != a.len() {
            return Err(format!(
                "{}: {} bytes, expected {}",
                actual.display(),
                a.len(),
                e.len()
            ));
        }
        if fs::read(expected).unwrap() != fs::read(actual).unwrap() {
            return Err(format!("{}: content differs", actual.display()));
        }
    }
    if a.is_dir() {
        let (en, an) = (names(expected), names(actual));
        if en != an {
            let missing: BTreeSet<_> = en.difference(&an).cloned().collect();
            let extra: BTreeSet<_> = an.difference(&en).cloned().collect();
            return Err(format!(
                "{}: missing {:?}, unexpected {:?}",
                actual.display(),
                show(&missing),
                show(&extra)
            ));
        }
        for n in &en {
            tree_diff(&bpath(expected, n), &bpath(actual, n), how)?;
        }
    }
    if mtime_ns(&e) != mtime_ns(&a) && (how.dir_times || !a.is_dir()) {
        return Err(format!(
            "{}: mtime {:?}, expected {:?}",
            actual.display(),
            mtime_ns(&a),
            mtime_ns(&e)
        ));
    }
    Ok(())
}

/// The tree landed as sent, its modes less the umask of the receiver
/// (a child of this process, so the same umask).
fn assert_same_tree(expected: &Path, actual: &Path, what: &str) {
    assert_same_tree_under(expected, actual, own_umask(), what);
}

/// The same, for a receiver with `umask` (0: `--preserve-modes`).
fn assert_same_tree_under(expected: &Path, actual: &Path, umask: u32, what: &str) {
    let how = Landing {
        umask,
        dir_times: true,
    };
    if let Err(diff) = tree_diff(expected, actual, how) {
        panic!("{what}: the trees differ: {diff}");
    }
}

/// The same after a send into a tree that was there already: its
/// directories keep their own times (files added to them change those).
fn assert_same_tree_but_dir_times(expected: &Path, actual: &Path, what: &str) {
    let how = Landing {
        umask: own_umask(),
        dir_times: false,
    };
    if let Err(diff) = tree_diff(expected, actual, how) {
        panic!("{what}: the trees differ: {diff}");
    }
}

/// This process's umask, read without setting it (other test threads
/// create files meanwhile).
fn own_umask() -> u32 {
    let status = fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .expect("an Umask line (Linux 4.7 or later)");
    u32::from_str_radix(line.trim(), 8).expect("an octal umask")
}

/// Everything under `root`: path → kind, size and content hash, so any
/// write, creation or removal shows.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for p in all_paths(root) {
        let meta = fs::symlink_metadata(&p).unwrap();
        let what = if meta.file_type().is_symlink() {
            format!("link -> {:?}", fs::read_link(&p).unwrap())
        } else if meta.is_dir() {
            format!("dir {:o}", meta.mode())
        } else if meta.is_file() {
            format!(
                "file {} {}",
                meta.len(),
                hex(&Sha256::digest(fs::read(&p).unwrap()))
            )
        } else {
            "special".into()
        };
        out.insert(p, what);
    }
    out
}

/// What must not change outside OUT: the sibling directory, every byte of
/// it, and the names beside OUT.
fn outside_state(l: &Layout) -> (BTreeMap<PathBuf, String>, Vec<String>) {
    (snapshot(&l.outside), list_dir(&l.root))
}

// ---------------------------------------------------------------------------
// JSON

/// Every stderr line as a JSON object with an `event`; panics on any other line.
fn json_events(stderr: &str, who: &str) -> Vec<Value> {
    stderr
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("{who}: a stderr line that is not JSON ({e}): {line:?}\nstderr:\n{stderr}")
            });
            assert!(
                v.is_object() && v["event"].is_string(),
                "{who}: not an event object: {line}"
            );
            v
        })
        .collect()
}

fn events<'a>(all: &'a [Value], kind: &str) -> Vec<&'a Value> {
    all.iter().filter(|v| v["event"] == kind).collect()
}

/// The entry events whose `path` ends with `name`.
fn entry_events<'a>(all: &'a [Value], name: &str) -> Vec<&'a Value> {
    events(all, "entry")
        .into_iter()
        .filter(|v| v["path"].as_str().is_some_and(|p| p.ends_with(name)))
        .collect()
}

// ===========================================================================
// Shape and fidelity

/// The tree of the fidelity test: files of all sizes, empty files and
/// directories, links inside the tree, odd names, modes, hard links.
fn photos(top: &Path) {
    put(&top.join("a/x"), &bytes(100_000, 1));
    symlink("../b.txt", top.join("a/l")).unwrap();
    put(&top.join("b.txt"), &bytes(3000, 2));
    symlink("a/x", top.join("l")).unwrap();
    symlink("a", top.join("d")).unwrap();
    put(&top.join("empty.txt"), b"");
    fs::create_dir(top.join("empty")).unwrap();
    fs::create_dir_all(top.join("deep/er/est")).unwrap();
    put(&top.join("with space.txt"), b"spaces\n");
    put(&top.join("new\nline.txt"), b"newline\n");
    put(&top.join("tab\there"), b"tab\n");
    put(&top.join("-rf"), b"dash\n");
    put(&top.join("--force"), b"dashes\n");
    put(&bpath(top, b"caf\xe9.bin"), b"latin-1 name\n");
    // a backslash, and a lone byte 0x9b (not UTF-8, so no C1 control):
    // legal in a tree on Unix, though not as the name of a file alone
    put(&top.join("back\\slash"), b"backslash\n");
    put(&bpath(top, b"lone\x9b.bin"), b"a byte, not a control\n");
    put(&top.join("\u{fc}n\u{ef}.txt"), b"utf-8 name\n");
    put(&top.join("big.bin"), &bytes(3 << 20, 3));
    put(&top.join("hard1"), b"one inode, two names\n");
    fs::hard_link(top.join("hard1"), top.join("hard2")).unwrap();
    for (name, mode) in [
        ("exec.sh", 0o755),
        ("open.txt", 0o666),
        ("ro.txt", 0o444),
        ("suid", 0o4755),
        ("sgid", 0o2750),
    ] {
        put(&top.join(name), name.as_bytes());
        chmod(&top.join(name), mode);
    }
    chmod(&top.join("b.txt"), 0o600);
    put(
        &top.join("locked/inner.txt"),
        b"inside a read-only directory\n",
    );
    fs::create_dir(top.join("sticky")).unwrap();
    chmod(&top.join("a"), 0o750);
    chmod(&top.join("empty"), 0o700);
    chmod(&top.join("sticky"), 0o1777);
    chmod(&top.join("locked"), 0o555);
    stamp_times(top);
}

#[test]
fn a_tree_keeps_its_shape_modes_times_links_and_odd_names() {
    let l = layout();
    let top = l.src.join("photos");
    photos(&top);
    let rx = receiver(&l.out, &[], Stdout::Null);
    let sent = send(&[s(&top), &rx.dest()]);
    let got = both(&sent, rx, 0, "zc send photos/");
    got.expect_code(0, "zc recv of a tree");
    assert_eq!(list_dir(&l.out), vec!["photos"], "OUT/NAME/...");
    assert_same_tree(&top, &l.out.join("photos"), "photos/");
    // setuid, setgid and sticky are dropped (tree_diff checks every entry);
    // the two names of one inode arrive as two files.
    let (h1, h2) = (
        fs::metadata(l.out.join("photos/hard1")).unwrap(),
        fs::metadata(l.out.join("photos/hard2")).unwrap(),
    );
    assert_ne!(h1.ino(), h2.ino(), "hard links arrive as separate files");
    assert_eq!((h1.nlink(), h2.nlink()), (1, 1));
    // nothing else is left behind: no .zcpart, no records
    for p in all_paths(&l.out) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains(".zcpart"), "left behind: {}", p.display());
    }
}

/// A receiver started under `umask`.
fn receiver_with_umask(out: &Path, umask: u32, extra: &[&str]) -> Receiver {
    let plain = recv_cmd(out, extra);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("umask {umask:03o}; exec \"$0\" \"$@\""))
        .arg(plain.get_program())
        .args(plain.get_args());
    spawn_receiver(cmd, Stdout::Null)
}

/// The receiver creates parts in directories it made with their final
/// mode and skips the chmod when its umask leaves that mode whole: with
/// `--preserve-modes`, under any umask, every mode lands exactly.
#[test]
fn preserve_modes_lands_every_mode_exactly_whatever_the_receivers_umask() {
    for umask in [0o000, 0o022, 0o077, 0o777] {
        let l = layout();
        let top = l.src.join("photos");
        photos(&top);
        let rx = receiver_with_umask(&l.out, umask, &["--preserve-modes"]);
        let sent = send(&[s(&top), &rx.dest()]);
        let what = format!("a tree into a receiver with umask {umask:03o} and -p");
        both(&sent, rx, 0, &what).expect_code(0, &what);
        assert_same_tree_under(&top, &l.out.join("photos"), 0, &what);
    }
}

/// Without `--preserve-modes` the receiver's umask takes its bits from
/// what the sender says, as tar does for a user who is not root: a sender
/// cannot make world-writable files or directories under umask 022.
#[test]
fn received_modes_lose_the_receivers_umask() {
    for umask in [0o022, 0o027, 0o077] {
        let l = layout();
        let top = l.src.join("photos");
        photos(&top);
        put(&top.join("wide/open.bin"), b"anyone may write\n");
        chmod(&top.join("wide/open.bin"), 0o777);
        chmod(&top.join("wide"), 0o777);
        stamp_times(&top);
        let rx = receiver_with_umask(&l.out, umask, &[]);
        let sent = send(&[s(&top), &rx.dest()]);
        let what = format!("a tree into a receiver with umask {umask:03o}");
        both(&sent, rx, 0, &what).expect_code(0, &what);
        assert_same_tree_under(&top, &l.out.join("photos"), umask, &what);
        for p in all_paths(&l.out.join("photos")) {
            let mode = fs::symlink_metadata(&p).unwrap().mode();
            if !fs::symlink_metadata(&p).unwrap().is_symlink() {
                assert_eq!(mode & umask, 0, "{what}: {} is {mode:o}", p.display());
            }
        }
    }
}

#[test]
fn several_sources_land_side_by_side() {
    let l = layout();
    put(&l.src.join("a.iso"), &bytes(300_000, 4));
    put(&l.src.join("b.iso"), &bytes(200_001, 5));
    put(&l.src.join("notes/2024/jan.md"), b"# January\n");
    put(&l.src.join("notes/todo.txt"), b"- test trees\n");
    for p in ["a.iso", "b.iso", "notes"] {
        stamp_times(&l.src.join(p));
    }
    let rx = receiver(&l.out, &[], Stdout::Null);
    let notes = format!("{}/", s(&l.src.join("notes")));
    let sent = send(&[
        s(&l.src.join("a.iso")),
        s(&l.src.join("b.iso")),
        &notes,
        &rx.dest(),
    ]);
    let got = both(&sent, rx, 0, "zc send a.iso b.iso notes/");
    got.expect_code(0, "zc recv");
    assert_eq!(list_dir(&l.out), vec!["a.iso", "b.iso", "notes"]);
    for p in ["a.iso", "b.iso", "notes"] {
        assert_same_tree(&l.src.join(p), &l.out.join(p), p);
    }
}

#[test]
fn name_renames_the_top_of_a_single_directory() {
    let l = layout();
    let top = l.src.join("photos");
    put(&top.join("x/y.txt"), b"y\n");
    put(&top.join("z.txt"), b"z\n");
    stamp_times(&top);
    let rx = receiver(&l.out, &[], Stdout::Null);
    let sent = send(&["--name", "album", s(&top), &rx.dest()]);
    both(&sent, rx, 0, "zc send --name album photos").expect_code(0, "zc recv");
    assert_eq!(list_dir(&l.out), vec!["album"]);
    assert_same_tree(&top, &l.out.join("album"), "--name album");
}

#[test]
fn a_single_file_source_is_still_a_single_transfer() {
    // A tree needs a directory on the receiver; one file does not: it may
    // still be written to `-o FILE`.
    let l = layout();
    let src = l.src.join("one.bin");
    random_file(&src, 500_000, 6);
    let target = l.out.join("renamed.bin");
    let rx = receiver(&target, &[], Stdout::Null);
    let sent = send(&[s(&src), &rx.dest()]);
    both(&sent, rx, 0, "zc send FILE").expect_code(0, "zc recv -o FILE");
    assert_same_file(&src, &target);
    assert_eq!(list_dir(&l.out), vec!["renamed.bin"]);
}

#[cfg(target_os = "linux")]
#[test]
fn names_that_differ_only_in_case_both_land_on_linux() {
    let l = layout();
    let top = l.src.join("case");
    put(&top.join("A"), b"upper\n");
    put(&top.join("a"), b"lower\n");
    put(&top.join("Dir/x"), b"upper dir\n");
    put(&top.join("dir/x"), b"lower dir\n");
    stamp_times(&top);
    let rx = receiver(&l.out, &[], Stdout::Null);
    let sent = send(&[s(&top), &rx.dest()]);
    both(&sent, rx, 0, "zc send case/").expect_code(0, "zc recv");
    assert_same_tree(&top, &l.out.join("case"), "case-distinct names");
}

#[test]
fn links_leaving_the_tree_and_special_files_are_skipped_with_a_warning() {
    let l = layout();
    let top = l.src.join("t");
    put(&top.join("ok.txt"), b"ok\n");
    put(&top.join("in/inner.txt"), b"inner\n");
    symlink(l.outside.join("precious.txt"), top.join("abs-link")).unwrap();
    symlink("../../outside/precious.txt", top.join("up-link")).unwrap();
    symlink("../../../outside", top.join("in/up-dir-link")).unwrap();
    let fifo = std::ffi::CString::new(top.join("a-fifo").as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0, "mkfifo");
    let _sock = std::os::unix::net::UnixListener::bind(top.join("a-socket")).unwrap();
    stamp_times(&top);
    let rx = receiver(&l.out, &[], Stdout::Null);
    let sent = send(&[s(&top), &rx.dest()]);
    let got = both(
        &sent,
        rx,
        0,
        "zc send of a tree with links out and special files",
    );
    got.expect_code(0, "zc recv");
    sent.says(&["abs-link", "up-link", "up-dir-link", "a-fifo", "a-socket"]);
    assert_eq!(list_dir(&l.out.join("t")), vec!["in", "ok.txt"]);
    assert_eq!(list_dir(&l.out.join("t/in")), vec!["inner.txt"]);
    assert_eq!(fs::read(l.out.join("t/ok.txt")).unwrap(), b"ok\n");
    assert_eq!(fs::read(l.out.join("t/in/inner.txt")).unwrap(), b"inner\n");
}

#[test]
fn dereference_sends_what_links_point_to() {
    let l = layout();
    let top = l.src.join("t");
    put(&top.join("real.txt"), b"the real one\n");
    symlink("real.txt", top.join("in-link")).unwrap();
    symlink(l.outside.join("precious.txt"), top.join("ext-file")).unwrap();
    symlink(l.outside.join("sub"), top.join("ext-dir")).unwrap();
    stamp_times(&top);
    let before = (snapshot(&l.src), outside_state(&l));
    let rx = receiver(&l.out, &[], Stdout::Null);
    let sent = send(&["-L", s(&top), &rx.dest()]);
    both(&sent, rx, 0, "zc send -L").expect_code(0, "zc recv");
    let t = l.out.join("t");
    assert_eq!(
        list_dir(&t),
        vec!["ext-dir", "ext-file", "in-link", "real.txt"]
    );
    for (name, from) in [
        ("in-link", top.join("real.txt")),
        ("ext-file", l.outside.join("precious.txt")),
        ("ext-dir/keep.txt", l.outside.join("sub/keep.txt")),
    ] {
        let meta = fs::symlink_metadata(t.join(name)).unwrap();
        assert!(meta.is_file(), "{name}: a regular file with -L, not a link");
        assert_eq!(fs::read(t.join(name)).unwrap(), fs::read(from).unwrap());
    }
    assert!(fs::symlink_metadata(t.join("ext-dir")).unwrap().is_dir());
    assert_eq!(
        (snapshot(&l.src), outside_state(&l)),
        before,
        "a source changed"
    );
}

// ===========================================================================
// Usage errors and receivers that cannot take a tree

#[test]
fn impossible_tree_commands_are_usage_errors() {
    let l = layout();
    let dir = l.src.join("dir");
    put(&dir.join("f.txt"), b"f\n");
    put(&l.src.join("a.txt"), b"a\n");
    put(&l.src.join("x/same.txt"), b"x\n");
    put(&l.src.join("y/same.txt"), b"y\n");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (d, a) = (s(&dir).to_string(), s(&l.src.join("a.txt")).to_string());
    let (x, y) = (
        s(&l.src.join("x/same.txt")).to_string(),
        s(&l.src.join("y/same.txt")).to_string(),
    );
    let cases: Vec<(&str, Vec<&str>, Option<&str>)> = vec![
        (
            "--raw with a directory",
            vec!["--raw", &d, &addr],
            Some("tar"),
        ),
        (
            "--raw with several files",
            vec!["--raw", &a, &x, &addr],
            Some("tar"),
        ),
        ("stdin among several sources", vec![&a, "-", &addr], None),
        ("stdin with a directory", vec!["-", &d, &addr], None),
        (
            "stdin among sources, reverse mode",
            vec!["--listen", "127.0.0.1:0", "-", &a],
            None,
        ),
        ("two sources with one base name", vec![&x, &y, &addr], None),
        (
            "--offset with a directory",
            vec!["--offset", "10", &d, &addr],
            None,
        ),
        (
            "--count with a directory",
            vec!["--count", "10", &d, &addr],
            None,
        ),
        (
            "--offset with several files",
            vec!["--offset", "1", &a, &x, &addr],
            None,
        ),
    ];
    for (what, args, needle) in cases {
        let got = send(&args);
        got.expect_code(2, what);
        if let Some(needle) = needle {
            assert!(
                got.stderr.to_lowercase().contains(needle),
                "{what}: the message should mention {needle}:\n{}",
                got.stderr
            );
        }
        assert!(
            listener.accept().is_err(),
            "{what}: a usage error must not connect"
        );
    }
}

#[test]
fn a_receiver_writing_to_a_file_or_stdout_refuses_a_tree() {
    let l = layout();
    let top = l.src.join("tree");
    put(&top.join("f.txt"), b"f\n");
    // -o FILE (an existing one, which must survive)
    let existing = l.out.join("existing.bin");
    fs::write(&existing, b"old content\n").unwrap();
    let rx = receiver(&existing, &[], Stdout::Null);
    let sent = send(&[s(&top), &rx.dest()]);
    let got = both(&sent, rx, 4, "zc send DIR to a receiver with -o FILE");
    assert_ne!(got.code, 0, "a receiver that refused: {}", got.stderr);
    assert_eq!(fs::read(&existing).unwrap(), b"old content\n");
    assert_eq!(list_dir(&l.out), vec!["existing.bin"]);
    // -o -
    let rx = receiver(Path::new("-"), &[], Stdout::Memory);
    let sent = send(&[s(&top), &rx.dest()]);
    let got = both(&sent, rx, 4, "zc send DIR to a receiver with -o -");
    assert!(got.stdout.is_empty(), "a tree written to stdout");
    assert_eq!(list_dir(&l.out), vec!["existing.bin"]);
}

// ===========================================================================
// Sending again: skip, refuse, force

#[test]
fn sending_the_same_tree_again_moves_almost_nothing_and_reports_skips() {
    let l = layout();
    let top = l.src.join("same");
    data_tree(&top, 8, 512 * 1024, 40);
    let rx = receiver(&l.out, &["-k"], Stdout::Null);
    let first_proxy = CuttingProxy::counting(rx.addr);
    send(&[s(&top), &first_proxy.addr.to_string()]).expect_code(0, "the first zc send");
    assert_same_tree(&top, &l.out.join("same"), "after the first send");
    let first = first_proxy.forwarded.load(Ordering::SeqCst);
    assert!(
        first >= data_bytes(&top),
        "the first send moved {first} bytes"
    );

    let again = CuttingProxy::counting(rx.addr);
    let second = send(&["--json", s(&top), &again.addr.to_string()]);
    second.expect_code(0, "the same zc send again");
    let wire = again.forwarded.load(Ordering::SeqCst);
    assert!(
        wire * 20 < first,
        "the second send moved {wire} bytes, the first {first}: not < 5 %"
    );
    let all = json_events(&second.stderr, "zc send --json");
    for p in all_paths(&top).iter().filter(|p| p.is_file()) {
        let name = p.file_name().unwrap().to_str().unwrap();
        let found = entry_events(&all, name);
        assert_eq!(
            found.len(),
            1,
            "one entry event for {name}:\n{}",
            second.stderr
        );
        assert_eq!(
            found[0]["status"], "skipped",
            "{name} is up to date: {}",
            found[0]
        );
    }
    assert_same_tree(&top, &l.out.join("same"), "after the second send");
}

#[test]
fn a_changed_file_is_refused_without_force_and_replaced_with_force() {
    let l = layout();
    let top = l.src.join("docs");
    put(&top.join("a.txt"), &bytes(5000, 50));
    put(&top.join("b.txt"), &bytes(6000, 51));
    put(&top.join("sub/c.bin"), &bytes(70_000, 52));
    stamp_times(&top);
    let rx = receiver(&l.out, &["-k"], Stdout::Null);
    send(&[s(&top), &rx.dest()]).expect_code(0, "the first send");
    // Someone edits the received copy of b.txt; the source gains a file.
    let b = l.out.join("docs/b.txt");
    fs::write(&b, b"edited at the destination\n").unwrap();
    set_mtime_ns(&b, 1_700_000_000_555_000_000);
    put(&top.join("new.txt"), b"a new file\n");
    set_mtime_ns(&top.join("new.txt"), 1_700_000_001_000_000_001);
    set_mtime_ns(&top, 1_700_000_002_000_000_002);

    let sent = send(&[s(&top), &rx.dest()]);
    sent.expect(
        5,
        &["b.txt"],
        "zc send onto a changed file, without --force",
    );
    assert_eq!(fs::read(&b).unwrap(), b"edited at the destination\n");
    for other in ["a.txt", "sub/c.bin", "new.txt"] {
        assert_same_tree(&top.join(other), &l.out.join("docs").join(other), other);
    }
    drop(rx);

    let rx = receiver(&l.out, &["-k", "--force"], Stdout::Null);
    send(&[s(&top), &rx.dest()]).expect_code(0, "the same send with --force on the receiver");
    assert_same_tree_but_dir_times(&top, &l.out.join("docs"), "after --force");
}

// ===========================================================================
// Interrupted trees

#[test]
fn a_cut_tree_resumes_with_retry_and_sends_little_more_than_what_was_missing() {
    let l = layout();
    let top = l.src.join("cut");
    data_tree(&top, 10, 2 << 20, 60);
    let total = data_bytes(&top);
    let cut = 19 * MIB / 2;
    let rx = receiver(&l.out, &["-k"], Stdout::Null);
    let proxy = CuttingProxy::start(rx.addr, cut, 1);
    let sent = send(&[
        "--retry",
        "3",
        "--progress",
        "plain",
        s(&top),
        &proxy.addr.to_string(),
    ]);
    println!("sender:\n{}", sent.stderr);
    sent.expect_code(0, "zc send --retry 3 through a cut");
    assert_same_tree(&top, &l.out.join("cut"), "after the retry");
    let conns = proxy.connections();
    assert!(conns.len() >= 2, "no reconnection: {conns:?}");
    assert_eq!(conns[0], cut, "the first connection is cut: {conns:?}");
    let later: u64 = conns[1..].iter().sum();
    println!("data {total}, connections {conns:?}");
    assert!(
        later <= total - cut + OVERHEAD,
        "after a cut at {cut} of {total} data bytes the retries moved {later}: {conns:?}"
    );
}

/// Waits until nothing more goes through `proxy` and no `.zcpart` under
/// `dir` is locked by a receiver still writing it; returns what went through.
fn settled(proxy: &CuttingProxy, dir: &Path) -> u64 {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let before = proxy.forwarded.load(Ordering::SeqCst);
        thread::sleep(Duration::from_millis(300));
        let after = proxy.forwarded.load(Ordering::SeqCst);
        let free = fs::read_dir(dir).into_iter().flatten().flatten().all(|e| {
            !e.file_name().to_string_lossy().ends_with(".zcpart")
                || File::open(e.path()).is_ok_and(|f| zc::sys::try_lock(&f).unwrap_or(true))
        });
        if before == after && free {
            return after;
        }
        assert!(Instant::now() < deadline, "the receiver never settled");
    }
}

/// Interrupts the sender of a 40 MiB tree once 9.5 MiB went through (kill -9
/// or Ctrl-C), then runs the same command again. (What the sender's kernel
/// had buffered, up to ~10 MiB on loopback, still arrives.)
fn interrupted_sender_case(sigkill: bool) {
    let l = layout();
    let top = l.src.join("stop");
    data_tree(&top, 20, 2 << 20, if sigkill { 70 } else { 80 });
    let total = data_bytes(&top);
    let stop_at = 19 * MIB / 2;
    let rx = receiver(&l.out, &["-k"], Stdout::Null);
    let proxy = CuttingProxy::counting(rx.addr);
    proxy.hold_at(stop_at);
    let dest = proxy.addr.to_string();
    let args = ["--progress", "none", s(&top), &dest];
    let mut tx = start(send_cmd(&args));
    if sigkill {
        proxy.wait_for(stop_at, &mut tx.child, "zc send");
        tx.child.kill().unwrap();
        let killed = tx.finish(TIMEOUT);
        assert_eq!(killed.code, -libc::SIGKILL, "{}", killed.stderr);
        proxy.release();
    } else {
        let stopped = proxy.interrupt_at(stop_at, tx);
        println!("interrupted sender:\n{}", stopped.stderr);
        stopped.expect_code(130, "zc send after SIGINT");
    }
    // Let the receiver take in what the first sender had in flight and let
    // go of its parts (a second session would find one still locked).
    let first = settled(&proxy, &l.out.join("stop"));
    assert!(
        first < total - 2 * MIB,
        "the first attempt was not stopped mid-way: {first} of {total}"
    );

    let again = CuttingProxy::counting(rx.addr);
    let dest = again.addr.to_string();
    let args = ["--progress", "none", s(&top), &dest];
    let second = send(&args);
    println!("second sender:\n{}", second.stderr);
    second.expect_code(0, "the same zc send again");
    assert_same_tree(&top, &l.out.join("stop"), "after the second send");
    let wire = again.forwarded.load(Ordering::SeqCst);
    println!("data {total}, first attempt {first}, second {wire}");
    assert!(
        wire <= total - first + OVERHEAD,
        "{first} of {total} data bytes went through before the stop; the second run moved {wire}"
    );
}

#[test]
fn a_sigkilled_sender_resumes_the_tree_with_the_same_command() {
    interrupted_sender_case(true);
}

#[test]
fn a_sigint_sender_exits_130_and_the_same_command_finishes_the_tree() {
    interrupted_sender_case(false);
}

/// Waits until `bytes` went through `proxy` while the sender still runs,
/// then interrupts the receiver: how it ended (the sender, which cannot
/// succeed then, is checked here).
fn interrupt_receiver_after(
    proxy: &CuttingProxy,
    mut tx: Running,
    rx: Receiver,
    bytes: u64,
) -> Outcome {
    let deadline = Instant::now() + TIMEOUT;
    while proxy.forwarded.load(Ordering::SeqCst) < bytes {
        assert!(Instant::now() < deadline, "the data never started");
        assert!(
            tx.child.try_wait().unwrap().is_none(),
            "the sender ended early"
        );
        thread::sleep(Duration::from_millis(2));
    }
    sigint(&rx.child);
    let stopped = rx.finish(TIMEOUT);
    println!("interrupted receiver:\n{}", stopped.stderr);
    let sent = tx.finish(TIMEOUT);
    assert_ne!(sent.code, 0, "the sender cannot succeed:\n{}", sent.stderr);
    stopped
}

#[test]
fn a_sigint_receiver_exits_130_keeps_its_part_and_the_tree_resumes() {
    // The receiver is interrupted while data streams in without pause: it
    // must notice (a busy socket never times out), keep the part under way
    // with its record, say what it holds, and exit 130.
    let l = layout();
    let top = l.src.join("rx");
    data_tree(&top, 8, 24 << 20, 85);
    let total = data_bytes(&top);
    let rx = receiver(&l.out, &["--progress", "none"], Stdout::Null);
    let proxy = CuttingProxy::counting(rx.addr);
    let dest = proxy.addr.to_string();
    let tx = start(send_cmd(&["--progress", "none", s(&top), &dest]));
    // no hold: the signal lands while the data flows
    let stopped = interrupt_receiver_after(&proxy, tx, rx, 13 * MIB);
    stopped.expect(130, &["held in"], "zc recv after SIGINT");
    let parts: Vec<String> = fs::read_dir(l.out.join("rx"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".zcpart"))
        .collect();
    assert_eq!(parts.len(), 1, "one part kept for a resume: {parts:?}");
    assert!(
        l.out.join("rx").join(format!("{}.held", parts[0])).exists(),
        "the part's record is kept"
    );
    let first = proxy.forwarded.load(Ordering::SeqCst);

    let rx = receiver(&l.out, &[], Stdout::Null);
    let again = CuttingProxy::counting(rx.addr);
    let dest = again.addr.to_string();
    send(&["--progress", "none", s(&top), &dest]).expect_code(0, "the same zc send again");
    rx.finish(TIMEOUT).expect_code(0, "zc recv, resumed");
    assert_same_tree(&top, &l.out.join("rx"), "after the resume");
    let wire = again.forwarded.load(Ordering::SeqCst);
    println!("data {total}, before the stop {first}, after {wire}");
    assert!(
        // what the proxy forwarded may still have sat in socket buffers
        // (a few MiB on loopback) when the receiver stopped reading
        wire <= total - first + IN_FLIGHT + OVERHEAD,
        "the resume moved {wire} of {total} after {first} went through"
    );
}

#[test]
fn a_sigint_receiver_of_small_files_keeps_no_stray_part_and_the_tree_resumes() {
    // Files of up to 1 MiB in directories the receiver made are written
    // into files with no name until they land: a stop keeps nothing of the
    // one under way (no NAME.zcpart, no record, no "held in" line), lands
    // the verified ones whole, and the same command finishes the tree.
    let l = layout();
    let top = l.src.join("sm");
    for i in 0..320u64 {
        put(
            &top.join(format!("d{}/f{i:03}.bin", i % 4)),
            &bytes(64 << 10, 300 + i),
        );
    }
    stamp_times(&top);
    let rx = receiver(&l.out, &["--progress", "none"], Stdout::Null);
    let proxy = CuttingProxy::counting(rx.addr);
    let dest = proxy.addr.to_string();
    let paced = ["--progress", "none", "--limit-rate", "4M", s(&top), &dest];
    let tx = start(send_cmd(&paced));
    let stopped = interrupt_receiver_after(&proxy, tx, rx, 3 * MIB);
    stopped.expect_code(130, "zc recv after SIGINT");
    assert!(!stopped.stderr.contains("held in"), "no part is held");
    let landed = all_paths(&l.out.join("sm"));
    let stray: Vec<_> = landed.iter().filter(|p| s(p).contains(".zcpart")).collect();
    assert!(stray.is_empty(), "left behind: {stray:?}");
    let files: Vec<_> = landed.iter().filter(|p| p.is_file()).collect();
    assert!(!files.is_empty(), "the verified files landed");
    for file in &files {
        let rel = file.strip_prefix(l.out.join("sm")).unwrap();
        assert_eq!(
            fs::read(file).unwrap(),
            fs::read(top.join(rel)).unwrap(),
            "{rel:?}"
        );
    }
    let rx = receiver(&l.out, &[], Stdout::Null);
    let dest = rx.addr.to_string();
    send(&["--progress", "none", s(&top), &dest]).expect_code(0, "the same zc send again");
    rx.finish(TIMEOUT).expect_code(0, "zc recv, resumed");
    assert_same_tree(&top, &l.out.join("sm"), "after the resume");
}

#[test]
fn a_sigkilled_receiver_resumes_a_large_file_of_the_tree_from_its_record() {
    // A large file of a tree keeps its record current as it arrives, as a
    // single file does: a receiver killed mid-file (no chance to write
    // anything on the way out) loses at most the last second of it.
    let l = layout();
    let top = l.src.join("kill");
    put(&top.join("a.txt"), &bytes(5000, 86));
    random_file(&top.join("big.bin"), 80 * MIB, 87);
    stamp_times(&top);
    let total = data_bytes(&top);
    let mut rx = receiver(&l.out, &["--progress", "none"], Stdout::Null);
    // about 40 MiB/s: the checkpoint (once a second) has run when it dies
    let proxy = CuttingProxy::throttled(rx.addr, 1 << 20, Duration::from_millis(25));
    let dest = proxy.addr.to_string();
    let mut tx = start(send_cmd(&["--progress", "none", s(&top), &dest]));
    proxy.wait_for(50 * MIB, &mut tx.child, "zc send");
    rx.child.kill().unwrap();
    let _ = rx.child.wait();
    let _ = tx.finish(TIMEOUT);
    assert!(
        l.out.join("kill/big.bin.zcpart.held").exists(),
        "a record of the large part survives the kill"
    );

    println!(
        "record: {:?}",
        fs::read_to_string(l.out.join("kill/big.bin.zcpart.held"))
    );
    let rx = receiver(&l.out, &["--json"], Stdout::Null);
    let again = CuttingProxy::counting(rx.addr);
    let dest = again.addr.to_string();
    let resumed = send(&["--json", s(&top), &dest]);
    println!("resumed sender:\n{}", resumed.stderr);
    resumed.expect_code(0, "the same zc send again");
    let got = rx.finish(TIMEOUT);
    println!("resumed receiver:\n{}", got.stderr);
    got.expect_code(0, "zc recv, resumed");
    assert_same_tree(&top, &l.out.join("kill"), "after the resume");
    let wire = again.forwarded.load(Ordering::SeqCst);
    println!("data {total}, resumed with {wire}");
    assert!(
        wire < total - 20 * MIB,
        "the resume re-sent {wire} of {total}: the held part was not used"
    );
}

#[test]
fn a_link_whose_target_changed_is_refused_then_replaced_with_force() {
    let l = layout();
    let top = l.src.join("ln");
    put(&top.join("a/x.txt"), b"x\n");
    put(&top.join("b/y.txt"), b"y\n");
    std::os::unix::fs::symlink("a", top.join("l")).unwrap();
    stamp_times(&top);
    let rx = receiver(&l.out, &["-k"], Stdout::Null);
    let dest = rx.dest();
    send(&[s(&top), &dest]).expect_code(0, "the first send");
    // the same link again: up to date
    send(&[s(&top), &dest]).expect_code(0, "the same tree again");
    fs::remove_file(top.join("l")).unwrap();
    std::os::unix::fs::symlink("b", top.join("l")).unwrap();
    let changed = send(&[s(&top), &dest]);
    changed.expect(5, &["ln/l"], "a changed link without --force");
    assert_eq!(fs::read_link(l.out.join("ln/l")).unwrap(), Path::new("a"));
    drop(rx);
    let rx = receiver(&l.out, &["--force"], Stdout::Null);
    send(&[s(&top), &rx.dest()]).expect_code(0, "a changed link with --force");
    rx.finish(TIMEOUT).expect_code(0, "zc recv --force");
    assert_eq!(fs::read_link(l.out.join("ln/l")).unwrap(), Path::new("b"));
}

// ===========================================================================
// Partial failure

#[test]
fn a_source_truncated_while_sent_is_reported_with_exit_5_and_the_rest_lands() {
    let l = layout();
    let top = l.src.join("set");
    put(&top.join("a.txt"), &bytes(10_000, 90));
    put(&top.join("c.txt"), &bytes(20_000, 91));
    put(&top.join("d/e.txt"), &bytes(30_000, 92));
    let big = top.join("big.bin");
    random_file(&big, 32 * MIB, 93);
    let locked = top.join("locked");
    if !is_root() {
        // Where permissions hold, an unreadable directory fails too.
        put(&locked.join("secret.txt"), b"unreadable\n");
    }
    stamp_times(&top);
    if !is_root() {
        chmod(&locked, 0o000);
    }
    let rx = receiver(&l.out, &["-k"], Stdout::Null);
    let proxy = CuttingProxy::counting(rx.addr);
    proxy.hold_at(3 * MIB);
    let dest = proxy.addr.to_string();
    let mut tx = start(send_cmd(&["--progress", "none", s(&top), &dest]));
    proxy.wait_for(3 * MIB, &mut tx.child, "zc send");
    OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(MIB)
        .unwrap();
    proxy.release();
    let first = tx.finish(TIMEOUT);
    println!("sender:\n{}", first.stderr);
    first.expect(
        5,
        &["big.bin"],
        "zc send of a tree whose big.bin shrank while sent",
    );
    if !is_root() {
        first.says(&["locked"]);
        chmod(&locked, 0o755);
        // What arrived of it may be as unreadable as the source was, and a
        // directory that exists is left as it is (a test of its own).
        let got = l.out.join("set/locked");
        if got.exists() {
            chmod(&got, 0o755);
        }
    }
    for name in ["a.txt", "c.txt", "d/e.txt"] {
        assert_same_tree(&top.join(name), &l.out.join("set").join(name), name);
    }
    assert!(
        !l.out.join("set/big.bin").exists(),
        "a file that changed while sent must not land"
    );
    // The same command, now that the source holds still, completes the tree.
    let dest = rx.dest();
    send(&["--progress", "none", s(&top), &dest]).expect_code(0, "the same send again");
    assert_same_tree_but_dir_times(&top, &l.out.join("set"), "after the second send");
}

// ===========================================================================
// Scale, JSON, reverse mode

#[test]
fn ten_thousand_small_files_land_identical() {
    let l = layout();
    let top = l.src.join("many");
    let mut rng = XorShift::new(99);
    let mut buf = [0u8; 100];
    for d in 0..100 {
        let dir = top.join(format!("d{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            rng.fill(&mut buf);
            fs::write(dir.join(format!("f{f:03}")), buf).unwrap();
        }
    }
    stamp_times(&top);
    let rx = receiver(&l.out, &[], Stdout::Null);
    let dest = rx.dest();
    let sent = send_timeout(&["--progress", "none", s(&top), &dest], LONG_TIMEOUT);
    let got = both(&sent, rx, 0, "zc send of 10,000 files");
    got.expect_code(0, "zc recv of 10,000 files");
    assert_same_tree(&top, &l.out.join("many"), "10,000 files");
}

#[test]
fn json_reports_one_entry_event_per_file_with_its_sha256_and_one_done() {
    let l = layout();
    let top = l.src.join("j");
    let files: [(&str, Vec<u8>); 3] = [
        ("alpha.txt", bytes(1000, 110)),
        ("empty.txt", Vec::new()),
        ("sub/gamma.bin", bytes(70_000, 111)),
    ];
    for (rel, data) in &files {
        put(&top.join(rel), data);
    }
    symlink("alpha.txt", top.join("lnk")).unwrap();
    stamp_times(&top);
    let rx = receiver(&l.out, &["--json"], Stdout::Null);
    let sent = send(&["--json", s(&top), &rx.dest()]);
    let got = both(&sent, rx, 0, "zc send --json");
    got.expect_code(0, "zc recv --json");
    assert_same_tree(&top, &l.out.join("j"), "j/");
    let tx_events = json_events(&sent.stderr, "zc send");
    let rx_events = json_events(&got.stderr, "zc recv");
    for (rel, data) in &files {
        let name = rel.rsplit('/').next().unwrap();
        let found = entry_events(&tx_events, name);
        assert_eq!(
            found.len(),
            1,
            "one entry event for {rel}:\n{}",
            sent.stderr
        );
        let e = found[0];
        assert_eq!(e["bytes"], data.len() as u64, "{e}");
        let status = e["status"].as_str().unwrap_or_else(|| panic!("{e}"));
        assert!(
            !["skipped", "failed", "refused"].contains(&status),
            "{rel} was sent: {e}"
        );
        let want = hex(&Sha256::digest(data));
        assert_eq!(
            e["sha256"].as_str().map(str::to_lowercase),
            Some(want),
            "{rel}: {e}"
        );
    }
    let paths: Vec<&str> = events(&tx_events, "entry")
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    let unique: BTreeSet<&str> = paths.iter().copied().collect();
    assert_eq!(
        unique.len(),
        paths.len(),
        "an entry reported twice: {paths:?}"
    );
    assert_eq!(events(&tx_events, "done").len(), 1, "{}", sent.stderr);
    assert_eq!(events(&rx_events, "done").len(), 1, "{}", got.stderr);
}

#[test]
fn reverse_mode_sends_a_tree_and_a_file_to_a_connecting_receiver() {
    let l = layout();
    let top = l.src.join("rev");
    put(&top.join("a/b.txt"), &bytes(40_000, 120));
    put(&top.join("c.txt"), b"c\n");
    symlink("a/b.txt", top.join("l")).unwrap();
    stamp_times(&top);
    let file = l.src.join("alone.bin");
    put(&file, &bytes(123_456, 121));
    stamp_times(&file);
    let mut cmd = send_cmd(&["--listen", "127.0.0.1:0", s(&top), s(&file)]);
    cmd.arg("--progress").arg("none");
    let tx = spawn_receiver(cmd, Stdout::Null);
    let mut recv = zc();
    recv.args(["recv", "-o"]).arg(&l.out).arg(tx.dest());
    let got = run(recv, None, TIMEOUT);
    // here the receiver is the short-lived side: the sender listens
    let sent = both(&got, tx, 0, "zc recv -o OUT ADDR");
    sent.expect_code(0, "zc send --listen DIR FILE");
    assert_eq!(list_dir(&l.out), vec!["alone.bin", "rev"]);
    assert_same_tree(&top, &l.out.join("rev"), "rev/");
    assert_same_tree(&file, &l.out.join("alone.bin"), "alone.bin");
}

// ===========================================================================
// Hostile peers: manifests written by hand

fn field(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    v.extend_from_slice(value);
    v
}

fn preamble() -> Vec<u8> {
    let mut v = b"ZCPF".to_vec();
    v.extend_from_slice(&1u16.to_be_bytes());
    v.extend_from_slice(&0u16.to_be_bytes());
    v
}

/// A tree OFFER announcing `entries` entries and `bytes` bytes, verified.
fn tree_offer(entries: u64, bytes: u64) -> Vec<u8> {
    let mut tree = entries.to_be_bytes().to_vec();
    tree.extend_from_slice(&bytes.to_be_bytes());
    let mut body = field(0x8a, &tree);
    body.extend(field(5, &[1]));
    frame(b'O', &body)
}

/// A tree OFFER whose entries are counted as they come (no totals).
fn streamed_offer() -> Vec<u8> {
    let mut body = field(0x8a, &[0; 16]);
    body.extend(field(5, &[1]));
    body.extend(field(0x8b, &[1]));
    frame(b'O', &body)
}

fn parse_fields(body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        assert!(rest.len() >= 3, "a truncated field in {body:?}");
        let len = u16::from_be_bytes([rest[1], rest[2]]) as usize;
        assert!(rest.len() >= 3 + len, "a truncated field in {body:?}");
        out.push((rest[0], rest[3..3 + len].to_vec()));
        rest = &rest[3 + len..];
    }
    out
}

fn get(fields: &[(u8, Vec<u8>)], tag: u8) -> Option<&[u8]> {
    fields
        .iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, v)| v.as_slice())
}

fn be_u64(v: &[u8]) -> u64 {
    u64::from_be_bytes(v.try_into().expect("an 8-byte integer"))
}

/// A raw connection to a receiver.
struct Wire(TcpStream);

impl Wire {
    fn connect(addr: SocketAddr) -> Wire {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connecting");
        s.set_read_timeout(Some(CLIENT_WAIT)).unwrap();
        s.set_write_timeout(Some(CLIENT_WAIT)).unwrap();
        Wire(s)
    }

    /// Writes on a thread of its own (the receiver answers while it reads).
    fn write_behind(&self, bytes: Vec<u8>) -> thread::JoinHandle<()> {
        let mut s = self.0.try_clone().unwrap();
        thread::spawn(move || {
            let _ = s.write_all(&bytes);
        })
    }

    /// The next frame other than KEEPALIVE; `None` when the receiver hung
    /// up (or went silent for [`CLIENT_WAIT`]).
    fn next(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            let mut head = [0u8; 5];
            self.0.read_exact(&mut head).ok()?;
            let len = u32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
            assert!(len <= 65536, "a frame of {len} bytes from the receiver");
            let mut body = vec![0u8; len];
            self.0.read_exact(&mut body).ok()?;
            if head[0] != b'K' {
                return Some((head[0], body));
            }
        }
    }
}

/// One entry of a hand-written manifest.
#[derive(Clone)]
struct Ent {
    path: Vec<u8>,
    kind: u8,
    data: Vec<u8>,
    mode: u32,
    target: Vec<u8>,
    /// The receiver must refuse it.
    bad: bool,
}

const HOSTILE_MTIME: u64 = 1_650_000_000_123_456_789;

fn dir_ent(path: &[u8]) -> Ent {
    Ent {
        path: path.to_vec(),
        kind: 1,
        data: Vec::new(),
        mode: 0o755,
        target: Vec::new(),
        bad: false,
    }
}

fn file_ent(path: &[u8], data: &[u8], mode: u32) -> Ent {
    Ent {
        path: path.to_vec(),
        kind: 0,
        data: data.to_vec(),
        mode,
        target: Vec::new(),
        bad: false,
    }
}

fn link_ent(path: &[u8], target: &[u8]) -> Ent {
    Ent {
        path: path.to_vec(),
        kind: 2,
        data: Vec::new(),
        mode: 0o777,
        target: target.to_vec(),
        bad: false,
    }
}

fn bad(mut e: Ent) -> Ent {
    e.bad = true;
    e
}

fn encode_entry(id: u64, e: &Ent) -> Vec<u8> {
    let mut body = field(1, &id.to_be_bytes());
    body.extend(field(2, &e.path));
    body.extend(field(3, &[e.kind]));
    if e.kind == 0 {
        body.extend(field(4, &(e.data.len() as u64).to_be_bytes()));
    }
    body.extend(field(5, &e.mode.to_be_bytes()));
    body.extend(field(6, &HOSTILE_MTIME.to_be_bytes()));
    if e.kind == 2 {
        body.extend(field(7, &e.target));
    }
    frame(b'N', &body)
}

/// What the receiver said in a hand-written session.
#[derive(Debug, Default)]
struct Session {
    /// The ANSWER to the OFFER.
    answer: Vec<(u8, Vec<u8>)>,
    /// Entry id → (action, code, reason).
    replies: BTreeMap<u64, (u8, Option<u8>, String)>,
    go: bool,
    /// An ANSWER refusing the session after the manifest.
    refused_late: Option<Vec<(u8, Vec<u8>)>>,
    /// Entry id → FILE RESULT status.
    file_results: BTreeMap<u64, u8>,
    result: Option<Vec<(u8, Vec<u8>)>>,
    /// Frame kinds seen, in order.
    kinds: String,
}

impl Session {
    fn accepted(&self) -> bool {
        get(&self.answer, 1) == Some(&[0][..])
    }
}

/// Runs a whole tree session as a hostile sender: OFFER (announcing
/// `announce` entries), every ENTRY and the MANIFEST, then (after GO) the
/// data of every file the receiver asked for, END, and the final RESULT.
fn hostile_session(addr: SocketAddr, entries: &[Ent], announce: u64) -> Session {
    let total: u64 = entries.iter().map(|e| e.data.len() as u64).sum();
    hostile_session_offering(addr, entries, tree_offer(announce, total))
}

/// The same with an OFFER of the test's own.
fn hostile_session_offering(addr: SocketAddr, entries: &[Ent], offer: Vec<u8>) -> Session {
    let mut w = Wire::connect(addr);
    let mut session = Session::default();
    let mut hello = preamble();
    hello.extend(offer);
    w.0.write_all(&hello).expect("writing the offer");
    match w.next() {
        Some((b'A', body)) => session.answer = parse_fields(&body),
        other => panic!("the receiver answered the offer with {other:?}"),
    }
    if !session.accepted() {
        return session;
    }
    let mut manifest = Vec::new();
    for (id, e) in entries.iter().enumerate() {
        manifest.extend(encode_entry(id as u64, e));
    }
    let mut m = field(1, &(entries.len() as u64).to_be_bytes());
    m.extend(field(2, &0u64.to_be_bytes()));
    manifest.extend(frame(b'M', &m));
    let writer = w.write_behind(manifest);
    while let Some((kind, body)) = w.next() {
        session.kinds.push(kind as char);
        match kind {
            b'Y' => {
                let f = parse_fields(&body);
                let id = be_u64(get(&f, 1).expect("a reply without an id"));
                let action = get(&f, 2).expect("a reply without an action")[0];
                let code = get(&f, 3).map(|c| c[0]);
                let reason = String::from_utf8_lossy(get(&f, 4).unwrap_or_default()).into_owned();
                assert!(
                    session.replies.insert(id, (action, code, reason)).is_none(),
                    "two replies for entry {id}"
                );
            }
            b'X' => {}
            b'G' => {
                session.go = true;
                break;
            }
            b'A' => {
                session.refused_late = Some(parse_fields(&body));
                break;
            }
            _ => break,
        }
    }
    writer.join().unwrap();
    if !session.go {
        return session;
    }
    let mut data = Vec::new();
    let mut sent = 0u64;
    for (&id, (action, _, _)) in &session.replies {
        let Some(e) = entries.get(id as usize) else {
            continue;
        };
        if *action != 0 {
            continue;
        }
        let mut b = field(1, &id.to_be_bytes());
        b.extend(field(2, &e.path));
        data.extend(frame(b'B', &b));
        if !e.data.is_empty() {
            let mut d = 0u64.to_be_bytes().to_vec();
            d.extend_from_slice(&(e.data.len() as u64).to_be_bytes());
            data.extend(frame(b'D', &d));
            data.extend_from_slice(&e.data);
        }
        let mut f = field(1, &id.to_be_bytes());
        f.extend(field(2, &(e.data.len() as u64).to_be_bytes()));
        f.extend(field(3, &Sha256::digest(&e.data)));
        data.extend(frame(b'F', &f));
        sent += e.data.len() as u64;
    }
    let mut end = field(1, &sent.to_be_bytes());
    end.extend(field(4, &0u64.to_be_bytes()));
    data.extend(frame(b'E', &end));
    let writer = w.write_behind(data);
    while let Some((kind, body)) = w.next() {
        session.kinds.push(kind as char);
        match kind {
            b'T' => {
                let f = parse_fields(&body);
                let id = be_u64(get(&f, 6).expect("a file result without an id"));
                session
                    .file_results
                    .insert(id, get(&f, 1).map_or(255, |s| s[0]));
            }
            b'R' => {
                session.result = Some(parse_fields(&body));
                break;
            }
            _ => {}
        }
    }
    writer.join().unwrap();
    session
}

/// A small real tree, sent by a real `zc send`, to show a receiver still
/// serves after hostile sessions.
/// The `-k` receiver outlived what came before, and a real tree still lands.
fn still_serves(l: &Layout, rx: &mut Receiver, name: &str) {
    assert!(
        rx.child.try_wait().unwrap().is_none(),
        "the -k receiver ended"
    );
    real_send_lands(l, &rx.dest(), name);
}

fn real_send_lands(l: &Layout, dest: &str, name: &str) {
    let top = l.src.join(name);
    put(&top.join("x/y.txt"), &bytes(5000, 130));
    put(&top.join("z.txt"), b"z\n");
    stamp_times(&top);
    send(&[s(&top), dest]).expect_code(0, &format!("a real zc send of {name}/"));
    assert_same_tree(&top, &l.out.join(name), name);
}

#[test]
fn hostile_entries_are_refused_one_by_one_and_nothing_lands_outside() {
    let l = layout();
    let outside = l.outside.as_os_str().as_bytes().to_vec();
    let abs = |name: &str| [&outside[..], b"/", name.as_bytes()].concat();
    // Each case: the bad entries (and what they must not create, relative to
    // OUT), between a good file before and a good file after.
    type Case = (&'static str, Vec<Ent>, Vec<&'static str>);
    let cases = |t: &str| -> Vec<Case> {
        let p = |rest: &str| format!("{t}/{rest}").into_bytes();
        vec![
            (
                "'..' inside the path",
                vec![bad(file_ent(&p("../escape1.txt"), b"BAD", 0o644))],
                vec!["escape1.txt", "../escape1.txt"],
            ),
            (
                "'..' above the output",
                vec![bad(file_ent(&p("../../escape2.txt"), b"BAD", 0o644))],
                vec!["../../escape2.txt"],
            ),
            (
                "'..' as the top",
                vec![bad(file_ent(b"../escape3.txt", b"BAD", 0o644))],
                vec!["../../escape3.txt"],
            ),
            (
                "an absolute path",
                vec![bad(file_ent(&abs("abs.txt"), b"BAD", 0o644))],
                vec!["../../outside/abs.txt"],
            ),
            (
                "an empty component",
                vec![bad(file_ent(&p("/empty.txt"), b"BAD", 0o644))],
                vec![],
            ),
            (
                "an empty path",
                vec![bad(file_ent(b"", b"BAD", 0o644))],
                vec![],
            ),
            (
                "a '.' component",
                vec![bad(file_ent(&p("./dot.txt"), b"BAD", 0o644))],
                vec![],
            ),
            (
                "a NUL byte",
                vec![bad(file_ent(&p("nul\0.txt"), b"BAD", 0o644))],
                vec![],
            ),
            (
                "an escape character",
                vec![bad(file_ent(&p("esc\x1b[31m.txt"), b"BAD", 0o644))],
                vec![],
            ),
            (
                "a C1 control (CSI, U+009B)",
                vec![bad(file_ent(&p("csi\u{9b}2J.txt"), b"BAD", 0o644))],
                vec![],
            ),
            (
                "a .zcpart name",
                vec![bad(file_ent(&p("x.zcpart"), b"BAD", 0o644))],
                vec![],
            ),
            (
                "a 256-byte name",
                vec![bad(file_ent(&p(&"n".repeat(256)), b"BAD", 0o644))],
                vec![],
            ),
            (
                "a link climbing out",
                vec![bad(link_ent(&p("up"), b"../../outside"))],
                vec![],
            ),
            (
                "a link to an absolute path",
                vec![bad(link_ent(&p("abs"), b"/etc"))],
                vec![],
            ),
            (
                "a link with '..' after a name",
                vec![bad(link_ent(&p("mid"), b"sub/../../.."))],
                vec![],
            ),
            (
                "a link climbing above the top",
                vec![dir_ent(&p("a")), bad(link_ent(&p("a/l"), b"../../x"))],
                vec![],
            ),
            (
                "a duplicate path",
                vec![bad(file_ent(&p("ok.txt"), b"BAD", 0o644))],
                vec![],
            ),
            (
                "a parent never sent",
                vec![bad(file_ent(&p("nodir/x.txt"), b"BAD", 0o644))],
                vec!["nodir"],
            ),
            (
                "a file beneath a link entry",
                vec![
                    dir_ent(&p("sub")),
                    link_ent(&p("lnk"), b"sub"),
                    bad(file_ent(&p("lnk/x.txt"), b"BAD", 0o644)),
                ],
                vec!["sub/x.txt"],
            ),
            (
                "a file beneath a refused directory",
                vec![
                    file_ent(&p("d"), b"a file named d", 0o644),
                    bad(dir_ent(&p("d"))),
                    bad(file_ent(&p("d/y.txt"), b"BAD", 0o644)),
                ],
                vec![],
            ),
        ]
    };
    let mut rx = receiver(&l.out, &["-k"], Stdout::Null);
    let n = cases("t").len();
    for i in 0..n {
        let t = format!("t{i:02}");
        let (what, middle, absent) = cases(&t).swap_remove(i);
        let mut entries = vec![
            dir_ent(t.as_bytes()),
            file_ent(format!("{t}/ok.txt").as_bytes(), b"ok before", 0o4755),
        ];
        entries.extend(middle);
        entries.push(file_ent(
            format!("{t}/after.txt").as_bytes(),
            b"ok after",
            0o2644,
        ));
        let before = outside_state(&l);
        let session = hostile_session(rx.addr, &entries, entries.len() as u64);
        let ctx = format!("{what}: {session:?}");
        assert!(session.accepted(), "{ctx}: the session was refused");
        for (id, e) in entries.iter().enumerate() {
            let reply = session.replies.get(&(id as u64));
            let action = reply.map(|r| r.0);
            if e.bad {
                assert_eq!(action, Some(2), "{ctx}: entry {id} must be refused");
            } else {
                assert!(
                    matches!(action, Some(0) | Some(3)),
                    "{ctx}: good entry {id} was not accepted"
                );
            }
        }
        assert!(session.go, "{ctx}: no GO");
        assert!(session.result.is_some(), "{ctx}: no final RESULT");
        // The good files landed, without setuid/setgid, with their time.
        let dir = l.out.join(&t);
        for (name, data, mode) in [
            ("ok.txt", &b"ok before"[..], 0o755),
            ("after.txt", b"ok after", 0o644),
        ] {
            let path = dir.join(name);
            assert_eq!(fs::read(&path).ok().as_deref(), Some(data), "{ctx}: {name}");
            let meta = fs::symlink_metadata(&path).unwrap();
            assert_eq!(meta.mode() & 0o7777, mode, "{ctx}: {name} mode");
            let ns = meta.mtime() as u64 * 1_000_000_000 + meta.mtime_nsec() as u64;
            assert_eq!(ns, HOSTILE_MTIME, "{ctx}: {name} mtime");
        }
        for gone in absent {
            let path = dir.join(gone);
            assert!(
                fs::symlink_metadata(&path).is_err(),
                "{ctx}: {} was created",
                path.display()
            );
        }
        if what == "a file beneath a link entry" {
            assert_eq!(
                fs::read_link(dir.join("lnk")).ok(),
                Some(PathBuf::from("sub")),
                "{ctx}: a link inside the tree is made"
            );
        }
        if what == "a file beneath a refused directory" {
            assert_eq!(fs::read(dir.join("d")).unwrap(), b"a file named d");
        }
        assert_eq!(
            outside_state(&l),
            before,
            "{ctx}: something outside OUT changed"
        );
        assert!(
            rx.child.try_wait().unwrap().is_none(),
            "{ctx}: the -k receiver ended"
        );
    }
    let dest = rx.dest();
    real_send_lands(&l, &dest, "real");
}

#[test]
fn more_entries_than_announced_are_not_written() {
    let l = layout();
    let mut rx = receiver(&l.out, &["-k"], Stdout::Null);
    let entries = vec![
        dir_ent(b"top"),
        file_ent(b"top/a", b"a", 0o644),
        file_ent(b"top/b", b"b", 0o644),
        file_ent(b"top/c", b"c", 0o644),
        file_ent(b"top/d", b"d", 0o644),
        file_ent(b"top/e", b"e", 0o644),
    ];
    let before = outside_state(&l);
    let session = hostile_session(rx.addr, &entries, 3);
    let ctx = format!("{session:?}");
    println!("{ctx}");
    for (id, reply) in &session.replies {
        if *id >= 3 {
            assert_eq!(
                reply.0, 2,
                "{ctx}: entry {id} beyond the announced 3 accepted"
            );
        }
    }
    for name in ["c", "d", "e"] {
        assert!(
            !l.out.join("top").join(name).exists(),
            "{ctx}: an entry beyond the announced count landed: {name}"
        );
    }
    assert_eq!(outside_state(&l), before);
    still_serves(&l, &mut rx, "real");
}

/// A tree counted as it comes is refused whole once it passes
/// --max-files or --max-size, in the middle of its manifest: the entries
/// before are answered, then ANSWER refuse (code 2, too large); nothing it
/// made stays, and a -k receiver goes on serving.
#[test]
fn a_streamed_tree_past_its_limits_is_refused_mid_manifest() {
    let l = layout();
    let mut rx = receiver(
        &l.out,
        &["-k", "--max-files", "4", "--max-size", "10"],
        Stdout::Null,
    );
    let many: Vec<Ent> = [dir_ent(b"top"), dir_ent(b"top/sub")]
        .into_iter()
        .chain((0..5).map(|i| file_ent(format!("top/sub/{i}").as_bytes(), b"x", 0o644)))
        .collect();
    let big = vec![
        dir_ent(b"big"),
        file_ent(b"big/a", b"0123456", 0o644),
        file_ent(b"big/b", b"0123456", 0o644),
    ];
    for (what, entries, answered) in [("7 entries", &many, 4), ("14 bytes", &big, 2)] {
        let session = hostile_session_offering(rx.addr, entries, streamed_offer());
        let ctx = format!("{what}: {session:?}");
        let refusal = session
            .refused_late
            .as_ref()
            .unwrap_or_else(|| panic!("{ctx}"));
        assert_eq!(get(refusal, 1), Some(&[1][..]), "{ctx}");
        assert_eq!(get(refusal, 2), Some(&[2][..]), "{ctx}: code 2, too large");
        assert_eq!(session.replies.len(), answered, "{ctx}");
        assert!(!session.go, "{ctx}");
        assert!(list_dir(&l.out).is_empty(), "{ctx}: {:?}", list_dir(&l.out));
        assert!(
            rx.child.try_wait().unwrap().is_none(),
            "{ctx}: the -k receiver ended"
        );
    }
    let dest = rx.dest();
    let top = l.src.join("small");
    put(&top.join("f"), b"fits");
    send(&[s(&top), &dest]).expect_code(0, "a tree within the limits");
    assert_same_tree(&top, &l.out.join("small"), "small");
}

/// A manifest of files with 4 KiB paths against a small --max-memory: the
/// session is refused in the middle of its manifest (ANSWER refuse, code 2,
/// naming --max-memory) instead of the receiver holding every path, and
/// the -k receiver goes on serving a real tree.
#[test]
fn a_manifest_past_max_memory_is_refused_and_the_receiver_serves_on() {
    let l = layout();
    let mut rx = receiver(&l.out, &["-k", "--max-memory", "1M"], Stdout::Null);
    // 15 directories of 240 bytes, then files with 250-byte names
    let mut dir = Vec::new();
    let mut entries = Vec::new();
    for i in 0..15u8 {
        if !dir.is_empty() {
            dir.push(b'/');
        }
        dir.extend(vec![b'a' + i; 240]);
        entries.push(dir_ent(&dir));
    }
    for i in 0..4000 {
        let name = format!("{i:010}{}", "f".repeat(240));
        let path = [&dir[..], b"/", name.as_bytes()].concat();
        entries.push(file_ent(&path, b"", 0o644));
    }
    let session = hostile_session(rx.addr, &entries, entries.len() as u64);
    let kinds = &session.kinds;
    let tail = &kinds[kinds.len().saturating_sub(8)..];
    let ctx = format!(
        "{} frames, ending {tail}: {:?}",
        kinds.len(),
        session.refused_late
    );
    let refusal = session
        .refused_late
        .as_ref()
        .unwrap_or_else(|| panic!("not refused: {ctx}"));
    assert_eq!(get(refusal, 1), Some(&[1][..]), "{ctx}");
    assert_eq!(get(refusal, 2), Some(&[2][..]), "{ctx}: code 2, too large");
    let reason = String::from_utf8_lossy(get(refusal, 3).unwrap_or_default());
    assert!(reason.contains("--max-memory 1.0 MiB"), "{ctx}");
    assert!(!session.go, "{ctx}");
    assert!(session.replies.len() < 4000, "{ctx}");
    assert!(list_dir(&l.out).is_empty(), "{:?}", list_dir(&l.out));
    still_serves(&l, &mut rx, "real");
}

/// `chains` nests of 15 directories with 240-byte names under `top`: what
/// the receiver keeps of them for the end (160 bytes and three times the
/// path each) comes to about 89 KB a nest.
fn directory_nests(top: &str, chains: u8) -> Vec<Ent> {
    let mut entries = vec![dir_ent(top.as_bytes())];
    for c in 0..chains {
        let mut dir = [top.as_bytes(), b"/", &[b'a' + c]].concat();
        entries.push(dir_ent(&dir));
        for i in 0..15u8 {
            dir.push(b'/');
            dir.extend(vec![b'a' + i; 240]);
            entries.push(dir_ent(&dir));
        }
    }
    entries
}

/// --max-memory is the receiver's, not each session's: two sessions that
/// each fit 1M (about 540 KB of directories kept for the end) do not fit
/// together. The first holds its share (its manifest answered, GO said, no
/// END yet) while the second grows past what is left: the second is
/// refused with the reason, and the first, which then goes on, lands.
#[test]
fn max_memory_is_one_budget_for_the_sessions_of_a_k_receiver() {
    let l = layout();
    let mut rx = receiver(&l.out, &["-k", "--max-memory", "1M"], Stdout::Null);
    let first = directory_nests("first", 6);
    let mut w = offered(rx.addr, first.len() as u64, 0);
    let mut manifest = Vec::new();
    for (id, e) in first.iter().enumerate() {
        manifest.extend(encode_entry(id as u64, e));
    }
    manifest.extend(manifest_frame(first.len() as u64));
    let writer = w.write_behind(manifest);
    // GO: every entry admitted, its share held until the session ends
    let (kinds, go) = w.until(b"G");
    assert!(go.is_some(), "no GO for the first session: {kinds}");
    assert_eq!(kinds.matches('Y').count(), first.len(), "{kinds}");
    writer.join().unwrap();

    let second = directory_nests("second", 6);
    let session = hostile_session(rx.addr, &second, second.len() as u64);
    let refusal = session
        .refused_late
        .as_ref()
        .unwrap_or_else(|| panic!("the second session was not refused: {}", session.kinds));
    assert_eq!(get(refusal, 2), Some(&[2][..]), "code 2, too large");
    let reason = String::from_utf8_lossy(get(refusal, 3).unwrap_or_default());
    assert!(
        reason.contains("is left of --max-memory 1.0 MiB"),
        "{reason}"
    );
    assert!(
        !l.out.join("second").exists(),
        "the refused tree left nothing"
    );

    let mut end = field(1, &0u64.to_be_bytes());
    end.extend(field(4, &0u64.to_be_bytes()));
    w.0.write_all(&frame(b'E', &end)).unwrap();
    let (kinds, result) = w.until(b"R");
    let result = parse_fields(&result.unwrap_or_else(|| panic!("no RESULT: {kinds}")));
    assert_eq!(
        get(&result, 1),
        Some(&[0][..]),
        "the first landed: {result:?}"
    );
    assert!(l.out.join("first/f").is_dir());
    still_serves(&l, &mut rx, "real");
}

/// A hand-written tree session, its OFFER answered.
fn offered(addr: SocketAddr, entries: u64, bytes: u64) -> Wire {
    let mut w = Wire::connect(addr);
    let mut hello = preamble();
    hello.extend(tree_offer(entries, bytes));
    w.0.write_all(&hello).unwrap();
    assert!(
        matches!(w.next(), Some((b'A', _))),
        "the offer was answered"
    );
    w
}

/// A MANIFEST frame counting `entries`, none failed.
fn manifest_frame(entries: u64) -> Vec<u8> {
    let mut m = field(1, &entries.to_be_bytes());
    m.extend(field(2, &0u64.to_be_bytes()));
    frame(b'M', &m)
}

impl Wire {
    /// Frames up to and including the first of `stop`: their kinds, and
    /// the stopping frame's body (None when the peer hung up first).
    fn until(&mut self, stop: &[u8]) -> (String, Option<Vec<u8>>) {
        let mut kinds = String::new();
        while let Some((kind, body)) = self.next() {
            kinds.push(kind as char);
            if stop.contains(&kind) {
                return (kinds, Some(body));
            }
        }
        (kinds, None)
    }

    /// The session's failed RESULT: its reason.
    fn failure(&mut self) -> String {
        let (kinds, body) = self.until(b"R");
        let result = parse_fields(&body.unwrap_or_else(|| panic!("no RESULT: {kinds}")));
        assert_eq!(get(&result, 1), Some(&[2][..]), "failed: {result:?}");
        String::from_utf8_lossy(get(&result, 4).unwrap_or_default()).into_owned()
    }
}

/// A fake receiver's side of a tree session from a real sender: accepted,
/// the OFFER answered, frames read up to the first `until`; their kinds.
fn fake_receiver(listener: TcpListener, until: u8) -> (Wire, String) {
    let (s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(CLIENT_WAIT)).unwrap();
    let mut w = Wire(s);
    let mut preamble = [0u8; 8];
    w.0.read_exact(&mut preamble).unwrap();
    let (offer, _) = w.until(b"O");
    assert_eq!(offer, "O", "the sender began with its OFFER");
    w.0.write_all(&frame(b'A', &field(1, &[0]))).unwrap();
    let (seen, _) = w.until(&[until]);
    (w, seen)
}

/// After GO a hostile sender goes back to the manifest: the receiver stops
/// that session with a clear reason (the RESULT says it), keeps nothing of
/// it, and a -k receiver goes on serving.
#[test]
fn a_frame_out_of_order_ends_the_session_with_its_name() {
    let l = layout();
    let mut rx = receiver(&l.out, &["-k"], Stdout::Null);
    let mut w = offered(rx.addr, 1, 3);
    let mut manifest = encode_entry(0, &file_ent(b"odd/a", b"abc", 0o644));
    manifest.extend(manifest_frame(1));
    w.0.write_all(&manifest).unwrap();
    let (kinds, go) = w.until(b"G");
    assert!(go.is_some(), "no GO: {kinds}");
    // the data phase opens with an ENTRY: out of order
    w.0.write_all(&encode_entry(1, &file_ent(b"odd/b", b"x", 0o644)))
        .unwrap();
    let message = w.failure();
    assert!(
        message.contains("unexpected ENTRY during the data"),
        "the reason names the frame: {message:?}"
    );
    assert!(!l.out.join("odd/a").exists() && !l.out.join("odd/b").exists());
    still_serves(&l, &mut rx, "after");
}

/// A fake receiver of a keyed session in the clear (`--key K
/// --no-encrypt`): its CHALLENGE made with the key, the sender's PROOF
/// checked, the OFFER answered, frames read up to the first `until`; their
/// kinds, and the session whose MACs the sender checks.
fn keyed_fake_receiver(
    listener: TcpListener,
    key: &str,
    until: u8,
) -> (Wire, String, zc::auth::Session) {
    let (s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(CLIENT_WAIT)).unwrap();
    let mut w = Wire(s);
    let mut preamble = [0u8; 8];
    w.0.read_exact(&mut preamble).unwrap();
    let (kinds, offer) = w.until(b"O");
    let offer = offer.unwrap_or_else(|| panic!("no OFFER: {kinds}"));
    let theirs = zc::protocol::tree::TreeOffer::decode(&offer)
        .unwrap()
        .nonce
        .expect("a keyed OFFER carries the sender's nonce");
    let ours = [9u8; 32];
    let session = zc::auth::Session::new(&zc::auth::Key::new(key), theirs, ours, &offer);
    let mut challenge = ours.to_vec();
    challenge.extend_from_slice(&session.receiver_proof());
    w.0.write_all(&frame(b'C', &challenge)).unwrap();
    let (kinds, proof) = w.until(b"P");
    assert!(
        proof.is_some_and(|p| session.check_sender(&p)),
        "the sender proved the key: {kinds}"
    );
    w.0.write_all(&frame(b'A', &field(1, &[0]))).unwrap();
    let (seen, _) = w.until(&[until]);
    (w, seen, session)
}

/// `--key K --no-encrypt`: a failed RESULT before GO is the receiver's
/// word only with the key's MAC over it. With the MAC the sender prints
/// the receiver's reason (exit 1); without one, or with a wrong one, it
/// takes none of it: exit 3, and the reason that came with it is not shown.
#[test]
fn a_result_before_go_counts_only_with_the_keys_mac() {
    const KEY: &str = "correct horse battery staple";
    let l = layout();
    let file = l.src.join("one.txt");
    put(&file, b"some bytes");
    for mac in ["right", "none", "wrong"] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let fake = thread::spawn(move || {
            let (mut w, seen, session) = keyed_fake_receiver(listener, KEY, b'M');
            let result = zc::protocol::Outcome {
                status: zc::protocol::Status::Failed,
                sha256: None,
                held: 0,
                message: "the disk is full".into(),
                mac: match mac {
                    "right" => Some(session.result_mac(2, 0)),
                    "none" => None,
                    _ => Some([7; 32]),
                },
            };
            w.0.write_all(&frame(b'R', &result.encode())).unwrap();
            let _ = w.0.read_to_end(&mut Vec::new());
            seen
        });
        let got = send(&["--key", KEY, "--no-encrypt", s(&file), &addr.to_string()]);
        let seen = fake.join().unwrap();
        assert!(seen.ends_with('M'), "{mac}: {seen}");
        if mac == "right" {
            got.expect(
                1,
                &["the disk is full"],
                "a RESULT before GO with the key's MAC",
            );
        } else {
            got.expect_code(3, &format!("a RESULT before GO, MAC {mac}"));
            assert!(
                !got.stderr.contains("the disk is full") && got.stderr.contains("MAC"),
                "{mac}: the reason is not the receiver's word: {}",
                got.stderr
            );
        }
    }
}

/// A hostile receiver says GO twice: the sender stops with a reason that
/// names the frame (exit 1, a runtime failure), and sends no data after it.
#[test]
fn a_sender_stops_at_a_second_go() {
    let l = layout();
    let top = l.src.join("two");
    put(&top.join("f"), b"some bytes");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = thread::spawn(move || {
        let (mut w, seen) = fake_receiver(listener, b'M');
        let mut reply = field(1, &0u64.to_be_bytes());
        reply.extend(field(2, &[1])); // skip the top directory
        let mut out = frame(b'Y', &reply);
        for id in 1..seen.matches('N').count() as u64 {
            let mut r = field(1, &id.to_be_bytes());
            r.extend(field(2, &[0]));
            r.extend(field(5, &[]));
            out.extend(frame(b'Y', &r));
        }
        out.extend(frame(b'G', &[]));
        out.extend(frame(b'G', &[]));
        w.0.write_all(&out).unwrap();
        // what the sender writes after it: no file data
        let mut after = Vec::new();
        let _ = w.0.read_to_end(&mut after);
        (seen, after)
    });
    let got = send(&[s(&top), &addr.to_string()]);
    let (seen, after) = fake.join().unwrap();
    assert!(seen.ends_with('M'), "{seen}");
    got.expect(1, &["unexpected GO after GO"], "a second GO");
    assert!(
        !after.windows(10).any(|w| w == b"some bytes"),
        "file data went out after the second GO"
    );
}

/// Ctrl-C while the sender waits for the receiver's RESULT, END sent: the
/// sender exits 130 with the resume command, as at any other moment, and
/// sends no STOP after END (the receiver reads no frame after it).
#[test]
fn sigint_while_the_sender_waits_for_the_result_prints_a_resume_command() {
    let l = layout();
    let top = l.src.join("two");
    put(&top.join("f"), b""); // no DATA, whose payload `Wire` does not read
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (ended, at_end) = std::sync::mpsc::channel();
    let fake = thread::spawn(move || {
        let (mut w, _) = fake_receiver(listener, b'M');
        let mut skip = field(1, &0u64.to_be_bytes());
        skip.extend(field(2, &[1])); // the top directory
        let mut want = field(1, &1u64.to_be_bytes());
        want.extend(field(2, &[0]));
        want.extend(field(5, &[]));
        let mut out = frame(b'Y', &skip);
        out.extend(frame(b'Y', &want));
        out.extend(frame(b'G', &[]));
        w.0.write_all(&out).unwrap();
        let (kinds, end) = w.until(b"E");
        ended.send(()).unwrap();
        // no RESULT: what the sender writes until it hangs up
        let (after, _) = w.until(b"S");
        (kinds, end.is_some(), after)
    });
    let tx = start(send_cmd(&[s(&top), &addr.to_string()]));
    if at_end.recv_timeout(CLIENT_WAIT).is_ok() {
        sigint(&tx.child);
    }
    let got = tx.finish(TIMEOUT);
    let (kinds, end, after) = fake.join().unwrap();
    assert!(end, "no END: {kinds}");
    got.expect(
        130,
        &["interrupted after sending", "resume with: "],
        "Ctrl-C after END",
    );
    assert!(!after.contains('S'), "a STOP after END: {after}");
}

/// A receiver that sends a frame only a sender sends (DATA) broke the
/// protocol: the sender exits 1 naming it, and `--retry` does not reconnect,
/// as it would for a lost connection.
#[test]
fn a_frame_only_a_sender_sends_ends_the_session_without_a_retry() {
    let l = layout();
    let top = l.src.join("two");
    put(&top.join("f"), b"some bytes");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let again = listener.try_clone().unwrap();
    let fake = thread::spawn(move || {
        let (mut w, _) = fake_receiver(listener, b'M');
        let mut data = 0u64.to_be_bytes().to_vec();
        data.extend(1u64.to_be_bytes());
        w.0.write_all(&frame(b'D', &data)).unwrap();
        let _ = w.0.read_to_end(&mut Vec::new());
    });
    let got = send(&[s(&top), &addr.to_string(), "--retry", "3", "--timeout", "3"]);
    fake.join().unwrap();
    got.expect(
        1,
        &["unexpected DATA from the receiver"],
        "DATA from a receiver",
    );
    again.set_nonblocking(true).unwrap();
    assert!(
        again.accept().is_err(),
        "the sender connected again after the receiver broke the protocol"
    );
}

/// A hostile receiver claims a 6 MiB file is held and lists a block again,
/// in the same FILE HASHES frame or overlapping one of an earlier frame:
/// the sender refuses before hashing it (exit 1, the reason names the
/// rule), so what it hashes for a file is at most the held bytes.
#[test]
fn a_sender_refuses_a_held_block_hashed_twice() {
    let l = layout();
    let file = l.src.join("six.bin");
    put(&file, &bytes(6 << 20, 61));
    let block = |offset: u64, len: u32| {
        let mut b = offset.to_be_bytes().to_vec();
        b.extend(len.to_be_bytes());
        b.extend([0u8; 32]);
        b
    };
    let hashes = |blocks: &[Vec<u8>]| {
        let mut body = 0u64.to_be_bytes().to_vec();
        body.push(0); // not the last frame
        body.extend(blocks.concat());
        frame(b'X', &body)
    };
    let mib = 1u32 << 20;
    let cases = [
        ("the same block twice in a frame", {
            let twice = vec![block(0, 4 * mib); 2];
            hashes(&twice)
        }),
        ("a block overlapping one of an earlier frame", {
            let mut two = hashes(&[block(0, 4 * mib)]);
            two.extend(hashes(&[block(2 << 20, 4 * mib)]));
            two
        }),
    ];
    for (what, frames) in cases {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let fake = thread::spawn(move || {
            let (mut w, seen) = fake_receiver(listener, b'M');
            let mut held = 0u64.to_be_bytes().to_vec();
            held.extend((6u64 << 20).to_be_bytes());
            let mut reply = field(1, &0u64.to_be_bytes());
            reply.extend(field(2, &[0]));
            reply.extend(field(5, &held));
            reply.extend(field(6, &[1]));
            let mut out = frame(b'Y', &reply);
            out.extend(frames);
            w.0.write_all(&out).unwrap();
            let _ = w.0.read_to_end(&mut Vec::new());
            seen
        });
        let got = send(&[s(&file), &addr.to_string()]);
        let seen = fake.join().unwrap();
        assert_eq!(seen, "NM", "{what}: one entry, then the MANIFEST");
        got.expect(1, &["overlap bytes hashed already"], what);
    }
}

/// A manifest the receiver cannot take ends the session with a failed
/// RESULT that says why, before any data (so a sender can tell its user).
#[test]
fn a_bad_manifest_is_answered_with_the_reason() {
    let l = layout();
    let mut rx = receiver(&l.out, &["-k"], Stdout::Null);
    let mut w = offered(rx.addr, 1, 2);
    let mut entries = encode_entry(0, &file_ent(b"one", b"1", 0o644));
    entries.extend(encode_entry(1, &file_ent(b"two", b"2", 0o644)));
    let writer = w.write_behind(entries);
    let message = w.failure();
    writer.join().unwrap();
    assert!(
        message.contains("more entries than the 1 announced"),
        "{message:?}"
    );
    still_serves(&l, &mut rx, "after");
}

/// A receiver that gives up before GO and says why: the sender's user
/// reads the reason, not "connection lost", whether the RESULT comes after
/// the MANIFEST or while the sender is still walking a large tree.
#[test]
fn a_sender_reports_why_the_receiver_gave_up_before_go() {
    let l = layout();
    let small = l.src.join("early");
    put(&small.join("f"), b"bytes");
    let large = l.src.join("large");
    fs::create_dir_all(&large).unwrap();
    for i in 0..3000 {
        fs::write(large.join(format!("file-with-a-longish-name-{i:05}")), b"x").unwrap();
    }
    for (top, after) in [(&small, b'M'), (&large, b'N')] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let fake = thread::spawn(move || {
            let (mut w, _) = fake_receiver(listener, after);
            let mut result = field(1, &[2]);
            result.extend(field(3, &0u64.to_be_bytes()));
            result.extend(field(4, b"the output disk is on fire"));
            w.0.write_all(&frame(b'R', &result)).unwrap();
            // the socket stays open while the sender writes what it has
            let _ = w.0.read_to_end(&mut Vec::new());
        });
        let got = send(&[s(top), &addr.to_string()]);
        fake.join().unwrap();
        let what = format!("a RESULT after {}", after as char);
        got.expect(1, &["failed: the output disk is on fire"], &what);
    }
}

/// How a hostile receiver answers a real sender, in words it chose.
#[derive(Debug, Clone, Copy)]
enum Says {
    /// ANSWER refuse, its reason.
    Answer,
    /// REPLY refuse to every entry, then a failed RESULT after END.
    Reply,
    /// A failed RESULT before GO, its message.
    Result,
}

/// A fake receiver that answers a real sender's tree with
/// [`HOSTILE_TEXT`] in the ANSWER, the REPLYs or the RESULT; the sender's
/// stderr.
fn hostile_words(l: &Layout, says: Says, json: bool) -> Outcome {
    use zc::protocol::tree::{Action, Reply};
    use zc::protocol::{Answer, Outcome as Result, RefuseCode, Status, ToSender};
    let top = l.src.join("words");
    put(&top.join("f"), b"bytes");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let failed = || Result {
        status: Status::Failed,
        sha256: None,
        held: 0,
        message: HOSTILE_TEXT.into(),
        mac: None,
    };
    let fake = thread::spawn(move || {
        let mut out = Vec::new();
        let mut w = match says {
            Says::Answer => {
                let (s, _) = listener.accept().unwrap();
                s.set_read_timeout(Some(CLIENT_WAIT)).unwrap();
                let mut w = Wire(s);
                w.0.read_exact(&mut [0u8; 8]).unwrap();
                w.until(b"O");
                let answer = Answer::Refuse {
                    code: RefuseCode::Other,
                    reason: HOSTILE_TEXT.into(),
                };
                ToSender::Answer(answer).append_to(&mut out);
                w
            }
            Says::Reply => {
                let (mut w, seen) = fake_receiver(listener, b'M');
                for id in 0..seen.matches('N').count() as u64 {
                    let action = Action::Refuse {
                        code: RefuseCode::Exists,
                        reason: HOSTILE_TEXT.into(),
                    };
                    ToSender::Reply(Reply { id, action }).append_to(&mut out);
                }
                ToSender::Go.append_to(&mut out);
                w.0.write_all(&std::mem::take(&mut out)).unwrap();
                w.until(b"E");
                ToSender::Result(failed()).append_to(&mut out);
                w
            }
            Says::Result => {
                let (w, _) = fake_receiver(listener, b'M');
                ToSender::Result(failed()).append_to(&mut out);
                w
            }
        };
        w.0.write_all(&out).unwrap();
        let _ = w.0.read_to_end(&mut Vec::new());
    });
    let style = match json {
        true => "--json",
        false => "--progress=plain",
    };
    let got = send(&[style, s(&top), &addr.to_string()]);
    fake.join().unwrap();
    got
}

/// Whatever a receiver says (a refusal's reason in ANSWER or REPLY, a
/// RESULT's message) reaches the sender's stderr escaped: no escape
/// sequence, no C1 control, no line of its own; `--json` carries it as a
/// string (the entries' messages as the receiver's very words).
#[test]
fn a_receivers_words_reach_the_senders_terminal_escaped() {
    let l = layout();
    for says in [Says::Answer, Says::Reply, Says::Result] {
        let what = format!("{says:?}");
        let got = hostile_words(&l, says, false);
        assert_ne!(got.code, 0, "{what}: {}", got.stderr);
        assert_terminal_safe(&got.stderr, &what);
        got.says(&[HOSTILE_SHOWN]);
        let what = format!("{says:?}, --json");
        let got = hostile_words(&l, says, true);
        let events = json_lines(&got.stderr, &what);
        let said = |e: &Value| {
            ["message"]
                .iter()
                .filter_map(|k| e[k].as_str())
                .any(|m| m.contains(HOSTILE_SHOWN) || m == HOSTILE_TEXT)
        };
        assert!(events.iter().any(said), "{what}: {}", got.stderr);
        if let Says::Reply = says {
            let refused: Vec<_> = events
                .iter()
                .filter(|e| e["event"] == "entry" && e["status"] == "refused")
                .collect();
            assert!(!refused.is_empty(), "{what}: {}", got.stderr);
            for e in refused {
                assert_eq!(e["message"], HOSTILE_TEXT, "{what}: as data: {e}");
            }
        }
    }
}

/// A sender checking held blocks sends KEEPALIVEs while it waits for GO,
/// and one can arrive right behind the MANIFEST: the receiver still says GO.
#[test]
fn a_keepalive_behind_the_manifest_is_no_data_before_go() {
    let l = layout();
    let rx = receiver(&l.out, &["-k"], Stdout::Null);
    let mut w = offered(rx.addr, 1, 1);
    let mut frames = encode_entry(0, &file_ent(b"k", b"1", 0o644));
    frames.extend(manifest_frame(1));
    frames.extend(frame(b'K', &[]));
    w.0.write_all(&frames).unwrap();
    let (kinds, _) = w.until(b"GR");
    assert!(
        kinds.ends_with('G'),
        "the receiver answered {kinds:?}, not GO"
    );
}

#[test]
fn oversized_tree_offers_are_refused_before_any_entry() {
    let l = layout();
    let mut rx = receiver(
        &l.out,
        &["-k", "--max-files", "1000", "--max-size", "1M"],
        Stdout::Null,
    );
    for (what, entries, bytes) in [
        ("a million entries", 1_000_000u64, 0u64),
        ("1001 entries", 1001, 0),
        ("10 GiB", 3, 10 << 30),
    ] {
        let mut w = Wire::connect(rx.addr);
        let mut hello = preamble();
        hello.extend(tree_offer(entries, bytes));
        w.0.write_all(&hello).unwrap();
        let (kind, body) = w
            .next()
            .unwrap_or_else(|| panic!("{what}: no answer to the offer"));
        assert_eq!(kind, b'A', "{what}: an ANSWER first");
        let f = parse_fields(&body);
        assert_eq!(get(&f, 1), Some(&[1][..]), "{what}: refused: {f:?}");
        assert_eq!(
            get(&f, 2),
            Some(&[2][..]),
            "{what}: code 2, too large: {f:?}"
        );
        assert!(
            rx.child.try_wait().unwrap().is_none(),
            "{what}: receiver ended"
        );
    }
    // A real tree over --max-files: the sender exits 4 and nothing lands.
    let top = l.src.join("wide");
    for i in 0..1005 {
        put(&top.join(format!("f{i:04}")), b"");
    }
    let sent = send(&[s(&top), &rx.dest()]);
    sent.expect_code(4, "zc send of 1006 entries to --max-files 1000");
    assert!(list_dir(&l.out).is_empty(), "{:?}", list_dir(&l.out));
    // The sender counts a tree as it sends it: over --max-size is found
    // in the middle of the manifest, and the tree is refused whole all the
    // same (exit 4; the directories it made are gone again).
    let big = l.src.join("big");
    for i in 0..3 {
        put(&big.join(format!("sub/f{i}")), &bytes(400 << 10, i));
    }
    let sent = send(&[s(&big), &rx.dest()]);
    sent.expect(4, &["--max-size"], "zc send of 1.2 MiB to --max-size 1M");
    assert!(list_dir(&l.out).is_empty(), "{:?}", list_dir(&l.out));
    let dest = rx.dest();
    real_send_lands(&l, &dest, "real");
}

#[test]
fn planted_links_in_the_destination_are_never_followed() {
    let l = layout();
    let out = &l.out;
    // OUT/top1 -> the sibling directory; OUT/top2/sub -> the sibling's sub;
    // OUT/top3/x.txt -> a file outside; OUT/top4/x.txt.zcpart -> a missing
    // file outside. An entry no planted link stands in the way of
    // (top2/plain.txt) lands all the same.
    symlink(&l.outside, out.join("top1")).unwrap();
    fs::create_dir(out.join("top2")).unwrap();
    symlink(l.outside.join("sub"), out.join("top2/sub")).unwrap();
    fs::create_dir(out.join("top3")).unwrap();
    symlink("../../outside/precious.txt", out.join("top3/x.txt")).unwrap();
    fs::create_dir(out.join("top4")).unwrap();
    symlink("../../outside/victim.txt", out.join("top4/x.txt.zcpart")).unwrap();
    let mut sources = Vec::new();
    for (top, files) in [
        ("top1", &["precious.txt", "sub/keep.txt", "new.txt"][..]),
        ("top2", &["sub/keep.txt", "sub/new.txt", "plain.txt"][..]),
        ("top3", &["x.txt"][..]),
        ("top4", &["x.txt"][..]),
    ] {
        let dir = l.src.join(top);
        for (i, f) in files.iter().enumerate() {
            put(&dir.join(f), &bytes(3000 + i, 140 + i as u64));
        }
        stamp_times(&dir);
        sources.push(s(&dir).to_string());
    }
    let before = outside_state(&l);
    for extra in [&["-k"][..], &["-k", "--force"][..]] {
        let what = format!("receiver {extra:?}");
        let mut rx = receiver(out, extra, Stdout::Null);
        let dest = rx.dest();
        let mut args: Vec<&str> = sources.iter().map(String::as_str).collect();
        args.push(&dest);
        let sent = send(&args);
        println!("{what}: sender:\n{}", sent.stderr);
        assert!(
            [0, 4, 5].contains(&sent.code),
            "{what}: exit {}; stderr:\n{}",
            sent.code,
            sent.stderr
        );
        assert_eq!(
            outside_state(&l),
            before,
            "{what}: something outside OUT changed"
        );
        assert!(
            !l.outside.join("victim.txt").exists(),
            "{what}: written through a planted .zcpart link"
        );
        if sent.code == 0 {
            for top in ["top1", "top2", "top3", "top4"] {
                assert_same_tree(&l.src.join(top), &out.join(top), &what);
            }
        }
        assert_same_tree(
            &l.src.join("top2/plain.txt"),
            &out.join("top2/plain.txt"),
            &format!("{what}: top2/plain.txt, which no planted link touches"),
        );
        assert!(
            rx.child.try_wait().unwrap().is_none(),
            "{what}: receiver ended"
        );
        real_send_lands(&l, &dest, "real");
        fs::remove_dir_all(out.join("real")).unwrap();
    }
    // Where a planted link still stands, it points where it did.
    if fs::symlink_metadata(out.join("top1"))
        .unwrap()
        .file_type()
        .is_symlink()
    {
        assert_eq!(fs::read_link(out.join("top1")).unwrap(), l.outside);
    }
}

/// Mode and mtime (ns) of a path, not following links.
fn mode_and_time(path: &Path) -> (u32, (i64, i64)) {
    let meta = fs::symlink_metadata(path).unwrap();
    (meta.mode() & 0o7777, mtime_ns(&meta))
}

#[test]
fn directories_that_exist_keep_their_mode_and_times_whatever_a_sender_says() {
    // `zc recv` in $HOME: a sender without a key names .ssh, a sticky
    // shared directory and a nested projects/secret (through its parent)
    // as DIR entries of mode 0o777. They are accepted (a tree may land
    // inside them) but left exactly as they were, with --force too; only
    // the directory the session made takes the sender's mode and time.
    for extra in [&["-k"][..], &["-k", "--force"]] {
        let l = layout();
        let existing: [(&str, u32, u64); 4] = [
            (".ssh", 0o700, 1_500_000_000_000_000_001),
            ("shared", 0o1777, 1_500_000_000_000_000_002),
            ("projects/secret", 0o700, 1_500_000_000_000_000_003),
            ("projects", 0o755, 1_500_000_000_000_000_004),
        ];
        put(&l.out.join(".ssh/id_ed25519"), &bytes(411, 160));
        for (dir, mode, ns) in existing {
            fs::create_dir_all(l.out.join(dir)).unwrap();
            chmod(&l.out.join(dir), mode);
            set_mtime_ns(&l.out.join(dir), ns);
        }
        let mut rx = receiver(&l.out, extra, Stdout::Null);
        let wide = |path: &[u8]| Ent {
            mode: 0o777,
            ..dir_ent(path)
        };
        let entries = [
            wide(b".ssh"),
            wide(b"shared"),
            wide(b"projects"),
            wide(b"projects/secret"),
            wide(b"new"),
            file_ent(b"new/f.txt", b"f\n", 0o644),
        ];
        let session = hostile_session(rx.addr, &entries, entries.len() as u64);
        let ctx = format!("zc recv {extra:?}");
        assert!(session.go && session.result.is_some(), "{ctx}: {session:?}");
        for (dir, mode, ns) in existing {
            let (m, t) = mode_and_time(&l.out.join(dir));
            assert_eq!(m, mode, "{ctx}: {dir} was re-moded to {m:o}");
            assert_eq!(
                t,
                (ns as i64 / 1_000_000_000, ns as i64 % 1_000_000_000),
                "{ctx}: {dir} mtime"
            );
        }
        let umask = own_umask();
        let (m, t) = mode_and_time(&l.out.join("new"));
        assert_eq!(m, 0o777 & !umask, "{ctx}: the directory the session made");
        let hostile = HOSTILE_MTIME as i64;
        assert_eq!(
            t,
            (hostile / 1_000_000_000, hostile % 1_000_000_000),
            "{ctx}: new"
        );
        assert_eq!(fs::read(l.out.join("new/f.txt")).unwrap(), b"f\n");
        still_serves(&l, &mut rx, "real");
    }
}

#[test]
fn a_sender_without_the_key_hears_that_a_name_exists_not_its_size_or_kind() {
    // A prober names what may be in OUT, to hang up before GO. It learns
    // that each exists (resume and --force need that much), not its size,
    // that it is a link or a directory, or a link's target; the receiver's
    // user still reads all of it.
    let l = layout();
    put(&l.out.join(".ssh/id_ed25519"), &bytes(411, 161));
    symlink("id_ed25519", l.out.join(".ssh/id_link")).unwrap();
    fs::create_dir(l.out.join(".ssh/keys")).unwrap();
    symlink("elsewhere", l.out.join(".ssh/config")).unwrap();
    let rx = receiver(&l.out, &[], Stdout::Null);
    let entries = [
        dir_ent(b".ssh"),
        bad(file_ent(b".ssh/id_ed25519", b"x", 0o600)),
        bad(file_ent(b".ssh/id_link", b"x", 0o600)),
        bad(file_ent(b".ssh/keys", b"x", 0o600)),
        bad(link_ent(b".ssh/config", b"x")),
    ];
    let session = hostile_session(rx.addr, &entries, entries.len() as u64);
    let got = rx.finish(TIMEOUT);
    for (id, e) in entries.iter().enumerate().skip(1) {
        let name = String::from_utf8_lossy(&e.path);
        let (action, code, reason) = &session.replies[&(id as u64)];
        assert_eq!(
            (*action, *code),
            (2, Some(1)),
            "{name}: refused as existing"
        );
        assert_eq!(
            reason, "exists (the receiver replaces a file only with --force)",
            "{name}: what the sender hears"
        );
    }
    // a prober that goes on through GO and END reads the RESULT: the same
    // less, never the receiver's own words
    let result = session.result.as_ref().expect("a RESULT after END");
    let told = String::from_utf8_lossy(get(result, 4).unwrap_or_default()).into_owned();
    assert!(told.contains("4 entries did not land"), "{told}");
    assert_eq!(
        told.matches("refused: exists (the receiver replaces a file only with --force)")
            .count(),
        4,
        "{told}"
    );
    for said in [
        "exists with 411 bytes, not 1",
        "exists as a link",
        "exists and is not a file",
        "a link to another target exists",
    ] {
        assert!(!told.contains(said), "the sender reads {said:?}: {told}");
        got.says(&[said]);
    }
}

#[test]
fn a_sender_with_the_key_hears_what_exists() {
    let l = layout();
    let top = l.src.join("keyed");
    put(&top.join("a.txt"), &bytes(100, 162));
    put(&l.out.join("keyed/a.txt"), &bytes(411, 163));
    let rx = receiver(&l.out, &["--key", "sesame"], Stdout::Null);
    let sent = send(&["--key", "sesame", s(&top), &rx.dest()]);
    sent.expect(
        5,
        &["exists with 411 bytes, not 100"],
        "a keyed send onto a file that differs",
    );
    drop(rx);
}

#[test]
fn a_file_the_receiver_cannot_write_fails_alone_and_the_rest_of_the_session_lands() {
    // Where first/x.txt.zcpart should be stands a directory (debris), and
    // first/z.txt.zcpart is a link out of OUT. Neither file can be written
    // (safely); every other entry, before and after them, lands, and the
    // sender exits 5 naming the two.
    let l = layout();
    let first = l.src.join("first");
    put(&first.join("x.txt"), b"x\n");
    put(&first.join("y.txt"), &bytes(10_000, 150));
    put(&first.join("z.txt"), b"z\n");
    let later = l.src.join("later");
    put(&later.join("a.txt"), &bytes(20_000, 151));
    put(&later.join("b/c.txt"), &bytes(30_000, 152));
    stamp_times(&first);
    stamp_times(&later);
    fs::create_dir_all(l.out.join("first/x.txt.zcpart")).unwrap();
    symlink("../../outside/victim.txt", l.out.join("first/z.txt.zcpart")).unwrap();
    let before = outside_state(&l);
    let mut rx = receiver(&l.out, &["-k"], Stdout::Null);
    let dest = rx.dest();
    let sent = send(&[s(&first), s(&later), &dest]);
    println!("sender:\n{}", sent.stderr);
    sent.expect(
        5,
        &["cannot be written on the receiver", "x.txt", "z.txt"],
        "zc send with two files the receiver cannot write",
    );
    // without the key, the FILE RESULTs and the RESULT do not say what
    // stands at the part's name (a directory, a link); the receiver's log does
    assert!(
        !sent.stderr.contains("cannot write it here"),
        "{}",
        sent.stderr
    );
    assert_eq!(outside_state(&l), before, "something outside OUT changed");
    assert!(!l.outside.join("victim.txt").exists());
    assert_same_tree(&first.join("y.txt"), &l.out.join("first/y.txt"), "y.txt");
    assert_same_tree(
        &later,
        &l.out.join("later"),
        "later/, sent after the failures",
    );
    still_serves(&l, &mut rx, "real");
    sigint(&rx.child);
    let got = rx.finish(TIMEOUT);
    got.says(&["cannot write it here"]);
}

/// A receiver that permissions bind: as root (CI), `zc recv` under
/// `setpriv` without the capabilities that bypass them; otherwise as is.
fn receiver_bound_by_permissions(out: &Path, extra: &[&str]) -> Receiver {
    if !is_root() {
        return receiver(out, extra, Stdout::Null);
    }
    let drop = "-dac_override,-dac_read_search,-fowner";
    // The wrapper must really take the override away, or the test proves nothing.
    let probe = tempfile::tempdir().unwrap();
    chmod(probe.path(), 0o555);
    let status = Command::new("setpriv")
        .args([
            "--bounding-set",
            drop,
            "--",
            "sh",
            "-c",
            "test -w \"$1\"",
            "sh",
        ])
        .arg(probe.path())
        .status()
        .expect("this test needs setpriv (util-linux) when run as root");
    assert_eq!(
        status.code(),
        Some(1),
        "setpriv did not drop CAP_DAC_OVERRIDE"
    );
    chmod(probe.path(), 0o755);
    let mut cmd = Command::new("setpriv");
    cmd.env("XDG_CACHE_HOME", CACHE)
        .args(["--bounding-set", drop, "--"])
        .arg(env!("CARGO_BIN_EXE_zc"))
        .args(["recv", "-l", "127.0.0.1:0", "-o"])
        .arg(out)
        .args(extra);
    spawn_receiver(cmd, Stdout::Null)
}

#[test]
fn a_read_only_directory_that_exists_stays_read_only_and_a_new_file_in_it_fails_alone() {
    // A directory of mode 0o555 arrives as 0o555. Once there it is one
    // that exists: a later send does not make it writable (nor give it
    // the sender's mode and time), so a file added to it since fails alone
    // (exit 5, named) and the rest of the tree lands.
    let l = layout();
    let top = l.src.join("t");
    put(&top.join("ro/a.txt"), b"a\n");
    put(&top.join("w.txt"), b"w\n");
    chmod(&top.join("ro"), 0o555);
    stamp_times(&top);
    let rx = receiver_bound_by_permissions(&l.out, &["-k"]);
    let dest = rx.dest();
    send(&[s(&top), &dest]).expect_code(0, "the first send");
    assert_same_tree(&top, &l.out.join("t"), "after the first send");
    let ro = top.join("ro");
    chmod(&ro, 0o755);
    put(&ro.join("b.txt"), b"b, new\n");
    chmod(&ro, 0o555);
    set_mtime_ns(&ro.join("b.txt"), 1_700_000_003_000_000_003);
    set_mtime_ns(&ro, 1_700_000_004_000_000_004);
    put(&top.join("w2.txt"), b"w2, new\n");
    let landed_ro = mode_and_time(&l.out.join("t/ro"));
    let sent = send(&[s(&top), &dest]);
    sent.expect(5, &["b.txt"], "the same tree again, with ro/b.txt added");
    assert_eq!(
        mode_and_time(&l.out.join("t/ro")),
        landed_ro,
        "ro/ was changed"
    );
    assert!(!l.out.join("t/ro/b.txt").exists());
    assert_same_tree(&top.join("w2.txt"), &l.out.join("t/w2.txt"), "w2.txt");
}

impl Wire {
    /// Frames up to END (or the sender hanging up), DATA payloads read
    /// with their frames: the bytes of file data that came.
    fn data_until_end(&mut self) -> (String, Vec<u8>) {
        let (mut kinds, mut data) = (String::new(), Vec::new());
        while let Some((kind, body)) = self.next() {
            kinds.push(kind as char);
            if kind == b'D' {
                let len = u64::from_be_bytes(body[8..16].try_into().unwrap());
                let mut payload = vec![0u8; len as usize];
                if self.0.read_exact(&mut payload).is_err() {
                    break;
                }
                data.extend(payload);
            }
            if kind == b'E' {
                break;
            }
        }
        (kinds, data)
    }
}

/// A directory of the tree swapped for a link to an outside directory
/// after the walk listed it, before its file is sent: the outside file
/// (same name, size and modification time) is never read and sent, the
/// file is opened beneath the source's handle, not by its path.
#[test]
fn a_directory_swapped_for_a_link_after_the_walk_never_sends_outside_bytes() {
    let l = layout();
    let top = l.src.join("top");
    let (inside, outside) = (top.join("sub/f"), l.outside.join("f"));
    put(&inside, &vec![b'i'; 100_000]);
    put(&outside, &b"OUTSIDE!".repeat(12_500));
    let when = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    for f in [&inside, &outside] {
        let file = OpenOptions::new().write(true).open(f).unwrap();
        file.set_modified(when).unwrap();
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (swap_top, aside, away) = (top.clone(), l.root.join("aside"), l.outside.clone());
    let fake = thread::spawn(move || {
        let (mut w, seen) = fake_receiver(listener, b'M');
        // walked and offered: now `sub` goes, a link to outside in its place
        fs::rename(swap_top.join("sub"), &aside).unwrap();
        symlink(&away, swap_top.join("sub")).unwrap();
        let mut out = Vec::new();
        for id in 0..seen.matches('N').count() as u64 {
            let mut reply = field(1, &id.to_be_bytes());
            match id {
                2 => {
                    reply.extend(field(2, &[0]));
                    reply.extend(field(5, &[]));
                }
                _ => reply.extend(field(2, &[1])), // the directories
            }
            out.extend(frame(b'Y', &reply));
        }
        out.extend(frame(b'G', &[]));
        w.0.write_all(&out).unwrap();
        (seen, w.data_until_end())
    });
    let got = send(&[s(&top), &addr.to_string(), "--timeout", "5"]);
    let (seen, (kinds, data)) = fake.join().unwrap();
    assert_eq!(seen, "NNNM", "top, sub, sub/f offered");
    assert!(kinds.ends_with('E'), "the session reached its END: {kinds}");
    assert!(
        !data.windows(8).any(|w| w == b"OUTSIDE!"),
        "{} bytes of the outside file were sent ({})",
        data.len(),
        got.stderr
    );
}
