//! The manifest phase of the receiver's machine: each ENTRY in order and
//! within the limits, this side's answer to it, and what the answers add
//! up to (the bytes the files need on disk, the memory the entries keep)
//! before GO or the refusal of the whole session.

use super::{Event, Phase, Refusal, Session, Sha, Shown, Violation};
use crate::protocol::ledger::Fate;
use crate::protocol::tree::{lossy, Action, Entry, EntryKind, Reply, TreeOffer};
use crate::protocol::{whole, Answer, BlockHash, Ranges, RefuseCode, ToSender, BLOCK, MAX_RANGES};

/// Block hashes sent in one FILE HASHES frame (the sender checks each frame
/// while the next blocks are hashed here).
const HASHES_PER_FRAME: usize = 16;

/// The blocks of a held part whose hashes the sender checks: each held
/// range cut in [`BLOCK`]s (the last of each range shorter), in order.
pub fn blocks(held: &Ranges) -> impl Iterator<Item = (u64, u64)> + '_ {
    held.pairs().iter().flat_map(|&(a, b)| {
        (a..b)
            .step_by(BLOCK as usize)
            .map(move |s| (s, (s + BLOCK).min(b)))
    })
}

/// How the driver writes a count of bytes for a person ("1.5 MiB").
pub type ShowBytes = fn(u64) -> String;

/// The session-wide checks on an OFFER, before anything is written: how
/// many entries, how many bytes (the OFFER's word; each file is counted
/// again as its entry comes, see [`Session::within_max_size`]).
pub fn admit_offer(
    offer: &TreeOffer,
    max_files: u64,
    max_size: Option<u64>,
    show: ShowBytes,
) -> Result<(), (RefuseCode, String)> {
    if offer.entries > max_files {
        let why = format!(
            "the tree has {} entries, over --max-files {max_files}",
            offer.entries
        );
        return Err((RefuseCode::TooLarge, why));
    }
    match max_size.filter(|max| offer.bytes > *max) {
        Some(max) => {
            let what = if offer.single { "the file" } else { "the tree" };
            let (size, max) = (show(offer.bytes), show(max));
            let why = format!("{what} is {size}, over --max-size {max}");
            Err((RefuseCode::TooLarge, why))
        }
        None => Ok(()),
    }
}

/// The bytes a file entry can make a part of: its declared size, or the
/// end of the range it offers when that is further (a stream's cap; a
/// range past the size is the sender's lie, bounded all the same).
pub(super) fn extent(entry: &Entry) -> u64 {
    entry.size.max(entry.offered().1)
}

/// What the end of the session keeps of a directory (its path and name
/// shown, to set its mode and time; its path again, as made here) or a
/// link (its path, its name shown, its target), in bytes: an estimate,
/// charged even when the entry is then refused.
fn kept_for(entry: &Entry) -> u64 {
    const SLOT: u64 = 160;
    let path = entry.path.len() as u64;
    match entry.kind {
        EntryKind::Dir => SLOT + 3 * path,
        EntryKind::Link => SLOT + 2 * path + entry.target.len() as u64,
        EntryKind::File => 0,
    }
}

/// What this side asks of a wanted file (see [`Session::ask`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// The bytes offered: the range asked for, or the whole file.
    pub range: (u64, u64),
    /// What its part holds that the REPLY offers (not sent again).
    pub held: Ranges,
    /// The file is whole once the range lands (see [`crate::protocol::whole`]).
    pub whole: bool,
    /// Resuming: the held blocks' hashes follow, for the sender to check.
    pub hashes: bool,
}

impl Ask {
    /// The REPLY's action.
    pub fn action(&self) -> Action {
        let (held, hashes) = (self.held.pairs().to_vec(), self.hashes);
        Action::Send { held, hashes }
    }
}

/// What the manifest's answers add up to.
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// The range the entry being decided offers.
    deciding: (u64, u64),
    /// Bytes the file entries come to, against `--max-size`.
    offered: u64,
    /// Bytes the wanted files still need on disk.
    needed: u64,
    /// Bytes the driver keeps for the directories and links (an estimate).
    kept: u64,
    /// A session of one file: the file's name, once its entry came.
    name: Option<String>,
    /// Block hashes of a held part not yet in a frame.
    hashed: Vec<BlockHash>,
    /// Where the held part whose blocks are hashed ends (its last block's end).
    held_end: u64,
}

impl Session {
    pub(super) fn entry<T>(&mut self, entry: Entry) -> Result<Event<T>, Violation> {
        let offer = &self.setup.offer;
        if entry.id != self.next_id {
            let (id, due) = (entry.id, self.next_id);
            return Err(Violation::EntryOutOfOrder { id, due });
        }
        if !offer.streamed && self.next_id >= offer.entries {
            return Err(Violation::MoreThanAnnounced(offer.entries));
        }
        if offer.streamed && self.next_id >= self.setup.max_files {
            let why = format!(
                "the tree has over {} entries (--max-files)",
                self.setup.max_files
            );
            return Err(self.refuse(RefuseCode::TooLarge, why));
        }
        self.next_id += 1;
        self.tally.deciding = entry.offered();
        self.tally.kept += kept_for(&entry);
        if offer.single {
            self.tally.name = Some(lossy(&entry.path));
        }
        Ok(Event::Decide(entry))
    }

    /// What the session takes of an entry whose path (`depth` components)
    /// is good: a file within `--max-size`, and, in a session of one file,
    /// that file at the top; only a file alone may be a stream, since a
    /// stream's size is known only at its end.
    pub fn admits(&mut self, entry: &Entry, depth: usize, show: ShowBytes) -> Result<(), Refusal> {
        let file = entry.kind == EntryKind::File;
        if file {
            self.within_max_size(entry, show)?;
        }
        let single = self.setup.offer.single;
        if single && (!file || depth != 1) {
            let why = "a session of one file carries one file".to_string();
            return Err((RefuseCode::BadName, why).into());
        }
        if file && entry.stream && !single {
            let why = "a stream in a tree (only a file alone may be a stream)".to_string();
            return Err((RefuseCode::BadOffer, why).into());
        }
        Ok(())
    }

    /// Counts a file against `--max-size`, whatever the OFFER announced:
    /// its [`extent`] (a range of 10 bytes at the end of a file of 15 TiB
    /// still makes a part of 15 TiB). A tree counted as it comes is refused
    /// whole when it grows past it (see [`Session::decided`]).
    fn within_max_size(&mut self, entry: &Entry, show: ShowBytes) -> Result<(), Refusal> {
        let size = extent(entry);
        let total = self.tally.offered.saturating_add(size);
        let Some(max) = self.setup.max_size.filter(|max| total > *max) else {
            self.tally.offered = total;
            return Ok(());
        };
        let why = match self.setup.offer.single {
            true => format!("the file is {}, over --max-size {}", show(size), show(max)),
            false => format!(
                "the tree's files come to {}, over --max-size {}",
                show(total),
                show(max)
            ),
        };
        Err((RefuseCode::TooLarge, why).into())
    }

    /// This side's answer to entry `id` (shown as `path`): the REPLY, and
    /// the entry settled when it is up to date or refused. A tree counted
    /// as it comes is refused whole when it grows past --max-size, as one
    /// counted first would have been.
    pub fn decided(
        &mut self,
        id: u64,
        path: &str,
        answer: Result<Action, Refusal>,
    ) -> Result<(), Violation> {
        let action = match answer {
            Ok(action) => action,
            Err(r) if r.code == RefuseCode::TooLarge && self.setup.offer.streamed => {
                return Err(self.refuse(r.code, r.why));
            }
            Err(r) => {
                let reason = r.to_peer(self.setup.keyed).to_string();
                let fate = Fate::Refused(r.why.into());
                self.settle_hiding(path, Shown::Entry, fate, &reason);
                Action::Refuse {
                    code: r.code,
                    reason: reason.into(),
                }
            }
        };
        if let Action::Send { held, hashes: true } = &action {
            self.tally.held_end = held.last().map_or(0, |r| r.1);
        }
        match &action {
            Action::Skip => self.settle(path, Shown::Kind(EntryKind::File), Fate::UpToDate),
            // a stream is written as it comes: it needs no space here
            Action::Send { held, .. } if !self.setup.ordered => {
                let (start, end) = self.tally.deciding;
                let missing = Ranges::from_pairs(held).missing(start, end);
                let missing: u64 = missing.iter().map(|(a, b)| b - a).sum();
                self.tally.needed = self.tally.needed.saturating_add(missing);
            }
            _ => {}
        }
        ToSender::Reply(Reply { id, action }).append_to(&mut self.out);
        Ok(())
    }

    /// The hash of one held block `[from, to)` of file `id` (one of
    /// [`blocks`] of what its REPLY offered), for the sender to check:
    /// queued [`HASHES_PER_FRAME`] to a FILE HASHES frame. True when a
    /// frame was queued: the driver writes it at once, so the sender checks
    /// these blocks while the next are hashed.
    pub fn block_hashed(&mut self, id: u64, (from, to): (u64, u64), sha256: Sha) -> bool {
        let len = (to - from) as u32;
        let last = to >= self.tally.held_end;
        let block = BlockHash {
            offset: from,
            len,
            sha256,
        };
        self.tally.hashed.push(block);
        if self.tally.hashed.len() < HASHES_PER_FRAME && !last {
            return false;
        }
        let blocks = std::mem::take(&mut self.tally.hashed);
        ToSender::FileHashes(id, blocks, last).append_to(&mut self.out);
        true
    }

    /// What this side asks of file `entry`, whose part held `held` before
    /// (per its record, of this very version of the file) and is `on_disk`
    /// bytes long: what both the part and the file hold of it, in as many
    /// ranges as a REPLY carries (the rest is sent again), their blocks'
    /// hashes when resuming, and whether the file is whole once the range
    /// it offers lands.
    pub fn ask(&self, entry: &Entry, mut held: Ranges, on_disk: u64) -> Ask {
        held.clip(on_disk.min(entry.size));
        let held = Ranges::from_pairs(&held.pairs()[..held.pairs().len().min(MAX_RANGES)]);
        let range = entry.offered();
        Ask {
            range,
            whole: entry.stream || whole(&held, range, entry.size),
            hashes: self.setup.offer.resume && held.total() > 0,
            held,
        }
    }

    /// Refuses the whole session (the ANSWER is queued); returns the
    /// violation that ends it.
    pub fn refuse(&mut self, code: RefuseCode, why: String) -> Violation {
        let answer = Answer::Refuse {
            code,
            reason: why.as_str().into(),
        };
        ToSender::Answer(answer).append_to(&mut self.out);
        self.phase = Phase::Ended;
        Violation::Refused(code, why)
    }

    /// The manifest takes `memory` bytes of this side, over what the
    /// receiver's `--max-memory` (`limit` in all) has left for it: the
    /// session is refused.
    pub fn over_memory(&mut self, memory: u64, limit: u64, show: ShowBytes) -> Violation {
        let (shown, n) = (show(limit), self.next_id);
        let why = match memory > limit {
            true => format!(
                "the manifest needs more than --max-memory {shown} of the receiver's memory \
                 ({n} entries so far)"
            ),
            // the other sessions hold the rest
            false => format!(
                "the manifest needs more than is left of --max-memory {shown}, the \
                 receiver's memory for the manifests of all its sessions at once \
                 ({n} entries so far)"
            ),
        };
        self.refuse(RefuseCode::TooLarge, why)
    }

    /// GO: the space is there; the data may come.
    pub fn go(&mut self) {
        debug_assert_eq!(self.phase, Phase::Deciding);
        ToSender::Go.append_to(&mut self.out);
        self.phase = Phase::Data;
    }

    /// After MANIFEST: GO when the output's `free` bytes hold what the
    /// files need, else the session refused (with `None` for `free`, the
    /// space is not known and not checked).
    pub fn go_if_room(&mut self, free: Option<u64>, show: ShowBytes) -> Result<(), Violation> {
        let needed = self.tally.needed;
        match free.filter(|free| needed > *free) {
            None => {
                self.go();
                Ok(())
            }
            Some(free) => {
                let what = match (&self.tally.name, self.setup.offer.single) {
                    (Some(name), true) => crate::protocol::peer_text::escape(name.as_bytes()),
                    _ => "the tree".into(),
                };
                let why = format!(
                    "{what} needs {} more but the output file system has {} free",
                    show(needed),
                    show(free)
                );
                Err(self.refuse(RefuseCode::NoSpace, why))
            }
        }
    }

    /// Bytes the file entries came to (each its [`extent`]).
    pub fn offered(&self) -> u64 {
        self.tally.offered
    }

    /// Bytes the directories and links of the manifest so far keep on this
    /// side until the end (an estimate, for `--max-memory`).
    pub fn kept(&self) -> u64 {
        self.tally.kept
    }

    /// A session of one file: the file's name, once its entry came.
    pub fn name(&self) -> Option<&str> {
        self.tally.name.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extent_of_a_file_is_its_size_or_the_end_of_its_range() {
        let entry = |size, range, stream| Entry {
            id: 0,
            path: b"f".to_vec(),
            kind: EntryKind::File,
            size,
            mode: 0o644,
            mtime_ns: 0,
            target: Vec::new(),
            range,
            stream,
        };
        assert_eq!(
            extent(&entry(15 << 40, Some(((15 << 40) - 10, 15 << 40)), false)),
            15 << 40
        );
        assert_eq!(extent(&entry(100, None, false)), 100);
        assert_eq!(extent(&entry(0, Some((0, 5000)), true)), 5000);
        assert_eq!(extent(&entry(10, Some((0, 99)), false)), 99);
    }
}
