//! Linux: sendfile(2) out (shared with the BSDs), splice(2) in, and MSG_MORE
//! so a range's head (a DATA header) leaves with its first bytes.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;

pub use super::sendfile::send_file;
use super::{Received, RecvError};
use crate::conn::{self, Conn, Way};
use crate::sys;

/// The pipe between socket and sink when receiving through splice.
const PIPE_SIZE: usize = 1 << 20;

pub const AVAILABLE: bool = true;
pub const SPLICE: bool = true;

/// Writes a small header that the data right behind it should share a
/// packet with: MSG_MORE holds it until the payload follows.
pub fn write_head(conn: &mut Conn, head: &[u8]) -> io::Result<()> {
    let socket = socket2::SockRef::from(&conn.stream);
    let mut rest = head;
    while !rest.is_empty() {
        match socket.send_with_flags(rest, libc::MSG_MORE) {
            Ok(n) => rest = &rest[n..],
            Err(e) if conn::is_tick(&e) => conn.check_waiting()?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // too small to wait for, but it counts
    conn.spent(Way::Send, head.len());
    Ok(())
}

/// Receives through splice(2): socket to a pipe to `out`, never through user
/// space. For sinks that need no hashing and gain from it (devices such as
/// /dev/null). `len: None` reads until the peer closes.
pub fn recv_splice(
    conn: &mut Conn,
    out: &File,
    len: Option<u64>,
    observe: &mut dyn FnMut(u64),
) -> Result<Received, RecvError> {
    let fail = |bytes, local, error| RecvError {
        bytes,
        local,
        error,
    };
    let (pipe_r, pipe_w) = sys::pipe().map_err(|e| fail(0, true, e))?;
    sys::set_pipe_size(pipe_w.as_fd(), PIPE_SIZE);
    let mut done = 0u64;
    loop {
        let room = len.map_or(PIPE_SIZE as u64, |l| (l - done).min(PIPE_SIZE as u64)) as usize;
        if room == 0 {
            return Ok(Received {
                bytes: done,
                cut: false,
            });
        }
        let room = conn
            .allow(Way::Recv, room)
            .map_err(|e| fail(done, false, e))?;
        if len.is_some() {
            conn.expect(room);
        }
        let n = match sys::splice(conn.stream.as_fd(), pipe_w.as_fd(), room) {
            Ok(0) => {
                return Ok(Received {
                    bytes: done,
                    cut: len.is_some(),
                })
            }
            Ok(n) => n,
            Err(e) if conn::is_tick(&e) => {
                conn.check_waiting().map_err(|e| fail(done, false, e))?;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(done, false, e)),
        };
        conn.moved();
        conn.spent(Way::Recv, n);
        let mut left = n;
        while left > 0 {
            match sys::splice(pipe_r.as_fd(), out.as_fd(), left) {
                Ok(0) => return Err(fail(done, true, io::Error::from(io::ErrorKind::WriteZero))),
                Ok(m) => left -= m,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail(done, true, e)),
            }
        }
        done += n as u64;
        observe(n as u64);
    }
}
