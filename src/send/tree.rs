//! A tree session on the sending side: offer the walk's entries as they
//! come, learn what the receiver wants while a second thread reads its
//! replies, then send each wanted file through the same sendfile path as a
//! single file, without a round trip per file.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

mod ending;
mod plan;

use plan::stream_item;
pub(super) use plan::Plan;

use super::digests::{FileId, Hashing};
use super::peer::{answered, lost};
use super::replies::Reader;
use super::walk::{self, Event, Kind};
use crate::auth::{self, Session};
use crate::config::{Peer, SendConfig};
use crate::conn::Conn;
use crate::exit;
use crate::progress::tree::{TreeProgress, TreeStart};
use crate::progress::{Reporter, Role};
use crate::protocol::ledger::{Fate, Ledger};
use crate::protocol::sender::Sending;
use crate::protocol::session::SenderPhase;
use crate::protocol::tree::{Entry, EntryKind, Manifest, TreeEnd, TreeOffer};
use crate::protocol::{self as proto, kind, ToReceiver};
use crate::secure::handshake;

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

/// One entry as the sender keeps it between the manifest and the data.
pub(super) struct Item {
    /// The wire path; where to read it follows from its top entry.
    pub(super) path: Vec<u8>,
    pub(super) kind: EntryKind,
    pub(super) size: u64,
    pub(super) mtime_ns: u64,
    pub(super) state: Sending,
    /// The bytes offered, when not the whole file.
    pub(super) range: Option<(u64, u64)>,
    /// Read from a stream, so its size is known only once it is sent.
    pub(super) stream: bool,
    /// The receiver will hold the whole file once its range lands (so the
    /// digest is the file's), decided when it is sent.
    pub(super) whole: bool,
    /// Permission bits, for the wire.
    pub(super) mode: u32,
    /// A file's identity when walked: what it must still be once read.
    pub(super) walked: Option<FileId>,
}

impl Item {
    /// The bytes offered: the range, or the whole file.
    pub(super) fn offered(&self) -> (u64, u64) {
        self.range.unwrap_or((0, self.size))
    }
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
    /// Where the session stands, as the receiver's messages move it.
    pub(super) phase: SenderPhase,
    pub(super) result: Option<proto::Outcome>,
    pub(super) sent: u64,
    pub(super) files_done: u64,
    pub(super) zero_copy: bool,
    pub(super) progress: Box<dyn TreeProgress>,
    /// Frames (and small files' data) waiting to go out in one write.
    pub(super) pack: Vec<u8>,
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
    /// The files whose digests came from the cache, with the identity they
    /// came for (forgotten if the receiver does not match it); kept aside,
    /// as few files have one.
    pub(super) cached: HashMap<usize, FileId>,
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
    // a file alone is counted (its range); a tree as its entries are sent
    let (totals, streamed) = (plan.totals, plan.single.is_none());
    let offer = TreeOffer {
        entries: totals.entries,
        bytes: totals.bytes,
        verify: cfg.common.verify,
        resume: cfg.resume && !forced,
        fresh: !cfg.resume,
        nonce,
        single: plan.single.is_some(),
        streamed,
    };
    let body = offer.encode();
    let mut hello = Vec::new();
    match &cfg.common.secret {
        // encrypted: the key exchange first, and the offer in a record
        Some(secret) => {
            let listening = matches!(cfg.peer, Peer::Listen(_));
            handshake::as_sender(conn, secret, listening)?;
        }
        None => proto::write_preamble(&mut hello)?,
    }
    proto::write_frame(&mut hello, kind::OFFER, &body)?;
    conn.write_all(&hello).map_err(|e| lost(conn, e))?;
    let (key, _) = answered(cfg, conn, &body, nonce)?;
    // a receiver that answered the offer (and proved the secret) is no
    // longer a stranger on a listening sender
    conn.trusted();
    let start = TreeStart {
        role: Role::Send,
        name: plan.name.as_str().into(),
        peer: conn.peer.clone(),
        entries: totals.entries,
        bytes: totals.bytes,
        counted: !streamed,
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
        phase: SenderPhase::default(),
        result: None,
        sent: 0,
        files_done: 0,
        zero_copy: cfg.sendfile,
        progress,
        pack: Vec::with_capacity(PACK_WRITE + PACK_MAX as usize + 8192),
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
        cached: HashMap::new(),
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
    /// Walks the sources and sends each entry as it is found (the receiver
    /// answers while the walk goes on), taking replies as they come.
    fn manifest(&mut self, plan: &Plan, reporter: &Reporter) -> Result<()> {
        let mut batch = Vec::with_capacity(BATCH + 8192);
        let range = plan.single.as_ref().and_then(|s| s.range);
        let stream = plan.single.as_ref().is_some_and(|s| s.stream.is_some());
        let deref = self.cfg.dereference;
        let mut offer = |run: &mut Run, item: Item, target: Vec<u8>| -> Result<()> {
            let mut item = item;
            item.range = range;
            let mut wire = wire_entry(run.items.len() as u64, &item);
            (wire.range, wire.stream, wire.target) = (item.range, item.stream, target);
            ToReceiver::Entry(wire).append_to(&mut batch);
            run.items.push(item);
            if batch.len() >= BATCH {
                run.write(&batch)?;
                batch.clear();
                run.absorb_ready()?;
            }
            Ok(())
        };
        let totals = match stream {
            true => {
                offer(self, stream_item(&plan.name), Vec::new())?;
                plan.totals
            }
            false => walk::gather(&plan.sources, deref, |event, id| {
                match event {
                    Event::Entry(mut entry) => {
                        let target = match &mut entry.kind {
                            Kind::Link { target } => std::mem::take(target),
                            _ => Vec::new(),
                        };
                        offer(self, item_of(entry, id), target)?;
                    }
                    Event::Skipped { path, why } => {
                        reporter.warn(&format!("skipped {path}: {why}"))
                    }
                    Event::Failed { path, why } => {
                        self.walk_failed += 1;
                        self.settle_path(&path, "file", Fate::Failed(why.into()));
                    }
                }
                Ok::<(), anyhow::Error>(())
            })?,
        };
        if plan.single.is_none() {
            self.progress.totals(totals.entries, totals.bytes);
            if totals.hard_links > 0 {
                reporter.warn(&format!(
                    "{} files have hard links; each is sent as a separate file",
                    totals.hard_links
                ));
            }
        }
        ToReceiver::Manifest(Manifest {
            entries: self.items.len() as u64,
            failed: self.walk_failed,
        })
        .append_to(&mut batch);
        self.write(&batch)?;
        while self.phase != SenderPhase::Sending {
            let msg = self.wait()?;
            self.absorb(msg)?;
        }
        Ok(())
    }

    /// Sends every file the receiver asked for, in order.
    pub(super) fn data(&mut self) -> Result<()> {
        for id in 0..self.items.len() {
            if crate::interrupt::requested() {
                return Err(exit::interrupted("interrupted"));
            }
            // replies arrive in order, and all of them came before GO
            self.absorb_ready()?;
            if matches!(self.items[id].state, Sending::Wanted(_)) {
                self.send_one(id)?;
            }
        }
        let end = TreeEnd {
            sent: self.sent,
            failed: self.walk_failed,
        };
        self.send(&ToReceiver::End(end))
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
    pub(super) fn send(&mut self, msg: &ToReceiver) -> Result<()> {
        self.queue(msg);
        self.flush()
    }

    /// Adds a frame to the next write.
    pub(super) fn queue(&mut self, msg: &ToReceiver) {
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

/// The record a session keeps of a walked entry (its source path is
/// not kept: it follows from the wire path).
pub(super) fn item_of(entry: walk::Entry, walked: Option<FileId>) -> Item {
    let (kind, size) = match entry.kind {
        Kind::File { size } => (EntryKind::File, size),
        Kind::Dir => (EntryKind::Dir, 0),
        Kind::Link { .. } => (EntryKind::Link, 0),
    };
    Item {
        path: entry.path,
        kind,
        size,
        mtime_ns: entry.mtime_ns,
        state: Sending::Offered,
        range: None,
        stream: false,
        whole: true,
        mode: entry.mode,
        walked,
    }
}

fn wire_entry(id: u64, item: &Item) -> Entry {
    Entry {
        id,
        path: item.path.clone(),
        kind: item.kind,
        size: item.size,
        mode: item.mode,
        mtime_ns: item.mtime_ns,
        target: Vec::new(),
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
