//! Moving a byte range from a source to a socket and from a socket to a sink:
//! one interface here, the platform's zero-copy path behind it.

#[cfg(any(target_os = "macos", target_os = "freebsd"))]
mod bsd;
mod buffered;
#[cfg(target_os = "linux")]
pub mod choice;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "freebsd")))]
mod other;
#[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
mod sendfile;
#[cfg(any(target_os = "macos", target_os = "freebsd"))]
use bsd as platform;
#[cfg(target_os = "linux")]
use linux as platform;
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "freebsd")))]
use other as platform;

use std::fs::File;
use std::io;

pub use crate::file_read::{read_at, read_range, shrank, Buf, BUF_ALIGN, BUF_SIZE};
pub use buffered::{recv_to_sink, send_stream, Chunks, Counted, Received, RecvError};

use crate::conn::Conn;

/// Where received bytes are written.
pub enum Sink<'a> {
    /// A file or a device, written at its current position.
    File(&'a mut File),
    Writer(&'a mut dyn io::Write),
}

/// Receives `len` bytes (or, with `None`, until the peer closes) into `sink`.
/// With `splice` on a platform that has it and a file sink, the bytes may
/// never enter user space: a device takes splice(2), a regular file the
/// way measured cheaper on its file system (Linux: [`choice`]), and where
/// splice is refused they take the buffers. Otherwise they pass through
/// buffers from `chunks`, which also learns of every chunk written.
pub fn recv(
    conn: &mut Conn,
    sink: Sink<'_>,
    len: Option<u64>,
    splice: bool,
    chunks: &mut dyn Chunks,
) -> Result<Received, RecvError> {
    // splice(2) would move records, not the plaintext they carry
    let splice = splice && !conn.is_sealed();
    let writer: &mut dyn io::Write = match sink {
        Sink::File(file) if splice && platform::SPLICE => {
            return platform::recv_file(conn, file, len, chunks);
        }
        Sink::File(file) => file,
        Sink::Writer(w) => w,
    };
    recv_to_sink(conn, writer, len, chunks)
}

/// What a send moved, and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    pub bytes: u64,
    /// True only when sendfile(2) moved every byte.
    pub zero_copy: bool,
    /// Why the buffered path was taken when zero-copy was asked for.
    pub fallback: Option<String>,
}

/// Why the zero-copy path did not finish.
pub enum ZeroCopyError {
    /// Refused before the first byte: the buffered path can do the job.
    Unsupported(io::Error),
    Io(io::Error),
}

/// Writes the few bytes that go before a range so that they leave
/// together with its first bytes.
fn write_head(conn: &mut Conn, head: &[u8]) -> io::Result<()> {
    match conn.is_sealed() {
        true => io::Write::write_all(conn, head),
        false => platform::write_head(conn, head),
    }
}

/// Sends `head` (what the caller puts before the range: a frame header,
/// or nothing), then bytes [offset, offset+count) of `file`: through
/// sendfile(2) when `zero_copy` and the platform has it, else (or when the
/// kernel refuses before the first byte) through a fixed buffer. The head
/// leaves in one packet with the first bytes. `progress` gets the running
/// total of the range after every step. A range once begun is sent whole:
/// Ctrl-C is the caller's to look at between ranges, under
/// [`Conn::finishing`] so that the socket's waits agree.
pub fn send_file(
    file: &File,
    conn: &mut Conn,
    head: &[u8],
    offset: u64,
    count: u64,
    zero_copy: bool,
    progress: &mut dyn FnMut(u64),
) -> io::Result<Sent> {
    if !head.is_empty() {
        write_head(conn, head)?;
    }
    let mut fallback = None;
    // an encrypted session's bytes are sealed in user space: sendfile(2)
    // would send the file in the clear (kTLS could seal it in the kernel:
    // docs/PROTOCOL.md, "kTLS")
    if zero_copy && platform::AVAILABLE && !conn.is_sealed() {
        match platform::send_file(file, conn, offset, count, progress) {
            Ok(bytes) => {
                return Ok(Sent {
                    bytes,
                    zero_copy: true,
                    fallback: None,
                })
            }
            Err(ZeroCopyError::Unsupported(e)) => {
                fallback = Some(format!("sendfile refused ({e}); used the buffered path"));
            }
            Err(ZeroCopyError::Io(e)) => return Err(e),
        }
    }
    let bytes = buffered::send_file(file, conn, offset, count, progress)?;
    Ok(Sent {
        bytes,
        zero_copy: false,
        fallback,
    })
}
