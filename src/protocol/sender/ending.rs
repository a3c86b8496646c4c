//! How a session ends on the sending side, without I/O: the receiver's
//! RESULT checked and turned into a verdict, and what a stopped session's
//! receiver says it keeps.

use super::{Session, Violation};
use crate::protocol::ledger::{Fate, Verdict};
use crate::protocol::tree::lossy;
use crate::protocol::{Outcome, PeerText, Status};

impl Session {
    /// The session's verdict, once the receiver's RESULT came (`None`
    /// before): entries it left unanswered did not land, and a receiver
    /// that accounts for other entries than this side makes it partial.
    pub fn verdict(&mut self) -> Option<Verdict> {
        let outcome = self.result.as_ref()?;
        // entries left unanswered: the receiver failed (and says why), or lost track
        let why: PeerText = match outcome.status {
            Status::Ok => "no answer from the receiver".into(),
            _ if outcome.message.is_empty() => "no answer from the receiver".into(),
            _ => format!("{} failed: {}", self.peer, outcome.message).into(),
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

    /// What the receiver of a stopped session says it keeps (its RESULT,
    /// [`Session::genuine`]): a file alone's bytes, or a tree's entries.
    pub fn kept(&self, outcome: &Outcome) -> String {
        match self.entry(0).filter(|e| self.is_single() && !e.stream) {
            Some(entry) => format!(
                "the receiver holds {} bytes of {}",
                outcome.held, entry.size
            ),
            None => format!(
                "the receiver keeps what it got ({} entries in place)",
                outcome.held
            ),
        }
    }
}
