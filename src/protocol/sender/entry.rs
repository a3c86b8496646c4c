//! The sender's rules for one entry, without I/O: what the receiver's
//! REPLY, FILE HASHES and FILE RESULT may say about it, and what follows.
//!
//! The session machine ([`super::Session`]) keeps one [`Sending`] per
//! offered entry and feeds it the receiver's frames; a frame that breaks the
//! rules is a [`Broken`] rule, and the entry's [`Fate`], once known, is
//! returned for the ledger.

use crate::protocol::ledger::Fate;
use crate::protocol::tree::Action;
use crate::protocol::Ranges;
use crate::protocol::{Outcome, Status};

/// A rule of one entry's frames that the receiver broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// A REPLY for an entry answered already.
    SecondReply,
    /// FILE HASHES for bytes the receiver did not offer for checking.
    NotHeld(u64, u64),
    /// FILE HASHES for bytes hashed already.
    HashedTwice(u64, u64),
    /// FILE HASHES for an entry whose data is not wanted (or is out).
    NotBeingSent,
    /// A FILE RESULT for an entry whose data did not go out.
    NotSent,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broken::SecondReply => write!(f, "a second reply"),
            Broken::NotHeld(from, to) => {
                write!(f, "a hash for bytes {from}..{to}, which are not held")
            }
            Broken::HashedTwice(from, to) => write!(
                f,
                "a hash for bytes {from}..{to}, which overlap bytes hashed already \
                 (each held block is hashed once)"
            ),
            Broken::NotBeingSent => write!(f, "hashes for an entry that is not being sent"),
            Broken::NotSent => write!(f, "a result for an entry that was not sent"),
        }
    }
}

/// Where one entry stands on the sending side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Sending {
    /// Offered; no reply yet.
    #[default]
    Offered,
    /// The receiver wants its data.
    Wanted(Wanted),
    /// Its BEGIN went out: the receiver expects its data, or word that it
    /// failed.
    Begun,
    /// Its data is out; the receiver's FILE RESULT is awaited.
    Sent,
    /// Its fate is known.
    Settled,
}

/// What the receiver holds of a wanted file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Held ranges offered for checking (FILE HASHES follow), not yet checked.
    pub held: Ranges,
    /// Held ranges whose hashes matched the source: not sent again.
    pub good: Ranges,
    /// All it says it holds, checked or not: what decides whether the file
    /// is whole once the offered range lands (see [`crate::protocol::whole`]).
    pub claimed: Ranges,
    /// Held bytes whose hashes came already: each is hashed once, so what
    /// the receiver can make this side hash for a file is at most `held`.
    pub hashed: Ranges,
}

impl Sending {
    /// The receiver's REPLY. `size` is the file's; `resuming`: this side
    /// checks held blocks (else what is held is sent again). Returns the
    /// fate of an entry that needs no data.
    pub fn replied(
        &mut self,
        action: Action,
        size: u64,
        resuming: bool,
    ) -> Result<Option<Fate>, Broken> {
        if *self != Sending::Offered {
            return Err(Broken::SecondReply);
        }
        let fate = match action {
            Action::Send { held, hashes } => {
                let mut claimed = Ranges::from_pairs(&held);
                claimed.clip(size);
                let checked = hashes && resuming && claimed.total() > 0;
                *self = Sending::Wanted(Wanted {
                    held: if checked {
                        claimed.clone()
                    } else {
                        Ranges::new()
                    },
                    good: Ranges::new(),
                    claimed,
                    hashed: Ranges::new(),
                });
                return Ok(None);
            }
            Action::Skip => Fate::UpToDate,
            Action::Done => Fate::Landed,
            Action::Refuse { reason, .. } => Fate::Refused(reason),
        };
        *self = Sending::Settled;
        Ok(Some(fate))
    }

    /// FILE HASHES may only cover what the receiver offered for checking
    /// (the held ranges to hash), each byte once: a block listed again, or
    /// overlapping one that came, is refused before it is hashed.
    pub fn hashes_for(&mut self, from: u64, to: u64) -> Result<(), Broken> {
        match self {
            Sending::Wanted(w) if !w.held.covers(from, to) => Err(Broken::NotHeld(from, to)),
            Sending::Wanted(w) if w.hashed.overlaps(from, to) => Err(Broken::HashedTwice(from, to)),
            Sending::Wanted(w) => {
                w.hashed.insert(from, to);
                Ok(())
            }
            _ => Err(Broken::NotBeingSent),
        }
    }

    /// Blocks whose hashes matched the source: they are not sent again.
    pub fn matched(&mut self, from: u64, to: u64) {
        if let Sending::Wanted(w) = self {
            w.good.insert(from, to);
        }
    }

    /// Its BEGIN went out.
    pub fn begun(&mut self) {
        *self = Sending::Begun;
    }

    /// The file's data (or its failure) went out.
    pub fn sent(&mut self) {
        *self = Sending::Sent;
    }

    /// The sender gave up on it (its source failed): settled here.
    pub fn given_up(&mut self) {
        *self = Sending::Settled;
    }

    /// The receiver's FILE RESULT for a file of `size` bytes, `whole` when
    /// the range sent leaves it whole. `None`: the entry was settled here
    /// already (given up), and the receiver's word changes nothing.
    pub fn resulted(
        &mut self,
        outcome: &Outcome,
        size: u64,
        whole: bool,
    ) -> Result<Option<Fate>, Broken> {
        match self {
            Sending::Sent => {}
            Sending::Settled => return Ok(None),
            _ => return Err(Broken::NotSent),
        }
        *self = Sending::Settled;
        let fate = match outcome.status {
            Status::Ok if outcome.held == size => Fate::Landed,
            // a range that leaves the file unfinished, held in its part
            Status::Ok if !whole && outcome.held <= size => Fate::Held(outcome.held),
            Status::Ok => {
                Fate::Failed(format!("the receiver holds {} of {size} bytes", outcome.held).into())
            }
            Status::Mismatch => Fate::Mismatch,
            Status::Failed | Status::Stopped => Fate::Failed(outcome.message.clone()),
        };
        Ok(Some(fate))
    }

    pub fn is_settled(&self) -> bool {
        *self == Sending::Settled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::RefuseCode;

    fn outcome(status: Status, held: u64) -> Outcome {
        Outcome {
            status,
            sha256: None,
            held,
            message: "why".into(),
            mac: None,
        }
    }

    fn send(held: &[(u64, u64)], hashes: bool) -> Action {
        Action::Send {
            held: held.to_vec(),
            hashes,
        }
    }

    #[test]
    fn replies_that_need_no_data_settle_the_entry() {
        let refuse = Action::Refuse {
            code: RefuseCode::Exists,
            reason: "exists".into(),
        };
        for (action, fate) in [
            (Action::Skip, Fate::UpToDate),
            (Action::Done, Fate::Landed),
            (refuse, Fate::Refused("exists".into())),
        ] {
            let mut s = Sending::default();
            assert_eq!(s.replied(action, 10, true), Ok(Some(fate)));
            assert!(s.is_settled());
            assert!(
                s.replied(Action::Skip, 10, true).is_err(),
                "one reply per entry"
            );
        }
    }

    #[test]
    fn held_ranges_are_clipped_and_checked_only_when_resuming_with_hashes() {
        let mut s = Sending::default();
        assert_eq!(
            s.replied(send(&[(0, 4), (8, 20)], true), 10, true),
            Ok(None)
        );
        let Sending::Wanted(w) = &s else {
            panic!("{s:?}")
        };
        assert_eq!(w.claimed.pairs(), &[(0, 4), (8, 10)], "clipped to the file");
        assert_eq!(w.held, w.claimed, "offered for checking");
        assert_eq!(s.hashes_for(0, 4), Ok(()));
        assert!(s.hashes_for(4, 8).is_err(), "bytes not held");
        s.matched(0, 4);
        let Sending::Wanted(w) = &s else { panic!() };
        assert_eq!(w.good.pairs(), &[(0, 4)]);
        // without hashes, or without resume, what is held is sent again
        for (hashes, resuming) in [(false, true), (true, false)] {
            let mut s = Sending::default();
            s.replied(send(&[(0, 4)], hashes), 10, resuming).unwrap();
            let Sending::Wanted(w) = &s else { panic!() };
            assert_eq!((w.held.total(), w.claimed.total()), (0, 4));
            assert!(s.hashes_for(0, 4).is_err());
        }
    }

    #[test]
    fn each_held_byte_is_hashed_once() {
        let mut s = Sending::default();
        let held = [(0, 6 << 20), (8 << 20, 9 << 20)];
        s.replied(send(&held, true), 10 << 20, true).unwrap();
        let block = 4 << 20;
        assert_eq!(s.hashes_for(0, block), Ok(()));
        for (from, to, what) in [
            (0, block, "the same block again"),
            (1 << 20, 2 << 20, "inside a block hashed"),
            (block - 1, block + 1, "across a block's end"),
        ] {
            let why = s.hashes_for(from, to).expect_err(what).to_string();
            assert!(
                why.contains("overlap bytes hashed already"),
                "{what}: {why}"
            );
        }
        assert_eq!(s.hashes_for(block, 6 << 20), Ok(()), "the next block");
        assert_eq!(s.hashes_for(8 << 20, 9 << 20), Ok(()));
        let Sending::Wanted(w) = &s else { panic!() };
        // what was hashed is at most what was held, whatever was asked
        assert_eq!(w.hashed, w.held);
        assert!(s.hashes_for(8 << 20, 9 << 20).is_err());
    }

    #[test]
    fn results_come_only_for_what_was_sent() {
        let mut s = Sending::default();
        assert!(
            s.resulted(&outcome(Status::Ok, 10), 10, true).is_err(),
            "not even wanted"
        );
        s.replied(send(&[], false), 10, true).unwrap();
        assert!(
            s.resulted(&outcome(Status::Ok, 10), 10, true).is_err(),
            "not sent yet"
        );
        s.sent();
        assert_eq!(
            s.resulted(&outcome(Status::Ok, 10), 10, true),
            Ok(Some(Fate::Landed))
        );
        assert_eq!(
            s.resulted(&outcome(Status::Ok, 10), 10, true),
            Ok(None),
            "settled"
        );
        // given up here: the receiver's word changes nothing
        let mut s = Sending::Wanted(Wanted::default());
        s.given_up();
        assert_eq!(s.resulted(&outcome(Status::Failed, 0), 10, true), Ok(None));
    }

    #[test]
    fn a_result_decides_the_fate() {
        let cases = [
            (Status::Ok, 10, true, Fate::Landed),
            (Status::Ok, 6, false, Fate::Held(6)),
            (
                Status::Ok,
                6,
                true,
                Fate::Failed("the receiver holds 6 of 10 bytes".into()),
            ),
            (
                Status::Ok,
                12,
                false,
                Fate::Failed("the receiver holds 12 of 10 bytes".into()),
            ),
            (Status::Mismatch, 0, true, Fate::Mismatch),
            (Status::Failed, 0, true, Fate::Failed("why".into())),
            (Status::Stopped, 0, true, Fate::Failed("why".into())),
        ];
        for (status, held, whole, fate) in cases {
            let mut s = Sending::Sent;
            let got = s.resulted(&outcome(status, held), 10, whole);
            assert_eq!(
                got,
                Ok(Some(fate)),
                "{status:?} holding {held}, whole {whole}"
            );
        }
    }
}
