//! The order of a tree session's messages on the receiving side, without
//! I/O (the sender's is `protocol::sender::Phase`).
//!
//! The driver (`recv::tree`) hands every message from the sender to the
//! phase before acting on it; a message out of order is an error naming
//! it, whatever the sender is. What one entry's frames may say is
//! `receiving`'s business.

use super::ToReceiver;

/// A session on the receiving side, as the sender's messages move it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReceiverPhase {
    /// Entries come, then MANIFEST (this side then answers GO or refuses).
    #[default]
    Manifest,
    /// Each wanted file's BEGIN, DATA and FILE END, then END.
    Data,
    /// END or STOP came: nothing follows.
    Ended,
}

impl ReceiverPhase {
    /// Takes a message from the sender: moves on, or says why it does not
    /// belong here.
    pub fn take(&mut self, msg: &ToReceiver) -> Result<(), String> {
        use ToReceiver as M;
        let next = match (*self, msg) {
            (ReceiverPhase::Ended, m) => {
                return Err(format!("{} after the session ended", m.name()))
            }
            (_, M::Keepalive) => *self,
            (_, M::Stop) => ReceiverPhase::Ended,
            (ReceiverPhase::Manifest, M::Entry(_)) => *self,
            (ReceiverPhase::Manifest, M::Manifest(_)) => ReceiverPhase::Data,
            (ReceiverPhase::Data, M::Begin(_) | M::Data { .. } | M::FileEnd(_)) => *self,
            (ReceiverPhase::Data, M::End(_)) => ReceiverPhase::Ended,
            (ReceiverPhase::Manifest, m) => return Err(format!("{} in the manifest", m.name())),
            (ReceiverPhase::Data, m) => return Err(format!("{} during the data", m.name())),
        };
        *self = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tree::{Begin, Manifest, TreeEnd};

    fn entry() -> ToReceiver {
        ToReceiver::Entry(crate::protocol::tree::Entry {
            id: 0,
            path: b"a".to_vec(),
            kind: crate::protocol::tree::EntryKind::File,
            size: 1,
            mode: 0o644,
            mtime_ns: 0,
            target: Vec::new(),
            range: None,
            stream: false,
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
    fn a_receiver_takes_the_manifest_then_files_then_end() {
        let begin = ToReceiver::Begin(Begin {
            id: 0,
            path: b"a".to_vec(),
        });
        let msgs = [
            entry(),
            ToReceiver::Keepalive,
            ToReceiver::Manifest(Manifest {
                entries: 1,
                failed: 0,
            }),
            begin,
            ToReceiver::Data { offset: 0, len: 1 },
            ToReceiver::End(TreeEnd { sent: 1, failed: 0 }),
        ];
        let (phase, got) = run(ReceiverPhase::take, &msgs);
        assert_eq!(got, Ok(()));
        assert_eq!(phase, ReceiverPhase::Ended);
    }

    #[test]
    fn a_receiver_refuses_what_comes_out_of_order() {
        let manifest = || {
            ToReceiver::Manifest(Manifest {
                entries: 0,
                failed: 0,
            })
        };
        let end = || ToReceiver::End(TreeEnd { sent: 0, failed: 0 });
        let cases: [(Vec<ToReceiver>, &str); 5] = [
            (
                vec![ToReceiver::Data { offset: 0, len: 1 }],
                "DATA in the manifest",
            ),
            (vec![end()], "END in the manifest"),
            (vec![manifest(), entry()], "ENTRY during the data"),
            (vec![manifest(), manifest()], "MANIFEST during the data"),
            (
                vec![manifest(), end(), ToReceiver::Keepalive],
                "KEEPALIVE after the session ended",
            ),
        ];
        for (msgs, why) in cases {
            assert_eq!(run(ReceiverPhase::take, &msgs).1, Err(why.to_string()));
        }
        assert_eq!(
            run(ReceiverPhase::take, &[ToReceiver::Stop]).0,
            ReceiverPhase::Ended
        );
    }
}
