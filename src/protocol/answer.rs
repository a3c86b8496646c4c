//! What a receiver answers: ANSWER, RESULT (and FILE RESULT's body), and
//! the hashes of the blocks it holds.

use anyhow::{bail, ensure, Context, Result};

use super::tlv::{as_byte, as_digest, as_flag, as_message, as_u64, Decoded, Fields};
use super::{
    clip, decode_ranges, encode_ranges, PeerText, RefuseCode, BLOCK, MAX_HASHES, MAX_RANGES,
};

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
