//! Linux only: sendfile and splice, the receive low-water mark, openat2,
//! syncfs, fallocate, and what the running kernel is.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::unix::{c_name, wait_readable};

/// Linux `sendfile(2)`: socket first, and the offset in/out.
pub fn sendfile(
    socket: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    offset: &mut u64,
    count: usize,
) -> io::Result<usize> {
    let mut off: libc::off_t = libc::off_t::try_from(*offset)
        .map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    // SAFETY: both descriptors are borrowed, so they stay open for the call;
    // `off` is a live local the kernel writes the new offset into; no buffer
    // of ours is touched.
    let n = unsafe { libc::sendfile(socket.as_raw_fd(), file.as_raw_fd(), &mut off, count) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    *offset = off as u64;
    Ok(n as usize)
}

/// A pipe for splice(2), close-on-exec: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both are fresh descriptors owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Asks for a pipe buffer of `size` bytes; the kernel may refuse (limits),
/// which only costs speed.
pub fn set_pipe_size(pipe: BorrowedFd<'_>, size: usize) {
    // SAFETY: F_SETPIPE_SZ takes an int and touches no memory of ours.
    unsafe {
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int);
    }
}

/// Sets SO_RCVLOWAT: the kernel wakes a reader of `socket` only once
/// `bytes` are queued (or the peer closes). Best effort, like the pipe size.
pub fn set_recv_low_water(socket: BorrowedFd<'_>, bytes: usize) {
    let value = bytes.min(libc::c_int::MAX as usize) as libc::c_int;
    // SAFETY: the option's value is a c_int on our stack and its size is
    // passed with it; the kernel only reads it.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// True when the running kernel's release is `major.minor` or later.
pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    static RELEASE: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    *RELEASE.get_or_init(|| {
        release_of(&std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default())
    }) >= (major, minor)
}

/// "6.18.44-fc" -> (6, 18); anything unreadable is (0, 0), the oldest.
fn release_of(text: &str) -> (u32, u32) {
    let mut numbers = text.trim().split(['.', '-']).map(|n| n.parse::<u32>().ok());
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor),
        _ => (0, 0),
    }
}

/// Waits up to `timeout` for `socket` to be readable (its low-water mark
/// queued), then takes what is queued without waiting: WouldBlock if
/// nothing came.
pub fn recv_when_ready(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    timeout: Duration,
) -> io::Result<usize> {
    wait_readable(socket, timeout)?;
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which
    // we borrow mutably for the call.
    let rc = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    match rc {
        -1 => Err(io::Error::last_os_error()),
        n => Ok(n as usize),
    }
}

/// tmpfs and ramfs, by the magic `fstatfs(2)` reports.
pub fn in_memory(file: &File) -> bool {
    const TMPFS_MAGIC: u32 = 0x0102_1994;
    const RAMFS_MAGIC: u32 = 0x8584_58f6;
    matches!(fs_magic(file), Some(TMPFS_MAGIC | RAMFS_MAGIC))
}

/// The type of the file system holding `file`: the magic `fstatfs(2)`
/// reports (ext4's 0xef53, tmpfs's 0x01021994).
pub fn fs_magic(file: &File) -> Option<u32> {
    let mut fs = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `fs` is a writable statfs the size the kernel fills, and the
    // descriptor belongs to `file`, borrowed for the call.
    let rc = unsafe { libc::fstatfs(file.as_raw_fd(), fs.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: fstatfs succeeded, so it filled the struct (zeroed before).
    // f_type is an i64 here and an i32 on 32-bit targets, where a magic
    // past 0x7fffffff is negative: compared as the 32 bits it holds
    Some(unsafe { fs.assume_init() }.f_type as u32)
}

/// CPU time this thread has used (user and system), in nanoseconds: what
/// a way of moving bytes costs, apart from the time spent waiting for them.
pub fn thread_cpu_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a live timespec on our stack the kernel writes into.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    if rc != 0 {
        return 0;
    }
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// `fallocate(2)` with FALLOC_FL_KEEP_SIZE.
pub fn preallocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Err(io::Error::from_raw_os_error(libc::EOVERFLOW));
    };
    // SAFETY: the descriptor belongs to `file`, borrowed for the call; only
    // integers are passed, no memory of ours.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, offset, len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `out` takes splice(2) from a pipe, asked without moving a
/// byte: a non-blocking splice from the empty pipe `pipe` is refused
/// (EINVAL: a file system without splice_write, a file opened O_APPEND; or
/// whatever a seccomp filter says) before it would wait (EAGAIN) for data.
pub fn splice_refused(pipe: BorrowedFd<'_>, out: BorrowedFd<'_>) -> Option<io::Error> {
    splice_with(pipe, out, 1, libc::SPLICE_F_NONBLOCK)
        .err()
        .filter(|e| e.kind() != io::ErrorKind::WouldBlock)
}

/// `splice(2)` between a pipe and another descriptor, at the descriptors'
/// own positions (no offsets).
pub fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    splice_with(from, to, len, libc::SPLICE_F_MOVE | libc::SPLICE_F_MORE)
}

fn splice_with(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    len: usize,
    flags: libc::c_uint,
) -> io::Result<usize> {
    // SAFETY: both descriptors are borrowed for the call; null offsets mean
    // the kernel uses and advances the descriptors' own positions, so no
    // memory of ours is read or written.
    let n = unsafe {
        libc::splice(
            from.as_raw_fd(),
            std::ptr::null_mut(),
            to.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            flags,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// `openat2(2)` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: opens `path`
/// (components joined by `/`) beneath `dir`, failing (EXDEV, ELOOP) rather
/// than leaving `dir` or following a link at any component. ENOSYS on
/// kernels before 5.6 (and EPERM under some seccomp filters).
pub fn openat2_beneath(
    dir: BorrowedFd<'_>,
    path: &[u8],
    flags: libc::c_int,
    mode: u32,
) -> io::Result<OwnedFd> {
    let path = c_name(path)?;
    // SAFETY: open_how is three integers (and non_exhaustive, so it cannot
    // be built field by field); all zeroes is a valid value of it.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.mode = u64::from(mode);
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
    // SAFETY: `dir` is borrowed for the call; `path` is NUL-terminated and
    // outlives it; `how` is a live open_how whose exact size we pass, and
    // the kernel only reads it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat2 succeeded, so `rc` is a fresh descriptor no one else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as libc::c_int) })
}

/// `syncfs(2)`: makes everything written on the file system holding `fd`
/// durable, in one call instead of an fsync per file.
pub fn syncfs(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: the descriptor is borrowed for the call; no memory is passed.
    let rc = unsafe { libc::syncfs(fd.as_raw_fd()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A duplicate of /dev/null at the highest descriptor wanted, closed at
/// once: the table stays grown.
pub fn reserve_descriptors(count: u64) {
    let Ok(highest) = libc::c_int::try_from(count.saturating_sub(1)) else {
        return;
    };
    let Ok(any) = File::open("/dev/null") else {
        return;
    };
    // SAFETY: F_DUPFD_CLOEXEC reads no memory; it returns a new descriptor
    // (the lowest free one at or above `highest`) or -1.
    let fd = unsafe { libc::fcntl(any.as_raw_fd(), libc::F_DUPFD_CLOEXEC, highest) };
    if fd >= 0 {
        // SAFETY: `fd` was just created here and nothing else owns it.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
}

/// `openat(2)` with O_TMPFILE: a regular file in `dir` that has no name
/// until [`link_unnamed`] gives it one, and is gone if dropped before.
pub fn open_unnamed(dir: BorrowedFd<'_>, mode: u32) -> io::Result<OwnedFd> {
    let flags = libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC;
    super::unix::openat(dir, b".", flags, mode)
}

/// Set once `linkat(2)` refused AT_EMPTY_PATH (no CAP_DAC_READ_SEARCH):
/// from then on unnamed files are linked through /proc/self/fd at once.
static EMPTY_PATH_REFUSED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// `linkat(2)`: names the unnamed `file` `name` in `dir`; EEXIST where
/// the name is taken (nothing is replaced). AT_EMPTY_PATH takes
/// CAP_DAC_READ_SEARCH; without it, the file is linked through
/// /proc/self/fd, which any owner of the descriptor may follow.
pub fn link_unnamed(file: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    use std::sync::atomic::Ordering;
    let name = c_name(name)?;
    if !EMPTY_PATH_REFUSED.load(Ordering::Relaxed) {
        // SAFETY: both descriptors are borrowed for the call; the empty
        // path and `name` are NUL-terminated and outlive it.
        let rc = unsafe {
            libc::linkat(
                file.as_raw_fd(),
                c"".as_ptr(),
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let refused = io::Error::last_os_error();
        if !matches!(refused.raw_os_error(), Some(libc::EPERM | libc::ENOENT)) {
            return Err(refused);
        }
        EMPTY_PATH_REFUSED.store(true, Ordering::Relaxed);
    }
    // a /proc that is not procfs (a chroot's plain directory) could hold
    // a planted link to someone else's file
    static PROCFS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    const PROC_SUPER_MAGIC: u32 = 0x9fa0;
    let procfs = PROCFS.get_or_init(|| {
        File::open("/proc").is_ok_and(|proc| fs_magic(&proc) == Some(PROC_SUPER_MAGIC))
    });
    if !procfs {
        return Err(io::Error::from(io::ErrorKind::Unsupported));
    }
    let by_proc = c_name(format!("/proc/self/fd/{}", file.as_raw_fd()).as_bytes())?;
    // SAFETY: as above; AT_FDCWD with an absolute path names no descriptor.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            by_proc.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernel_releases_read_as_major_and_minor() {
        for (text, want) in [
            ("6.18.44-fc-v1252\n", (6, 18)),
            ("4.18.0-553.el8_10.x86_64", (4, 18)),
            ("4.17.3", (4, 17)),
            ("3.10.0-1160.el7.x86_64", (3, 10)),
            ("5.4", (5, 4)),
            ("", (0, 0)),
            ("six", (0, 0)),
        ] {
            assert_eq!(super::release_of(text), want, "{text:?}");
        }
        // whatever runs these tests is newer than that
        assert!(super::kernel_at_least(2, 6));
    }

    /// Both ways of naming an unnamed file work: AT_EMPTY_PATH (as root,
    /// as tests run here) and, once that is refused, /proc/self/fd.
    #[test]
    fn an_unnamed_file_is_linked_either_way() {
        use std::io::Write;
        use std::os::fd::AsFd;
        use std::sync::atomic::Ordering;
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::File::open(tmp.path()).unwrap();
        for (refused, name) in [(false, "a"), (true, "b")] {
            super::EMPTY_PATH_REFUSED.store(refused, Ordering::Relaxed);
            let mut file = std::fs::File::from(super::open_unnamed(dir.as_fd(), 0o640).unwrap());
            file.write_all(name.as_bytes()).unwrap();
            assert_eq!(
                std::fs::read_dir(tmp.path()).unwrap().count(),
                usize::from(refused)
            );
            super::link_unnamed(file.as_fd(), dir.as_fd(), name.as_bytes()).unwrap();
            assert_eq!(
                std::fs::read(tmp.path().join(name)).unwrap(),
                name.as_bytes()
            );
            let taken = super::link_unnamed(file.as_fd(), dir.as_fd(), name.as_bytes());
            assert_eq!(taken.unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
        }
        super::EMPTY_PATH_REFUSED.store(false, Ordering::Relaxed);
    }
}
