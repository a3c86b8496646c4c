//! The frames around each file's data, and the session's END: BEGIN,
//! FILE END, FILE RESULT, FILE HASHES, END.

use anyhow::{ensure, Result};

use super::as_path;
use crate::protocol::tlv::{as_digest, as_message, as_u64, Decoded, Fields};
use crate::protocol::{clip, decode_hashes, encode_hashes, BlockHash, Outcome, PeerText};

/// The data of one entry follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begin {
    pub id: u64,
    pub path: Vec<u8>,
}

/// One entry's data is over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileEnd {
    pub id: u64,
    pub sent: u64,
    pub sha256: Option<[u8; 32]>,
    /// The source could not be read to its end; what arrived is not kept.
    pub failed: Option<PeerText>,
}

/// The END of a tree session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeEnd {
    /// DATA payload bytes of the whole session.
    pub sent: u64,
    /// Entries the sender could not send.
    pub failed: u64,
}

impl TreeEnd {
    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::default();
        f.put_u64(1, self.sent);
        f.put_u64(4, self.failed);
        f.0
    }

    pub fn decode(body: &[u8]) -> Result<Self> {
        Decoded::read(body, |f| {
            Ok(TreeEnd {
                sent: f.get(1, as_u64)?.unwrap_or(0),
                failed: f.get(4, as_u64)?.unwrap_or(0),
            })
        })
    }
}

impl Begin {
    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::default();
        f.put_u64(1, self.id);
        f.put(2, &self.path);
        f.0
    }

    pub fn decode(body: &[u8]) -> Result<Self> {
        Decoded::read(body, |f| {
            Ok(Begin {
                id: f.need(1, as_u64, "begin without an id")?,
                path: f.need(2, as_path, "begin without a path")?,
            })
        })
    }
}

impl FileEnd {
    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::default();
        f.put_u64(1, self.id);
        f.put_u64(2, self.sent);
        if let Some(d) = &self.sha256 {
            f.put(3, d);
        }
        if let Some(why) = &self.failed {
            f.put(4, &clip(why));
        }
        f.0
    }

    pub fn decode(body: &[u8]) -> Result<Self> {
        Decoded::read(body, |f| {
            Ok(FileEnd {
                id: f.need(1, as_u64, "file end without an id")?,
                sent: f.get(2, as_u64)?.unwrap_or(0),
                sha256: f.get(3, as_digest)?,
                failed: f.get(4, as_message)?,
            })
        })
    }
}

/// FILE RESULT: a RESULT body plus the entry's id (tag 6).
pub fn encode_file_result(id: u64, outcome: &Outcome) -> Vec<u8> {
    let mut body = outcome.encode();
    let mut f = Fields::default();
    f.put_u64(6, id);
    body.extend_from_slice(&f.0);
    body
}

pub fn decode_file_result(body: &[u8]) -> Result<(u64, Outcome)> {
    let (id, rest) = Decoded::read(body, |f| {
        Ok((f.need(6, as_u64, "file result without an id")?, f.rest()))
    })?;
    Ok((id, Outcome::decode(&rest)?))
}

/// FILE HASHES: the entry's id, then a HASHES body.
pub fn encode_file_hashes(id: u64, blocks: &[BlockHash], last: bool) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    body.extend_from_slice(&encode_hashes(blocks, last));
    body
}

pub fn decode_file_hashes(body: &[u8]) -> Result<(u64, Vec<BlockHash>, bool)> {
    ensure!(body.len() >= 8, "FILE HASHES frame without an id");
    let id = u64::from_be_bytes(body[..8].try_into().expect("8 bytes"));
    let (blocks, last) = decode_hashes(&body[8..])?;
    Ok((id, blocks, last))
}
