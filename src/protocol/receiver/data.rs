//! The data phase of the receiver's machine: which BEGIN, DATA and FILE
//! END fit the files asked for, and the FILE RESULT each file's outcome
//! queues.

use super::arrival::Ending;
use super::said::FileOutcome;
use super::{Admitted, Arrival, Asked, Closing, Current, Session, Sha, Shown, Wanted};
use super::{Ended, Fits, Then, Unwritable, Violation, UNWRITABLE_TOLD};
use crate::protocol::ledger::Fate;
use crate::protocol::tree::{lossy, EntryKind, FileEnd};
use crate::protocol::{Outcome, Ranges, Status, ToSender};

impl Session {
    pub(super) fn begin<T: Wanted>(
        &mut self,
        id: u64,
        path: &[u8],
        asked: &mut impl Asked<T>,
    ) -> Result<T, Violation> {
        if self.cur.is_some() || self.closing.is_some() {
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
        let dropped = None;
        self.cur = Some(Current {
            arrival,
            path,
            dropped,
        });
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
            self.received.0 += to - from;
        }
    }

    /// The file whose data is arriving.
    pub fn current(&self) -> Option<&Arrival> {
        self.cur.as_ref().map(|c| &c.arrival)
    }

    pub(super) fn file_end(&mut self, end: &FileEnd) -> Result<Ended, Violation> {
        let cur = self.cur.take().ok_or(Violation::EndedNeverBegan)?;
        let Current {
            mut arrival,
            path,
            dropped,
        } = cur;
        // a FILE END that does not fit ends the file too (and the session)
        let ending = arrival.end(end).map_err(Violation::FileEnd)?;
        let (size, range) = (arrival.size, arrival.range);
        let mut closing = Closing {
            id: arrival.id,
            path,
            size,
            whole: arrival.whole,
            have: Ranges::new(),
            sha256: end.sha256,
        };
        let told = match (ending, dropped) {
            (Ending::SenderFailed(why), _) => {
                let fate = Fate::Failed(format!("the sender: {why}").into());
                self.settle(&lossy(&closing.path), Shown::Kind(EntryKind::File), fate);
                return Ok(Ended::new(size, range, Then::Discard));
            }
            (_, Some(why)) => FileOutcome::Unwritable(why),
            (Ending::Incomplete, _) => FileOutcome::Incomplete,
            (Ending::Complete { have }, _) => {
                let then = match self.setup.verify {
                    true => Then::Digest {
                        as_it_came: arrival.hashed_as_it_came(),
                    },
                    false => {
                        closing.sha256 = None;
                        Then::Keep(have.clone())
                    }
                };
                closing.have = have;
                self.closing = Some(closing);
                return Ok(Ended::new(size, range, then));
            }
        };
        self.closing = Some(closing);
        self.file_result(told);
        Ok(Ended::new(size, range, Then::Told))
    }

    /// The file under way cannot be written here (its data is read and
    /// dropped): its end says so, and only it fails.
    pub fn unwritable(&mut self, why: Unwritable) {
        if let Some(cur) = self.cur.as_mut() {
            cur.dropped = Some(why);
        }
    }

    /// Whether the file that began is hashed as its data comes: when
    /// verifying, unless a part held some of a file that lands whole (it
    /// is then hashed from the part at its end).
    pub fn hashing(&self) -> bool {
        let whole_from_held = |a: &Arrival| a.whole && a.held.total() > 0;
        self.setup.verify && !self.current().is_some_and(whole_from_held)
    }

    /// This side's digest of the file that ended (none: it could not be
    /// had). When it is the sender's (keyed with a key), what the part
    /// holds, for the driver to put in place and say [`Session::landed`];
    /// else the mismatch is told, and nothing of the file is kept.
    pub fn digest(&mut self, ours: Option<Sha>) -> Option<Ranges> {
        let wire = ours.map(|o| self.key.as_ref().map_or(o, |k| k.keyed_digest(&o)));
        let closing = self.closing.as_mut()?;
        if wire.is_none() || wire != closing.sha256 {
            self.file_result(FileOutcome::Mismatch);
            return None;
        }
        closing.sha256 = ours;
        Some(closing.have.clone())
    }

    /// The file that ended is in place, or, a range that leaves it
    /// unfinished, held in its part: its FILE RESULT says so.
    pub fn landed(&mut self) {
        let Some(c) = self.closing.as_ref() else {
            return;
        };
        // a stream has no part to hold a range in: what came is what was asked
        let whole = c.whole || self.setup.ordered;
        let held = match whole {
            true => c.size,
            false => c.have.total(),
        };
        self.received.1 += u64::from(whole);
        let sha256 = c.sha256;
        self.file_result(FileOutcome::Verified { sha256, held });
    }

    /// How the file that just ended went: its FILE RESULT is queued and
    /// the entry settled.
    pub(super) fn file_result(&mut self, outcome: FileOutcome) {
        let Some(Closing { id, path, size, .. }) = self.closing.take() else {
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
