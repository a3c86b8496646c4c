//! How a received transfer ends: fsync, record, compare digests, rename,
//! and the receiver's final word; or, when it stops early, what is kept.

use std::fs::File;

use anyhow::{Context, Result};
use sha2::Digest;

use crate::conn::{with_keepalive, Conn};
use crate::exit::{self, ExitCode, Failure, Tag};
use crate::hash::Sha;
use crate::held::Record;
use crate::progress::{Role, Summary};
use crate::protocol::{self as proto, End, Status};
use crate::units::human_bytes;

use super::peer::{result, tell};
use super::transfer::Target;
use super::transfer::{Tally, Transfer};

impl Transfer<'_> {
    /// After END: fsync, record, compare digests, publish, tell the sender.
    pub(super) fn finish(
        &mut self,
        conn: &mut Conn,
        tally: &mut Tally,
        end: End,
        resumed_from: u64,
    ) -> Result<Summary> {
        let received = tally.received;
        if let Some(pipe) = tally.pipe.take() {
            let hashers = pipe.finish();
            tally.sent = hashers.sent;
            tally.prefix = hashers.prefix;
        }
        let durable = match (&mut self.target, tally.checkpoint.take()) {
            (Target::Part(_), Some(cp)) => with_keepalive(conn, move || cp.finish()).map(Some),
            (Target::Part(part), None) => {
                with_keepalive(conn, || part.file.sync_all()).map(|()| None)
            }
            (Target::Stream(out, _), _) => out.flush().map(|()| None),
        };
        let held = match durable {
            Ok(held) => held,
            Err(e) => {
                let err = anyhow::Error::new(e).context(format!("{}: fsync", self.path_label()));
                tell(
                    conn,
                    self.session.as_ref(),
                    Status::Failed,
                    received,
                    &exit::message_of(&err),
                );
                return Err(err);
            }
        };
        let complete = match (self.offer.size, &held) {
            (Some(size), Some(held)) => held.covers(0, size),
            _ => true,
        };
        let ours: Option<Sha> = match (complete, self.offer.size, self.part()) {
            (true, Some(size), Some(part)) if end.file_sha256.is_some() => {
                let prefix = tally.prefix.take().unwrap_or_default();
                let file: &File = &part.file;
                Some(
                    with_keepalive(conn, || prefix.finish(file, size))
                        .with_context(|| part.path.display().to_string())?,
                )
            }
            _ => tally.sent.take().map(|h| h.finalize().into()),
        };
        let theirs = if complete && end.file_sha256.is_some() {
            end.file_sha256
        } else {
            end.sent_sha256
        };
        // With a key, the sender's digest is keyed: ours is keyed the same
        // way before comparing, so altered data cannot carry a fixed digest.
        let checked = match (ours, theirs) {
            (Some(ours), Some(theirs)) => {
                let wire = self
                    .session
                    .as_ref()
                    .map_or(ours, |s| s.keyed_digest(&ours));
                Some((ours, theirs, wire))
            }
            _ => None,
        };
        // Verification was agreed in the offer (which a key authenticates):
        // an END without the digest we expect is a failure, never a pass.
        if self.cfg.common.verify && self.offer.verify && checked.is_none() {
            let why = "no digest arrived for the data";
            let _ = result(conn, self.session.as_ref(), Status::Mismatch, ours, 0, why);
            if let Some(part) = self.part() {
                Record::remove(&part.path);
            }
            return Err(exit::integrity(format!(
                "{} from {}: {why}; nothing was renamed into place",
                self.name, conn.peer
            )));
        }
        if let Some((ours, theirs, _)) = checked.filter(|(_, theirs, wire)| wire != theirs) {
            let _ = result(
                conn,
                self.session.as_ref(),
                Status::Mismatch,
                Some(ours),
                0,
                "SHA-256 mismatch",
            );
            let kept = match self.part() {
                Some(part) => {
                    // nothing in it can be trusted now
                    Record::remove(&part.path);
                    format!("; {} was not renamed into place", part.path.display())
                }
                None => "; the data already written to stdout is not what was sent".into(),
            };
            return Err(exit::integrity(format!(
                "SHA-256 mismatch for {} from {}: sender {}, received {}{kept}",
                self.name,
                conn.peer,
                proto::hex(&theirs),
                proto::hex(&ours)
            )));
        }
        let mut note = None;
        let mut held_bytes = received;
        if let Some(part) = self.part() {
            held_bytes = held.as_ref().map_or(received, |h| h.total());
            if complete {
                if let Err(e) = part.publish() {
                    tell(
                        conn,
                        self.session.as_ref(),
                        Status::Failed,
                        received,
                        &exit::message_of(&e),
                    );
                    return Err(e);
                }
                Record::remove(&part.path);
            } else {
                note = Some(format!(
                    "{} holds {} of the file",
                    part.path.display(),
                    human_bytes(held_bytes)
                ));
            }
        }
        result(
            conn,
            self.session.as_ref(),
            Status::Ok,
            ours,
            held_bytes,
            "",
        )
        .with_context(|| format!("{}: connection lost before the result was sent", conn.peer))?;
        Ok(Summary {
            role: Role::Recv,
            name: self.name.clone(),
            path: Some(self.path_label()),
            bytes: received,
            elapsed: self.began.elapsed(),
            zero_copy: tally.spliced,
            sha256: checked.map(|(ours, ..)| proto::hex(&ours)),
            resumed_from,
            note,
        })
    }

    /// Makes what arrived durable and recorded; returns the bytes now held.
    pub(super) fn make_durable(&self, tally: &mut Tally) -> Result<u64> {
        let Some(part) = self.part() else {
            return Ok(tally.received);
        };
        match tally.checkpoint.take() {
            Some(cp) => Ok(cp
                .finish()
                .with_context(|| part.path.display().to_string())?
                .total()),
            None => {
                part.sync()?;
                Ok(tally.received)
            }
        }
    }

    /// The sender pressed Ctrl-C: keep everything and say so.
    pub(super) fn stopped(&self, conn: &mut Conn, tally: &mut Tally) -> anyhow::Error {
        let held = match self.make_durable(tally) {
            Ok(held) => held,
            Err(e) => return e,
        };
        tell(
            conn,
            self.session.as_ref(),
            Status::Stopped,
            held,
            "stopped",
        );
        let kept = match self.part() {
            Some(part) => format!("; kept {} ({held} bytes held)", part.path.display()),
            None => String::new(),
        };
        anyhow::Error::new(Failure {
            code: ExitCode::Interrupted,
            message: format!("{} stopped sending {}{kept}", conn.peer, self.name),
        })
    }

    /// An interrupted transfer: make what arrived durable and say where it is.
    pub(super) fn keep(&self, conn: &Conn, tally: &mut Tally, err: anyhow::Error) -> anyhow::Error {
        let Some(part) = self.part() else {
            return err.context(format!("{}: after {} bytes", conn.peer, tally.received));
        };
        let kept = match self.make_durable(tally) {
            Ok(held) => format!("kept {} ({held} bytes held)", part.path.display()),
            Err(e) => format!("could not sync {}: {e:#}", part.path.display()),
        };
        if crate::interrupt::requested() || exit::code_of(&err) == ExitCode::Interrupted {
            return anyhow::Error::new(Failure {
                code: ExitCode::Interrupted,
                message: format!("interrupted; {kept}"),
            });
        }
        let resumable = self.offer.size.is_some();
        let err = err.context(format!("{}: {} — {kept}", conn.peer, self.name));
        if resumable {
            exit::tag(err, Tag::Resumable)
        } else {
            err
        }
    }
}
