//! The order of the receiver's frames, as the sender takes them.

use crate::protocol::{Answer, ToSender};

/// Where a session on the sending side stands, as the receiver's frames
/// move it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Phase {
    /// The manifest is going out; the receiver answers each entry and says
    /// GO once it has checked the space for all it wants.
    #[default]
    Offering,
    /// After GO: only each file's result, and the session's.
    Sending,
    /// The receiver's RESULT (or refusal) came: nothing follows it.
    Concluded,
}

impl Phase {
    /// Takes a frame from the receiver: moves on, or says why it does not
    /// belong here ("GO after GO").
    pub(super) fn take(&mut self, msg: &ToSender) -> Result<(), String> {
        use ToSender as M;
        let next = match (*self, msg) {
            (Phase::Concluded, m) => {
                return Err(format!("{} after the session's RESULT", m.name()))
            }
            (_, M::Keepalive) => *self,
            (_, M::Result(_)) => Phase::Concluded,
            (Phase::Offering, M::Reply(_) | M::FileHashes(..)) => *self,
            (Phase::Offering, M::Go) => Phase::Sending,
            (Phase::Offering, M::Answer(Answer::Refuse { .. })) => Phase::Concluded,
            (Phase::Sending, M::FileResult(..)) => *self,
            (Phase::Offering, m) => return Err(format!("{} before GO", m.name())),
            (Phase::Sending, m) => return Err(format!("{} after GO", m.name())),
        };
        *self = next;
        Ok(())
    }
}
