//! What the receiver's machine and its driver say to each other: the
//! events it hands out, the outcomes it is told, and the rules broken.

use std::fmt;

use super::{BadData, BadEnd, Ending, Sha, ShowBytes};
use crate::protocol::ledger::{Fate, Verdict};
use crate::protocol::peer_text::{escape, PeerText};
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
    /// A FILE END: what it decides. Unless the sender failed (then it is
    /// settled), the driver verifies and answers [`Session::file_result`].
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub ending: Ending,
    /// The sender's digest (keyed with a key).
    pub sha256: Option<Sha>,
    /// The file's size and range (a stream's, known now).
    pub size: u64,
    pub range: (u64, u64),
    /// A digest computed as the data came is the one to check.
    pub hashed_as_it_came: bool,
}

/// How a file the driver verified (or could not) ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
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

/// How the session ends for this side's user: a tree's verdict, or, for
/// a file alone that did not land, that file's fate in the words of a
/// single transfer. [`Conclusion::line`] is what the user reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conclusion {
    /// Every entry landed or was up to date.
    Complete,
    /// Some entries did not land (exit 5); the line names them.
    Partial(String),
    /// A digest differed (exit 3), which outranks the rest.
    Integrity(String),
    /// A file alone was refused (exit 4, as a single transfer's refusal).
    Refused(PeerText),
    /// A file alone failed: why.
    Failed(PeerText),
    /// A file alone landed, but the session did not (entries the sender
    /// could not read): the verdict's line.
    Unfinished(String),
}

impl Conclusion {
    /// The session's verdict, or, for a file alone (`alone`: its fate),
    /// what that file's fate makes of it.
    pub(super) fn of(verdict: Verdict, alone: Option<&Fate>) -> Conclusion {
        match (verdict, alone) {
            (Verdict::Complete, _) => Conclusion::Complete,
            (Verdict::Integrity(line), _) => Conclusion::Integrity(line),
            (Verdict::Partial(_), Some(Fate::Refused(why))) => Conclusion::Refused(why.clone()),
            (Verdict::Partial(_), Some(Fate::Failed(why))) => Conclusion::Failed(why.clone()),
            (Verdict::Partial(line), Some(_)) => Conclusion::Unfinished(line),
            (Verdict::Partial(line), None) => Conclusion::Partial(line),
        }
    }

    /// The line the user reads, naming the sender where a single
    /// transfer's words do.
    pub fn line(&self, peer: &str) -> String {
        match self {
            Conclusion::Complete => String::new(),
            Conclusion::Refused(why) => format!("refused the file from {peer}: {why}"),
            Conclusion::Failed(why) => format!("{peer}: {why}"),
            Conclusion::Partial(line)
            | Conclusion::Integrity(line)
            | Conclusion::Unfinished(line) => line.clone(),
        }
    }
}

impl super::Session {
    /// A directory (its mode and time set) or a link made at the end:
    /// landed, or why not (`failed`: the error).
    pub fn made(&mut self, path: &str, kind: EntryKind, failed: Option<String>) {
        let fate = match (failed, kind) {
            (None, _) => Fate::Landed,
            (Some(e), EntryKind::Link) => Fate::Failed(format!("cannot make the link: {e}").into()),
            (Some(e), _) => Fate::Failed(format!("cannot set its mode and time: {e}").into()),
        };
        self.settle(path, Shown::Kind(kind), fate);
    }

    /// The part of the file under way was kept, with its record, at `at`
    /// (as the user knows the path): an early end says so.
    pub fn part_kept(&mut self, at: String) {
        self.part_at = Some(at);
    }

    /// What a session that ended early kept, as its user reads it: a file
    /// alone's part (where, when one was kept) and the bytes it holds; or a
    /// tree's `files` in place and the part under way. Or, when keeping it
    /// failed (`not_kept`: why), that.
    pub fn kept_line(&self, files: u64, not_kept: Option<String>, show: ShowBytes) -> String {
        if let Some(why) = not_kept {
            return format!("could not keep everything: {why}");
        }
        let in_place = format!("kept what arrived: {files} files in place");
        let Some((cur, at)) = self.cur.as_ref().zip(self.part_at.as_ref()) else {
            return in_place;
        };
        let held = cur.arrival.have().total();
        match self.alone() {
            true => format!("kept {at}.zcpart ({held} bytes held)"),
            false => {
                let name = escape(&cur.path);
                format!("{in_place}; {} of {name} held in {name}.zcpart", show(held))
            }
        }
    }
}

/// Why an entry is refused: its code, what this side's user reads, and,
/// when that tells of what is in OUT, the less a sender without the key
/// hears instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: RefuseCode,
    pub why: String,
    pub told: Option<String>,
}

/// What a sender without the key hears instead of what exists in OUT (its
/// size, its kind, a link's target): that something is there is all it
/// needs to act on. See "What a receiver without a key tells" in SECURITY.md.
pub const EXISTS_TOLD: &str = "exists (the receiver replaces a file only with --force)";
/// ... instead of why a path in OUT cannot be looked at or written.
pub const UNWRITABLE_TOLD: &str = "cannot be written on the receiver";
/// ... instead of where the receiver writes (its path names a user).
pub const BUSY_TOLD: &str = "is being received by another transfer";

impl Refusal {
    /// Something stands in OUT where the entry goes.
    pub fn exists(why: impl Into<String>) -> Refusal {
        Refusal::of_out(RefuseCode::Exists, why, EXISTS_TOLD)
    }

    /// A path in OUT that cannot be looked at or written.
    pub fn unwritable(code: RefuseCode, why: impl Into<String>) -> Refusal {
        Refusal::of_out(code, why, UNWRITABLE_TOLD)
    }

    /// A directory that cannot be made (`exists`: something stands there).
    pub fn no_dir(e: impl fmt::Display, exists: bool) -> Refusal {
        let told = if exists { EXISTS_TOLD } else { UNWRITABLE_TOLD };
        let why = format!("cannot make the directory: {e}");
        Refusal::of_out(RefuseCode::Exists, why, told)
    }

    /// A file alone's part (`at`, as the user knows the path) that another
    /// transfer holds.
    pub fn busy_part(at: &str) -> Refusal {
        let why = format!("{at} is being received by another transfer");
        Refusal::of_out(RefuseCode::Busy, why, BUSY_TOLD)
    }

    /// A file alone's part that cannot be opened: the error `e`, which a
    /// sender without the key hears too when it is this receiver's state
    /// (`ours`: read-only, full, no permission), not what is at the name
    /// (a link, a directory).
    pub fn unopened_part(at: &str, e: impl fmt::Display, ours: bool) -> Refusal {
        let told = match ours {
            true => format!("{UNWRITABLE_TOLD}: {e}"),
            false => UNWRITABLE_TOLD.to_string(),
        };
        Refusal::of_out(RefuseCode::Other, format!("{at}.zcpart: {e}"), told)
    }

    /// A refusal that tells of what is in OUT.
    pub fn of_out(code: RefuseCode, why: impl Into<String>, told: impl Into<String>) -> Refusal {
        Refusal {
            code,
            why: why.into(),
            told: Some(told.into()),
        }
    }

    /// The reason the sender hears: all of it with the key (an
    /// authenticated peer may know what it writes over), less without.
    pub fn to_peer(&self, keyed: bool) -> &str {
        match (keyed, &self.told) {
            (false, Some(told)) => told,
            _ => &self.why,
        }
    }
}

impl From<(RefuseCode, String)> for Refusal {
    fn from((code, why): (RefuseCode, String)) -> Refusal {
        Refusal {
            code,
            why,
            told: None,
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
