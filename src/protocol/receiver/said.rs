//! What the receiver's machine and its driver say to each other: the
//! events it hands out, the outcomes it is told, and the rules broken.

use std::fmt;

use super::{BadData, BadEnd, Sha, BUSY_TOLD, UNWRITABLE_TOLD};
use crate::protocol::ledger::Fate;
use crate::protocol::peer_text::escape;
use crate::protocol::tree::{Entry, EntryKind};
use crate::protocol::RefuseCode;

/// How an entry is shown: by its kind, or, refused in the manifest, as
/// an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Entry,
    Kind(EntryKind),
}

impl Shown {
    /// How progress names it.
    pub fn name(self) -> &'static str {
        match self {
            Shown::Entry => "entry",
            Shown::Kind(EntryKind::File) => "file",
            Shown::Kind(EntryKind::Dir) => "dir",
            Shown::Kind(EntryKind::Link) => "link",
        }
    }
}

/// An entry settled: for the driver to show (the ledgers have it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub path: String,
    pub kind: Shown,
    pub bytes: u64,
    pub sha256: Option<String>,
    pub fate: Fate,
}

/// What the driver does next.
#[derive(Debug)]
pub enum Event<T> {
    /// A keepalive: nothing.
    Nothing,
    /// An entry of the manifest, in order: the driver looks at the disk
    /// and answers with [`Session::decided`].
    Decide(Entry),
    /// MANIFEST came, its count right: the driver checks the space for
    /// what it wants, then [`Session::go`] or [`Session::refuse`].
    Manifest { unread: u64 },
    /// A BEGIN: the wanted file whose data comes (the ones asked for before
    /// it, which the sender skipped, are settled).
    Open(T),
    /// A DATA frame that fits: its bytes go to the file; the driver says
    /// what it wrote with [`Session::arrived`].
    Write(Fits),
    /// A FILE END: what the machine decided, and what the driver does next.
    Ended(Ended),
    /// END: the files asked for and never sent are settled.
    Finished,
    /// STOP: the sender gave up (before GO, or in the data).
    Stopped(Stop),
}

/// When the sender stopped, in the words its user reads (exit 130).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// In the manifest, or waiting for GO: no data came.
    BeforeData,
    /// In the data: a file alone is named.
    Sending(Option<String>),
}

impl Stop {
    pub fn line(&self, peer: &str) -> String {
        match self {
            Stop::BeforeData => format!("{peer} stopped before sending any data"),
            Stop::Sending(None) => format!("{peer} stopped sending"),
            Stop::Sending(Some(name)) => {
                format!("{peer} stopped sending {}", escape(name.as_bytes()))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fits {
    pub offset: u64,
    pub len: u64,
    /// Where the frame's data ends.
    pub end: u64,
    /// It starts where the last one ended (a running hash stays valid).
    pub in_order: bool,
}

/// A FILE END: the file's size and range (a stream's, known now), and
/// what the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub size: u64,
    pub range: (u64, u64),
    pub then: Then,
}

impl Ended {
    pub(super) fn new(size: u64, range: (u64, u64), then: Then) -> Ended {
        Ended { size, range, then }
    }
}

/// What the driver does with a file that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    /// The sender could not send it all (settled): nothing of its part is
    /// kept, not even the padding the sender wrote.
    Discard,
    /// Bytes offered are missing, or it could not be written here: its
    /// FILE RESULT is queued, and what its part holds stays.
    Told,
    /// All that was offered is here: the driver computes its digest (from
    /// what came, when `as_it_came`, else from the part) and gives it to
    /// [`super::Session::digest`].
    Digest { as_it_came: bool },
    /// All that was offered is here, and digests are not checked: the
    /// part holds this; the driver puts it in place and says
    /// [`super::Session::landed`].
    Keep(crate::protocol::Ranges),
}

/// How a file ends, as its FILE RESULT says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FileOutcome {
    /// Verified (or not verifying): `held` bytes are in place; all of the
    /// file lands it, fewer leave a part.
    Verified { sha256: Option<Sha>, held: u64 },
    /// Its digest differs (or never came): not kept.
    Mismatch,
    /// Bytes offered are missing.
    Incomplete,
    /// It could not be written here (its data was read and dropped).
    Unwritable(Unwritable),
}

/// Why a wanted file cannot be written here: only it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unwritable {
    /// Another transfer holds its part.
    Busy,
    /// Its part could not be opened (a link stands where it goes): the error.
    Cannot(String),
}

impl Unwritable {
    /// What this side's user reads.
    pub fn why(&self) -> String {
        match self {
            Unwritable::Busy => "being received by another transfer".into(),
            Unwritable::Cannot(e) => format!("cannot write it here: {e}"),
        }
    }

    /// What a sender without the key hears instead.
    pub fn told(&self) -> &'static str {
        match self {
            Unwritable::Busy => BUSY_TOLD,
            Unwritable::Cannot(_) => UNWRITABLE_TOLD,
        }
    }
}

/// A frame that breaks the rules: the session ends. Its text is what the
/// user reads (after the peer's name when [`Violation::names_peer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A message the phase does not take ("ENTRY during the data").
    Unexpected(String),
    EntryOutOfOrder {
        id: u64,
        due: u64,
    },
    MoreThanAnnounced(u64),
    ManifestCount {
        said: u64,
        came: u64,
    },
    DataBeforeGo,
    BeganInside,
    NotAskedFor(u64),
    OtherPath(u64),
    DataOutside,
    /// DATA that does not fit the file (its path, why).
    Data(Vec<u8>, BadData),
    EndedNeverBegan,
    /// A FILE END that does not fit the file.
    FileEnd(BadEnd),
    EndInFile,
    /// The session was refused (the ANSWER is queued): why.
    Refused(RefuseCode, String),
}

impl Violation {
    /// Whether the text reads after the peer's name.
    pub fn names_peer(&self) -> bool {
        use Violation as V;
        !matches!(
            self,
            V::EntryOutOfOrder { .. }
                | V::MoreThanAnnounced(_)
                | V::BeganInside
                | V::NotAskedFor(_)
                | V::OtherPath(_)
                | V::Refused(..)
        )
    }
}

impl Violation {
    /// The line the user reads: after the peer's name when it speaks of it.
    pub fn line(&self, peer: &str) -> String {
        match self.names_peer() {
            true => format!("{peer}: {self}"),
            false => self.to_string(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Violation as V;
        match self {
            V::Unexpected(why) => write!(f, "unexpected {why}"),
            V::EntryOutOfOrder { id, due } => write!(f, "entry {id} arrived where {due} was due"),
            V::MoreThanAnnounced(n) => write!(f, "more entries than the {n} announced"),
            V::ManifestCount { said, came } => {
                write!(f, "the manifest says {said} entries, {came} came")
            }
            V::DataBeforeGo => write!(f, "data before GO"),
            V::BeganInside => write!(f, "a file began before the last one ended"),
            V::NotAskedFor(id) => write!(f, "data for entry {id}, which was not asked for"),
            V::OtherPath(id) => write!(f, "entry {id} began under another path"),
            V::DataOutside => write!(f, "data outside a file"),
            V::Data(path, why) => write!(f, "{}: {why}", escape(path)),
            V::EndedNeverBegan => write!(f, "a file ended that never began"),
            V::FileEnd(why) => write!(f, "{why}"),
            V::Refused(_, why) => write!(f, "{why}"),
            V::EndInFile => write!(f, "the session ended in the middle of a file"),
        }
    }
}

impl std::error::Error for Violation {}
