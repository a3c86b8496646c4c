//! Tag-length-value fields: tag u8, length u16, value. Tags 0x80 and above
//! must be understood; a reader refuses a frame carrying one it does not
//! know. Every control frame's body but FILE HASHES is a run of them.

use anyhow::{bail, ensure, Context, Result};

use super::{PeerText, MAX_MESSAGE};

/// A body being written, field by field.
pub(super) struct Fields(pub(super) Vec<u8>);

impl Default for Fields {
    /// Room for most control frames at once (an ENTRY with a short path),
    /// so encoding one is a single allocation, not a series of regrowths.
    fn default() -> Self {
        Fields(Vec::with_capacity(128))
    }
}

impl Fields {
    pub(super) fn put(&mut self, tag: u8, value: &[u8]) {
        debug_assert!(value.len() <= u16::MAX as usize);
        self.0.push(tag);
        self.0
            .extend_from_slice(&(value.len() as u16).to_be_bytes());
        self.0.extend_from_slice(value);
    }
    pub(super) fn put_u64(&mut self, tag: u8, value: u64) {
        self.put(tag, &value.to_be_bytes());
    }
    /// Two u64s in one field: a range, or a count and a size.
    pub(super) fn put_pair(&mut self, tag: u8, (a, b): (u64, u64)) {
        self.put(tag, &[a.to_be_bytes(), b.to_be_bytes()].concat());
    }
    /// A flag is written only when set: absent reads as false.
    pub(super) fn put_flag(&mut self, tag: u8, on: bool) {
        if on {
            self.put(tag, &[1]);
        }
    }
}

/// A body's fields in the order sent; a field cut short refuses the body.
pub(super) fn fields(body: &[u8]) -> Result<Vec<(u8, &[u8])>> {
    let mut out = Vec::with_capacity(8);
    let mut rest = body;
    while !rest.is_empty() {
        ensure!(rest.len() >= 3, "truncated field");
        let tag = rest[0];
        let len = u16::from_be_bytes([rest[1], rest[2]]) as usize;
        ensure!(rest.len() >= 3 + len, "truncated field {tag}");
        out.push((tag, &rest[3..3 + len]));
        rest = &rest[3 + len..];
    }
    Ok(out)
}

/// A body being read, field by field, by tag. A field may come more than
/// once: every copy must be well formed, and the last one counts (HELD
/// ranges in an ANSWER add up instead: [`Decoded::all`]).
pub(super) struct Decoded<'a> {
    fields: Vec<(u8, &'a [u8])>,
    taken: [bool; 256],
}

impl<'a> Decoded<'a> {
    /// Reads `body` with `take`, which takes the tags the frame knows;
    /// then refuses the body if it carries a required tag nothing took.
    pub(super) fn read<T>(body: &'a [u8], take: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let mut f = Decoded::parse(body)?;
        let value = take(&mut f)?;
        f.finish()?;
        Ok(value)
    }

    fn parse(body: &'a [u8]) -> Result<Self> {
        Ok(Decoded {
            fields: fields(body)?,
            taken: [false; 256],
        })
    }

    /// Every copy of `tag`, in order, each read with `read`.
    pub(super) fn all<T>(
        &mut self,
        tag: u8,
        read: impl Fn(u8, &'a [u8]) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.taken[usize::from(tag)] = true;
        let copies = self.fields.iter().filter(|(t, _)| *t == tag);
        copies.map(|&(_, value)| read(tag, value)).collect()
    }

    /// The last copy of `tag`, read with `read` (as every copy is).
    pub(super) fn get<T>(
        &mut self,
        tag: u8,
        read: impl Fn(u8, &'a [u8]) -> Result<T>,
    ) -> Result<Option<T>> {
        Ok(self.all(tag, read)?.pop())
    }

    /// `get` for a field the frame cannot do without: its absence is
    /// refused with `missing` ("entry without an id").
    pub(super) fn need<T>(
        &mut self,
        tag: u8,
        read: impl Fn(u8, &'a [u8]) -> Result<T>,
        missing: &'static str,
    ) -> Result<T> {
        self.get(tag, read)?.context(missing)
    }

    /// A flag; absent is false.
    pub(super) fn flag(&mut self, tag: u8) -> Result<bool> {
        Ok(self.get(tag, as_flag)?.unwrap_or(false))
    }

    /// The first field, in the order sent, whose tag is one of `tags`.
    pub(super) fn first_of(&self, tags: &[u8]) -> Option<u8> {
        let mut present = self.fields.iter().map(|(tag, _)| *tag);
        present.find(|tag| tags.contains(tag))
    }

    /// The fields nothing took yet, taken now as a body of their own (for
    /// a decoder that reads them).
    pub(super) fn rest(&mut self) -> Vec<u8> {
        let mut rest = Fields::default();
        for &(tag, value) in &self.fields {
            if !self.taken[usize::from(tag)] {
                rest.put(tag, value);
            }
        }
        self.taken = [true; 256];
        rest.0
    }

    fn finish(self) -> Result<()> {
        for &(tag, _) in &self.fields {
            if !self.taken[usize::from(tag)] {
                unknown(tag)?;
            }
        }
        Ok(())
    }
}

pub(super) fn unknown(tag: u8) -> Result<()> {
    if tag >= 0x80 {
        bail!("unknown required field {tag:#x}");
    }
    Ok(())
}

pub(super) fn as_u64(tag: u8, value: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = value
        .try_into()
        .map_err(|_| anyhow::anyhow!("field {tag}: expected 8 bytes"))?;
    Ok(u64::from_be_bytes(bytes))
}

pub(super) fn as_u32(tag: u8, value: &[u8]) -> Result<u32> {
    let bytes: [u8; 4] = value
        .try_into()
        .map_err(|_| anyhow::anyhow!("field {tag}: expected 4 bytes"))?;
    Ok(u32::from_be_bytes(bytes))
}

/// Two u64s, `what` naming the field in the error ("tree", "range").
pub(super) fn as_pair(what: &'static str) -> impl Fn(u8, &[u8]) -> Result<(u64, u64)> {
    move |tag, value| {
        ensure!(value.len() == 16, "{what} field: expected 16 bytes");
        Ok((as_u64(tag, &value[..8])?, as_u64(tag, &value[8..])?))
    }
}

pub(super) fn as_digest(tag: u8, value: &[u8]) -> Result<[u8; 32]> {
    value
        .try_into()
        .map_err(|_| anyhow::anyhow!("field {tag}: expected a 32-byte digest"))
}

/// A one-byte field (a status, a code, an action).
pub(super) fn as_byte(tag: u8, value: &[u8]) -> Result<u8> {
    match value {
        [b] => Ok(*b),
        _ => bail!("field {tag}: expected 1 byte, got {}", value.len()),
    }
}

/// A flag is the byte 0 or the byte 1; anything else is a malformed frame,
/// not a silent "no".
pub(super) fn as_flag(tag: u8, value: &[u8]) -> Result<bool> {
    match value {
        [0] => Ok(false),
        [1] => Ok(true),
        _ => bail!("field {tag}: a flag is the byte 0 or 1, not {value:?}"),
    }
}

/// Bytes, at most `max` of them.
pub(super) fn as_bytes(tag: u8, value: &[u8], max: usize) -> Result<Vec<u8>> {
    ensure!(value.len() <= max, "field {tag}: over {max} bytes");
    Ok(value.to_vec())
}

/// A text field: the peer's words, which only ever print escaped.
pub(super) fn as_message(tag: u8, value: &[u8]) -> Result<PeerText> {
    let max = MAX_MESSAGE;
    ensure!(value.len() <= max, "field {tag}: over {max} bytes");
    ensure!(std::str::from_utf8(value).is_ok(), "field {tag}: not UTF-8");
    Ok(value.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(fields: &[(u8, &[u8])]) -> Vec<u8> {
        let mut f = Fields::default();
        for (tag, value) in fields {
            f.put(*tag, value);
        }
        f.0
    }

    #[test]
    fn a_repeated_field_is_checked_every_time_and_the_last_counts() {
        let one = 1u64.to_be_bytes();
        let two = 2u64.to_be_bytes();
        let both = body(&[(1, &one), (2, &[]), (1, &two)]);
        let mut f = Decoded::parse(&both).unwrap();
        assert_eq!(f.get(1, as_u64).unwrap(), Some(2));
        assert_eq!(f.all(1, as_u64).unwrap(), [1, 2]);
        assert_eq!(f.get(3, as_u64).unwrap(), None);
        f.finish().unwrap();
        // a bad first copy is refused, though a good one follows
        let bad_first = body(&[(1, &[0; 7]), (1, &two)]);
        let err = Decoded::parse(&bad_first).unwrap().get(1, as_u64);
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("field 1: expected 8 bytes"));
        let err = Decoded::parse(&bad_first)
            .unwrap()
            .need(9, as_u64, "frame without a 9")
            .unwrap_err();
        assert_eq!(err.to_string(), "frame without a 9");
    }

    #[test]
    fn a_required_tag_nothing_took_is_refused_an_optional_one_is_not() {
        let one = 1u64.to_be_bytes();
        for tag in (0..=255u8).filter(|&tag| tag != 1) {
            let b = body(&[(1, &one), (tag, b"x")]);
            let mut f = Decoded::parse(&b).unwrap();
            f.get(1, as_u64).unwrap();
            let finished = f.finish();
            assert_eq!(finished.is_err(), tag >= 0x80, "tag {tag:#x}");
            if let Err(e) = finished {
                assert_eq!(e.to_string(), format!("unknown required field {tag:#x}"));
            }
        }
        // taken, a required tag is no longer unknown
        let b = body(&[(0x88, &[1])]);
        let mut f = Decoded::parse(&b).unwrap();
        assert!(f.flag(0x88).unwrap());
        f.finish().unwrap();
    }

    #[test]
    fn the_rest_is_what_nothing_took_in_the_order_sent() {
        let b = body(&[(4, b"a"), (6, b"id"), (0x90, b""), (4, b"b")]);
        let mut f = Decoded::parse(&b).unwrap();
        assert_eq!(f.first_of(&[6, 0x90]), Some(6));
        assert_eq!(f.first_of(&[7]), None);
        f.get(6, |_, v| Ok(v.to_vec())).unwrap();
        assert_eq!(f.rest(), body(&[(4, b"a"), (0x90, b""), (4, b"b")]));
        f.finish().unwrap();
        assert!(Decoded::parse(&[1, 0, 2, 0]).is_err(), "a field cut short");
    }

    /// Each frame's decoder: what it decodes, decoded again with a field
    /// nobody knows after it, and with all of it sent twice.
    fn strict<T: PartialEq + std::fmt::Debug>(body: Vec<u8>, decode: fn(&[u8]) -> Result<T>) {
        let value = decode(&body).unwrap();
        let with = |tail: &[u8]| decode(&[&body[..], tail].concat());
        let err = with(&[0xfe, 0, 1, 7]).unwrap_err().to_string();
        assert_eq!(err, "unknown required field 0xfe", "{value:?}");
        assert_eq!(with(&[0x7e, 0, 1, 7]).unwrap(), value, "an optional field");
        assert_eq!(with(&body).unwrap(), value, "every field twice");
    }

    #[test]
    fn every_frame_takes_its_fields_through_the_one_reader() {
        use crate::protocol::hello::{Hello, SecretKind, PAKE_LEN};
        use crate::protocol::tree::*;
        use crate::protocol::{Answer, Outcome, RefuseCode, Status};
        let offer = TreeOffer {
            entries: 1,
            single: true,
            nonce: Some([3; 32]),
            ..Default::default()
        };
        strict(offer.encode(), TreeOffer::decode);
        let entry = Entry {
            id: 4,
            path: b"a/b".to_vec(),
            kind: EntryKind::File,
            size: 9,
            mode: 0o600,
            mtime_ns: 5,
            target: vec![],
            range: Some((1, 8)),
            stream: false,
        };
        strict(entry.encode(), Entry::decode);
        let manifest = Manifest {
            entries: 3,
            failed: 1,
        };
        strict(manifest.encode(), Manifest::decode);
        let refused = Action::Refuse {
            code: RefuseCode::Exists,
            reason: "no".into(),
        };
        let reply = Reply {
            id: 2,
            action: refused,
        };
        strict(reply.encode(), Reply::decode);
        let begin = Begin {
            id: 2,
            path: b"p".to_vec(),
        };
        strict(begin.encode(), Begin::decode);
        let end = FileEnd {
            id: 2,
            sent: 7,
            sha256: Some([1; 32]),
            failed: None,
        };
        strict(end.encode(), FileEnd::decode);
        let end = TreeEnd { sent: 7, failed: 0 };
        strict(end.encode(), TreeEnd::decode);
        let answer = Answer::Refuse {
            code: RefuseCode::Busy,
            reason: "busy".into(),
        };
        strict(answer.encode(), Answer::decode);
        let outcome = Outcome {
            status: Status::Stopped,
            sha256: None,
            held: 6,
            message: "m".into(),
            mac: Some([2; 32]),
        };
        strict(outcome.encode(), Outcome::decode);
        let result = encode_file_result(8, &outcome);
        strict(result, decode_file_result);
        let hello = Hello {
            secret: Some(SecretKind::Key),
            pake: vec![1; PAKE_LEN],
            confirm: None,
        };
        strict(hello.encode(), Hello::decode);
    }

    #[test]
    fn held_ranges_in_an_answer_add_up_across_copies_within_one_bound() {
        use crate::protocol::{Answer, MAX_RANGES};
        let accept = |held: Vec<(u64, u64)>| Answer::Accept {
            held,
            hashes: false,
        };
        let half: Vec<_> = (0..MAX_RANGES as u64 / 2)
            .map(|i| (i * 2, i * 2 + 1))
            .collect();
        let body = accept(half.clone()).encode();
        // STATUS, then HELD: the second copy adds to the first
        let twice = [&body[..], &body[3 + 1..]].concat();
        let Answer::Accept { held, .. } = Answer::decode(&twice).unwrap() else {
            panic!("refused")
        };
        assert_eq!(held, [half.clone(), half.clone()].concat());
        let thrice = [&twice[..], &body[3 + 1..]].concat();
        let err = Answer::decode(&thrice).unwrap_err().to_string();
        assert_eq!(err, "too many held ranges");
    }
}
