//! How a session ends on the sending side: the receiver's verdict checked
//! and summed up, or, after Ctrl-C or a lost connection, what the user is
//! told and how to resume.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::{Plan, Run, REASON_WAIT, STOP_WAIT};
use crate::exit::{self, ExitCode};
use crate::progress::tree::TreeSummary;
use crate::progress::Role;
use crate::protocol::ledger::{Fate, Verdict};
use crate::protocol::{Answer, Status, ToSender};
use crate::send::resume_command;
use crate::units::human_bytes;

impl Run<'_> {
    /// Waits for the receiver's durable verdict on the whole session.
    pub(super) fn conclude(mut self, plan: &Plan, journey: &crate::send::Journey) -> Result<()> {
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
        let ledger = self.session.ledger();
        let summary = TreeSummary {
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
        };
        let one = self.session.one_fate();
        if let (Some(fate), Verdict::Partial(line)) = (one, &verdict) {
            let error = single_error((&self.conn.peer, &plan.name), fate, line);
            self.progress.abandon();
            return Err(error);
        }
        // a tree's summary counts what did not land; a file alone's error says it
        match (one, &verdict) {
            (Some(_), Verdict::Integrity(_)) => self.progress.abandon(),
            _ => self.progress.finish(&summary),
        }
        match verdict {
            Verdict::Complete => Ok(()),
            Verdict::Partial(line) => Err(exit::partial(line)),
            Verdict::Integrity(line) => Err(exit::integrity(line)),
        }
    }

    /// Turns a session error into what the user sees: Ctrl-C tells the
    /// receiver and prints the resume command; a broken connection is retried.
    pub(super) fn failed(&mut self, err: anyhow::Error) -> anyhow::Error {
        if exit::code_of(&err) == ExitCode::Interrupted || crate::interrupt::requested() {
            return self.stop();
        }
        if exit::tag_of(&err) == Some(exit::Tag::Retryable) {
            // the receiver may have said why it dropped us (a full disk)
            let wait = Instant::now() + REASON_WAIT;
            while let Some(left) = wait.checked_duration_since(Instant::now()) {
                match self.reader.recv_timeout(left) {
                    // a reason the key's MAC does not cover is not the receiver's
                    Ok(Ok(ToSender::Result(o)))
                        if o.status == Status::Failed && self.session.genuine(&o) =>
                    {
                        return anyhow::anyhow!("{} failed: {}", self.conn.peer, o.message);
                    }
                    // a tree refused whole in the middle of its manifest
                    Ok(Ok(ToSender::Answer(Answer::Refuse { reason, .. }))) => {
                        return exit::refused(format!("{} refused: {reason}", self.conn.peer));
                    }
                    Ok(Ok(_)) => {}
                    _ => break,
                }
            }
        }
        err
    }

    pub(super) fn stop(&mut self) -> anyhow::Error {
        self.conn.ignore_ctrl_c();
        let mut said = format!("interrupted after sending {}", human_bytes(self.sent));
        self.session.stop();
        if self.flush().is_ok() {
            let deadline = Instant::now() + STOP_WAIT;
            while Instant::now() < deadline {
                match self.reader.recv_timeout(Duration::from_millis(100)) {
                    Ok(Ok(ToSender::Result(o))) if self.session.genuine(&o) => {
                        let one = self.session.entry(0).filter(|_| self.session.is_single());
                        said.push_str(&match one {
                            Some(entry) if !entry.stream => {
                                format!("; the receiver holds {} bytes of {}", o.held, entry.size)
                            }
                            _ => format!(
                                "; the receiver keeps what it got ({} entries in place)",
                                o.held
                            ),
                        });
                        break;
                    }
                    Ok(Ok(_)) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => break,
                }
            }
        }
        exit::interrupted(format!("{said}; resume with: {}", resume_command(None)))
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
