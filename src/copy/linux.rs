//! Linux: sendfile(2) out (shared with the BSDs), splice(2) in where it is
//! the cheaper way ([`choice`]), and MSG_MORE so a range's head (a DATA
//! header) leaves with its first bytes.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;

use super::choice;
pub use super::sendfile::send_file;
use super::{recv_to_sink, Chunks, Received, RecvError};
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

/// Receives into `out`: a regular file of known length the way [`choice`]
/// finds cheaper on its file system (measuring it, turn by turn, while the
/// choice is open), anything else (a device, a stream of unknown length)
/// through splice(2); through buffers from `chunks` wherever splice is
/// refused.
pub fn recv_file(
    conn: &mut Conn,
    out: &File,
    len: Option<u64>,
    chunks: &mut dyn Chunks,
) -> Result<Received, RecvError> {
    let regular = out.metadata().is_ok_and(|m| m.is_file());
    let (Some(fs), Some(len)) = (regular.then(|| sys::fs_magic(out)).flatten(), len) else {
        return recv_splice(conn, out, len, chunks);
    };
    let mut done = Received {
        bytes: 0,
        cut: false,
        spliced: 0,
    };
    while done.bytes < len && !done.cut {
        let (way, most) = choice::next(fs);
        let part = Some((len - done.bytes).min(most));
        let before = sys::thread_cpu_ns();
        let got = match way {
            choice::Way::Splice => recv_splice(conn, out, part, chunks),
            choice::Way::ReadWrite => recv_to_sink(conn, &mut { out }, part, chunks),
        }
        .map_err(|e| RecvError {
            bytes: done.bytes + e.bytes,
            ..e
        })?;
        // a refused splice went through buffers: not a measure of splice
        if way == choice::Way::ReadWrite || got.spliced == got.bytes {
            choice::record(
                fs,
                way,
                got.bytes,
                sys::thread_cpu_ns().saturating_sub(before),
            );
        }
        done = Received {
            bytes: done.bytes + got.bytes,
            cut: got.cut,
            spliced: done.spliced + got.spliced,
        };
    }
    Ok(done)
}

/// Receives through splice(2): socket to a pipe to `out`, never through user
/// space; through buffers from `chunks` when `out` refuses splice (asked
/// before a byte is taken from the socket). `len: None` reads until the
/// peer closes.
fn recv_splice(
    conn: &mut Conn,
    out: &File,
    len: Option<u64>,
    chunks: &mut dyn Chunks,
) -> Result<Received, RecvError> {
    let fail = |bytes, local, error| RecvError {
        bytes,
        local,
        error,
    };
    let (pipe_r, pipe_w) = sys::pipe().map_err(|e| fail(0, true, e))?;
    if sys::splice_refused(pipe_r.as_fd(), out.as_fd()).is_some() {
        return recv_to_sink(conn, &mut { out }, len, chunks);
    }
    sys::set_pipe_size(pipe_w.as_fd(), PIPE_SIZE);
    let mut done = 0u64;
    loop {
        let room = len.map_or(PIPE_SIZE as u64, |l| (l - done).min(PIPE_SIZE as u64)) as usize;
        if room == 0 {
            return Ok(Received {
                bytes: done,
                cut: false,
                spliced: done,
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
                    spliced: done,
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
        chunks.spliced(n as u64);
    }
}
