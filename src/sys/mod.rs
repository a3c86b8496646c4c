//! The only `unsafe` in zc: thin wrappers over syscalls std does not offer.
//!
//! One interface here, the platform's calls behind it: `unix.rs` what every
//! unix shares, `linux.rs` and `bsd.rs` (macOS, FreeBSD) what only they
//! have, `windows.rs` the answers where there is no such call. The calls
//! every platform answers are declared here once; those only some have are
//! re-exported from their module, under its `cfg`.
#![allow(unsafe_code)]

#[cfg(any(target_os = "macos", target_os = "freebsd"))]
mod bsd;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(unix)]
mod unix;
#[cfg(not(unix))]
mod windows;
#[cfg(unix)]
use unix as platform;
#[cfg(not(unix))]
use windows as platform;

use std::fs::File;
use std::io;
use std::path::Path;

#[cfg(target_os = "linux")]
pub use linux::{
    fs_magic, kernel_at_least, link_unnamed, open_unnamed, openat2_beneath, pipe, recv_when_ready,
    set_pipe_size, set_recv_low_water, splice, splice_refused, syncfs, thread_cpu_ns,
};
#[cfg(unix)]
pub use unix::{
    euid, lstatat, mkdirat, openat, readlinkat, renameat, symlinkat, unlinkat, wait_readable,
};
#[cfg(unix)]
pub use unix::{read_dir_names, statat};

/// `sendfile(2)`: moves up to `count` bytes of `file` from `*offset` into the
/// socket, inside the kernel, advancing `*offset` by what it moved (a
/// partial send that the BSDs report with EAGAIN or EINTR included).
#[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
pub fn sendfile(
    socket: std::os::fd::BorrowedFd<'_>,
    file: std::os::fd::BorrowedFd<'_>,
    offset: &mut u64,
    count: usize,
) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    {
        linux::sendfile(socket, file, offset, count)
    }
    #[cfg(any(target_os = "macos", target_os = "freebsd"))]
    {
        bsd::sendfile(socket, file, offset, count)
    }
}

/// Bytes free for an unprivileged writer on the file system holding `path`;
/// Unsupported where there is no statvfs.
pub fn free_space(path: &Path) -> io::Result<u64> {
    platform::free_space(path)
}

/// Takes an exclusive, non-blocking advisory lock on an open file; `false`
/// when another process (or another open of this file) holds it. Always
/// `true` where there are no advisory locks.
pub fn try_lock(file: &File) -> io::Result<bool> {
    platform::try_lock(file)
}

/// True when `file` lives in memory (tmpfs, ramfs): there is no layout on
/// a disk to gain from reserving its space ahead of the writes. Only Linux
/// is asked; elsewhere `false`.
pub fn in_memory(file: &File) -> bool {
    #[cfg(target_os = "linux")]
    {
        linux::in_memory(file)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        false
    }
}

/// Reads from `offset` into `bufs` in order: one `preadv(2)` on unix, a
/// read per buffer on Windows. The count can be short of the buffers'
/// length (at the end of the file, or past the system's limit on buffers
/// per call); the caller reads on from there.
pub fn read_at_vectored(
    file: &File,
    bufs: &mut [io::IoSliceMut<'_>],
    offset: u64,
) -> io::Result<usize> {
    #[cfg(unix)]
    {
        unix::read_at_vectored(file, bufs, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        for buf in bufs.iter_mut() {
            let at = offset + done as u64;
            let n = std::os::windows::fs::FileExt::seek_read(file, buf, at)?;
            done += n;
            if n < buf.len() {
                break;
            }
        }
        Ok(done)
    }
}

/// Reserves space for bytes [offset, offset+len) of `file` without changing
/// its size (`fallocate(2)` with FALLOC_FL_KEEP_SIZE). A file system that
/// cannot (EOPNOTSUPP) says so, and so does every platform but Linux
/// (Unsupported); the writes that follow work either way.
pub fn preallocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        linux::preallocate(file, offset, len)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, offset, len);
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// Raises the soft limit on open files toward the hard one (at most 65536)
/// and returns the soft limit in force: a tree receiver holds a batch of
/// verified parts open, locked, until they are renamed.
pub fn raise_open_files() -> u64 {
    platform::raise_open_files()
}

/// Reads the umask, for [`umask`]; call it before any thread starts (reading
/// it means setting it for a moment).
pub fn note_umask() {
    platform::note_umask()
}

/// The umask noted at start, if it was: what a mode given to open(2) loses.
pub fn umask() -> Option<u32> {
    platform::umask()
}

/// Grows this process's descriptor table to hold `count` descriptors now,
/// while it runs one thread: Linux grows the table by doubling, and each
/// growth in a process with threads waits for an RCU grace period (5-8 ms
/// on this VM; a tree receiver holding a batch of 5,000 parts open lost
/// about 35 ms of 200 to five of them). Best effort: on failure nothing is
/// lost but that time. Nothing to do elsewhere.
pub fn reserve_descriptors(count: u64) {
    #[cfg(target_os = "linux")]
    linux::reserve_descriptors(count);
    #[cfg(not(target_os = "linux"))]
    let _ = count;
}

/// This machine's name, to tell the other side where to connect.
pub fn hostname() -> Option<String> {
    platform::hostname()
}

#[cfg(test)]
mod tests {
    /// A reservation changes neither the size nor the bytes already there,
    /// so a part cut short still ends where its data does.
    #[test]
    fn preallocate_keeps_size_and_data() {
        use std::io::{Read, Seek, Write};
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"held").unwrap();
        match super::preallocate(&file, 0, 8 << 20) {
            Ok(()) => {}
            // a file system (or a platform) that cannot: nothing to check
            Err(e) if e.kind() == std::io::ErrorKind::Unsupported => return,
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return,
            Err(e) => panic!("preallocate: {e}"),
        }
        assert_eq!(file.metadata().unwrap().len(), 4);
        let mut back = String::new();
        file.rewind().unwrap();
        file.read_to_string(&mut back).unwrap();
        assert_eq!(back, "held");
    }
}
