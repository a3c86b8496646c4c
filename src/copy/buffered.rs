//! The portable path: a fixed buffer between a source and a socket, or a
//! socket and a sink. Memory stays the same whatever the size.

use std::fs::File;
use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use super::{read_range, shrank, Buf, BUF_ALIGN, BUF_SIZE};
use crate::conn::Conn;
use crate::interrupt;
use crate::sys;

pub fn send_file(
    file: &File,
    conn: &mut Conn,
    offset: u64,
    count: u64,
    progress: &mut dyn FnMut(u64),
) -> io::Result<u64> {
    if conn.is_sealed() {
        return send_file_sealed(file, conn, offset, count, progress);
    }
    let mut buf = Buf::new(BUF_SIZE.min(count.max(1) as usize));
    buf.place(offset);
    // whole once begun: Ctrl-C is the caller's, between ranges
    // (see `super::send_file`)
    read_range(file, offset, count, &mut buf, false, |at, chunk| {
        conn.write_all(chunk)?;
        progress(at - offset + chunk.len() as u64);
        Ok(())
    })?;
    Ok(count)
}

/// [`send_file`] for an encrypted session: each batch read straight into
/// the records that carry it ([`Conn::write_sealed_from`]), not into a
/// buffer to be copied into them.
fn send_file_sealed(
    file: &File,
    conn: &mut Conn,
    offset: u64,
    count: u64,
    progress: &mut dyn FnMut(u64),
) -> io::Result<u64> {
    let mut done = 0;
    while done < count {
        let at = offset + done;
        let left = usize::try_from(count - done).unwrap_or(usize::MAX);
        let read = conn.write_sealed_from(left, at, |places| loop {
            match sys::read_at_vectored(file, places, at) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                got => return got,
            }
        })?;
        if read == 0 {
            return Err(shrank(at));
        }
        done += read as u64;
        progress(done);
    }
    Ok(count)
}

/// Sends a stream (stdin, a pipe) to its end or to `limit` bytes, each
/// buffer behind the `H` bytes `head(offset, len)` makes for it, in one
/// write: framed, a DATA header, so the receiver can tell a finished stream
/// from a cut one; raw, nothing (`H` = 0). Ctrl-C is looked at between
/// buffers; whether it may cut a write short is the caller's
/// ([`Conn::finishing`]: a frame goes out whole, so a STOP after Ctrl-C
/// lands between frames). Returns the count.
pub fn send_stream<const H: usize>(
    source: &mut dyn Read,
    conn: &mut Conn,
    head: impl Fn(u64, u64) -> [u8; H],
    limit: Option<u64>,
    mut hasher: Option<&mut Sha256>,
    progress: &mut dyn FnMut(u64),
) -> io::Result<u64> {
    // the bytes read start on a page boundary (see `Buf`), their head
    // right before it
    let mut pages = Buf::new(BUF_ALIGN + BUF_SIZE);
    let buf = &mut pages[BUF_ALIGN - H..];
    let mut done = 0u64;
    loop {
        if interrupt::requested() {
            return Err(interrupt::stopped());
        }
        let room = limit.map_or(BUF_SIZE as u64, |l| (l - done).min(BUF_SIZE as u64)) as usize;
        if room == 0 {
            return Ok(done);
        }
        let n = match source.read(&mut buf[H..H + room]) {
            Ok(0) => return Ok(done),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(h) = hasher.as_deref_mut() {
            h.update(&buf[H..H + n]);
        }
        buf[..H].copy_from_slice(&head(done, n as u64));
        conn.write_all(&buf[..H + n])?;
        done += n as u64;
        progress(done);
    }
}

/// What a receive loop got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub bytes: u64,
    /// The peer closed before `len` bytes came.
    pub cut: bool,
    /// Of `bytes`, those splice(2) moved (the rest went through a buffer).
    pub spliced: u64,
}

/// A receive loop's failure, with the bytes it wrote before it.
#[derive(Debug)]
pub struct RecvError {
    pub bytes: u64,
    /// The sink failed (a full disk), not the network.
    pub local: bool,
    pub error: io::Error,
}

/// Buffers for a receive loop, and what becomes of each chunk once it is
/// written (hashing, progress, the held record).
pub trait Chunks {
    /// A buffer to read the next chunk into.
    fn take(&mut self) -> Buf;
    /// `buf[..len]` was written to the sink.
    fn written(&mut self, buf: Buf, len: usize);
    /// `n` more bytes went through splice(2), never through user space.
    fn spliced(&mut self, n: u64);
}

/// The plain case: one buffer, reused, and a running count.
pub struct Counted<F: FnMut(u64)> {
    buf: Option<Buf>,
    total: u64,
    on_total: F,
}

impl<F: FnMut(u64)> Counted<F> {
    pub fn new(on_total: F) -> Self {
        Counted {
            buf: Some(Buf::new(BUF_SIZE)),
            total: 0,
            on_total,
        }
    }
}

impl<F: FnMut(u64)> Chunks for Counted<F> {
    fn take(&mut self) -> Buf {
        self.buf.take().unwrap_or_else(|| Buf::new(BUF_SIZE))
    }
    fn written(&mut self, buf: Buf, len: usize) {
        self.buf = Some(buf);
        self.spliced(len as u64);
    }
    fn spliced(&mut self, n: u64) {
        self.total += n;
        (self.on_total)(self.total);
    }
}

/// Copies `len` bytes (or, with `None`, everything until the peer closes)
/// from the socket into `sink`, through buffers from `chunks`. An error
/// comes with the count of bytes already written, so nothing is lost.
pub fn recv_to_sink(
    conn: &mut Conn,
    sink: &mut dyn Write,
    len: Option<u64>,
    chunks: &mut dyn Chunks,
) -> Result<Received, RecvError> {
    let mut done = 0u64;
    loop {
        let mut buf = chunks.take();
        let room = len.map_or(buf.len() as u64, |l| (l - done).min(buf.len() as u64)) as usize;
        if room == 0 {
            chunks.written(buf, 0);
            return Ok(Received {
                bytes: done,
                cut: false,
                spliced: 0,
            });
        }
        // A frame's bytes are sure to come, so many may be awaited at once;
        // a raw stream's may trickle (a pipe), and each is wanted as it comes.
        let read = match len {
            Some(_) => conn.read_bulk(&mut buf[..room]),
            None => conn.read(&mut buf[..room]),
        };
        let n = match read {
            Ok(0) => {
                chunks.written(buf, 0);
                return Ok(Received {
                    bytes: done,
                    cut: len.is_some(),
                    spliced: 0,
                });
            }
            Ok(n) => n,
            Err(error) => {
                return Err(RecvError {
                    bytes: done,
                    local: false,
                    error,
                })
            }
        };
        sink.write_all(&buf[..n]).map_err(|error| RecvError {
            bytes: done,
            local: true,
            error,
        })?;
        done += n as u64;
        chunks.written(buf, n);
    }
}
