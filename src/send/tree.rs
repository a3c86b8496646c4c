//! A tree session on the sending side: offer the walk's entries as they
//! come, learn what the receiver wants while a second thread reads its
//! replies, then send each wanted file through the same sendfile path as a
//! single file, without a round trip per file.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::digests::{Digests, FileId, Hashing};
use super::peer::{answered, lost};
use super::replies::Reader;
use super::resume_command;
use super::walk::{self, Event, Kind, Totals};
use crate::auth::{self, Session};
use crate::config::SendConfig;
use crate::conn::Conn;
use crate::exit::{self, ExitCode};
use crate::held::Ranges;
use crate::progress::tree::{TreeProgress, TreeStart, TreeSummary};
use crate::progress::{Reporter, Role};
use crate::protocol::ledger::{Fate, Ledger, Verdict};
use crate::protocol::tree::{Entry, EntryKind, Manifest, TreeEnd, TreeOffer};
use crate::protocol::{self as proto, kind, Message, Status};
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

/// The sources of a tree session, checked and counted before connecting.
pub(super) struct Plan {
    sources: Vec<walk::Source>,
    totals: Totals,
    name: String,
    /// One file or stream named alone on the command line: a tree of one.
    pub(super) single: Option<Single>,
    /// Whole-file digests, shared with the other sessions of `-k`.
    pub(super) digests: Arc<Digests>,
}

/// What a session of one file adds to its one entry.
pub(super) struct Single {
    /// The bytes asked for (`--offset`/`--count`), when not the whole file.
    pub(super) range: Option<(u64, u64)>,
    /// `--offset` was given: the range goes as it is, whatever is held.
    pub(super) forced: bool,
    /// Said in the summary (a `--count` cut short by the end of the file).
    pub(super) note: Option<String>,
    /// stdin or a pipe: read once, so never resumed.
    pub(super) stream: Option<std::sync::Mutex<Option<Box<dyn std::io::Read + Send>>>>,
}

impl Plan {
    /// One file, or a stream, as a tree of one entry.
    pub(super) fn single(opened: super::Plan) -> Plan {
        let super::Plan {
            input,
            label,
            name,
            offset,
            count,
            forced,
            note,
        } = opened;
        let name = name.unwrap_or_else(|| crate::output::STREAM_NAME.to_string());
        let mut totals = Totals {
            entries: 1,
            files: 1,
            ..Totals::default()
        };
        let (sources, range, stream) = match input {
            super::Input::File { size, .. } => {
                let end = offset + count.unwrap_or(size - offset);
                totals.bytes = end - offset;
                let source = walk::Source {
                    path: PathBuf::from(&label),
                    top: name.clone().into_bytes(),
                };
                let range = ((offset, end) != (0, size)).then_some((offset, end));
                (vec![source], range, None)
            }
            super::Input::Stream { reader } => {
                let cap = count.map(|c| (0, c));
                (Vec::new(), cap, Some(std::sync::Mutex::new(Some(reader))))
            }
        };
        Plan {
            sources,
            totals,
            name: name.clone(),
            single: Some(Single {
                range,
                forced,
                note,
                stream,
            }),
            digests: Arc::default(),
        }
    }

    /// The same plan, taking and keeping digests in `digests`.
    pub(super) fn sharing(self, digests: Arc<Digests>) -> Plan {
        Plan { digests, ..self }
    }

    /// Whether a lost connection can be resumed: not once a stream is read.
    pub(super) fn resumable(&self) -> bool {
        !self.single.as_ref().is_some_and(|s| s.stream.is_some())
    }
}

impl Plan {
    pub(super) fn new(
        cfg: &SendConfig,
        sources: &[(PathBuf, Vec<u8>)],
        reporter: &Reporter,
    ) -> Result<Plan> {
        let plan = Plan::counted(cfg, sources)?;
        reporter.warn(
            "a tree carries files, directories, links inside it, permission bits and \
             modification times; not owners, ACLs or extended attributes",
        );
        if plan.totals.hard_links > 0 {
            reporter.warn(&format!(
                "{} files have hard links; each is sent as a separate file",
                plan.totals.hard_links
            ));
        }
        Ok(plan)
    }

    /// The sources checked and counted, without a word (`-k` counts them
    /// again for each receiver, as they are then).
    pub(super) fn counted(cfg: &SendConfig, sources: &[(PathBuf, Vec<u8>)]) -> Result<Plan> {
        for (path, _) in sources {
            std::fs::metadata(path).with_context(|| path.display().to_string())?;
        }
        let sources: Vec<walk::Source> = sources
            .iter()
            .map(|(path, top)| walk::Source {
                path: path.clone(),
                top: top.clone(),
            })
            .collect();
        let totals = walk::count(&sources, cfg.dereference);
        let first = String::from_utf8_lossy(&sources[0].top).into_owned();
        let name = match sources.len() {
            1 => first,
            n => format!("{first} and {} more", n - 1),
        };
        Ok(Plan {
            sources,
            totals,
            name,
            single: None,
            digests: Arc::default(),
        })
    }
}

/// One entry as the sender keeps it between the manifest and the data.
pub(super) struct Item {
    /// The wire path; where to read it follows from its top entry.
    pub(super) path: Vec<u8>,
    pub(super) kind: EntryKind,
    pub(super) size: u64,
    pub(super) mtime_ns: u64,
    pub(super) state: State,
    /// The bytes offered, when not the whole file.
    pub(super) range: Option<(u64, u64)>,
    /// Read from a stream, so its size is known only once it is sent.
    pub(super) stream: bool,
    /// The receiver will hold the whole file once its range lands (so the
    /// digest is the file's), decided when it is sent.
    pub(super) whole: bool,
    /// Its digest came from the cache, for this identity (forgotten if the
    /// receiver does not match it).
    pub(super) cached: Option<FileId>,
}

impl Item {
    /// The bytes offered: the range, or the whole file.
    pub(super) fn offered(&self) -> (u64, u64) {
        self.range.unwrap_or((0, self.size))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    /// No reply yet.
    Offered,
    /// The receiver wants it; `good` is what it holds and we checked,
    /// `held` what it claims and we have not checked yet, `claimed` all it
    /// says it holds (checked or not: what decides the file is whole).
    Wanted {
        held: Ranges,
        good: Ranges,
        claimed: Ranges,
    },
    /// Data sent; the receiver's verdict is awaited.
    Sent,
    /// Its fate is known and recorded.
    Settled,
}

/// A tree session in progress.
pub(super) struct Run<'a> {
    pub(super) cfg: &'a SendConfig,
    pub(super) conn: &'a mut Conn,
    pub(super) reader: Reader,
    pub(super) key: Option<Session>,
    pub(super) items: Vec<Item>,
    pub(super) ledger: Ledger,
    pub(super) walk_failed: u64,
    pub(super) go: bool,
    pub(super) result: Option<proto::Outcome>,
    pub(super) sent: u64,
    pub(super) files_done: u64,
    pub(super) zero_copy: bool,
    pub(super) progress: Box<dyn TreeProgress>,
    /// Frames (and small files' data) waiting to go out in one write.
    pub(super) pack: Vec<u8>,
    /// Where small files are read.
    pub(super) scratch: Vec<u8>,
    /// Each top entry's source path.
    pub(super) tops: HashMap<Vec<u8>, PathBuf>,
    /// Some file landed without the receiver's digest (it runs --no-verify).
    pub(super) unchecked: bool,
    /// Keeps the receiver posted while this side hashes held blocks.
    pub(super) keepalive: crate::conn::Keepalive,
    /// A session of one file: its fate decides the exit code.
    pub(super) single: Option<Fate>,
    /// The stream a session of one stream reads.
    pub(super) stream: Option<Box<dyn std::io::Read + Send>>,
    /// Warnings along the way (a held block that differs).
    pub(super) reporter: Reporter,
    /// Held blocks that differed from the source, in the session.
    pub(super) bad_blocks: u64,
    /// A file alone shows its check of held blocks: the display, and the
    /// bytes found good.
    pub(super) verifying: Option<(Box<dyn crate::progress::Progress>, u64)>,
    /// Where whole-file digests come from, and how many came how.
    pub(super) hashing: Hashing,
}

pub(super) fn session(
    cfg: &SendConfig,
    plan: &Plan,
    conn: &mut Conn,
    reporter: &Reporter,
    journey: &super::Journey,
) -> Result<()> {
    let nonce = match cfg.common.key {
        Some(_) => Some(auth::nonce().context("no randomness for the key handshake")?),
        None => None,
    };
    let forced = plan.single.as_ref().is_some_and(|s| s.forced);
    let offer = TreeOffer {
        entries: plan.totals.entries,
        bytes: plan.totals.bytes,
        verify: cfg.common.verify,
        resume: cfg.resume && !forced,
        fresh: !cfg.resume,
        nonce,
        single: plan.single.is_some(),
    };
    let body = offer.encode();
    let mut hello = Vec::new();
    proto::write_preamble(&mut hello)?;
    proto::write_frame(&mut hello, kind::OFFER, &body)?;
    conn.write_all(&hello).map_err(|e| lost(conn, e))?;
    let (key, _) = answered(cfg, conn, &body, nonce)?;
    let start = TreeStart {
        role: Role::Send,
        name: plan.name.clone(),
        peer: conn.peer.clone(),
        entries: plan.totals.entries,
        bytes: plan.totals.bytes,
    };
    let progress = match &plan.single {
        Some(single) => reporter.one_file(&start, single.note.clone()),
        None => reporter.tree(&start),
    };
    let stream = plan
        .single
        .as_ref()
        .and_then(|s| s.stream.as_ref())
        .and_then(|m| m.lock().ok()?.take());
    let mut run = Run {
        cfg,
        reader: Reader::spawn(conn)?,
        conn,
        key,
        items: Vec::new(),
        ledger: Ledger::default(),
        walk_failed: 0,
        go: false,
        result: None,
        sent: 0,
        files_done: 0,
        zero_copy: cfg.sendfile,
        progress,
        pack: Vec::with_capacity(PACK_WRITE + PACK_MAX as usize + 8192),
        scratch: vec![0u8; PACK_MAX as usize],
        tops: plan
            .sources
            .iter()
            .map(|s| (s.top.clone(), s.path.clone()))
            .collect(),
        unchecked: false,
        keepalive: crate::conn::Keepalive::new(),
        // the one entry's fate, once known
        single: plan.single.as_ref().map(|_| Fate::Landed),
        stream,
        reporter: reporter.clone(),
        bad_blocks: 0,
        verifying: None,
        hashing: Hashing {
            cache: plan.digests.clone(),
            ..Hashing::default()
        },
    };
    let outcome = run.manifest(plan, reporter).and_then(|()| run.data());
    journey.sent_now.set(run.sent);
    match outcome {
        Ok(()) => run.conclude(plan, journey),
        Err(e) => {
            run.progress.abandon();
            Err(run.failed(e))
        }
    }
}

impl Run<'_> {
    /// Walks and writes every entry, taking replies as they come.
    pub(super) fn manifest(&mut self, plan: &Plan, reporter: &Reporter) -> Result<()> {
        let mut batch = Vec::with_capacity(BATCH + 8192);
        if let Some(entry) = self.stream_entry(plan) {
            let (mut item, mut wire) = (item_of(&entry), wire_entry(0, entry));
            (item.stream, wire.stream) = (true, true);
            item.range = plan.single.as_ref().and_then(|s| s.range);
            wire.range = item.range;
            self.items.push(item);
            Message::Entry(wire).append_to(&mut batch);
        }
        for event in walk::Walk::new(plan.sources.clone(), self.cfg.dereference) {
            let entry = match event {
                Event::Entry(entry) => entry,
                Event::Skipped { path, why } => {
                    reporter.warn(&format!("skipped {path}: {why}"));
                    continue;
                }
                Event::Failed { path, why } => {
                    self.walk_failed += 1;
                    self.settle_path(&path, "file", Fate::Failed(why));
                    continue;
                }
            };
            let mut item = item_of(&entry);
            let mut wire = wire_entry(self.items.len() as u64, entry);
            if let Some(single) = &plan.single {
                (item.range, wire.range) = (single.range, single.range);
            }
            self.items.push(item);
            Message::Entry(wire).append_to(&mut batch);
            if batch.len() >= BATCH {
                self.write(&batch)?;
                batch.clear();
                self.absorb_ready()?;
            }
        }
        Message::Manifest(Manifest {
            entries: self.items.len() as u64,
            failed: self.walk_failed,
        })
        .append_to(&mut batch);
        self.write(&batch)?;
        while !self.go {
            let msg = self.wait()?;
            self.absorb(msg)?;
        }
        Ok(())
    }

    /// The one entry of a session of one stream: its size is unknown.
    fn stream_entry(&self, plan: &Plan) -> Option<walk::Entry> {
        let single = plan.single.as_ref()?;
        single.stream.as_ref()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Some(walk::Entry {
            path: plan.name.clone().into_bytes(),
            source: PathBuf::new(),
            kind: Kind::File { size: 0 },
            mode: 0o644,
            mtime_ns: now,
        })
    }

    /// Sends every file the receiver asked for, in order.
    pub(super) fn data(&mut self) -> Result<()> {
        for id in 0..self.items.len() {
            if crate::interrupt::requested() {
                return Err(exit::interrupted("interrupted"));
            }
            // replies arrive in order, and all of them came before GO
            self.absorb_ready()?;
            if matches!(self.items[id].state, State::Wanted { .. }) {
                self.send_one(id)?;
            }
        }
        let end = TreeEnd {
            sent: self.sent,
            failed: self.walk_failed,
        };
        self.send(&Message::End(end))
    }

    /// Waits for the receiver's durable verdict on the whole session.
    pub(super) fn conclude(mut self, plan: &Plan, journey: &super::Journey) -> Result<()> {
        while self.result.is_none() {
            let msg = self
                .wait()
                .map_err(|e| e.context("before the receiver confirmed the session"))?;
            self.absorb(msg)?;
        }
        let outcome = self.result.take().expect("the loop waits for it");
        if let Some(key) = &self.key {
            let mac = outcome.mac.unwrap_or_default();
            if !key.check_result(outcome.status as u8, outcome.held, &mac) {
                self.progress.abandon();
                let why =
                    "the receiver's answer does not carry the key's MAC (altered in transit?)";
                return Err(exit::integrity(format!("{}: {why}", self.conn.peer)));
            }
        }
        for item in self.items.iter().filter(|i| i.state != State::Settled) {
            // only a receiver that lost track leaves entries unanswered
            let path = lossy(&item.path);
            self.ledger
                .record(&path, &Fate::Failed("no answer from the receiver".into()));
        }
        let summary = TreeSummary {
            role: Role::Send,
            name: plan.name.clone(),
            path: None,
            entries: self.items.len() as u64 + self.walk_failed,
            files: self.files_done,
            up_to_date: self.ledger.up_to_date,
            not_landed: self.ledger.not_landed,
            bytes: journey.sent_before + self.sent,
            elapsed: journey.began.elapsed(),
            reconnects: journey.reconnects,
            sent_before: journey.sent_before,
            zero_copy: self.zero_copy && self.sent > 0,
            verified: self.cfg.common.verify && !self.unchecked,
            digests: (self.hashing.computed, self.hashing.cached),
        };
        let verdict = match (self.ledger.verdict(), outcome.status) {
            (Verdict::Complete, Status::Ok) if outcome.held != self.ledger.accounted() => {
                Verdict::Partial(format!(
                    "{} accounts for {} entries, this side for {}",
                    self.conn.peer,
                    outcome.held,
                    self.ledger.accounted()
                ))
            }
            (Verdict::Complete, Status::Ok) => Verdict::Complete,
            (Verdict::Complete, _) => {
                Verdict::Partial(format!("{}: {}", self.conn.peer, outcome.message))
            }
            (verdict, _) => verdict,
        };
        if let (Some(fate), Verdict::Partial(line)) = (&self.single, &verdict) {
            self.progress.abandon();
            return Err(single_error((&self.conn.peer, &plan.name), fate, line));
        }
        // a tree's summary counts what did not land; a file alone's error says it
        match (&self.single, &verdict) {
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
                match self.reader.rx.recv_timeout(left) {
                    Ok(Ok(Message::Result(o))) if o.status == Status::Failed => {
                        return anyhow::anyhow!("{} failed: {}", self.conn.peer, o.message);
                    }
                    Ok(Ok(_)) => {}
                    _ => break,
                }
            }
        }
        err
    }

    pub(super) fn stop(&mut self) -> anyhow::Error {
        self.conn.finishing = true;
        let mut said = format!("interrupted after sending {}", human_bytes(self.sent));
        if self.send(&Message::Stop).is_ok() {
            let deadline = Instant::now() + STOP_WAIT;
            while Instant::now() < deadline {
                match self.reader.rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(Ok(Message::Result(o))) => {
                        said.push_str(&match (&self.single, self.items.first()) {
                            (Some(_), Some(item)) if !item.stream => {
                                format!("; the receiver holds {} bytes of {}", o.held, item.size)
                            }
                            _ => format!(
                                "; the receiver keeps what it got ({} entries in place)",
                                o.held
                            ),
                        });
                        break;
                    }
                    Ok(Ok(_)) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => break,
                }
            }
        }
        exit::interrupted(format!("{said}; resume with: {}", resume_command(None)))
    }

    pub(super) fn write(&mut self, bytes: &[u8]) -> Result<()> {
        // whole frames or none: Ctrl-C is looked at between writes, so a
        // STOP never lands in the middle of a frame (the idle timeout still holds)
        self.conn.finishing = true;
        let written = self.conn.write_all(bytes);
        self.conn.finishing = false;
        written.map_err(|e| lost(self.conn, e))
    }

    /// Sends a frame now, after whatever is packed.
    pub(super) fn send(&mut self, msg: &Message) -> Result<()> {
        self.queue(msg);
        self.flush()
    }

    /// Adds a frame to the next write.
    pub(super) fn queue(&mut self, msg: &Message) {
        msg.append_to(&mut self.pack);
    }

    pub(super) fn flush(&mut self) -> Result<()> {
        if self.pack.is_empty() {
            return Ok(());
        }
        let pack = std::mem::take(&mut self.pack);
        let written = self.write(&pack);
        self.pack = pack;
        self.pack.clear();
        written
    }
}

/// What a session of one file that did not land exits with: the code
/// and the words of a single transfer (a refusal is 4, not "partial").
pub(super) fn single_error((peer, name): (&str, &str), fate: &Fate, line: &str) -> anyhow::Error {
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

fn item_of(entry: &walk::Entry) -> Item {
    let (kind, size) = match entry.kind {
        Kind::File { size } => (EntryKind::File, size),
        Kind::Dir => (EntryKind::Dir, 0),
        Kind::Link { .. } => (EntryKind::Link, 0),
    };
    Item {
        path: entry.path.clone(),
        kind,
        size,
        mtime_ns: entry.mtime_ns,
        state: State::Offered,
        range: None,
        stream: false,
        whole: true,
        cached: None,
    }
}

fn wire_entry(id: u64, entry: walk::Entry) -> Entry {
    let (kind, size, target) = match entry.kind {
        Kind::File { size } => (EntryKind::File, size, Vec::new()),
        Kind::Dir => (EntryKind::Dir, 0, Vec::new()),
        Kind::Link { target } => (EntryKind::Link, 0, target),
    };
    Entry {
        id,
        path: entry.path,
        kind,
        size,
        mode: entry.mode,
        mtime_ns: entry.mtime_ns,
        target,
        range: None,
        stream: false,
    }
}

/// Where an entry is read: its top source's path, then the rest of its
/// wire path (kept once per entry, not twice).
pub(super) fn source_of(tops: &HashMap<Vec<u8>, PathBuf>, path: &[u8]) -> PathBuf {
    let (top, rest) = match path.iter().position(|b| *b == b'/') {
        Some(at) => (&path[..at], &path[at + 1..]),
        None => (path, &[][..]),
    };
    let mut source = tops.get(top).cloned().unwrap_or_default();
    for part in rest.split(|b| *b == b'/').filter(|p| !p.is_empty()) {
        #[cfg(unix)]
        source.push(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(part));
        #[cfg(not(unix))]
        source.push(String::from_utf8_lossy(part).as_ref());
    }
    source
}

pub(super) fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Link => "link",
    }
}

/// A wire path as text: lossy UTF-8 (escaped where it is printed).
pub(super) fn lossy(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}
