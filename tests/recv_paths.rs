//! How `--no-verify` bytes reach a regular file: splice(2) or read/write,
//! whichever the receiver measured cheaper on that file system type (and
//! cached), and read/write wherever the kernel refuses splice. Each way,
//! on tmpfs, on ext4 (a loop device made here; root), and under a seccomp
//! filter that makes splice fail with EINVAL as a file system without
//! splice_write does, must land the same bytes.
#![cfg(target_os = "linux")]

mod common;

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Over the measuring turns (16 MiB each way, in 4 MiB turns), so a first
/// receive tries both ways in one file and ends with the one it chose.
const SIZE: u64 = 40 * MIB;
const TMPFS: &str = "01021994";
const EXT4: &str = "0000ef53";

/// The cache file a receiver with `XDG_CACHE_HOME=cache` reads and writes.
fn cache_file(cache: &Path) -> PathBuf {
    cache.join("zc").join("recv-paths")
}

/// Sends `src` with --no-verify to a receiver writing `out`, with its
/// cache in `cache` and `seccomp` (if any) installed before it runs;
/// returns the receiver's summary line.
fn receive(src: &Path, out: &Path, cache: &Path, seccomp: bool) -> String {
    receive_as(&[], src, out, cache, seccomp)
}

/// [`receive`], with `mode` (`--raw`, or nothing) on both sides.
fn receive_as(mode: &[&str], src: &Path, out: &Path, cache: &Path, seccomp: bool) -> String {
    // a file already there with the same size and time would be up to date
    let _ = fs::remove_file(out);
    let mut cmd = recv_cmd(out, &["--no-verify", "--force", "--progress", "none"]);
    cmd.args(mode).env("XDG_CACHE_HOME", cache);
    if seccomp {
        refuse_splice(&mut cmd);
    }
    let r = spawn_receiver(cmd, Stdout::Null);
    let dest = r.dest();
    let mut args = mode.to_vec();
    args.extend(["--no-verify", "--progress", "none", s(src), &dest]);
    send(&args).expect_clean(0, "sending");
    let got = r.finish(LONG_TIMEOUT);
    got.expect_clean(0, "receiving");
    assert_same_file(src, out);
    let line = line_with(&got.stderr, "received").unwrap_or_else(|| panic!("{}", got.stderr));
    line.to_string()
}

/// This machine's line for `fs` in the cache, split in words.
fn cached(cache: &Path, fs: &str) -> Vec<String> {
    let text = fs::read_to_string(cache_file(cache)).unwrap_or_default();
    let line = text
        .lines()
        .find(|l| l.starts_with(fs))
        .unwrap_or_else(|| panic!("no line for {fs} in the cache: {text:?}"));
    line.split_whitespace().map(str::to_string).collect()
}

/// Rewrites the way the cache holds for `fs`, as another run could have measured it.
fn set_cached(cache: &Path, fs: &str, way: &str) {
    let mut words = cached(cache, fs);
    words[3] = way.to_string();
    fs::write(cache_file(cache), words.join(" ") + "\n").unwrap();
}

/// A first receive measures and caches a way; then each way, forced by
/// the cache, lands the same bytes, and the summary says which it was.
fn both_ways(dir: &Path, fs: &str) {
    let src = dir.join("src.bin");
    random_file(&src, SIZE, 24);
    let out = dir.join("out.bin");
    let cache = tempfile::tempdir().unwrap();

    receive(&src, &out, cache.path(), false);
    let words = cached(cache.path(), fs);
    assert!(
        ["splice", "read-write"].contains(&words[3].as_str()),
        "{words:?}"
    );
    // both ways were timed: nanoseconds per MiB of each
    for ns in &words[4..6] {
        assert!(ns.parse::<u64>().is_ok_and(|n| n > 0), "{words:?}");
    }

    set_cached(cache.path(), fs, "read-write");
    let line = receive(&src, &out, cache.path(), false);
    assert!(line.contains("buffered"), "{line}");

    set_cached(cache.path(), fs, "splice");
    let line = receive(&src, &out, cache.path(), false);
    assert!(line.contains("zero-copy"), "{line}");
}

#[test]
fn into_tmpfs_either_way_lands_the_same_bytes() {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    both_ways(dir.path(), TMPFS);
}

#[test]
fn into_ext4_either_way_lands_the_same_bytes() {
    let test = "into_ext4_either_way_lands_the_same_bytes";
    let Some(mount) = Ext4::make(test) else {
        return;
    };
    both_ways(&mount.dir, EXT4);
}

#[test]
fn where_splice_is_refused_the_bytes_take_read_write() {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let src = dir.path().join("src.bin");
    random_file(&src, SIZE, 7);
    let out = dir.path().join("out.bin");
    let cache = tempfile::tempdir().unwrap();
    // nothing cached: the first turn asks for splice, which is refused
    let line = receive(&src, &out, cache.path(), true);
    assert!(line.contains("buffered"), "{line}");
    // nor does a cache that says splice: it is refused all the same
    receive(&src, &out, cache.path(), false);
    set_cached(cache.path(), TMPFS, "splice");
    let line = receive(&src, &out, cache.path(), true);
    assert!(line.contains("buffered"), "{line}");
}

/// A raw receive into a file (`--raw --no-verify`) splices, and takes
/// read/write where splice is refused: the same bytes either way, and its
/// summary says which.
#[test]
fn a_raw_receive_into_a_file_splices_or_takes_read_write_where_refused() {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let src = dir.path().join("src.bin");
    random_file(&src, SIZE, 8);
    let out = dir.path().join("out.bin");
    let cache = tempfile::tempdir().unwrap();
    for (seccomp, way) in [(false, "zero-copy"), (true, "buffered")] {
        let line = receive_as(&["--raw"], &src, &out, cache.path(), seccomp);
        assert!(line.contains(way), "seccomp {seccomp}: {line}");
    }
}

/// Makes every splice(2) of the child fail with EINVAL, what the kernel
/// answers for a file whose file system has no splice_write: a seccomp
/// filter, installed between fork and exec, that execve keeps.
fn refuse_splice(cmd: &mut Command) {
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let filter = [
        op(LD_W_ABS, 0, 0, 4), // seccomp_data.arch
        op(JEQ_K, 0, 3, ARCH),
        op(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        op(JEQ_K, 0, 1, libc::SYS_splice as u32),
        op(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EINVAL as u32),
        op(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    // SAFETY: between fork and exec only prctl runs, which is
    // async-signal-safe; the filter was built before the fork and lives in
    // the closure, which outlives the call.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// An ext4 file system in an image file, mounted through a loop device
/// for one test; unmounted (and the image removed) when dropped.
struct Ext4 {
    dir: PathBuf,
    _image: tempfile::TempDir,
}

impl Ext4 {
    /// `None` (with a SKIP line) without root or the tools, or a failure
    /// under `ZC_ROOT_REQUIRED=1` (CI, as root).
    fn make(test: &str) -> Option<Ext4> {
        let image = tempfile::tempdir().unwrap();
        let file = image.path().join("ext4.img");
        let dir = image.path().join("mnt");
        fs::create_dir(&dir).unwrap();
        let steps: [(&str, Vec<&std::ffi::OsStr>); 3] = [
            (
                "truncate",
                vec!["-s".as_ref(), "256M".as_ref(), file.as_os_str()],
            ),
            (
                "mkfs.ext4",
                vec!["-q".as_ref(), "-F".as_ref(), file.as_os_str()],
            ),
            (
                "mount",
                vec![
                    "-o".as_ref(),
                    "loop".as_ref(),
                    file.as_os_str(),
                    dir.as_os_str(),
                ],
            ),
        ];
        for (tool, args) in steps {
            let why = match Command::new(tool).args(&args).output() {
                Ok(o) if o.status.success() => continue,
                Ok(o) => format!(
                    "{tool} failed ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
                Err(e) => format!("cannot run {tool}: {e}"),
            };
            skip_unless_required("ZC_ROOT_REQUIRED", test, &why);
            return None;
        }
        Some(Ext4 { dir, _image: image })
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}
