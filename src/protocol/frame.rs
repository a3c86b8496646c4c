//! Frames on the wire: the preamble, a frame's header and body, and the
//! DATA header that raw bytes follow.

use std::io::{self, Read, Write};

use anyhow::{ensure, Context, Result};

use super::{kind, MAGIC, MAX_FRAME, PREAMBLE_LEN, VERSION};

/// A frame as read off the wire: its kind and its (bounded) body.
#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub body: Vec<u8>,
}

pub fn write_preamble(w: &mut impl Write) -> io::Result<()> {
    w.write_all(&preamble(VERSION))
}

/// The 8 bytes that open a connection of this version.
pub fn preamble(version: u16) -> [u8; PREAMBLE_LEN] {
    let mut buf = [0u8; PREAMBLE_LEN];
    buf[..4].copy_from_slice(&MAGIC);
    buf[4..6].copy_from_slice(&version.to_be_bytes());
    buf
}

/// Reads the 8-byte preamble and returns the peer's version.
pub fn read_preamble(r: &mut impl Read) -> Result<u16> {
    let mut buf = [0u8; PREAMBLE_LEN];
    r.read_exact(&mut buf).context("reading the header")?;
    ensure!(
        buf[..4] == MAGIC,
        "not a zc sender (bad magic; use --raw for nc and socat)"
    );
    Ok(u16::from_be_bytes([buf[4], buf[5]]))
}

pub fn write_frame(w: &mut impl Write, kind: u8, body: &[u8]) -> io::Result<()> {
    debug_assert!(body.len() <= MAX_FRAME as usize);
    let mut buf = Vec::with_capacity(5 + body.len());
    buf.push(kind);
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(body);
    w.write_all(&buf)
}

/// A whole KEEPALIVE frame (no body), which the transport writes by itself
/// while a side works without sending: `Conn::set_keepalive`.
pub const KEEPALIVE_FRAME: [u8; HEAD] = [kind::KEEPALIVE, 0, 0, 0, 0];

/// A frame's header: its kind byte and its body's length.
pub const HEAD: usize = 5;

/// Reads a frame header: the kind, and the body's length, refused when
/// over [`MAX_FRAME`] before a byte of the body is read.
pub fn frame_head(head: &[u8; HEAD]) -> Result<(u8, usize)> {
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    ensure!(len <= MAX_FRAME, "frame of {len} bytes is over the limit");
    Ok((head[0], len as usize))
}

/// Whether `buffered` starts with a whole frame (reading it cannot wait),
/// or a header that [`read_frame`] refuses at once.
pub fn whole_frame(buffered: &[u8]) -> bool {
    let Some(head) = buffered.first_chunk::<HEAD>() else {
        return false;
    };
    match frame_head(head) {
        Ok((_, len)) => buffered.len() - HEAD >= len,
        Err(_) => true,
    }
}

/// Reads one frame; the body is never larger than [`MAX_FRAME`].
pub fn read_frame(r: &mut impl Read) -> Result<Frame> {
    let mut head = [0u8; HEAD];
    r.read_exact(&mut head)?;
    let (kind, len) = frame_head(&head)?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Frame { kind, body })
}

/// A DATA frame's body: the `offset` and `len` of the bytes that follow.
pub(crate) fn data_body(offset: u64, len: u64) -> [u8; 16] {
    let mut body = [0u8; 16];
    body[..8].copy_from_slice(&offset.to_be_bytes());
    body[8..].copy_from_slice(&len.to_be_bytes());
    body
}

/// A DATA frame announces `len` raw bytes for `offset`; they follow it directly.
pub fn data_header(offset: u64, len: u64) -> [u8; HEAD + 16] {
    let mut buf = [0u8; HEAD + 16];
    buf[0] = kind::DATA;
    buf[1..HEAD].copy_from_slice(&16u32.to_be_bytes());
    buf[HEAD..].copy_from_slice(&data_body(offset, len));
    buf
}

pub fn parse_data(body: &[u8]) -> Result<(u64, u64)> {
    ensure!(
        body.len() == 16,
        "DATA frame of {} bytes, expected 16",
        body.len()
    );
    let offset = u64::from_be_bytes(body[..8].try_into().expect("8 bytes"));
    let len = u64::from_be_bytes(body[8..].try_into().expect("8 bytes"));
    ensure!(offset.checked_add(len).is_some(), "DATA frame past 2^64");
    Ok((offset, len))
}
