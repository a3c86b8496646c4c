//! The order of a tree session's messages, without I/O: which frames each
//! side may get in each phase, and which frame moves the session on.
//!
//! The drivers (`send::tree`, `recv::tree`) hand every message from the
//! peer to their side's phase before acting on it; a message out of order
//! is an error naming it, whatever the peer is. What one entry's frames may
//! say is `sending`'s business; the receiver's phase is `receiver::Session`'s.

use super::{Answer, ToSender};

/// A session on the sending side, as the receiver's messages move it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SenderPhase {
    /// The manifest is going out; the receiver answers each entry and says
    /// GO once it has checked the space for all it wants.
    #[default]
    Offering,
    /// After GO: only each file's result, and the session's.
    Sending,
    /// The receiver's RESULT (or refusal) came: nothing follows it.
    Concluded,
}

impl SenderPhase {
    /// Takes a message from the receiver: moves on, or says why it does
    /// not belong here.
    pub fn take(&mut self, msg: &ToSender) -> Result<(), String> {
        use ToSender as M;
        let next = match (*self, msg) {
            (SenderPhase::Concluded, m) => {
                return Err(format!("{} after the session's RESULT", m.name()))
            }
            (_, M::Keepalive) => *self,
            (_, M::Result(_)) => SenderPhase::Concluded,
            (SenderPhase::Offering, M::Reply(_) | M::FileHashes(..)) => *self,
            (SenderPhase::Offering, M::Go) => SenderPhase::Sending,
            (SenderPhase::Offering, M::Answer(Answer::Refuse { .. })) => SenderPhase::Concluded,
            (SenderPhase::Sending, M::FileResult(..)) => *self,
            (SenderPhase::Offering, m) => return Err(format!("{} before GO", m.name())),
            (SenderPhase::Sending, m) => return Err(format!("{} after GO", m.name())),
        };
        *self = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tree::{Action, Reply};
    use crate::protocol::{Outcome, RefuseCode, Status};

    fn outcome() -> Outcome {
        Outcome {
            status: Status::Ok,
            sha256: None,
            held: 0,
            message: Default::default(),
            mac: None,
        }
    }

    fn reply() -> ToSender {
        ToSender::Reply(Reply {
            id: 0,
            action: Action::Skip,
        })
    }

    fn run<P: Default, M>(
        take: fn(&mut P, &M) -> Result<(), String>,
        msgs: &[M],
    ) -> (P, Result<(), String>) {
        let mut phase = P::default();
        for m in msgs {
            if let Err(why) = take(&mut phase, m) {
                return (phase, Err(why));
            }
        }
        (phase, Ok(()))
    }

    #[test]
    fn a_sender_takes_replies_then_go_then_results() {
        let msgs = [
            reply(),
            ToSender::Keepalive,
            ToSender::FileHashes(0, Vec::new(), true),
            ToSender::Go,
            ToSender::FileResult(0, outcome()),
            ToSender::Keepalive,
            ToSender::Result(outcome()),
        ];
        let (phase, got) = run(SenderPhase::take, &msgs);
        assert_eq!(got, Ok(()));
        assert_eq!(phase, SenderPhase::Concluded);
    }

    #[test]
    fn a_sender_refuses_what_comes_out_of_order() {
        let cases: [(&[ToSender], &str); 4] = [
            (&[ToSender::Go, ToSender::Go], "GO after GO"),
            (&[ToSender::Go, reply()], "REPLY after GO"),
            (
                &[ToSender::FileResult(0, outcome())],
                "FILE RESULT before GO",
            ),
            (
                &[ToSender::Result(outcome()), ToSender::Keepalive],
                "KEEPALIVE after the session's RESULT",
            ),
        ];
        for (msgs, why) in cases {
            assert_eq!(run(SenderPhase::take, msgs).1, Err(why.to_string()));
        }
        let refusal = ToSender::Answer(Answer::Refuse {
            code: RefuseCode::TooLarge,
            reason: "no".into(),
        });
        assert_eq!(
            run(SenderPhase::take, &[reply(), refusal]).0,
            SenderPhase::Concluded
        );
    }
}
