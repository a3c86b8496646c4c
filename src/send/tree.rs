//! A tree session on the sending side: offer the walk's entries as they
//! come, learn what the receiver wants while a second thread reads its
//! replies, then send each wanted file (tree_files.rs) without a round
//! trip per file; then take the receiver's verdict, or, after Ctrl-C or a
//! lost connection, tell the user what landed and how to resume.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};

mod plan;

pub(super) use plan::Outgoing;
use plan::{wire_entry, Sources};

use super::digests::{FileId, Hashing};
use super::peer::{answered, key_exchange, lost};
use super::replies::Reader;
use super::resume_command;
use super::walk;
use crate::auth;
use crate::config::{Peer, SendConfig};
use crate::conn::Conn;
use crate::exit::{self, ExitCode};
use crate::progress::tree::{self as tree_progress, TreeProgress, TreeStart, TreeSummary};
use crate::progress::{Reporter, Role};
use crate::protocol::ledger::Fate;
use crate::protocol::sender::{Ending, Event, Phase, Session, Settled, Violation};
use crate::protocol::{self as proto, kind, ToSender};
use crate::units::human_bytes;

/// Manifest frames are gathered into writes of about this size.
const BATCH: usize = 64 << 10;
/// Files up to this size are hashed before they are sent, on this thread;
/// larger ones on a thread of their own while sendfile runs.
pub(super) const HASH_INLINE: u64 = 4 << 20;
/// Files up to this size are read once (for their digest) and packed,
/// frames and data, into writes of about `PACK_WRITE`: for thousands of
/// small files a few large writes beat a sendfile call and three frames each.
pub(super) const PACK_MAX: u64 = 64 << 10;
pub(super) const PACK_WRITE: usize = 256 << 10;
/// How long a stopping sender waits for the receiver to say what it keeps.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// How long a failed sender waits for the receiver's reason (a full disk).
const REASON_WAIT: Duration = Duration::from_secs(1);

/// A tree session in progress: the I/O around the session machine.
pub(super) struct Run<'a> {
    pub(super) cfg: &'a SendConfig,
    pub(super) plan: &'a Outgoing,
    pub(super) journey: &'a super::Journey,
    pub(super) conn: &'a mut Conn,
    pub(super) reader: Reader,
    /// The session's rules: entries, their fates, the verdict, the frames to send.
    pub(super) session: Session,
    /// Where the entries are read.
    pub(super) sources: Sources,
    pub(super) sent: u64,
    pub(super) zero_copy: bool,
    pub(super) progress: Box<dyn TreeProgress>,
    /// Frames (and small files' data) waiting to go out in one write.
    pub(super) pack: Vec<u8>,
    /// Keeps the receiver posted while this side hashes held blocks.
    pub(super) keepalive: crate::conn::Keepalive,
    /// Warnings along the way (a held block that differs).
    pub(super) reporter: &'a Reporter,
    /// A file alone shows its check of held blocks.
    pub(super) verifying: Option<Box<dyn crate::progress::Progress>>,
    /// How many whole-file digests came how.
    pub(super) hashing: Hashing,
    /// The files whose digests came from the cache, with the identity they
    /// came for (forgotten if the receiver does not match it); kept aside,
    /// as few files have one.
    pub(super) cached: HashMap<u64, FileId>,
}

pub(super) fn session(
    cfg: &SendConfig,
    plan: &Outgoing,
    conn: &mut Conn,
    reporter: &Reporter,
    journey: &super::Journey,
) -> Result<()> {
    let mut session = Session::new(plan.alone.clone(), cfg.resume, conn.peer.as_str(), None);
    let key = offer(cfg, plan, conn, &session)?;
    session.set_key(key.map(|k| Box::new(k) as Box<dyn crate::protocol::Keyed + Send>));
    let start = TreeStart {
        role: Role::Send,
        name: plan.name.as_str().into(),
        peer: conn.peer.clone(),
        entries: plan.totals.entries,
        bytes: plan.totals.bytes,
        counted: plan.alone.is_some(),
    };
    let progress = match plan.alone {
        Some(_) => reporter.one_file(&start, plan.note.clone()),
        None => reporter.tree(&start),
    };
    let mut run = Run {
        cfg,
        plan,
        journey,
        reader: Reader::spawn(conn)?,
        session,
        conn,
        sources: Sources::new(plan),
        sent: 0,
        zero_copy: cfg.sendfile,
        progress,
        pack: Vec::with_capacity(PACK_WRITE + PACK_MAX as usize + 8192),
        keepalive: crate::conn::Keepalive::new(),
        reporter,
        verifying: None,
        hashing: Hashing::default(),
        cached: HashMap::new(),
    };
    let outcome = (run.manifest())
        .and_then(|()| run.data())
        .and_then(|()| run.conclude());
    journey.sent_now.set(run.sent);
    match outcome {
        Ok(ending) => run.finish(ending),
        Err(e) => {
            run.progress.abandon();
            Err(run.failed(e))
        }
    }
}

/// Offers the session (after the key exchange, when encrypted) and takes
/// the receiver's answer; the key's session, with a key.
fn offer(
    cfg: &SendConfig,
    plan: &Outgoing,
    conn: &mut Conn,
    session: &Session,
) -> Result<Option<auth::Session>> {
    let nonce = match cfg.common.key {
        Some(_) => Some(auth::nonce().context("no randomness for the key handshake")?),
        None => None,
    };
    let totals = (plan.totals.entries, plan.totals.bytes);
    let body = session
        .tree_offer(totals, cfg.common.verify, nonce)
        .encode();
    let mut hello = Vec::new();
    match &cfg.common.secret {
        // encrypted: the key exchange first, and the offer in a record
        Some(secret) => {
            let listening = matches!(cfg.peer, Peer::Listen(_));
            key_exchange(conn, secret, listening)?;
        }
        None => proto::write_preamble(&mut hello)?,
    }
    proto::write_frame(&mut hello, kind::OFFER, &body)?;
    conn.write_all(&hello).map_err(|e| lost(conn, e))?;
    let key = answered(cfg, conn, &body, nonce)?;
    // a receiver that answered the offer (and proved the secret) is no
    // longer a stranger on a listening sender
    conn.trusted();
    Ok(key)
}

impl Run<'_> {
    /// Walks the sources and offers each entry as it is found (the
    /// receiver answers while the walk goes on), taking replies as they come.
    fn manifest(&mut self) -> Result<()> {
        let (plan, reporter, deref) = (self.plan, self.reporter, self.cfg.dereference);
        let totals = match plan.stream.is_some() {
            true => {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                self.session
                    .offer_stream(now.map_or(0, |d| d.as_nanos() as u64));
                self.sources.walked.push(None);
                plan.totals
            }
            false => walk::gather(&plan.sources, deref, |event, walked| {
                match event {
                    walk::Event::Entry(entry) => {
                        self.session.offer(wire_entry(entry));
                        self.sources.walked.push(walked);
                        if self.session.outbox_len() >= BATCH {
                            self.flush()?;
                            self.absorb_ready()?;
                        }
                    }
                    walk::Event::Skipped { path, why } => {
                        reporter.warn(&format!("skipped {path}: {why}"))
                    }
                    walk::Event::Failed { path, why } => {
                        let settled = self.session.walk_failed(&path, &why);
                        self.show(&settled);
                    }
                }
                Ok::<(), anyhow::Error>(())
            })?,
        };
        if plan.alone.is_none() {
            self.progress.totals(totals.entries, totals.bytes);
            if totals.hard_links > 0 {
                reporter.warn(&format!(
                    "{} files have hard links; each is sent as a separate file",
                    totals.hard_links
                ));
            }
        }
        self.session.manifest_done();
        self.flush()?;
        while self.session.phase() == Phase::Offering {
            let msg = self.reader.wait(self.cfg.common.idle_timeout, self.conn)?;
            self.absorb(msg)?;
        }
        Ok(())
    }

    /// Sends every file the receiver asked for, in order.
    pub(super) fn data(&mut self) -> Result<()> {
        for id in 0..self.session.len() {
            if crate::interrupt::requested() {
                return Err(exit::interrupted("interrupted"));
            }
            // replies arrive in order, and all of them came before GO
            self.absorb_ready()?;
            if let Some(job) = self.session.to_send(id) {
                self.send_one(job)?;
            }
        }
        self.session.end(self.sent);
        self.flush()
    }

    /// Writes what is packed, the machine's frames behind it.
    pub(super) fn flush(&mut self) -> Result<()> {
        self.session.move_outbox_to(&mut self.pack);
        if self.pack.is_empty() {
            return Ok(());
        }
        // whole frames or none: Ctrl-C is looked at between writes, so a
        // STOP never lands in the middle of a frame (the idle timeout still holds)
        let written = self.conn.finishing().write_all(&self.pack);
        self.pack.clear();
        written.map_err(|e| lost(self.conn, e))
    }

    /// Shows an entry's fate (the machine recorded it).
    pub(super) fn show(&mut self, settled: &Settled) {
        let (path, kind) = (settled.path.as_str(), settled.kind_name());
        let sha256 = settled.sha256.map(|d| proto::hex(&d));
        let progress = &mut *self.progress;
        tree_progress::show(progress, (path, kind), settled.bytes, sha256, &settled.fate);
    }

    /// Takes every frame that has already arrived.
    pub(super) fn absorb_ready(&mut self) -> Result<()> {
        while let Ok(msg) = self.reader.next(None) {
            self.absorb(msg?)?;
        }
        Ok(())
    }

    /// Hands one frame from the receiver to the session and does what it
    /// says.
    pub(super) fn absorb(&mut self, msg: ToSender) -> Result<()> {
        match self.session.handle(msg).map_err(violated)? {
            None | Some(Event::Go | Event::Concluded) => Ok(()),
            Some(Event::Settled(settled)) => {
                let cached = settled.id.and_then(|id| self.cached.get(&id));
                if let (Fate::Mismatch, Some(cached)) = (&settled.fate, cached) {
                    // whatever went wrong, the next receiver gets a digest read afresh
                    self.plan.digests.forget(cached);
                }
                self.show(&settled);
                Ok(())
            }
            Some(Event::CheckBlocks { id, blocks, last }) => self.check_blocks(id, &blocks, last),
            Some(Event::Ended(ending)) => ended(ending),
        }
    }

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

/// A frame that broke the session's rules, as the session ends with it: a
/// MAC that does not check is an integrity failure (exit 3).
pub(super) fn violated(v: Violation) -> anyhow::Error {
    match v.is_forgery() {
        true => exit::integrity(v.to_string()),
        false => anyhow::Error::new(v),
    }
}
