//! Every frame after the OFFER as one typed message, so the sessions match
//! on meaning instead of on a kind byte.

use anyhow::{bail, Result};

use super::tree::{self, Begin, Entry, FileEnd, Manifest, Reply, TreeEnd};
use super::{kind, parse_data, write_frame, Answer, BlockHash, Frame, Outcome, MAX_FRAME};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    // receiver to sender
    Answer(Answer),
    Challenge(Vec<u8>),
    Reply(Reply),
    FileHashes(u64, Vec<BlockHash>, bool),
    Go,
    FileResult(u64, Outcome),
    Result(Outcome),
    // sender to receiver
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
    /// The END of a tree session.
    End(TreeEnd),
    Stop,
    // either way
    Keepalive,
}

impl Message {
    /// Types a frame read off the wire; its body is already bounded.
    pub fn decode(frame: &Frame) -> Result<Message> {
        let body = &frame.body[..];
        Ok(match frame.kind {
            kind::ANSWER => Message::Answer(Answer::decode(body)?),
            kind::CHALLENGE => Message::Challenge(body.to_vec()),
            kind::REPLY => Message::Reply(Reply::decode(body)?),
            kind::FILE_HASHES => {
                let (id, blocks, last) = tree::decode_file_hashes(body)?;
                Message::FileHashes(id, blocks, last)
            }
            kind::GO => Message::Go,
            kind::FILE_RESULT => {
                let (id, outcome) = tree::decode_file_result(body)?;
                Message::FileResult(id, outcome)
            }
            kind::RESULT => Message::Result(Outcome::decode(body)?),
            kind::PROOF => Message::Proof(body.to_vec()),
            kind::ENTRY => Message::Entry(Entry::decode(body)?),
            kind::MANIFEST => Message::Manifest(Manifest::decode(body)?),
            kind::BEGIN => Message::Begin(Begin::decode(body)?),
            kind::DATA => {
                let (offset, len) = parse_data(body)?;
                Message::Data { offset, len }
            }
            kind::FILE_END => Message::FileEnd(FileEnd::decode(body)?),
            kind::END => Message::End(TreeEnd::decode(body)?),
            kind::STOP => Message::Stop,
            kind::KEEPALIVE => Message::Keepalive,
            other => bail!("unknown frame {other:#x}"),
        })
    }

    /// The frame's kind and body. DATA is written with its payload by the
    /// copy layer (`data_header`), never through here.
    pub fn encode(&self) -> (u8, Vec<u8>) {
        match self {
            Message::Answer(a) => (kind::ANSWER, a.encode()),
            Message::Challenge(b) => (kind::CHALLENGE, b.clone()),
            Message::Reply(r) => (kind::REPLY, r.encode()),
            Message::FileHashes(id, blocks, last) => (
                kind::FILE_HASHES,
                tree::encode_file_hashes(*id, blocks, *last),
            ),
            Message::Go => (kind::GO, Vec::new()),
            Message::FileResult(id, o) => (kind::FILE_RESULT, tree::encode_file_result(*id, o)),
            Message::Result(o) => (kind::RESULT, o.encode()),
            Message::Proof(b) => (kind::PROOF, b.clone()),
            Message::Entry(e) => (kind::ENTRY, e.encode()),
            Message::Manifest(m) => (kind::MANIFEST, m.encode()),
            Message::Begin(b) => (kind::BEGIN, b.encode()),
            Message::Data { offset, len } => {
                let mut body = offset.to_be_bytes().to_vec();
                body.extend_from_slice(&len.to_be_bytes());
                (kind::DATA, body)
            }
            Message::FileEnd(e) => (kind::FILE_END, e.encode()),
            Message::End(e) => (kind::END, e.encode()),
            Message::Stop => (kind::STOP, Vec::new()),
            Message::Keepalive => (kind::KEEPALIVE, Vec::new()),
        }
    }

    /// The frame's name as docs/PROTOCOL.md spells it, for errors.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Answer(_) => "ANSWER",
            Message::Challenge(_) => "CHALLENGE",
            Message::Reply(_) => "REPLY",
            Message::FileHashes(..) => "FILE HASHES",
            Message::Go => "GO",
            Message::FileResult(..) => "FILE RESULT",
            Message::Result(_) => "RESULT",
            Message::Proof(_) => "PROOF",
            Message::Entry(_) => "ENTRY",
            Message::Manifest(_) => "MANIFEST",
            Message::Begin(_) => "BEGIN",
            Message::Data { .. } => "DATA",
            Message::FileEnd(_) => "FILE END",
            Message::End(_) => "END",
            Message::Stop => "STOP",
            Message::Keepalive => "KEEPALIVE",
        }
    }

    /// Appends the whole frame to `out` (to batch small frames in one write).
    pub fn append_to(&self, out: &mut Vec<u8>) {
        let (kind, body) = self.encode();
        debug_assert!(body.len() <= MAX_FRAME as usize);
        write_frame(out, kind, &body).expect("writing to a Vec cannot fail");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{read_frame, tree::Action, Status};

    #[test]
    fn every_message_survives_the_wire() {
        let outcome = Outcome {
            status: Status::Ok,
            sha256: None,
            held: 1,
            message: "m".into(),
            mac: None,
        };
        let all = [
            Message::Go,
            Message::Stop,
            Message::Keepalive,
            Message::Data { offset: 5, len: 6 },
            Message::Reply(Reply {
                id: 1,
                action: Action::Skip,
            }),
            Message::FileResult(4, outcome.clone()),
            Message::Result(outcome),
            Message::End(TreeEnd { sent: 3, failed: 1 }),
            Message::Begin(Begin {
                id: 2,
                path: b"a".to_vec(),
            }),
        ];
        for m in all {
            let mut wire = Vec::new();
            m.append_to(&mut wire);
            let frame = read_frame(&mut &wire[..]).unwrap();
            assert_eq!(Message::decode(&frame).unwrap(), m);
        }
        let unknown = Frame {
            kind: b'Z',
            body: vec![],
        };
        assert!(Message::decode(&unknown).is_err());
    }
}
