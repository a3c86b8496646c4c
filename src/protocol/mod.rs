//! Wire protocol v1 (framed mode): frames, fields, bounds. See docs/PROTOCOL.md.

pub mod hello;
mod keyed;
pub mod ledger;
#[cfg(test)]
mod loopback;
pub mod message;
pub mod peer_text;
pub mod ranges;
pub mod receiver;
pub mod sender;
mod tlv;
pub mod tree;

pub use keyed::Keyed;
pub use message::{ToReceiver, ToSender};
pub use ranges::Ranges;

use std::io::{self, Read, Write};

use anyhow::{bail, ensure, Context, Result};

pub use peer_text::PeerText;
use tlv::{as_byte, as_digest, as_flag, as_message, as_u64, Decoded, Fields};

/// The first bytes of every framed connection.
pub const MAGIC: [u8; 4] = *b"ZCPF";
pub const VERSION: u16 = 1;
/// An encrypted session: a SPAKE2 handshake follows the preamble, then
/// version 1's frames travel inside records (docs/PROTOCOL.md).
pub const VERSION_SEALED: u16 = 2;
pub const PREAMBLE_LEN: usize = 8;
/// The largest control frame body; only DATA frames are followed by more.
pub const MAX_FRAME: u32 = 64 * 1024;
/// File names are single path components of at most this many bytes.
pub const MAX_NAME: usize = 255;
/// Messages (refusal reasons and the like) are cut to this many bytes.
pub const MAX_MESSAGE: usize = 1024;
/// Held ranges a receiver may report in one answer.
pub const MAX_RANGES: usize = 1024;

pub mod kind {
    pub const OFFER: u8 = b'O';
    pub const ANSWER: u8 = b'A';
    pub const DATA: u8 = b'D';
    pub const END: u8 = b'E';
    pub const RESULT: u8 = b'R';
    pub const KEEPALIVE: u8 = b'K';
    pub const STOP: u8 = b'S';
    pub const CHALLENGE: u8 = b'C';
    pub const PROOF: u8 = b'P';
    // a tree session (docs/PROTOCOL.md, "Trees")
    pub const ENTRY: u8 = b'N';
    pub const MANIFEST: u8 = b'M';
    pub const REPLY: u8 = b'Y';
    pub const FILE_HASHES: u8 = b'X';
    pub const GO: u8 = b'G';
    pub const BEGIN: u8 = b'B';
    pub const FILE_END: u8 = b'F';
    pub const FILE_RESULT: u8 = b'T';
    // an encrypted session's handshake (version 2), in the clear
    pub const HELLO: u8 = b'H';
    pub const CONFIRM: u8 = b'Q';
}

/// Held data is verified in blocks of this size (the last of a range may be
/// shorter): a bad block costs this much to re-send.
pub const BLOCK: u64 = 4 << 20;
/// Block hashes in one FILE HASHES frame.
pub const MAX_HASHES: usize = 1024;

/// Why a receiver said no; the sender exits 4 for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseCode {
    Other = 0,
    Exists = 1,
    TooLarge = 2,
    NoSpace = 3,
    BadName = 4,
    Version = 5,
    Busy = 6,
    BadOffer = 7,
    Auth = 8,
}

impl RefuseCode {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Exists,
            2 => Self::TooLarge,
            3 => Self::NoSpace,
            4 => Self::BadName,
            5 => Self::Version,
            6 => Self::Busy,
            7 => Self::BadOffer,
            8 => Self::Auth,
            _ => Self::Other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Go ahead; `held` lists the byte ranges the receiver already holds;
    /// with `hashes`, HASHES frames of its blocks follow.
    Accept {
        held: Vec<(u64, u64)>,
        hashes: bool,
    },
    Refuse {
        code: RefuseCode,
        reason: PeerText,
    },
}

/// The hash of one held block, as the receiver reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHash {
    pub offset: u64,
    pub len: u32,
    pub sha256: [u8; 32],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Written, fsync'd and (when asked) verified.
    Ok = 0,
    /// The digests differ; nothing was renamed into place.
    Mismatch = 1,
    /// The receiver failed (I/O, disk full); `message` says how.
    Failed = 2,
    /// The sender stopped; `held` is what the receiver keeps for a resume.
    Stopped = 3,
}

/// The receiver's final word, sent after it has fsync'd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub sha256: Option<[u8; 32]>,
    /// What the receiver now holds durably. In a FILE RESULT: bytes of
    /// that file. In a RESULT: the entries of the tree in place, except
    /// when a file alone stops: then the bytes of its part (see
    /// `receiver::Session::stopped`).
    pub held: u64,
    pub message: PeerText,
    /// With a key: HMAC over status and held, so the answer cannot be forged.
    pub mac: Option<[u8; 32]>,
}

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

/// Whether a file is whole once its offered range lands beside what the
/// receiver says it holds: then the digest in FILE END is the whole file's;
/// otherwise it is the digest of the DATA payloads, in the order sent. Both
/// sides decide it from the same REPLY.
pub fn whole(held: &Ranges, (start, end): (u64, u64), size: u64) -> bool {
    let mut after = held.clone();
    after.insert(start, end);
    after.covers(0, size)
}

/// Held ranges as a field value: `(start, end)` pairs of u64, at most
/// [`MAX_RANGES`] of them (a longer list is cut, and what is cut re-sent).
fn encode_ranges(held: &[(u64, u64)]) -> Vec<u8> {
    let mut value = Vec::with_capacity(held.len().min(MAX_RANGES) * 16);
    for (start, end) in held.iter().take(MAX_RANGES) {
        value.extend_from_slice(&start.to_be_bytes());
        value.extend_from_slice(&end.to_be_bytes());
    }
    value
}

/// The inverse of [`encode_ranges`], checking the bound and each range.
fn decode_ranges(tag: u8, value: &[u8]) -> Result<Vec<(u64, u64)>> {
    ensure!(value.len().is_multiple_of(16), "held ranges: bad length");
    ensure!(value.len() / 16 <= MAX_RANGES, "too many held ranges");
    let mut held = Vec::with_capacity(value.len() / 16);
    for pair in value.chunks_exact(16) {
        let start = as_u64(tag, &pair[..8])?;
        let end = as_u64(tag, &pair[8..])?;
        ensure!(start <= end, "held range {start}..{end} is backwards");
        held.push((start, end));
    }
    Ok(held)
}

/// A message as a field value: UTF-8, cut to [`MAX_MESSAGE`] bytes on a
/// character boundary.
fn clip(text: &PeerText) -> Vec<u8> {
    let text = String::from_utf8_lossy(text.wire());
    let mut end = text.len().min(MAX_MESSAGE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.as_bytes()[..end].to_vec()
}

impl Answer {
    const STATUS: u8 = 1;
    const CODE: u8 = 2;
    const REASON: u8 = 3;
    const HELD: u8 = 4;
    const HASHES: u8 = 5;

    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::default();
        match self {
            Answer::Accept { held, hashes } => {
                f.put(Self::STATUS, &[0]);
                if *hashes {
                    f.put(Self::HASHES, &[1]);
                }
                f.put(Self::HELD, &encode_ranges(held));
            }
            Answer::Refuse { code, reason } => {
                f.put(Self::STATUS, &[1]);
                f.put(Self::CODE, &[*code as u8]);
                f.put(Self::REASON, &clip(reason));
            }
        }
        f.0
    }

    pub fn decode(body: &[u8]) -> Result<Self> {
        Decoded::read(body, |f| {
            // 0 accept, 1 refuse
            let refused = f.get(Self::STATUS, as_flag)?;
            let code = f.get(Self::CODE, as_byte)?;
            let reason = f.get(Self::REASON, as_message)?;
            let held = f.all(Self::HELD, decode_ranges)?.concat();
            // the bound holds across repeated fields too
            ensure!(held.len() <= MAX_RANGES, "too many held ranges");
            let hashes = f.flag(Self::HASHES)?;
            match refused {
                Some(false) => Ok(Answer::Accept { held, hashes }),
                Some(true) => Ok(Answer::Refuse {
                    code: code.map_or(RefuseCode::Other, RefuseCode::from_u8),
                    reason: reason.unwrap_or_else(|| "refused".into()),
                }),
                None => bail!("answer without a status"),
            }
        })
    }
}

impl Outcome {
    const STATUS: u8 = 1;
    const SHA256: u8 = 2;
    const HELD: u8 = 3;
    const MESSAGE: u8 = 4;
    const MAC: u8 = 5;

    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::default();
        f.put(Self::STATUS, &[self.status as u8]);
        if let Some(d) = &self.sha256 {
            f.put(Self::SHA256, d);
        }
        f.put_u64(Self::HELD, self.held);
        f.put(Self::MESSAGE, &clip(&self.message));
        if let Some(mac) = &self.mac {
            f.put(Self::MAC, mac);
        }
        f.0
    }

    pub fn decode(body: &[u8]) -> Result<Self> {
        Decoded::read(body, |f| {
            let status = f.get(Self::STATUS, |tag, value| match as_byte(tag, value)? {
                0 => Ok(Status::Ok),
                1 => Ok(Status::Mismatch),
                2 => Ok(Status::Failed),
                3 => Ok(Status::Stopped),
                other => bail!("result with unknown status {other}"),
            })?;
            Ok(Outcome {
                sha256: f.get(Self::SHA256, as_digest)?,
                held: f.get(Self::HELD, as_u64)?.unwrap_or(0),
                message: f.get(Self::MESSAGE, as_message)?.unwrap_or_default(),
                mac: f.get(Self::MAC, as_digest)?,
                status: status.context("result without a status")?,
            })
        })
    }
}

/// HASHES body: a `last` byte, then (offset u64, len u32, sha256) entries.
pub fn encode_hashes(blocks: &[BlockHash], last: bool) -> Vec<u8> {
    debug_assert!(blocks.len() <= MAX_HASHES);
    let mut body = Vec::with_capacity(1 + blocks.len() * 44);
    body.push(last as u8);
    for b in blocks {
        body.extend_from_slice(&b.offset.to_be_bytes());
        body.extend_from_slice(&b.len.to_be_bytes());
        body.extend_from_slice(&b.sha256);
    }
    body
}

/// Decodes a HASHES body; each block must lie in a held range and be at
/// most [`BLOCK`] long.
pub fn decode_hashes(body: &[u8]) -> Result<(Vec<BlockHash>, bool)> {
    let (&last, entries) = body
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("empty HASHES frame"))?;
    let last = as_flag(0, &[last]).context("HASHES frame: `last`")?;
    ensure!(entries.len() % 44 == 0, "HASHES frame: bad length");
    ensure!(
        entries.len() / 44 <= MAX_HASHES,
        "HASHES frame: too many blocks"
    );
    let mut out = Vec::with_capacity(entries.len() / 44);
    for e in entries.chunks_exact(44) {
        let offset = u64::from_be_bytes(e[..8].try_into().expect("8 bytes"));
        let len = u32::from_be_bytes(e[8..12].try_into().expect("4 bytes"));
        ensure!(
            len as u64 <= BLOCK && len > 0,
            "HASHES frame: bad block length {len}"
        );
        ensure!(
            offset.checked_add(len as u64).is_some(),
            "HASHES frame: block past 2^64"
        );
        out.push(BlockHash {
            offset,
            len,
            sha256: e[12..].try_into().expect("32 bytes"),
        });
    }
    Ok((out, last))
}

/// Lower-case hex of a digest.
pub fn hex(digest: &[u8]) -> String {
    // once per file on both sides: a table, not a format! per byte
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(digest.len() * 2);
    for b in digest {
        text.push(DIGITS[usize::from(b >> 4)] as char);
        text.push(DIGITS[usize::from(b & 15)] as char);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::tree::{Begin, Entry, FileEnd, Manifest, Reply, TreeEnd, TreeOffer};
    use super::*;

    #[test]
    fn the_keepalive_frame_is_a_frame_with_no_body() {
        let mut written = Vec::new();
        write_frame(&mut written, kind::KEEPALIVE, &[]).unwrap();
        assert_eq!(written, KEEPALIVE_FRAME);
    }

    #[test]
    fn answers_round_trip() {
        let a = Answer::Accept {
            held: vec![(0, 5), (9, 10)],
            hashes: true,
        };
        assert_eq!(Answer::decode(&a.encode()).unwrap(), a);
        let r = Answer::Refuse {
            code: RefuseCode::Exists,
            reason: "x exists".into(),
        };
        assert_eq!(Answer::decode(&r.encode()).unwrap(), r);
        let long = Answer::Refuse {
            code: RefuseCode::Other,
            reason: "é".repeat(1000).into(),
        };
        assert!(Answer::decode(&long.encode()).is_ok());
    }

    #[test]
    fn hashes_and_outcome_round_trip() {
        let blocks = [BlockHash {
            offset: 4,
            len: 9,
            sha256: [3; 32],
        }];
        let body = encode_hashes(&blocks, true);
        assert_eq!(decode_hashes(&body).unwrap(), (blocks.to_vec(), true));
        assert!(decode_hashes(&[]).is_err());
        let empty = BlockHash {
            len: 0,
            ..blocks[0]
        };
        assert!(decode_hashes(&encode_hashes(&[empty], false)).is_err());
        // `last` is a flag like any other: 0 or 1, nothing else
        let mut not_last = encode_hashes(&blocks, false);
        assert!(!decode_hashes(&not_last).unwrap().1);
        for byte in [2, 0xff] {
            not_last[0] = byte;
            let err = decode_hashes(&not_last).unwrap_err();
            assert!(format!("{err:#}").contains("`last`"), "{err:#}");
        }
        let o = Outcome {
            status: Status::Mismatch,
            sha256: Some([1; 32]),
            held: 3,
            message: "m".into(),
            mac: Some([2; 32]),
        };
        assert_eq!(Outcome::decode(&o.encode()).unwrap(), o);
    }

    #[test]
    fn garbage_is_refused_without_panic() {
        assert!(TreeOffer::decode(&[0x8a, 0xff, 0xff, b'a']).is_err());
        assert!(
            TreeEnd::decode(&[0x90, 0, 0]).is_err(),
            "unknown required tag"
        );
        assert!(
            TreeEnd::decode(&[0x10, 0, 1, 9]).is_ok(),
            "unknown optional tag"
        );
        assert!(TreeEnd::decode(&[1, 0, 3, 1, 2, 3]).is_err(), "short u64");
        assert!(Answer::decode(&[]).is_err());
        assert!(Outcome::decode(&[9, 0, 0]).is_err());
        let mut huge = vec![kind::OFFER];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(read_frame(&mut &huge[..]).is_err());
        assert!(read_preamble(&mut &b"GET / HTTP/1.1\r\n"[..]).is_err());
        assert!(parse_data(&[0; 15]).is_err());
        let mut wrap = u64::MAX.to_be_bytes().to_vec();
        wrap.extend_from_slice(&1u64.to_be_bytes());
        assert!(parse_data(&wrap).is_err());
    }

    #[test]
    fn short_inputs_decode_to_values_that_round_trip() {
        // Every string of up to two bytes, and every tag with the field
        // lengths that matter: no decoder may panic, and whatever decodes must encode to bytes
        // that decode to the same value, so no parse is lossy or ambiguous.
        macro_rules! round_trip {
            ($bytes:expr, $($t:ty),*) => {$(
                if let Ok(v) = <$t>::decode($bytes) {
                    assert_eq!(<$t>::decode(&v.encode()).unwrap(), v, "{:?}", $bytes);
                }
            )*};
        }
        let check = |bytes: &[u8]| {
            round_trip!(
                bytes, TreeOffer, Entry, Manifest, Reply, Begin, FileEnd, TreeEnd, Answer, Outcome
            );
        };
        let mut decoded = 0;
        check(&[]);
        for n in 0..(1u32 << 16) {
            check(&(n as u16).to_be_bytes());
        }
        // three bytes are one field header: every tag, with the lengths
        // that mean something (empty, one byte short of a u64, too long)
        for tag in 0..=255u8 {
            check(&[tag]);
            for [a, b] in [[0u8, 0], [0, 1], [0, 7], [0, 8], [0, 32], [0xff, 0xff]] {
                let bytes = [tag, a, b];
                check(&bytes);
                decoded += usize::from(TreeEnd::decode(&bytes).is_ok());
            }
        }
        // an empty optional field is a valid END: the sweep reached the
        // decoders' success paths, not only their errors.
        assert!(decoded > 0);
    }

    #[test]
    fn a_flag_or_a_one_byte_field_is_exactly_one_byte_and_a_flag_0_or_1() {
        // Before, only the byte 1 meant true and anything else was a silent
        // false (an empty flag, a 2, `[1, 1]`), and a one-byte field read
        // its first byte of many. A peer that writes them is malformed.
        let offer = |tag: u8, value: &[u8]| {
            let mut f = Fields::default();
            f.put(0x8a, &[1u64.to_be_bytes(), [0; 8]].concat()); // one entry
            f.put(tag, value);
            TreeOffer::decode(&f.0)
        };
        for tag in [5, 7, 8, 9, 0x8b] {
            assert!(offer(tag, &[0]).is_ok(), "tag {tag}: 0");
            assert!(offer(tag, &[1]).is_ok(), "tag {tag}: 1");
            for bad in [&[][..], &[2], &[0xff], &[1, 1], &[0, 1]] {
                let err = offer(tag, bad).unwrap_err().to_string();
                assert!(
                    err.contains("a flag is the byte 0 or 1"),
                    "{tag} {bad:?}: {err}"
                );
            }
        }
        let mut entry = Fields::default();
        entry.put_u64(1, 0);
        entry.put(2, b"s");
        entry.put(3, &[0]);
        entry.put(0x89, &[2]);
        assert!(Entry::decode(&entry.0).is_err(), "stream = 2");
        for body in [
            [1, 0, 1, 2].to_vec(),                // ANSWER status 2
            [1, 0, 0].to_vec(),                   // ANSWER status empty
            [1, 0, 1, 0, 5, 0, 1, 7].to_vec(),    // ANSWER hashes = 7
            [1, 0, 1, 1, 2, 0, 2, 1, 1].to_vec(), // a 2-byte code
        ] {
            assert!(Answer::decode(&body).is_err(), "{body:?}");
        }
        assert!(Outcome::decode(&[1, 0, 1, 4]).is_err(), "status 4");
        assert!(
            Outcome::decode(&[1, 0, 2, 0, 0]).is_err(),
            "a 2-byte status"
        );
        let mut reply = Fields::default();
        reply.put_u64(1, 3);
        reply.put(2, &[0, 9]);
        assert!(Reply::decode(&reply.0).is_err(), "a 2-byte action");
        let mut reply = Fields::default();
        reply.put_u64(1, 3);
        reply.put(2, &[0]);
        reply.put(6, &[3]);
        assert!(Reply::decode(&reply.0).is_err(), "hashes = 3");
    }
}
