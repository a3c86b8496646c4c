//! What passes between the sender's machine and its driver: the events it
//! returns, the rules a receiver can break, and what to send of a file.

use super::Broken;
use crate::protocol::ledger::Fate;
use crate::protocol::tree::{lossy, Entry, EntryKind};
use crate::protocol::BlockHash;

/// A frame from the receiver that breaks the session's rules: the session
/// ends with this line (a forged MAC with the integrity exit code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A frame the phase does not take ("GO after GO").
    OutOfOrder { peer: String, why: String },
    /// An answer for an id that was never offered.
    NeverOffered { peer: String, id: u64 },
    /// FILE HASHES for an entry whose data is not wanted.
    NotBeingSent { id: u64 },
    /// One entry's rule, broken.
    Entry { id: u64, broken: Broken },
    /// A RESULT without the key's MAC.
    ForgedResult { peer: String },
    /// A FILE RESULT without the key's MAC.
    ForgedFileResult { peer: String, path: String },
}

impl Violation {
    /// A MAC that does not check: altered in transit, not a confused peer.
    pub fn is_forgery(&self) -> bool {
        matches!(
            self,
            Violation::ForgedResult { .. } | Violation::ForgedFileResult { .. }
        )
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::OutOfOrder { peer, why } => write!(f, "{peer}: unexpected {why}"),
            Violation::NeverOffered { peer, id } => {
                write!(
                    f,
                    "{peer}: an answer for entry {id}, which was never offered"
                )
            }
            Violation::NotBeingSent { id } => {
                write!(f, "hashes for entry {id}, which is not being sent")
            }
            Violation::Entry {
                id,
                broken: Broken::SecondReply,
            } => write!(f, "{} for entry {id}", Broken::SecondReply),
            Violation::Entry { id, broken } => write!(f, "{broken} (entry {id})"),
            Violation::ForgedResult { peer } => write!(
                f,
                "{peer}: the receiver's answer does not carry the key's MAC (altered in transit?)"
            ),
            Violation::ForgedFileResult { peer, path } => {
                write!(
                    f,
                    "{peer}: the result for {path} does not carry the key's MAC"
                )
            }
        }
    }
}

impl std::error::Error for Violation {}

/// What the driver must do about a frame the machine took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Hash these held blocks of entry `id` and say which matched
    /// ([`Session::matched`]); `last`: the entry's last FILE HASHES.
    CheckBlocks {
        id: u64,
        blocks: Vec<BlockHash>,
        last: bool,
    },
    /// An entry's fate is known (recorded in the ledger): show it.
    Settled(Settled),
    /// The receiver has checked the space: the data may go.
    Go,
    /// The receiver's RESULT came, MAC-checked: [`Session::verdict`].
    Concluded,
    /// The receiver refused the whole session, or gave up before GO (its
    /// RESULT, MAC-checked), saying why.
    Ended(Ending),
}

/// How a session ends, as the user is told: the kind of exit and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Every entry is where the receiver says it is.
    Complete,
    /// Some entries did not land.
    Partial(String),
    /// Bytes or a MAC that do not check.
    Integrity(String),
    /// The receiver refused the session, or the one file of a session alone.
    Refused(String),
    /// The receiver, or the source of a file alone, failed.
    Failed(String),
}

/// One entry's fate, for the driver to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// The offered entry's id; none for a source the walk could not read.
    pub id: Option<u64>,
    /// Its path, as the lines about it say it, and its kind.
    pub path: String,
    pub kind: EntryKind,
    pub fate: Fate,
    /// The file's bytes (its size, or what went out of one given up).
    pub bytes: u64,
    /// The receiver's digest of a file that landed.
    pub sha256: Option<[u8; 32]>,
}

impl Settled {
    /// Its kind, as progress and --json name it.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Link => "link",
        }
    }

    pub(super) fn new(
        id: Option<u64>,
        (path, kind): (String, EntryKind),
        fate: Fate,
        bytes: u64,
        sha256: Option<[u8; 32]>,
    ) -> Settled {
        Settled {
            id,
            path,
            kind,
            fate,
            bytes,
            sha256,
        }
    }
}

/// What to send of a wanted file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToSend {
    pub id: u64,
    /// The file, as it was offered.
    pub entry: Entry,
    /// What of them the receiver does not hold good already.
    pub ranges: Vec<(u64, u64)>,
    /// Once they land the receiver holds the whole file, so the digest in
    /// FILE END is the whole file's.
    pub whole: bool,
    /// Some held bytes matched and are not sent again.
    pub resumed: bool,
}

impl ToSend {
    /// The bytes offered: the range, or the whole file.
    pub fn offered(&self) -> (u64, u64) {
        self.entry.offered()
    }

    /// Its path, as the lines about it say it.
    pub fn name(&self) -> String {
        lossy(&self.entry.path)
    }

    /// The bytes to send.
    pub fn count(&self) -> u64 {
        self.ranges.iter().map(|(a, b)| b - a).sum()
    }

    /// Where sending resumes, past what the receiver holds good (0: from
    /// the start of what is offered).
    pub fn resumed_from(&self) -> u64 {
        let (start, end) = self.offered();
        match self.ranges.first() {
            Some(&(first, _)) if first > start => first,
            None if end > start => end,
            _ => 0,
        }
    }
}
