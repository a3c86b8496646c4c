//! The receiver's REPLY to each entry: what it will do with it.

use anyhow::{bail, Result};

use crate::protocol::tlv::{as_byte, as_message, as_u64, Decoded, Fields};
use crate::protocol::{clip, decode_ranges, encode_ranges, PeerText, RefuseCode};

/// What the receiver will do with an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send the file; `held` lists what is already here (with `hashes`,
    /// FILE HASHES frames of those blocks follow).
    Send {
        held: Vec<(u64, u64)>,
        hashes: bool,
    },
    /// Up to date: the same size and mtime are here already.
    Skip,
    Refuse {
        code: RefuseCode,
        reason: PeerText,
    },
    /// A directory made, or a link to make at the end: no data needed.
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub id: u64,
    pub action: Action,
}

impl Reply {
    const ID: u8 = 1;
    const ACTION: u8 = 2;
    const CODE: u8 = 3;
    const REASON: u8 = 4;
    const HELD: u8 = 5;
    const HASHES: u8 = 6;

    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::default();
        f.put_u64(Self::ID, self.id);
        match &self.action {
            Action::Send { held, hashes } => {
                f.put(Self::ACTION, &[0]);
                f.put(Self::HELD, &encode_ranges(held));
                if *hashes {
                    f.put(Self::HASHES, &[1]);
                }
            }
            Action::Skip => f.put(Self::ACTION, &[1]),
            Action::Refuse { code, reason } => {
                f.put(Self::ACTION, &[2]);
                f.put(Self::CODE, &[*code as u8]);
                f.put(Self::REASON, &clip(reason));
            }
            Action::Done => f.put(Self::ACTION, &[3]),
        }
        f.0
    }

    pub fn decode(body: &[u8]) -> Result<Self> {
        Decoded::read(body, |f| {
            // every field is checked, whatever the action makes of it
            let id = f.need(Self::ID, as_u64, "reply without an id")?;
            let action = f.get(Self::ACTION, as_byte)?;
            let code = f.get(Self::CODE, as_byte)?;
            let reason = f.get(Self::REASON, as_message)?;
            let held = f.get(Self::HELD, decode_ranges)?.unwrap_or_default();
            let hashes = f.flag(Self::HASHES)?;
            let action = match action {
                Some(0) => Action::Send { held, hashes },
                Some(1) => Action::Skip,
                Some(2) => Action::Refuse {
                    code: code.map_or(RefuseCode::Other, RefuseCode::from_u8),
                    reason: reason.unwrap_or_else(|| "refused".into()),
                },
                Some(3) => Action::Done,
                other => bail!("reply with unknown action {other:?}"),
            };
            Ok(Reply { id, action })
        })
    }
}
