//! What every unix shares: POSIX calls through libc, the same on Linux,
//! macOS and FreeBSD.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

pub fn free_space(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a NUL-terminated string that outlives the call;
    // `stat` is written in full by a successful statvfs and read only then.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled the struct.
    let stat = unsafe { stat.assume_init() };
    // the field types differ between platforms (u32 on some BSDs)
    #[allow(clippy::unnecessary_cast)]
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// `flock(2)`, exclusive and non-blocking.
pub fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: the descriptor belongs to `file`, which is borrowed for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        return Ok(false);
    }
    Err(err)
}

/// Waits up to `timeout` for a socket to be readable (a listening one: to
/// have a connection ready).
pub fn wait_readable(socket: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
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
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(err)
            }
        }
        0 => Ok(false),
        _ => Ok(true),
    }
}

/// A NUL-terminated copy of a name for the `*at` calls; a NUL inside the
/// name is refused rather than silently cutting the name short.
pub(super) fn c_name(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `openat(2)`: opens `name` relative to the directory `dir`. Add
/// `O_NOFOLLOW` to the flags to refuse a link as the last component.
pub fn openat(
    dir: BorrowedFd<'_>,
    name: &[u8],
    flags: libc::c_int,
    mode: u32,
) -> io::Result<OwnedFd> {
    let name = c_name(name)?;
    // SAFETY: `dir` is borrowed, so it stays open for the call; `name` is a
    // NUL-terminated string that outlives it; the mode is passed as the
    // promoted unsigned int the variadic argument expects.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat succeeded, so `fd` is a fresh descriptor no one else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mkdirat(2)`: makes the directory `name` in `dir` (a link already there
/// is EEXIST, never followed).
pub fn mkdirat(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: `dir` is borrowed for the call; `name` is NUL-terminated and
    // outlives it.
    let rc = unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `unlinkat(2)`: removes `name` from `dir` (a link itself, never its target).
pub fn unlinkat(dir: BorrowedFd<'_>, name: &[u8], flags: libc::c_int) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: `dir` is borrowed for the call; `name` is NUL-terminated and
    // outlives it.
    let rc = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `renameat(2)` within one directory: `from` replaces whatever is named
/// `to` (a link there is replaced, not followed).
pub fn renameat(dir: BorrowedFd<'_>, from: &[u8], to: &[u8]) -> io::Result<()> {
    let (from, to) = (c_name(from)?, c_name(to)?);
    // SAFETY: `dir` is borrowed for the call; both names are NUL-terminated
    // and outlive it.
    let rc =
        unsafe { libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `symlinkat(2)`: makes `name` in `dir` a link holding `target` verbatim.
pub fn symlinkat(target: &[u8], dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let (target, name) = (c_name(target)?, c_name(name)?);
    // SAFETY: `dir` is borrowed for the call; both strings are
    // NUL-terminated and outlive it.
    let rc = unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `readlinkat(2)`: the target of the link `name` in `dir`, verbatim (at
/// most 4096 bytes, the longest target a tree carries).
pub fn readlinkat(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Vec<u8>> {
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
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// `fstatat(2)` with `AT_SYMLINK_NOFOLLOW`: what `name` in `dir` is, a link
/// reported as a link.
pub fn lstatat(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<libc::stat> {
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
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatat returned 0, so it filled the struct.
    Ok(unsafe { stat.assume_init() })
}

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

/// The process's umask, read once by [`note_umask`].
static UMASK: OnceLock<u32> = OnceLock::new();

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

pub fn umask() -> Option<u32> {
    UMASK.get().copied()
}

/// The effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid takes nothing and cannot fail.
    unsafe { libc::geteuid() }
}

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

/// `fstatat(2)`: what `name` in `dir` is, a link followed (`follow`) or
/// reported as a link.
pub fn statat(dir: BorrowedFd<'_>, name: &[u8], follow: bool) -> io::Result<libc::stat> {
    if !follow {
        return lstatat(dir, name);
    }
    let name = c_name(name)?;
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: as in `lstatat`: `dir` is borrowed for the call, `name` is
    // NUL-terminated and outlives it, `stat` is read only once filled.
    let rc = unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), stat.as_mut_ptr(), 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatat returned 0, so it filled the struct.
    Ok(unsafe { stat.assume_init() })
}

/// The names in the directory open as `dir` (not `.` and `..`), read
/// through that handle, never by a path: `fdopendir(3)` and `readdir(3)`,
/// POSIX on every unix (getdents64 is Linux's alone, and
/// `/proc/self/fd/N` needs /proc mounted). The directory is read from its
/// start, on a duplicate of `dir` that is closed before returning.
pub fn read_dir_names(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    // fdopendir takes the descriptor it is given: a duplicate, so `dir` stays open
    let copy = dir.try_clone_to_owned()?;
    // SAFETY: `copy` is a descriptor we own; on success the DIR owns it
    // (closedir below closes it), so it is released from `copy` only then.
    let stream = unsafe { libc::fdopendir(copy.as_raw_fd()) };
    if stream.is_null() {
        return Err(io::Error::last_os_error());
    }
    std::mem::forget(copy);
    let listed = read_names(stream);
    // SAFETY: `stream` came from fdopendir and is closed once, here.
    unsafe { libc::closedir(stream) };
    listed
}

/// The entries of an open DIR, from its start.
fn read_names(stream: *mut libc::DIR) -> io::Result<Vec<Vec<u8>>> {
    // SAFETY: `stream` is a live DIR (read_dir_names closes it after us);
    // the duplicate shares its offset with the handle it came from.
    unsafe { libc::rewinddir(stream) };
    let mut names = Vec::new();
    loop {
        set_errno(0);
        // SAFETY: `stream` is a live DIR used by this thread alone.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            // NULL at the end leaves errno alone; an error sets it
            return match io::Error::last_os_error() {
                e if e.raw_os_error().is_some_and(|n| n != 0) => Err(e),
                _ => Ok(names),
            };
        }
        // SAFETY: a non-NULL dirent from readdir is valid until the next
        // readdir or closedir on `stream`; its d_name is NUL-terminated.
        // The name is copied out before either.
        let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
}

/// Sets this thread's errno, which readdir leaves alone at the end of a
/// directory and sets on an error.
fn set_errno(value: libc::c_int) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: __errno_location returns this thread's errno, always valid.
    unsafe {
        *libc::__errno_location() = value
    };
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    // SAFETY: __error returns this thread's errno, always valid.
    unsafe {
        *libc::__error() = value
    };
}
/// `preadv(2)`: reads from `offset` into `bufs` in order, in one call (the
/// bytes of many records, each into its place between their headers and
/// tags). Linux, macOS and FreeBSD all have it.
pub fn read_at_vectored(
    file: &File,
    bufs: &mut [io::IoSliceMut<'_>],
    offset: u64,
) -> io::Result<usize> {
    /// IOV_MAX on Linux, macOS and FreeBSD.
    const IOV_MAX: usize = 1024;
    let off =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    let count = bufs.len().min(IOV_MAX) as libc::c_int;
    // SAFETY: `IoSliceMut` is guaranteed ABI-compatible with `iovec` on
    // unix; each one borrows a live, writable buffer for the call, and at
    // most `count` of them are read by the kernel; the file is borrowed,
    // so its descriptor stays open.
    let n = unsafe { libc::preadv(file.as_raw_fd(), bufs.as_ptr().cast(), count, off) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}
