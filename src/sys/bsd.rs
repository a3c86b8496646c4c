//! macOS and FreeBSD: their `sendfile(2)`s, which differ from Linux's and
//! from each other in argument order and in how a partial send is told.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// macOS `sendfile(2)`: file first, socket second, and the length in/out.
/// A partial send may come back as -1 with EAGAIN/EINTR and the count in
/// `len`; that count is what moved, so it is returned as progress.
#[cfg(target_os = "macos")]
pub fn sendfile(
    socket: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    offset: &mut u64,
    count: usize,
) -> io::Result<usize> {
    let off = libc::off_t::try_from(*offset)
        .map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
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
    sent_so_far(rc, len, offset)
}

/// FreeBSD `sendfile(2)`: file first, and the bytes sent in `sbytes`.
#[cfg(target_os = "freebsd")]
pub fn sendfile(
    socket: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    offset: &mut u64,
    count: usize,
) -> io::Result<usize> {
    let off = libc::off_t::try_from(*offset)
        .map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
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
    sent_so_far(rc, sent, offset)
}

/// The BSDs report progress even when they fail with EAGAIN or EINTR.
fn sent_so_far(rc: libc::c_int, sent: libc::off_t, offset: &mut u64) -> io::Result<usize> {
    let sent = sent.max(0) as u64;
    *offset += sent;
    if rc == 0 || sent > 0 {
        return Ok(sent as usize);
    }
    Err(io::Error::last_os_error())
}
