//! How a session ends on the sending side: the receiver's verdict checked
//! and summed up, or, after Ctrl-C or a lost connection, what the user is
//! told and how to resume.

use anyhow::{Context, Result};

use super::{Run, REASON_WAIT, STOP_WAIT};
use crate::exit::{self, ExitCode};
use crate::progress::tree::TreeSummary;
use crate::progress::Role;
use crate::protocol::sender::Ending;
use crate::send::resume_command;
use crate::units::human_bytes;

impl Run<'_> {
    /// Waits for the receiver's durable verdict on the whole session.
    pub(super) fn conclude(&mut self) -> Result<Ending> {
        loop {
            if let Some(ending) = self.session.ending() {
                return Ok(ending);
            }
            let msg = self.reader.wait(self.cfg.common.idle_timeout, self.conn);
            self.absorb(msg.context("before the receiver confirmed the session")?)?;
        }
    }

    /// Shows how the session ended and ends with it.
    pub(super) fn finish(mut self, ending: Ending) -> Result<()> {
        // a file alone that did not land says so in its error, not in a summary
        match self.session.is_single() && ending != Ending::Complete {
            true => self.progress.abandon(),
            false => self.progress.finish(&self.summary()),
        }
        ended(ending)
    }

    /// The session's summary, for the display.
    fn summary(&self) -> TreeSummary {
        let (ledger, journey) = (self.session.ledger(), self.journey);
        TreeSummary {
            role: Role::Send,
            name: self.plan.name.clone(),
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
        let why = (self.reader).hear(REASON_WAIT, |msg| self.session.why_lost(msg));
        why.and_then(|why| ended(why).err()).unwrap_or(err)
    }

    pub(super) fn stop(&mut self) -> anyhow::Error {
        self.conn.ignore_ctrl_c();
        let mut said = format!("interrupted after sending {}", human_bytes(self.sent));
        if self.session.stop() && self.flush().is_ok() {
            if let Some(kept) = self.reader.hear(STOP_WAIT, |msg| self.session.kept(&msg)) {
                said = format!("{said}; {kept}");
            }
        }
        exit::interrupted(format!("{said}; resume with: {}", resume_command(None)))
    }
}

/// What the session ends with: its exit code, and the line its machine
/// said.
pub(in crate::send) fn ended(ending: Ending) -> Result<()> {
    Err(match ending {
        Ending::Complete => return Ok(()),
        Ending::Partial(line) => exit::partial(line),
        Ending::Integrity(line) => exit::integrity(line),
        Ending::Refused(line) => exit::refused(line),
        Ending::Failed(line) => anyhow::anyhow!(line),
    })
}
