//! How a session ends on the sending side: the receiver's verdict checked
//! and summed up, or, after Ctrl-C or a lost connection, what the user is
//! told and how to resume.

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{Outgoing, Run, REASON_WAIT, STOP_WAIT};
use crate::exit::{self, ExitCode};
use crate::progress::tree::TreeSummary;
use crate::progress::Role;
use crate::protocol::ledger::{Fate, Verdict};
use crate::protocol::sender::Session;
use crate::protocol::{Answer, Status, ToSender};
use crate::send::resume_command;
use crate::units::human_bytes;

impl Run<'_> {
    /// Waits for the receiver's durable verdict on the whole session.
    pub(super) fn conclude(
        mut self,
        plan: &Outgoing,
        journey: &crate::send::Journey,
    ) -> Result<()> {
        let verdict = loop {
            if let Some(verdict) = self.session.verdict() {
                break verdict;
            }
            let concluded = (self.wait())
                .map_err(|e| e.context("before the receiver confirmed the session"))
                .and_then(|msg| self.absorb(msg));
            if let Err(e) = concluded {
                self.progress.abandon();
                return Err(e);
            }
        };
        // a file alone that did not land says so in its error, not in a summary
        match (self.session.is_single(), &verdict) {
            (true, Verdict::Partial(_) | Verdict::Integrity(_)) => self.progress.abandon(),
            _ => self.progress.finish(&self.summary(plan, journey)),
        }
        match (verdict, self.session.one_fate()) {
            (Verdict::Complete, _) => Ok(()),
            (Verdict::Partial(line), Some(fate)) => {
                Err(single_error((&self.conn.peer, &plan.name), fate, &line))
            }
            (Verdict::Partial(line), None) => Err(exit::partial(line)),
            (Verdict::Integrity(line), _) => Err(exit::integrity(line)),
        }
    }

    /// The session's summary, for the display.
    fn summary(&self, plan: &Outgoing, journey: &crate::send::Journey) -> TreeSummary {
        let ledger = self.session.ledger();
        TreeSummary {
            role: Role::Send,
            name: plan.name.clone(),
            path: None,
            entries: self.session.len() + self.session.walk_failures(),
            files: self.session.files_landed(),
            up_to_date: ledger.up_to_date,
            not_landed: ledger.not_landed,
            bytes: journey.sent_before + self.sent,
            elapsed: journey.began.elapsed(),
            reconnects: journey.reconnects,
            sent_before: journey.sent_before,
            zero_copy: self.zero_copy && self.sent > 0,
            encrypted: self.conn.is_sealed(),
            verified: self.cfg.common.verify && !self.session.unchecked(),
            digests: (self.hashing.computed, self.hashing.cached),
        }
    }

    /// Turns a session error into what the user sees: Ctrl-C tells the
    /// receiver and prints the resume command; a broken connection is retried.
    pub(super) fn failed(&mut self, err: anyhow::Error) -> anyhow::Error {
        if exit::code_of(&err) == ExitCode::Interrupted || crate::interrupt::requested() {
            return self.stop();
        }
        if exit::tag_of(&err) != Some(exit::Tag::Retryable) {
            return err;
        }
        // the receiver may have said why it dropped us (a full disk)
        let peer = self.conn.peer.clone();
        let reason = self.hear(REASON_WAIT, |session, msg| match msg {
            // a reason the key's MAC does not cover is not the receiver's
            ToSender::Result(o) if o.status == Status::Failed && session.genuine(&o) => {
                Some(anyhow::anyhow!("{peer} failed: {}", o.message))
            }
            // a tree refused whole in the middle of its manifest
            ToSender::Answer(Answer::Refuse { reason, .. }) => {
                Some(exit::refused(format!("{peer} refused: {reason}")))
            }
            _ => None,
        });
        reason.unwrap_or(err)
    }

    pub(super) fn stop(&mut self) -> anyhow::Error {
        self.conn.ignore_ctrl_c();
        let mut said = format!("interrupted after sending {}", human_bytes(self.sent));
        self.session.stop();
        if self.flush().is_ok() {
            let kept = self.hear(STOP_WAIT, |session, msg| match msg {
                ToSender::Result(o) if session.genuine(&o) => Some(session.kept(&o)),
                _ => None,
            });
            if let Some(kept) = kept {
                said = format!("{said}; {kept}");
            }
        }
        exit::interrupted(format!("{said}; resume with: {}", resume_command(None)))
    }

    /// What the receiver says within `wait`, once `pick` takes a frame;
    /// `None` if it says nothing that `pick` takes, or the connection ends.
    fn hear<T>(
        &mut self,
        wait: Duration,
        mut pick: impl FnMut(&Session, ToSender) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.reader.recv_timeout(left) {
                Ok(Ok(msg)) => match pick(&self.session, msg) {
                    Some(heard) => return Some(heard),
                    None => continue,
                },
                Err(RecvTimeoutError::Timeout) => {}
                _ => return None,
            }
        }
        None
    }
}

/// What a session of one file that did not land exits with: the code
/// and the words of a single transfer (a refusal is 4, not "partial").
fn single_error((peer, name): (&str, &str), fate: &Fate, line: &str) -> anyhow::Error {
    match fate {
        Fate::Refused(why) => exit::refused(format!("{peer} refused: {why}")),
        Fate::Mismatch => exit::integrity(format!(
            "SHA-256 mismatch: {peer} received other bytes than were sent; the file was not kept"
        )),
        Fate::Failed(why) => anyhow::anyhow!("{name}: {why}"),
        // the entry went, the session did not end well (the receiver's word)
        Fate::Landed | Fate::UpToDate | Fate::Held(_) => anyhow::anyhow!("{line}"),
    }
}
