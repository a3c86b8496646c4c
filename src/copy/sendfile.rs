//! The sendfile(2) loop, the same on Linux, macOS and FreeBSD once
//! `sys::sendfile` has smoothed over their different signatures.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;

use super::{shrank, ZeroCopyError};
use crate::conn::{self, Conn, Way};
use crate::sys;

/// Bytes handed to one sendfile call: large enough that a GiB takes few
/// calls, small enough that Ctrl-C and progress are seen several times a
/// second; far below the kernel's 0x7ffff000 cap.
const CHUNK: u64 = 16 << 20;

/// Errors that mean "this file or socket cannot be sendfile'd", worth a
/// buffered retry when nothing was sent yet.
fn refuses(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | libc::EXDEV | libc::EBADF)
    ) || err.raw_os_error() == Some(libc::ENOTSUP)
}

pub fn send_file(
    file: &File,
    conn: &mut Conn,
    offset: u64,
    count: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ZeroCopyError> {
    let end = offset + count;
    let mut pos = offset;
    while pos < end {
        // the limit shrinks the count, never the path: still sendfile
        let want = conn
            .allow(Way::Send, (end - pos).min(CHUNK) as usize)
            .map_err(ZeroCopyError::Io)?;
        match sys::sendfile(conn.stream.as_fd(), file.as_fd(), &mut pos, want) {
            Ok(0) => return Err(ZeroCopyError::Io(shrank(pos))),
            Ok(n) => {
                conn.spent(Way::Send, n);
                conn.moved();
                progress(pos - offset);
            }
            Err(e) if pos == offset && refuses(&e) => return Err(ZeroCopyError::Unsupported(e)),
            Err(e) if conn::is_tick(&e) => conn.check_waiting().map_err(ZeroCopyError::Io)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ZeroCopyError::Io(e)),
        }
    }
    Ok(count)
}
