//! The record layer of an encrypted session: TLS 1.3 application-data
//! records (RFC 8446 §5.2) under AES-256-GCM, one sequence per direction.
//!
//! A record is `23 | 0x0303 | length (u16)`, then the AEAD of the plaintext
//! followed by its content type (23), then the 16-byte tag; the header is
//! the additional data and the nonce is the direction's IV XOR the 64-bit
//! record sequence number. That is byte for byte what Linux kernel TLS
//! (TLS_TX/TLS_RX, TLS 1.3, AES-GCM-256) writes and reads, so the kernel can
//! take a direction over without the peer noticing (docs/PROTOCOL.md, "kTLS").

use std::io;
use std::ops::Range;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::aead::{self, Cipher};
use crate::exit::{self, ExitCode, Failure};

/// The most plaintext one record carries, as in TLS (and kTLS).
pub const MAX_PLAIN: usize = 1 << 14;
pub const HEADER: usize = 5;
pub const TAG: usize = aead::TAG;
/// The largest record body: at most [`MAX_PLAIN`] bytes of data and
/// padding, the content type, the tag. RFC 8446 §5.4 bounds the inner
/// plaintext to 2^14 + 1 bytes (§5.2's 2^14 + 256 is the bound for any
/// AEAD's expansion); Linux kTLS refuses a longer AES-GCM record too.
pub const MAX_BODY: usize = MAX_PLAIN + 1 + TAG;
/// TLS's content type for application data: the only one zc sends or takes.
const APPLICATION_DATA: u8 = 23;
const LEGACY_VERSION: [u8; 2] = [3, 3];

/// One direction's traffic secret, as HKDF expands it; wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Keys {
    pub key: [u8; 32],
    pub iv: [u8; 12],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

/// The AEAD and the nonce sequence of one direction. The IV is wiped
/// here; the key schedule where the AEAD wipes it ([`aead`]).
#[derive(ZeroizeOnDrop)]
struct Direction {
    #[zeroize(skip)]
    cipher: Cipher,
    iv: [u8; 12],
    seq: u64,
}

impl Direction {
    fn new(keys: &Keys) -> Self {
        Direction {
            cipher: Cipher::new(&keys.key),
            iv: keys.iv,
            seq: 0,
        }
    }

    /// The next record's nonce (RFC 8446 §5.3): the IV XOR the sequence
    /// number, left-padded to 12 bytes. A sequence never wraps: 2^64
    /// records would be 2^78 bytes.
    fn next_nonce(&mut self) -> io::Result<[u8; 12]> {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq = self
            .seq
            .checked_add(1)
            .ok_or_else(|| broken("the record sequence ran out"))?;
        Ok(nonce)
    }
}

/// The error of a record that does not open: tampering, a replay, a
/// reordering, or a peer with other keys. It ends the session with exit 3.
pub fn broken(why: &str) -> io::Error {
    let line = format!("encrypted session: {why}; the data was altered in transit or is not from this session's peer");
    exit::in_io(
        io::ErrorKind::InvalidData,
        Failure::new(ExitCode::Integrity, line),
    )
}

/// Seals plaintext into records.
pub struct Sealer(Direction);

impl Sealer {
    pub fn new(keys: &Keys) -> Self {
        Sealer(Direction::new(keys))
    }

    /// Appends `plain` to `out` as records of at most [`MAX_PLAIN`] bytes.
    pub fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let start = out.len();
        out.resize(start + sealed_len(plain.len()), 0);
        fill(&mut out[start..], plain);
        self.seal_in_place(&mut out[start..], plain.len())?;
        Ok(())
    }

    /// Seals, in place, the records of `plain` bytes of data that lie in
    /// `records` where [`places`] put them; returns the records' length.
    /// An error ends the direction for good: the records sealed before it
    /// are not sent, and no later one can be sealed to follow them (the
    /// sequence has run out, which stays so; ring refuses no record of at
    /// most [`MAX_PLAIN`] bytes).
    pub fn seal_in_place(&mut self, records: &mut [u8], plain: usize) -> io::Result<usize> {
        let (mut at, mut left) = (0, plain);
        while left > 0 {
            let len = left.min(MAX_PLAIN);
            let header = header_of(len + 1 + TAG);
            let record = &mut records[at..at + HEADER + len + 1 + TAG];
            let (head, body) = record.split_at_mut(HEADER);
            head.copy_from_slice(&header);
            body[len] = APPLICATION_DATA;
            let (inner, tag) = body.split_at_mut(len + 1);
            let nonce = self.0.next_nonce()?;
            let sealed = self.0.cipher.seal(nonce, &header, inner);
            tag.copy_from_slice(&sealed.map_err(|_| broken("a record could not be sealed"))?);
            at += record.len();
            left -= len;
        }
        Ok(at)
    }
}

/// How long `plain` bytes of data are as records.
pub const fn sealed_len(plain: usize) -> usize {
    plain + plain.div_ceil(MAX_PLAIN) * (HEADER + 1 + TAG)
}

/// Where each record's data goes in `records` (at least [`sealed_len`] of
/// `plain`), for [`Sealer::seal_in_place`]: records back to back, each
/// record's data right behind its header. Bytes read straight into these
/// places are sealed where they lie, with no copy between.
pub fn places(records: &mut [u8], plain: usize) -> impl Iterator<Item = &mut [u8]> {
    let count = plain.div_ceil(MAX_PLAIN);
    records
        .chunks_mut(HEADER + MAX_BODY)
        .take(count)
        .enumerate()
        .map(move |(i, record)| {
            let len = (plain - i * MAX_PLAIN).min(MAX_PLAIN);
            &mut record[HEADER..HEADER + len]
        })
}

/// Copies `plain` into the places of its records in `records`.
pub fn fill(records: &mut [u8], plain: &[u8]) {
    let mut from = plain;
    for place in places(records, plain.len()) {
        let (now, rest) = from.split_at(place.len());
        place.copy_from_slice(now);
        from = rest;
    }
}

fn header_of(body: usize) -> [u8; HEADER] {
    let len = (body as u16).to_be_bytes();
    [
        APPLICATION_DATA,
        LEGACY_VERSION[0],
        LEGACY_VERSION[1],
        len[0],
        len[1],
    ]
}

/// Opens records, in order.
pub struct Opener(Direction);

impl Opener {
    pub fn new(keys: &Keys) -> Self {
        Opener(Direction::new(keys))
    }

    /// The body length a record header announces, checked before anything
    /// is read or allocated for it.
    pub fn body_len(header: &[u8]) -> io::Result<usize> {
        if header[0] != APPLICATION_DATA || header[1..3] != LEGACY_VERSION {
            return Err(broken("a record with a bad header"));
        }
        let len = u16::from_be_bytes([header[3], header[4]]) as usize;
        if !(TAG + 1..=MAX_BODY).contains(&len) {
            return Err(broken("a record of an impossible length"));
        }
        Ok(len)
    }

    /// Opens one whole record (header and body) in place; returns where its
    /// plaintext lies within `record`.
    pub fn open(&mut self, record: &mut [u8]) -> io::Result<Range<usize>> {
        let (header, body) = record.split_at_mut(HEADER);
        let sealed = Self::tag_at(header, body.len())?;
        let (inner, tag) = body.split_at_mut(sealed);
        self.decrypt(header, inner, 0, tag)?;
        Ok(HEADER..HEADER + data_len(inner)?)
    }

    /// Opens the whole record that begins at `buf[at]` and ends `buf`,
    /// its plaintext written from `buf[0]`, over what lies before it, in
    /// the decryption's one pass: records read back to back open into one
    /// run of data. Returns how many bytes of `buf` are data.
    pub fn open_down(&mut self, buf: &mut [u8], at: usize) -> io::Result<usize> {
        let header: [u8; HEADER] = buf[at..at + HEADER].try_into().expect("a header's bytes");
        let sealed = Self::tag_at(&header, buf.len() - at - HEADER)?;
        let (data, tag) = buf.split_at_mut(buf.len() - TAG);
        self.decrypt(&header, data, at + HEADER, tag)?;
        data_len(&data[..sealed])
    }

    /// Opens one whole record into `out`, which must hold its inner
    /// plaintext ([`Opener::inner_len`]). Returns how many bytes of `out`
    /// are data; if the record fails, `out` holds zeros where the record
    /// went, never plaintext that did not authenticate.
    pub fn open_into(&mut self, record: &[u8], out: &mut [u8]) -> io::Result<usize> {
        let (header, body) = record.split_at(HEADER);
        let sealed = Self::tag_at(header, body.len())?;
        let (inner, tag) = body.split_at(sealed);
        let out = &mut out[..sealed];
        let nonce = self.0.next_nonce()?;
        let tag = tag
            .try_into()
            .map_err(|_| broken("a record without its tag"))?;
        let opened = self.0.cipher.open_into(nonce, header, inner, out, tag);
        opened.map_err(|_| {
            out.fill(0);
            broken("a record failed authentication")
        })?;
        data_len(out)
    }

    /// The inner plaintext's length (data, content type, padding) of a
    /// record whose header is `header`.
    pub fn inner_len(header: &[u8]) -> io::Result<usize> {
        Ok(Self::body_len(header)? - TAG)
    }

    /// Checks the header against the body's length; returns where the tag
    /// begins within the body.
    fn tag_at(header: &[u8], body: usize) -> io::Result<usize> {
        let len = Self::body_len(header)?;
        debug_assert_eq!(len, body);
        Ok(len - TAG)
    }

    /// Opens the sealed bytes `buf[from..]` into `buf[..]`.
    fn decrypt(
        &mut self,
        header: &[u8],
        buf: &mut [u8],
        from: usize,
        tag: &[u8],
    ) -> io::Result<()> {
        let nonce = self.0.next_nonce()?;
        let tag = tag
            .try_into()
            .map_err(|_| broken("a record without its tag"))?;
        self.0
            .cipher
            .open_within(nonce, header, buf, from, tag)
            .map_err(|_| broken("a record failed authentication"))
    }
}

/// The data's length within an opened inner plaintext (TLS 1.3: data, the
/// content type, optional zero padding).
fn data_len(inner: &[u8]) -> io::Result<usize> {
    let Some(kind_at) = inner.iter().rposition(|b| *b != 0) else {
        return Err(broken("a record without a content type"));
    };
    if inner[kind_at] != APPLICATION_DATA {
        return Err(broken("a record that is not application data"));
    }
    Ok(kind_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(b: u8) -> Keys {
        Keys {
            key: [b; 32],
            iv: [b ^ 0x5a; 12],
        }
    }

    /// How a test opens records.
    #[derive(Clone, Copy, Debug)]
    enum How {
        InPlace,
        /// Straight into a separate buffer ([`Opener::open_into`]).
        Into,
        /// Down, back to back ([`Opener::open_down`]).
        Down,
    }

    /// Opens every record of `wire`, in order, as `how` says.
    fn open_all_by(opener: &mut Opener, wire: &mut [u8], how: How) -> io::Result<Vec<u8>> {
        let mut plain = Vec::new();
        let (mut at, mut packed) = (0, 0);
        while at < wire.len() {
            let len = Opener::body_len(&wire[at..at + HEADER])?;
            if at + HEADER + len > wire.len() {
                return Err(broken("cut short"));
            }
            match how {
                How::Into => {
                    let record = &wire[at..at + HEADER + len];
                    let mut out = vec![0xee; Opener::inner_len(record)?];
                    let n = opener.open_into(record, &mut out).inspect_err(|_| {
                        let left = |b: &u8| *b == 0 || *b == 0xee;
                        assert!(out.iter().all(left), "a failed record left plaintext");
                    })?;
                    plain.extend_from_slice(&out[..n]);
                }
                How::InPlace => {
                    let record = &mut wire[at..at + HEADER + len];
                    let range = opener.open(record)?;
                    plain.extend_from_slice(&record[range]);
                }
                How::Down => {
                    packed +=
                        opener.open_down(&mut wire[packed..at + HEADER + len], at - packed)?;
                    plain = wire[..packed].to_vec();
                }
            }
            at += HEADER + len;
        }
        Ok(plain)
    }

    fn open_all(opener: &mut Opener, wire: &mut [u8]) -> io::Result<Vec<u8>> {
        open_all_by(opener, wire, How::InPlace)
    }

    #[test]
    fn records_round_trip_in_tls_shape() {
        let data: Vec<u8> = (0..40_000u32).map(|i| (i * 7) as u8).collect();
        let mut wire = Vec::new();
        let mut sealer = Sealer::new(&keys(1));
        sealer.seal(&data, &mut wire).unwrap();
        sealer.seal(b"tail", &mut wire).unwrap();
        // 16384 + 16384 + 7232, then 4: each with 22 bytes of overhead
        assert_eq!(wire.len(), data.len() + 4 + 4 * (HEADER + 1 + TAG));
        assert_eq!(wire[..5], [23, 3, 3, 0x40, 0x11]);
        let mut opener = Opener::new(&keys(1));
        let plain = open_all(&mut opener, &mut wire.clone()).unwrap();
        assert_eq!(&plain[..data.len()], &data[..]);
        assert_eq!(&plain[data.len()..], b"tail");
        let down = open_all_by(&mut Opener::new(&keys(1)), &mut wire.clone(), How::Down);
        assert_eq!(down.unwrap(), plain);
        // the other direction's keys open nothing
        let other = open_all(&mut Opener::new(&keys(2)), &mut wire.clone());
        assert!(other.is_err());
    }

    #[test]
    fn a_flipped_bit_a_replay_or_a_reordering_fails() {
        for how in [How::InPlace, How::Into, How::Down] {
            flips_replays_and_reorderings_fail(how);
        }
    }

    fn flips_replays_and_reorderings_fail(how: How) {
        let mut sealer = Sealer::new(&keys(3));
        let mut wire = Vec::new();
        sealer.seal(b"first", &mut wire).unwrap();
        let one = wire.len();
        sealer.seal(b"second", &mut wire).unwrap();
        let plain = open_all_by(&mut Opener::new(&keys(3)), &mut wire.clone(), how).unwrap();
        assert_eq!(plain, b"firstsecond");
        for at in 0..wire.len() {
            let mut bad = wire.clone();
            bad[at] ^= 0x01;
            let got = open_all_by(&mut Opener::new(&keys(3)), &mut bad, how);
            assert!(got.is_err(), "a flip at byte {at} went unnoticed");
            let code = got.unwrap_err();
            assert_eq!(code.kind(), io::ErrorKind::InvalidData);
        }
        // the same record twice (a replay within the session)
        let mut twice = wire[..one].to_vec();
        twice.extend_from_slice(&wire[..one]);
        assert!(open_all_by(&mut Opener::new(&keys(3)), &mut twice, how).is_err());
        // swapped
        let mut swapped = wire[one..].to_vec();
        swapped.extend_from_slice(&wire[..one]);
        assert!(open_all_by(&mut Opener::new(&keys(3)), &mut swapped, how).is_err());
    }

    #[test]
    fn padding_is_stripped_and_bad_headers_refused() {
        assert!(Opener::body_len(&[22, 3, 3, 0, 20]).is_err());
        assert!(Opener::body_len(&[23, 3, 1, 0, 20]).is_err());
        assert!(Opener::body_len(&[23, 3, 3, 0, 16]).is_err());
        // 16,401 = 16,384 bytes of data, the content type and the tag;
        // before, anything up to 16,640 was taken: 16,623 bytes of data
        assert_eq!(Opener::body_len(&[23, 3, 3, 0x40, 0x11]).unwrap(), 16_401);
        assert!(Opener::body_len(&[23, 3, 3, 0x40, 0x12]).is_err());
        assert!(Opener::body_len(&[23, 3, 3, 0x41, 0x00]).is_err());
        // a record padded as TLS 1.3 allows opens to its data alone
        let k = keys(4);
        let mut d = Direction::new(&k);
        let mut body = b"hi".to_vec();
        body.extend_from_slice(&[23, 0, 0, 0]);
        let len = (body.len() + TAG) as u8;
        let header = [23, 3, 3, 0, len];
        let nonce = d.next_nonce().unwrap();
        let tag = d.cipher.seal(nonce, &header, &mut body).unwrap();
        let mut record = header.to_vec();
        record.extend_from_slice(&body);
        record.extend_from_slice(&tag);
        let range = Opener::new(&k).open(&mut record).unwrap();
        assert_eq!(&record[range], b"hi");
    }
}
