//! The sending side of a session as a state machine that does no I/O
//! (quinn-proto's shape): the driver (`send::tree`) offers the entries it
//! walks, hands over every frame the receiver sends, and writes out the
//! frames this machine queues; the machine decides which frame is legal
//! when, what each entry's fate is, and the session's verdict.
//!
//! What one entry's frames may say is [`entry`]'s business; the order of the
//! session's frames, the ledger, the MAC checks and the outbox are this
//! module's.

mod ending;
pub mod entry;
mod events;
mod offering;
mod phase;
#[cfg(test)]
mod tests;
mod view;

use super::peer_text::escape;
use super::tree::lossy;
use super::Keyed;
pub use entry::{Broken, Sending, Wanted};
pub use events::{Ending, Event, Settled, ToSend, Violation};
pub use offering::changed;
pub use phase::Phase;

use crate::protocol::ledger::{Fate, Ledger};
use crate::protocol::tree::{Begin, Entry, FileEnd, TreeEnd};
use crate::protocol::{Answer, BlockHash, Outcome, PeerText, ToReceiver, ToSender};

/// One offered entry: as it went on the wire (a link's target dropped),
/// and where it stands.
#[derive(Debug)]
struct Offered {
    entry: Entry,
    state: Sending,
    /// Whether the receiver holds the whole file once its range lands,
    /// decided at BEGIN.
    whole: bool,
}

/// A session of one file or stream named alone on the command line: what
/// its one entry adds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alone {
    /// Its name, as its error line says it.
    pub name: String,
    /// The bytes asked for (`--offset`/`--count`), when not the whole file.
    pub range: Option<(u64, u64)>,
    /// `--offset` was given: the range goes as it is, whatever is held.
    pub forced: bool,
}

/// Bad held blocks warned about one by one; the rest are counted.
const MAX_BAD_WARNINGS: u64 = 8;

/// A session on the sending side: see the module's comment.
pub struct Session {
    phase: Phase,
    entries: Vec<Offered>,
    ledger: Ledger,
    walk_failed: u64,
    /// A session of one file: it, and its fate, which decides the exit code.
    one: Option<(Alone, Fate)>,
    /// This side checks held blocks (`--resume`); else what is held is sent again.
    resuming: bool,
    key: Option<Box<dyn Keyed + Send>>,
    /// The receiver's name, as the lines about it say it.
    peer: String,
    result: Option<Outcome>,
    files_landed: u64,
    unchecked: bool,
    /// Held blocks that differed from the source.
    bad_blocks: u64,
    /// END went out.
    ended: bool,
    outbox: Vec<u8>,
}

impl Session {
    /// `alone`: a session of one file (its fate decides the exit code);
    /// `resuming`: this side checks the receiver's held blocks.
    pub fn new(
        alone: Option<Alone>,
        resuming: bool,
        peer: impl Into<String>,
        key: Option<Box<dyn Keyed + Send>>,
    ) -> Session {
        Session {
            phase: Phase::default(),
            entries: Vec::new(),
            ledger: Ledger::default(),
            walk_failed: 0,
            one: alone.map(|alone| (alone, Fate::Landed)),
            resuming,
            key,
            peer: peer.into(),
            result: None,
            files_landed: 0,
            unchecked: false,
            bad_blocks: 0,
            ended: false,
            outbox: Vec::new(),
        }
    }

    // ---- what the driver does: each queues its frames ----

    /// What to send of entry `id`, if the receiver wants its data.
    pub fn to_send(&self, id: u64) -> Option<ToSend> {
        let offered = self.entries.get(id as usize)?;
        let Sending::Wanted(Wanted { good, claimed, .. }) = &offered.state else {
            return None;
        };
        let entry = &offered.entry;
        let range = entry.offered();
        Some(ToSend {
            id,
            ranges: good.missing(range.0, range.1),
            whole: crate::protocol::whole(claimed, range, entry.size),
            resumed: good.total() > 0,
            entry: entry.clone(),
        })
    }

    /// A wanted file's data begins: BEGIN.
    pub fn begin(&mut self, id: u64) {
        let whole = self.to_send(id).is_some_and(|s| s.whole);
        let offered = &mut self.entries[id as usize];
        offered.whole = whole;
        offered.state.begun();
        ToReceiver::Begin(Begin {
            id,
            path: offered.entry.path.clone(),
        })
        .append_to(&mut self.outbox);
    }

    /// A file's data is out, `sent` bytes of it: FILE END with its digest
    /// (keyed, with a key). A stream's size is known only now.
    pub fn file_end(&mut self, id: u64, sent: u64, digest: Option<[u8; 32]>) {
        let offered = &mut self.entries[id as usize];
        if offered.entry.stream {
            (offered.entry.size, offered.whole) = (sent, true);
        }
        offered.state.sent();
        let key = self.key.as_deref();
        let sha256 = digest.map(|d| key.map_or(d, |k| k.keyed_digest(&d)));
        ToReceiver::FileEnd(FileEnd {
            id,
            sent,
            sha256,
            failed: None,
        })
        .append_to(&mut self.outbox);
    }

    /// Its source could not be sent whole (`sent` bytes went): settled
    /// here; after its BEGIN, FILE END tells the receiver, which keeps none
    /// of it.
    pub fn give_up(&mut self, id: u64, sent: u64, why: &str) -> Settled {
        let state = &mut self.entries[id as usize].state;
        let begun = *state == Sending::Begun;
        state.given_up();
        if begun {
            ToReceiver::FileEnd(FileEnd {
                id,
                sent,
                sha256: None,
                failed: Some(why.into()),
            })
            .append_to(&mut self.outbox);
        }
        self.settle(id, Fate::Failed(why.into()), sent, None)
    }

    /// Held blocks of entry `id` that matched the source: not sent again.
    pub fn matched(&mut self, id: u64, blocks: &[(u64, u64)]) {
        if let Some(offered) = self.entries.get_mut(id as usize) {
            for &(from, to) in blocks {
                offered.state.matched(from, to);
            }
        }
    }

    /// The source's digest of one held block of entry `id`: a block that
    /// matches is not sent again; one that differs is counted, and warned
    /// about (the first few of a session: a whole file of bad blocks is one
    /// story, not thousands of lines).
    pub fn checked(&mut self, id: u64, block: &BlockHash, ours: &[u8; 32]) -> Option<String> {
        let (from, to) = (block.offset, block.offset + u64::from(block.len));
        if *ours == block.sha256 {
            self.matched(id, &[(from, to)]);
            return None;
        }
        self.bad_blocks += 1;
        let path = escape(&self.entries.get(id as usize)?.entry.path);
        (self.bad_blocks <= MAX_BAD_WARNINGS).then(|| {
            format!(
                "{path}: the receiver's bytes {from}..{to} differ from the source; re-sending them"
            )
        })
    }

    /// Once entry `id`'s last FILE HASHES are checked: the bad blocks not
    /// warned about one by one, counted.
    pub fn unwarned(&self, id: u64) -> Option<String> {
        let more = self
            .bad_blocks
            .checked_sub(MAX_BAD_WARNINGS)
            .filter(|m| *m > 0)?;
        let path = escape(&self.entries.get(id as usize)?.entry.path);
        Some(format!("{path}: {more} more blocks differ and are re-sent"))
    }

    /// Every wanted file went: END, with the bytes sent.
    pub fn end(&mut self, sent: u64) {
        let end = TreeEnd {
            sent,
            failed: self.walk_failed,
        };
        ToReceiver::End(end).append_to(&mut self.outbox);
        self.ended = true;
    }

    /// Ctrl-C: STOP, unless END went (the receiver reads no frame after
    /// it: its RESULT is on the way); whether it is queued.
    pub fn stop(&mut self) -> bool {
        if !self.ended {
            ToReceiver::Stop.append_to(&mut self.outbox);
        }
        !self.ended
    }

    /// The frames queued so far, appended to `out` (whole frames, in order).
    pub fn move_outbox_to(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.outbox);
    }

    /// The frames queued so far.
    pub fn take_outbox(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.outbox)
    }

    /// Bytes queued and not taken yet.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    // ---- what the receiver says ----

    /// Takes one frame from the receiver.
    pub fn handle(&mut self, msg: ToSender) -> Result<Option<Event>, Violation> {
        let before_go = self.phase == Phase::Offering;
        self.phase.take(&msg).map_err(|why| Violation::OutOfOrder {
            peer: self.peer.clone(),
            why,
        })?;
        Ok(match msg {
            ToSender::Keepalive => None,
            ToSender::Go => Some(Event::Go),
            ToSender::Reply(reply) => self.replied(reply.id, reply.action)?,
            ToSender::FileHashes(id, blocks, last) => Some(self.hashes(id, blocks, last)?),
            ToSender::FileResult(id, outcome) => self.resulted(id, &outcome)?,
            ToSender::Answer(Answer::Refuse { reason, .. }) => {
                Some(Event::Ended(Ending::Refused(self.said("refused", &reason))))
            }
            // before GO a RESULT is the receiver giving up: its reason,
            // once the key's MAC shows it is the receiver's
            ToSender::Result(outcome) if before_go => {
                self.check_result(&outcome)?;
                let why = match outcome.message.is_empty() {
                    true => "it ended the session before GO".into(),
                    false => outcome.message,
                };
                Some(Event::Ended(Ending::Failed(self.said("failed", &why))))
            }
            ToSender::Result(outcome) => {
                self.check_result(&outcome)?;
                self.result = Some(outcome);
                Some(Event::Concluded)
            }
            // the phase takes neither; should it ever, a peer's frame is
            // an error here, never a panic
            other @ (ToSender::Answer(_) | ToSender::Challenge(_)) => {
                return Err(Violation::OutOfOrder {
                    peer: self.peer.clone(),
                    why: format!("{} in a session", other.name()),
                })
            }
        })
    }

    fn offered(&mut self, id: u64) -> Result<&mut Offered, Violation> {
        let peer = &self.peer;
        self.entries
            .get_mut(id as usize)
            .ok_or_else(|| Violation::NeverOffered {
                peer: peer.clone(),
                id,
            })
    }

    fn replied(
        &mut self,
        id: u64,
        action: crate::protocol::tree::Action,
    ) -> Result<Option<Event>, Violation> {
        let resuming = self.resuming;
        let offered = self.offered(id)?;
        let fate = offered
            .state
            .replied(action, offered.entry.size, resuming)
            .map_err(|broken| Violation::Entry { id, broken })?;
        Ok(fate.map(|fate| Event::Settled(self.settle(id, fate, 0, None))))
    }

    /// FILE HASHES: checked whole before any block is hashed.
    fn hashes(&mut self, id: u64, blocks: Vec<BlockHash>, last: bool) -> Result<Event, Violation> {
        let state = &mut self.offered(id)?.state;
        if !matches!(state, Sending::Wanted(_)) {
            return Err(Violation::NotBeingSent { id });
        }
        for b in &blocks {
            // decode_hashes checked that this does not overflow
            let (from, to) = (b.offset, b.offset + b.len as u64);
            (state.hashes_for(from, to)).map_err(|broken| Violation::Entry { id, broken })?;
        }
        Ok(Event::CheckBlocks { id, blocks, last })
    }

    fn resulted(&mut self, id: u64, outcome: &Outcome) -> Result<Option<Event>, Violation> {
        let offered = self.offered(id)?;
        let (size, whole) = (offered.entry.size, offered.whole);
        let path = lossy(&offered.entry.path);
        let fate = offered
            .state
            .resulted(outcome, size, whole)
            .map_err(|broken| Violation::Entry { id, broken })?;
        // None: the receiver's word on an entry given up here
        let Some(fate) = fate else { return Ok(None) };
        if let Some(key) = &self.key {
            let mac = outcome.mac.unwrap_or_default();
            if !key.check_file_result(id, outcome.status as u8, outcome.held, &mac) {
                let peer = self.peer.clone();
                return Err(Violation::ForgedFileResult { peer, path });
            }
        }
        if fate == Fate::Landed {
            self.files_landed += 1;
            // a receiver with --no-verify lands files without checking them
            self.unchecked |= outcome.sha256.is_none();
        }
        let settled = self.settle(id, fate, size, outcome.sha256);
        Ok(Some(Event::Settled(settled)))
    }

    fn settle(&mut self, id: u64, fate: Fate, bytes: u64, sha256: Option<[u8; 32]>) -> Settled {
        let entry = &self.entries[id as usize].entry;
        let (path, kind) = (lossy(&entry.path), entry.kind);
        self.record(&path, &fate);
        Settled::new(Some(id), (path, kind), fate, bytes, sha256)
    }

    fn record(&mut self, path: &str, fate: &Fate) {
        self.ledger.record(path, fate);
        if let Some((_, one)) = self.one.as_mut() {
            *one = fate.clone();
        }
    }

    /// A line of what the receiver did ("refused", "failed") and why.
    fn said(&self, did: &str, why: &PeerText) -> String {
        format!("{} {did}: {why}", self.peer)
    }
}
