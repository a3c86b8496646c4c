//! Wire protocol v1 (framed mode): frames, fields, bounds. See docs/PROTOCOL.md.

mod answer;
mod frame;
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

pub use answer::{decode_hashes, encode_hashes, Answer, BlockHash, Outcome, Status};
pub(crate) use frame::data_body;
pub use frame::{
    data_header, frame_head, parse_data, preamble, read_frame, read_preamble, whole_frame,
    write_frame, write_preamble, Frame, HEAD, KEEPALIVE_FRAME,
};
pub use keyed::Keyed;
pub use message::{ToReceiver, ToSender};
pub use ranges::Ranges;

use anyhow::{ensure, Result};

pub use peer_text::PeerText;
use tlv::as_u64;

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
    use super::tlv::Fields;
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
