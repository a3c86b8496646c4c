//! Every frame after the OFFER as one typed message, one enum per
//! direction: a frame the other side never sends does not decode, so the
//! sessions match on meaning, and "GO from the sender" cannot be written.

use anyhow::{bail, Result};

use super::tree::{self, Begin, Entry, FileEnd, Manifest, Reply, TreeEnd};
use super::{data_body, kind, parse_data, write_frame, Answer, BlockHash, Frame, Outcome};

/// What a receiver sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToSender {
    Answer(Answer),
    Challenge(Vec<u8>),
    Reply(Reply),
    FileHashes(u64, Vec<BlockHash>, bool),
    Go,
    FileResult(u64, Outcome),
    Result(Outcome),
    Keepalive,
}

/// What a sender sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToReceiver {
    Proof(Vec<u8>),
    Entry(Entry),
    Manifest(Manifest),
    Begin(Begin),
    /// A DATA header: `len` bytes for `offset` follow it on the wire.
    Data {
        offset: u64,
        len: u64,
    },
    FileEnd(FileEnd),
    /// The END of a session.
    End(TreeEnd),
    Stop,
    Keepalive,
}

/// The name docs/PROTOCOL.md gives a frame kind, for errors.
pub fn kind_name(kind: u8) -> Option<&'static str> {
    Some(match kind {
        kind::ANSWER => "ANSWER",
        kind::CHALLENGE => "CHALLENGE",
        kind::REPLY => "REPLY",
        kind::FILE_HASHES => "FILE HASHES",
        kind::GO => "GO",
        kind::FILE_RESULT => "FILE RESULT",
        kind::RESULT => "RESULT",
        kind::PROOF => "PROOF",
        kind::ENTRY => "ENTRY",
        kind::MANIFEST => "MANIFEST",
        kind::BEGIN => "BEGIN",
        kind::DATA => "DATA",
        kind::FILE_END => "FILE END",
        kind::END => "END",
        kind::STOP => "STOP",
        kind::KEEPALIVE => "KEEPALIVE",
        kind::OFFER => "OFFER",
        kind::HELLO => "HELLO",
        kind::CONFIRM => "CONFIRM",
        _ => return None,
    })
}

/// A frame that does not belong in this direction: one the other side
/// sends is named, one nobody sends is "unknown".
fn misdirected<T>(kind: u8, from: &str) -> Result<T> {
    match kind_name(kind) {
        Some(name) => bail!("unexpected {name} from the {from}"),
        None => bail!("unknown frame {kind:#x}"),
    }
}

impl ToSender {
    /// Types a frame read off the wire; its body is already bounded.
    pub fn decode(frame: &Frame) -> Result<ToSender> {
        let body = &frame.body[..];
        Ok(match frame.kind {
            kind::ANSWER => ToSender::Answer(Answer::decode(body)?),
            kind::CHALLENGE => ToSender::Challenge(body.to_vec()),
            kind::REPLY => ToSender::Reply(Reply::decode(body)?),
            kind::FILE_HASHES => {
                let (id, blocks, last) = tree::decode_file_hashes(body)?;
                ToSender::FileHashes(id, blocks, last)
            }
            kind::GO => ToSender::Go,
            kind::FILE_RESULT => {
                let (id, outcome) = tree::decode_file_result(body)?;
                ToSender::FileResult(id, outcome)
            }
            kind::RESULT => ToSender::Result(Outcome::decode(body)?),
            kind::KEEPALIVE => ToSender::Keepalive,
            other => return misdirected(other, "receiver"),
        })
    }

    /// The frame's kind and body.
    pub fn encode(&self) -> (u8, Vec<u8>) {
        match self {
            ToSender::Answer(a) => (kind::ANSWER, a.encode()),
            ToSender::Challenge(b) => (kind::CHALLENGE, b.clone()),
            ToSender::Reply(r) => (kind::REPLY, r.encode()),
            ToSender::FileHashes(id, blocks, last) => (
                kind::FILE_HASHES,
                tree::encode_file_hashes(*id, blocks, *last),
            ),
            ToSender::Go => (kind::GO, Vec::new()),
            ToSender::FileResult(id, o) => (kind::FILE_RESULT, tree::encode_file_result(*id, o)),
            ToSender::Result(o) => (kind::RESULT, o.encode()),
            ToSender::Keepalive => (kind::KEEPALIVE, Vec::new()),
        }
    }

    /// The frame's name as docs/PROTOCOL.md spells it, for errors.
    pub fn name(&self) -> &'static str {
        kind_name(self.encode_kind()).expect("every message has a name")
    }

    fn encode_kind(&self) -> u8 {
        match self {
            ToSender::Answer(_) => kind::ANSWER,
            ToSender::Challenge(_) => kind::CHALLENGE,
            ToSender::Reply(_) => kind::REPLY,
            ToSender::FileHashes(..) => kind::FILE_HASHES,
            ToSender::Go => kind::GO,
            ToSender::FileResult(..) => kind::FILE_RESULT,
            ToSender::Result(_) => kind::RESULT,
            ToSender::Keepalive => kind::KEEPALIVE,
        }
    }

    /// Appends the whole frame to `out` (to batch small frames in one write).
    pub fn append_to(&self, out: &mut Vec<u8>) {
        let (kind, body) = self.encode();
        write_frame(out, kind, &body).expect("writing to a Vec cannot fail");
    }
}

impl ToReceiver {
    /// Types a frame read off the wire; its body is already bounded.
    pub fn decode(frame: &Frame) -> Result<ToReceiver> {
        let body = &frame.body[..];
        Ok(match frame.kind {
            kind::PROOF => ToReceiver::Proof(body.to_vec()),
            kind::ENTRY => ToReceiver::Entry(Entry::decode(body)?),
            kind::MANIFEST => ToReceiver::Manifest(Manifest::decode(body)?),
            kind::BEGIN => ToReceiver::Begin(Begin::decode(body)?),
            kind::DATA => {
                let (offset, len) = parse_data(body)?;
                ToReceiver::Data { offset, len }
            }
            kind::FILE_END => ToReceiver::FileEnd(FileEnd::decode(body)?),
            kind::END => ToReceiver::End(TreeEnd::decode(body)?),
            kind::STOP => ToReceiver::Stop,
            kind::KEEPALIVE => ToReceiver::Keepalive,
            other => return misdirected(other, "sender"),
        })
    }

    /// The frame's kind and body. A DATA frame's payload follows it: the
    /// drivers write the two together (see `data_header`).
    pub fn encode(&self) -> (u8, Vec<u8>) {
        match self {
            ToReceiver::Proof(b) => (kind::PROOF, b.clone()),
            ToReceiver::Entry(e) => (kind::ENTRY, e.encode()),
            ToReceiver::Manifest(m) => (kind::MANIFEST, m.encode()),
            ToReceiver::Begin(b) => (kind::BEGIN, b.encode()),
            ToReceiver::Data { offset, len } => (kind::DATA, data_body(*offset, *len).to_vec()),
            ToReceiver::FileEnd(e) => (kind::FILE_END, e.encode()),
            ToReceiver::End(e) => (kind::END, e.encode()),
            ToReceiver::Stop => (kind::STOP, Vec::new()),
            ToReceiver::Keepalive => (kind::KEEPALIVE, Vec::new()),
        }
    }

    /// The frame's name as docs/PROTOCOL.md spells it, for errors.
    pub fn name(&self) -> &'static str {
        kind_name(self.encode_kind()).expect("every message has a name")
    }

    fn encode_kind(&self) -> u8 {
        match self {
            ToReceiver::Proof(_) => kind::PROOF,
            ToReceiver::Entry(_) => kind::ENTRY,
            ToReceiver::Manifest(_) => kind::MANIFEST,
            ToReceiver::Begin(_) => kind::BEGIN,
            ToReceiver::Data { .. } => kind::DATA,
            ToReceiver::FileEnd(_) => kind::FILE_END,
            ToReceiver::End(_) => kind::END,
            ToReceiver::Stop => kind::STOP,
            ToReceiver::Keepalive => kind::KEEPALIVE,
        }
    }

    /// Appends the whole frame to `out` (to batch small frames in one write).
    pub fn append_to(&self, out: &mut Vec<u8>) {
        let (kind, body) = self.encode();
        write_frame(out, kind, &body).expect("writing to a Vec cannot fail");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{read_frame, tree::Action, Status};

    fn outcome() -> Outcome {
        Outcome {
            status: Status::Ok,
            sha256: None,
            held: 1,
            message: "m".into(),
            mac: None,
        }
    }

    fn wire(append: impl FnOnce(&mut Vec<u8>)) -> Frame {
        let mut wire = Vec::new();
        append(&mut wire);
        read_frame(&mut &wire[..]).unwrap()
    }

    #[test]
    fn every_message_survives_the_wire() {
        for m in [
            ToSender::Go,
            ToSender::Keepalive,
            ToSender::Reply(Reply {
                id: 1,
                action: Action::Skip,
            }),
            ToSender::FileResult(4, outcome()),
            ToSender::Result(outcome()),
        ] {
            let frame = wire(|w| m.append_to(w));
            assert_eq!(ToSender::decode(&frame).unwrap(), m);
        }
        for m in [
            ToReceiver::Stop,
            ToReceiver::Keepalive,
            ToReceiver::Data { offset: 5, len: 6 },
            ToReceiver::End(TreeEnd { sent: 3, failed: 1 }),
            ToReceiver::Begin(Begin {
                id: 2,
                path: b"a".to_vec(),
            }),
        ] {
            let frame = wire(|w| m.append_to(w));
            assert_eq!(ToReceiver::decode(&frame).unwrap(), m);
        }
    }

    #[test]
    fn a_frame_of_the_other_direction_does_not_decode() {
        let go = wire(|w| ToSender::Go.append_to(w));
        let why = ToReceiver::decode(&go).unwrap_err().to_string();
        assert_eq!(why, "unexpected GO from the sender");
        let stop = wire(|w| ToReceiver::Stop.append_to(w));
        let why = ToSender::decode(&stop).unwrap_err().to_string();
        assert_eq!(why, "unexpected STOP from the receiver");
        let unknown = Frame {
            kind: b'Z',
            body: vec![],
        };
        assert!(ToSender::decode(&unknown).is_err());
        assert!(ToReceiver::decode(&unknown).is_err());
    }
}
