//! How a session ends on the sending side, without I/O: the receiver's
//! RESULT checked and turned into a verdict and what the user is told,
//! why a receiver dropped this side, and what a stopped session's receiver
//! says it keeps.

use super::{Ending, Session, Violation};
use crate::protocol::ledger::{Fate, Verdict};
use crate::protocol::tree::lossy;
use crate::protocol::{Answer, Outcome, PeerText, Status, ToSender};

impl Session {
    /// How the session ends, once the receiver's RESULT came (`None`
    /// before): its verdict, or for a file alone that did not land, the
    /// words and the exit of a single transfer (a refusal, not "partial").
    pub fn ending(&mut self) -> Option<Ending> {
        let verdict = self.verdict()?;
        Some(match (verdict, &self.one) {
            (Verdict::Complete, _) => Ending::Complete,
            (Verdict::Integrity(line), _) => Ending::Integrity(line),
            (Verdict::Partial(line), None) => Ending::Partial(line),
            (Verdict::Partial(line), Some((alone, fate))) => match fate {
                Fate::Refused(why) => Ending::Refused(self.said("refused", why)),
                Fate::Failed(why) => Ending::Failed(format!("{}: {why}", alone.name)),
                // (a mismatch makes the verdict Integrity, never Partial)
                Fate::Mismatch => Ending::Integrity(line),
                // the entry went, the session did not end well (the receiver's word)
                Fate::Landed | Fate::UpToDate | Fate::Held(_) => Ending::Failed(line),
            },
        })
    }

    /// What the receiver says once the connection failed, if it says why
    /// it dropped this side: a failure under the key's MAC (a full disk),
    /// or a tree refused whole in the middle of its manifest.
    pub fn why_lost(&self, msg: ToSender) -> Option<Ending> {
        match msg {
            // a reason the key's MAC does not cover is not the receiver's
            ToSender::Result(o) if o.status == Status::Failed && self.genuine(&o) => {
                Some(Ending::Failed(self.said("failed", &o.message)))
            }
            ToSender::Answer(Answer::Refuse { reason, .. }) => {
                Some(Ending::Refused(self.said("refused", &reason)))
            }
            _ => None,
        }
    }

    /// The session's verdict, once the receiver's RESULT came (`None`
    /// before): entries it left unanswered did not land, and a receiver
    /// that accounts for other entries than this side makes it partial.
    pub fn verdict(&mut self) -> Option<Verdict> {
        let outcome = self.result.as_ref()?;
        // entries left unanswered: the receiver failed (and says why), or lost track
        let why: PeerText = match outcome.status {
            Status::Ok => "no answer from the receiver".into(),
            _ if outcome.message.is_empty() => "no answer from the receiver".into(),
            _ => self.said("failed", &outcome.message).into(),
        };
        let (status, held, message) = (outcome.status, outcome.held, outcome.message.clone());
        for id in 0..self.entries.len() {
            let offered = &mut self.entries[id];
            if !offered.state.is_settled() {
                offered.state.given_up();
                let path = lossy(&offered.entry.path);
                self.record(&path, &Fate::Failed(why.clone()));
            }
        }
        let peer = &self.peer;
        Some(match (self.ledger.verdict(), status) {
            (Verdict::Complete, Status::Ok) if held != self.ledger.accounted() => {
                Verdict::Partial(format!(
                    "{peer} accounts for {held} entries, this side for {}",
                    self.ledger.accounted()
                ))
            }
            (Verdict::Complete, Status::Ok) => Verdict::Complete,
            (Verdict::Complete, _) => Verdict::Partial(format!("{peer}: {message}")),
            (verdict, _) => verdict,
        })
    }

    /// With a key in the clear (`--no-encrypt`), a RESULT is the
    /// receiver's word only under the key's MAC, before GO as at the end;
    /// an encrypted session's records already vouch for it.
    pub(super) fn check_result(&self, outcome: &Outcome) -> Result<(), Violation> {
        match self.genuine(outcome) {
            true => Ok(()),
            false => Err(Violation::ForgedResult {
                peer: self.peer.clone(),
            }),
        }
    }

    /// Whether a RESULT read outside the session's order (after STOP, or
    /// after the connection failed) is the receiver's: its MAC checks.
    pub fn genuine(&self, outcome: &Outcome) -> bool {
        let Some(key) = &self.key else { return true };
        let mac = outcome.mac.unwrap_or_default();
        key.check_result(outcome.status as u8, outcome.held, &mac)
    }

    /// What the receiver of a stopped session says it keeps, if `msg` is
    /// its RESULT ([`Session::genuine`]): a file alone's bytes, or a tree's
    /// entries.
    pub fn kept(&self, msg: &ToSender) -> Option<String> {
        let ToSender::Result(outcome) = msg else {
            return None;
        };
        let held = outcome.held;
        Some(
            match self.entry(0).filter(|e| self.is_single() && !e.stream) {
                _ if !self.genuine(outcome) => return None,
                Some(entry) => format!("the receiver holds {held} bytes of {}", entry.size),
                None => format!("the receiver keeps what it got ({held} entries in place)"),
            },
        )
    }
}
