//! The only `unsafe` in zc: thin wrappers over syscalls std does not offer.
#![allow(unsafe_code)]

/// `sendfile(2)`: moves up to `count` bytes of `file` from `*offset` into the
/// socket, inside the kernel, advancing `*offset` by what it moved.
#[cfg(target_os = "linux")]
pub fn sendfile(
    socket: std::os::fd::BorrowedFd<'_>,
    file: std::os::fd::BorrowedFd<'_>,
    offset: &mut u64,
    count: usize,
) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    let mut off: libc::off_t = libc::off_t::try_from(*offset)
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    // SAFETY: both descriptors are borrowed, so they stay open for the call;
    // `off` is a live local the kernel writes the new offset into; no buffer
    // of ours is touched.
    let n = unsafe { libc::sendfile(socket.as_raw_fd(), file.as_raw_fd(), &mut off, count) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    *offset = off as u64;
    Ok(n as usize)
}

/// Bytes free for an unprivileged writer on the file system holding `path`.
#[cfg(unix)]
pub fn free_space(path: &std::path::Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a NUL-terminated string that outlives the call;
    // `stat` is written in full by a successful statvfs and read only then.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled the struct.
    let stat = unsafe { stat.assume_init() };
    // the field types differ between platforms (u32 on some BSDs)
    #[allow(clippy::unnecessary_cast)]
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

#[cfg(not(unix))]
pub fn free_space(_path: &std::path::Path) -> std::io::Result<u64> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// Takes an exclusive, non-blocking advisory lock on an open file; `false`
/// when another process (or another open of this file) holds it.
#[cfg(unix)]
pub fn try_lock(file: &std::fs::File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor belongs to `file`, which is borrowed for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        return Ok(false);
    }
    Err(err)
}

#[cfg(not(unix))]
pub fn try_lock(_file: &std::fs::File) -> std::io::Result<bool> {
    Ok(true)
}

/// Waits up to `timeout` for a socket to be readable (a listening one: to
/// have a connection ready).
#[cfg(unix)]
pub fn wait_readable(
    socket: std::os::fd::BorrowedFd<'_>,
    timeout: std::time::Duration,
) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `pfd` is one live pollfd and we pass a count of 1; the
    // descriptor is borrowed for the duration of the call.
    let rc = unsafe { libc::poll(&mut pfd, 1, millis) };
    match rc {
        -1 => {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(err)
            }
        }
        0 => Ok(false),
        _ => Ok(true),
    }
}

/// A pipe for splice(2), close-on-exec: (read end, write end).
#[cfg(target_os = "linux")]
pub fn pipe() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both are fresh descriptors owned by no one else.
    Ok(unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    })
}

/// Asks for a pipe buffer of `size` bytes; the kernel may refuse (limits),
/// which only costs speed.
#[cfg(target_os = "linux")]
pub fn set_pipe_size(pipe: std::os::fd::BorrowedFd<'_>, size: usize) {
    use std::os::fd::AsRawFd;
    // SAFETY: F_SETPIPE_SZ takes an int and touches no memory of ours.
    unsafe {
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int);
    }
}

/// Sets SO_RCVLOWAT: the kernel wakes a reader of `socket` only once
/// `bytes` are queued (or the peer closes). Best effort, like the pipe size.
#[cfg(target_os = "linux")]
pub fn set_recv_low_water(socket: std::os::fd::BorrowedFd<'_>, bytes: usize) {
    use std::os::fd::AsRawFd;
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
#[cfg(target_os = "linux")]
pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    static RELEASE: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    *RELEASE.get_or_init(|| {
        release_of(&std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default())
    }) >= (major, minor)
}

/// "6.18.44-fc" -> (6, 18); anything unreadable is (0, 0), the oldest.
#[cfg(target_os = "linux")]
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
#[cfg(target_os = "linux")]
pub fn recv_when_ready(
    socket: std::os::fd::BorrowedFd<'_>,
    buf: &mut [u8],
    timeout: std::time::Duration,
) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
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
        -1 => Err(std::io::Error::last_os_error()),
        n => Ok(n as usize),
    }
}

/// True when `file` lives in memory (tmpfs, ramfs): there is no layout on
/// a disk to gain from reserving its space ahead of the writes.
#[cfg(target_os = "linux")]
pub fn in_memory(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    const TMPFS_MAGIC: u32 = 0x0102_1994;
    const RAMFS_MAGIC: u32 = 0x8584_58f6;
    let mut fs = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `fs` is a writable statfs the size the kernel fills, and the
    // descriptor belongs to `file`, borrowed for the call.
    let rc = unsafe { libc::fstatfs(file.as_raw_fd(), fs.as_mut_ptr()) };
    if rc != 0 {
        return false;
    }
    // SAFETY: fstatfs succeeded, so it filled the struct (zeroed before).
    // f_type is an i64 here and an i32 on 32-bit targets, where a magic
    // past 0x7fffffff is negative: compared as the 32 bits it holds
    let kind = unsafe { fs.assume_init() }.f_type as u32;
    kind == TMPFS_MAGIC || kind == RAMFS_MAGIC
}

#[cfg(not(target_os = "linux"))]
pub fn in_memory(_file: &std::fs::File) -> bool {
    false
}

/// Reserves space for bytes [offset, offset+len) of `file` without changing
/// its size (`fallocate(2)` with FALLOC_FL_KEEP_SIZE). A file system that
/// cannot (EOPNOTSUPP) says so; the writes that follow work either way.
#[cfg(target_os = "linux")]
pub fn preallocate(file: &std::fs::File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Err(std::io::Error::from_raw_os_error(libc::EOVERFLOW));
    };
    // SAFETY: the descriptor belongs to `file`, borrowed for the call; only
    // integers are passed, no memory of ours.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, offset, len) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub fn preallocate(_file: &std::fs::File, _offset: u64, _len: u64) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// `splice(2)` between a pipe and another descriptor, at the descriptors'
/// own positions (no offsets).
#[cfg(target_os = "linux")]
pub fn splice(
    from: std::os::fd::BorrowedFd<'_>,
    to: std::os::fd::BorrowedFd<'_>,
    len: usize,
) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
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
            libc::SPLICE_F_MOVE | libc::SPLICE_F_MORE,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// macOS `sendfile(2)`: file first, socket second, and the length in/out.
/// A partial send may come back as -1 with EAGAIN/EINTR and the count in
/// `len`; that count is what moved, so it is returned as progress.
#[cfg(target_os = "macos")]
pub fn sendfile(
    socket: std::os::fd::BorrowedFd<'_>,
    file: std::os::fd::BorrowedFd<'_>,
    offset: &mut u64,
    count: usize,
) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    let off = libc::off_t::try_from(*offset)
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    let mut len = count as libc::off_t;
    // SAFETY: both descriptors are borrowed for the call; `len` is a live
    // local the kernel reads and overwrites; no header/trailer (null).
    let rc = unsafe {
        libc::sendfile(
            file.as_raw_fd(),
            socket.as_raw_fd(),
            off,
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    bsd_result(rc, len, offset)
}

/// FreeBSD `sendfile(2)`: file first, and the bytes sent in `sbytes`.
#[cfg(target_os = "freebsd")]
pub fn sendfile(
    socket: std::os::fd::BorrowedFd<'_>,
    file: std::os::fd::BorrowedFd<'_>,
    offset: &mut u64,
    count: usize,
) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    let off = libc::off_t::try_from(*offset)
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    let mut sent: libc::off_t = 0;
    // SAFETY: both descriptors are borrowed for the call; `sent` is a live
    // local the kernel writes; no header/trailer (null), no flags.
    let rc = unsafe {
        libc::sendfile(
            file.as_raw_fd(),
            socket.as_raw_fd(),
            off,
            count,
            std::ptr::null_mut(),
            &mut sent,
            0,
        )
    };
    bsd_result(rc, sent, offset)
}

/// The BSDs report progress even when they fail with EAGAIN or EINTR.
#[cfg(any(target_os = "macos", target_os = "freebsd"))]
fn bsd_result(rc: libc::c_int, sent: libc::off_t, offset: &mut u64) -> std::io::Result<usize> {
    let sent = sent.max(0) as u64;
    *offset += sent;
    if rc == 0 || sent > 0 {
        return Ok(sent as usize);
    }
    Err(std::io::Error::last_os_error())
}

/// A NUL-terminated copy of a name for the `*at` calls; a NUL inside the
/// name is refused rather than silently cutting the name short.
#[cfg(unix)]
fn c_name(name: &[u8]) -> std::io::Result<std::ffi::CString> {
    std::ffi::CString::new(name).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
}

/// `openat(2)`: opens `name` relative to the directory `dir`. Add
/// `O_NOFOLLOW` to the flags to refuse a link as the last component.
#[cfg(unix)]
pub fn openat(
    dir: std::os::fd::BorrowedFd<'_>,
    name: &[u8],
    flags: libc::c_int,
    mode: u32,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let name = c_name(name)?;
    // SAFETY: `dir` is borrowed, so it stays open for the call; `name` is a
    // NUL-terminated string that outlives it; the mode is passed as the
    // promoted unsigned int the variadic argument expects.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode as libc::c_uint) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openat succeeded, so `fd` is a fresh descriptor no one else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// `openat2(2)` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: opens `path`
/// (components joined by `/`) beneath `dir`, failing (EXDEV, ELOOP) rather
/// than leaving `dir` or following a link at any component. ENOSYS on
/// kernels before 5.6 (and EPERM under some seccomp filters).
#[cfg(target_os = "linux")]
pub fn openat2_beneath(
    dir: std::os::fd::BorrowedFd<'_>,
    path: &[u8],
    flags: libc::c_int,
    mode: u32,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
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
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openat2 succeeded, so `rc` is a fresh descriptor no one else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(rc as libc::c_int) })
}

/// `mkdirat(2)`: makes the directory `name` in `dir` (a link already there
/// is EEXIST, never followed).
#[cfg(unix)]
pub fn mkdirat(dir: std::os::fd::BorrowedFd<'_>, name: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let name = c_name(name)?;
    // SAFETY: `dir` is borrowed for the call; `name` is NUL-terminated and
    // outlives it.
    let rc = unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `unlinkat(2)`: removes `name` from `dir` (a link itself, never its target).
#[cfg(unix)]
pub fn unlinkat(
    dir: std::os::fd::BorrowedFd<'_>,
    name: &[u8],
    flags: libc::c_int,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let name = c_name(name)?;
    // SAFETY: `dir` is borrowed for the call; `name` is NUL-terminated and
    // outlives it.
    let rc = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `renameat(2)` within one directory: `from` replaces whatever is named
/// `to` (a link there is replaced, not followed).
#[cfg(unix)]
pub fn renameat(dir: std::os::fd::BorrowedFd<'_>, from: &[u8], to: &[u8]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (from, to) = (c_name(from)?, c_name(to)?);
    // SAFETY: `dir` is borrowed for the call; both names are NUL-terminated
    // and outlive it.
    let rc =
        unsafe { libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `symlinkat(2)`: makes `name` in `dir` a link holding `target` verbatim.
#[cfg(unix)]
pub fn symlinkat(
    target: &[u8],
    dir: std::os::fd::BorrowedFd<'_>,
    name: &[u8],
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (target, name) = (c_name(target)?, c_name(name)?);
    // SAFETY: `dir` is borrowed for the call; both strings are
    // NUL-terminated and outlive it.
    let rc = unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `readlinkat(2)`: the target of the link `name` in `dir`, verbatim (at
/// most 4096 bytes, the longest target a tree carries).
#[cfg(unix)]
pub fn readlinkat(dir: std::os::fd::BorrowedFd<'_>, name: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let name = c_name(name)?;
    let mut buf = vec![0u8; 4097];
    // SAFETY: `dir` is borrowed for the call; `name` is NUL-terminated and
    // outlives it; the kernel writes at most `buf.len()` bytes into `buf`.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// `fstatat(2)` with `AT_SYMLINK_NOFOLLOW`: what `name` in `dir` is, a link
/// reported as a link.
#[cfg(unix)]
pub fn lstatat(dir: std::os::fd::BorrowedFd<'_>, name: &[u8]) -> std::io::Result<libc::stat> {
    use std::os::fd::AsRawFd;
    let name = c_name(name)?;
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `dir` is borrowed for the call; `name` is NUL-terminated and
    // outlives it; `stat` is written in full by a successful call and read
    // only then.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            stat.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fstatat returned 0, so it filled the struct.
    Ok(unsafe { stat.assume_init() })
}

/// `syncfs(2)`: makes everything written on the file system holding `fd`
/// durable, in one call instead of an fsync per file.
#[cfg(target_os = "linux")]
pub fn syncfs(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is borrowed for the call; no memory is passed.
    let rc = unsafe { libc::syncfs(fd.as_raw_fd()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Raises the soft limit on open files toward the hard one (at most 65536)
/// and returns the soft limit in force: a tree receiver holds a batch of
/// verified parts open, locked, until they are renamed.
#[cfg(unix)]
// rlim_t is u64 here, other widths elsewhere
#[allow(clippy::unnecessary_cast)]
pub fn raise_open_files() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live rlimit the kernel fills in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    let want = lim.rlim_max.min(65536);
    if want > lim.rlim_cur {
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a live rlimit the kernel only reads.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return want as u64;
        }
    }
    lim.rlim_cur as u64
}

#[cfg(not(unix))]
pub fn raise_open_files() -> u64 {
    8192
}

/// The process's umask, read once by [`note_umask`].
#[cfg(unix)]
static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// Reads the umask, for [`umask`]; call it before any thread starts (reading
/// it means setting it for a moment).
#[cfg(unix)]
// mode_t is u32 here, u16 on macOS
#[allow(clippy::useless_conversion)]
pub fn note_umask() {
    // SAFETY: umask(2) takes an integer and cannot fail; the old mask is
    // put back at once, before any other thread could create a file.
    let old = unsafe { libc::umask(0o077) };
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let _ = UMASK.set(u32::from(old));
}

#[cfg(not(unix))]
pub fn note_umask() {}

/// The effective user id.
#[cfg(unix)]
pub fn euid() -> u32 {
    // SAFETY: geteuid takes nothing and cannot fail.
    unsafe { libc::geteuid() }
}

/// The umask noted at start, if it was: what a mode given to open(2) loses.
#[cfg(unix)]
pub fn umask() -> Option<u32> {
    UMASK.get().copied()
}

#[cfg(not(unix))]
pub fn umask() -> Option<u32> {
    None
}

/// Grows this process's descriptor table to hold `count` descriptors now,
/// while it runs one thread: Linux grows the table by doubling, and each
/// growth in a process with threads waits for an RCU grace period (5-8 ms
/// on this VM; a tree receiver holding a batch of 5,000 parts open lost
/// about 35 ms of 200 to five of them). Best effort: on failure nothing is
/// lost but that time.
#[cfg(target_os = "linux")]
pub fn reserve_descriptors(count: u64) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let Ok(highest) = libc::c_int::try_from(count.saturating_sub(1)) else {
        return;
    };
    let Ok(any) = std::fs::File::open("/dev/null") else {
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

#[cfg(not(target_os = "linux"))]
pub fn reserve_descriptors(_count: u64) {}

/// This machine's name, to tell the other side where to connect.
#[cfg(unix)]
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at
    // most that many bytes (NUL-terminated unless cut, handled below).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..len]).into_owned();
    (!name.is_empty()).then_some(name)
}

#[cfg(windows)]
pub fn hostname() -> Option<String> {
    std::env::var("COMPUTERNAME").ok().filter(|n| !n.is_empty())
}

#[cfg(not(any(unix, windows)))]
pub fn hostname() -> Option<String> {
    None
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

    #[cfg(target_os = "linux")]
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
}
