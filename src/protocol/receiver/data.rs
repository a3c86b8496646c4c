//! The data phase of the receiver's machine: which BEGIN, DATA and FILE
//! END fit the files asked for, and the FILE RESULT each file's outcome
//! queues.

use super::{Admitted, Arrival, Asked, Current, Session, Sha, Shown, Wanted};
use super::{Ended, Ending, FileOutcome, Fits, Violation, UNWRITABLE_TOLD};
use crate::protocol::ledger::Fate;
use crate::protocol::tree::{lossy, EntryKind};
use crate::protocol::{Outcome, Status, ToSender};

impl Session {
    pub(super) fn begin<T: Wanted>(
        &mut self,
        id: u64,
        path: &[u8],
        asked: &mut impl Asked<T>,
    ) -> Result<T, Violation> {
        if self.cur.is_some() || self.ending.is_some() {
            return Err(Violation::BeganInside);
        }
        let mut skipped = Vec::new();
        let want = loop {
            match asked.pop_front() {
                Some(next) if next.id() == id => break next,
                Some(next) if next.id() < id => skipped.push(next),
                Some(next) => {
                    asked.push_front(next);
                    return Err(Violation::NotAskedFor(id));
                }
                // what was popped stays popped: the session ends here
                None => return Err(Violation::NotAskedFor(id)),
            }
        };
        for w in &skipped {
            self.not_sent(w);
        }
        // (a session of one file may land it under another name)
        if want.path() != path && !self.setup.renamed {
            return Err(Violation::OtherPath(id));
        }
        let (size, range, held, stream, whole) = want.shape();
        let arrival = Arrival::new((id, size), range, held, (stream, whole, self.setup.ordered));
        let path = want.path().to_vec();
        self.cur = Some(Current { arrival, path });
        Ok(want)
    }

    pub(super) fn data(&mut self, offset: u64, len: u64) -> Result<Fits, Violation> {
        let cur = self.cur.as_ref().ok_or(Violation::DataOutside)?;
        let Admitted { end, in_order } = cur
            .arrival
            .admit(offset, len, self.setup.max_size)
            .map_err(|why| Violation::Data(cur.path.clone(), why))?;
        Ok(Fits {
            offset,
            len,
            end,
            in_order,
        })
    }

    /// Bytes `[from, to)` of the current file were written.
    pub fn arrived(&mut self, from: u64, to: u64) {
        if let Some(cur) = self.cur.as_mut() {
            cur.arrival.arrived(from, to);
        }
    }

    /// The file whose data is arriving.
    pub fn current(&self) -> Option<&Arrival> {
        self.cur.as_ref().map(|c| &c.arrival)
    }

    pub(super) fn file_end(
        &mut self,
        end: &crate::protocol::tree::FileEnd,
    ) -> Result<Ended, Violation> {
        let Current { mut arrival, path } = self.cur.take().ok_or(Violation::EndedNeverBegan)?;
        // a FILE END that does not fit ends the file too (and the session)
        let ending = arrival.end(end).map_err(Violation::FileEnd)?;
        let ended = Ended {
            ending,
            sha256: end.sha256,
            size: arrival.size,
            range: arrival.range,
            hashed_as_it_came: arrival.hashed_as_it_came(),
        };
        match &ended.ending {
            Ending::SenderFailed(why) => {
                let fate = Fate::Failed(format!("the sender: {why}").into());
                self.settle(&lossy(&path), Shown::Kind(EntryKind::File), fate);
            }
            _ => self.ending = Some((arrival.id, path, arrival.size)),
        }
        Ok(ended)
    }

    /// Whether this side's digest of a file is the sender's (keyed with a key).
    pub fn digest_matches(&self, ours: &Sha, theirs: Option<Sha>) -> bool {
        let wire = self.key.as_ref().map_or(*ours, |k| k.keyed_digest(ours));
        theirs == Some(wire)
    }

    /// How the file that just ended went: its FILE RESULT is queued and
    /// the entry settled.
    pub fn file_result(&mut self, outcome: FileOutcome) {
        let Some((id, path, size)) = self.ending.take() else {
            debug_assert!(false, "a file result without a file");
            return;
        };
        let shown = lossy(&path);
        let kind = Shown::Kind(EntryKind::File);
        let (status, sha256, message, held) = match outcome {
            FileOutcome::Unwritable(unwritable) => {
                let why = unwritable.why();
                let heard = match self.setup.keyed {
                    true => why.clone(),
                    false => unwritable.told().to_string(),
                };
                self.queue_file_result(id, Status::Failed, None, &heard, 0);
                self.settle_hiding(&shown, kind, Fate::Failed(why.into()), &heard);
                return;
            }
            FileOutcome::Verified { sha256, held } => (Status::Ok, sha256, "", held),
            FileOutcome::Mismatch => (Status::Mismatch, None, "SHA-256 mismatch", 0),
            FileOutcome::Incomplete => (
                Status::Failed,
                None,
                "incomplete: the sender ended the file early",
                0,
            ),
        };
        self.queue_file_result(id, status, sha256, message, held);
        let fate = match status {
            Status::Ok if held < size => Fate::Held(held),
            Status::Ok => Fate::Landed,
            Status::Mismatch => Fate::Mismatch,
            _ => Fate::Failed(message.into()),
        };
        let sha = sha256.map(|d| crate::protocol::hex(&d));
        self.record(&shown, &fate, &fate);
        self.show(shown, kind, size, sha, fate);
    }

    fn queue_file_result(
        &mut self,
        id: u64,
        status: Status,
        sha256: Option<Sha>,
        message: &str,
        held: u64,
    ) {
        let mac = self
            .key
            .as_ref()
            .map(|k| k.file_result_mac(id, status as u8, held));
        let outcome = Outcome {
            status,
            sha256,
            held,
            message: message.into(),
            mac,
        };
        ToSender::FileResult(id, outcome).append_to(&mut self.out);
    }

    /// A verified file that then could not be put in place (it was
    /// counted as landed).
    pub fn unlanded(&mut self, path: &str, why: String) {
        self.ledger.landed -= 1;
        self.told.landed -= 1;
        let kind = Shown::Kind(EntryKind::File);
        self.settle_hiding(path, kind, Fate::Failed(why.into()), UNWRITABLE_TOLD);
    }
}
