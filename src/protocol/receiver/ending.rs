//! How a receiver's session ends: the RESULT it queues (a conclusion, a
//! failure here, the sender's stop), what is made at the end, and what an
//! early end kept.

use super::{Session, ShowBytes, Shown};
use crate::protocol::ledger::{Fate, Verdict};
use crate::protocol::peer_text::{escape, PeerText};
use crate::protocol::tree::{lossy, Entry, EntryKind};
use crate::protocol::{Outcome, Status, ToSender};

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

/// What a RESULT's `held` counts: a tree's entries in place, or, when a
/// file alone stops, the bytes of its part (what the sender resumes from).
enum Held {
    Entries(u64),
    Bytes(u64),
}

impl Session {
    /// The session's end, once everything is in place: the entries the
    /// sender could not read counted, the RESULT (the fates as the sender
    /// heard them) queued, and how it ends for this side's user.
    pub fn conclude(&mut self) -> Conclusion {
        if self.unread > 0 {
            // not landed either, though never offered: both sides say 5
            let why = format!("{} entries the sender could not read", self.unread);
            let fate = Fate::Failed(why.into());
            // the ledgers only: a file alone's fate stays its own
            self.told.record("(sender)", &fate);
            self.ledger.record("(sender)", &fate);
        }
        let (status, message) = match self.told.verdict() {
            Verdict::Complete => (Status::Ok, String::new()),
            Verdict::Partial(line) | Verdict::Integrity(line) => (Status::Failed, line),
        };
        self.result(status, &message, Held::Entries(self.ledger.accounted()));
        Conclusion::of(self.ledger.verdict(), self.single.as_ref())
    }

    /// This side failed (a disk, a bad frame): the sender hears why.
    pub fn fail(&mut self, message: &str) {
        self.result(
            Status::Failed,
            message,
            Held::Entries(self.ledger.accounted()),
        );
    }

    /// The sender stopped: the RESULT says what is held, the bytes of a
    /// file alone's part (once kept, see [`Session::part_kept`]), or a
    /// tree's entries in place.
    pub fn stopped(&mut self) {
        let held = match self.single {
            Some(_) => Held::Bytes(self.part_bytes()),
            None => Held::Entries(self.ledger.accounted()),
        };
        self.result(Status::Stopped, "stopped", held);
    }

    /// What the kept part under way holds.
    fn part_bytes(&self) -> u64 {
        match (&self.cur, &self.part_at) {
            (Some(cur), Some(_)) => cur.arrival.have().total(),
            _ => 0,
        }
    }

    /// The session's RESULT (MAC'd with a key).
    fn result(&mut self, status: Status, message: &str, held: Held) {
        let (Held::Entries(held) | Held::Bytes(held)) = held;
        let outcome = Outcome {
            status,
            sha256: None,
            held,
            message: message.into(),
            mac: self.key.as_ref().map(|k| k.result_mac(status as u8, held)),
        };
        ToSender::Result(outcome).append_to(&mut self.out);
    }
}

/// What is made at the end, after all data: a link, or a directory this
/// session made (or an earlier one left unfinished) given its mode and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Later {
    Link {
        path: Vec<u8>,
        target: Vec<u8>,
    },
    Dir {
        path: Vec<u8>,
        mode: u32,
        mtime_ns: u64,
    },
}

impl Session {
    /// An entry answered now and made at the end (see [`Session::to_make`]).
    pub fn later(&mut self, later: Later) {
        self.later.push(later);
    }

    /// A directory entry, its directory made or found (`existed`): one that
    /// was there keeps its mode and times, not the sender's to set, and has
    /// landed; one made now (or left unfinished) gets `mode` and the
    /// entry's time at the end.
    pub fn dir_made(&mut self, entry: Entry, mode: u32, existed: bool) {
        match existed {
            true => self.settle(
                &lossy(&entry.path),
                Shown::Kind(EntryKind::Dir),
                Fate::Landed,
            ),
            false => self.later(Later::Dir {
                path: entry.path,
                mode,
                mtime_ns: entry.mtime_ns,
            }),
        }
    }

    /// What to make now that all data is in: the links, then the
    /// directories deepest first, so a read-only parent is closed after its
    /// children. Each is then [`Session::made`].
    pub fn to_make(&mut self) -> Vec<Later> {
        let (mut links, dirs): (Vec<_>, Vec<_>) = std::mem::take(&mut self.later)
            .into_iter()
            .partition(|l| matches!(l, Later::Link { .. }));
        links.extend(dirs.into_iter().rev());
        links
    }

    /// A directory (its mode and time set) or a link made at the end:
    /// landed, or why not (`failed`: the error).
    pub fn made(&mut self, later: &Later, failed: Option<String>) {
        let (path, kind) = match later {
            Later::Link { path, .. } => (path, EntryKind::Link),
            Later::Dir { path, .. } => (path, EntryKind::Dir),
        };
        let fate = match (failed, kind) {
            (None, _) => Fate::Landed,
            (Some(e), EntryKind::Link) => Fate::Failed(format!("cannot make the link: {e}").into()),
            (Some(e), _) => Fate::Failed(format!("cannot set its mode and time: {e}").into()),
        };
        self.settle(&lossy(path), Shown::Kind(kind), fate);
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
