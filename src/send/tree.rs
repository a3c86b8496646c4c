//! A tree session on the sending side: offer the walk's entries as they
//! come, learn what the receiver wants while a second thread reads its
//! replies, then send each wanted file through the same sendfile path as a
//! single file, without a round trip per file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

use super::peer::{answered, lost};
use super::walk::{self, Event, Kind, Totals};
use super::{resume_command, send_file_ranges, Framing};
use crate::auth::{self, Session};
use crate::config::SendConfig;
use crate::conn::{with_keepalive, Conn};
use crate::copy::Sent;
use crate::exit::{self, ExitCode};
use crate::hash::{self, Sha};
use crate::held::Ranges;
use crate::progress::tree::{EntryEvent, Status as Shown, TreeProgress, TreeStart, TreeSummary};
use crate::progress::{Reporter, Role};
use crate::protocol::ledger::{Fate, Ledger, Verdict};
use crate::protocol::tree::{
    Action, Begin, Entry, EntryKind, FileEnd, Manifest, TreeEnd, TreeOffer,
};
use crate::protocol::{self as proto, kind, Message, Status};
use crate::units::human_bytes;

/// Manifest frames are gathered into writes of about this size.
const BATCH: usize = 64 << 10;
/// Files up to this size are hashed before they are sent, on this thread;
/// larger ones on a thread of their own while sendfile runs.
const HASH_INLINE: u64 = 4 << 20;
/// Files up to this size are read once (for their digest) and packed,
/// frames and data, into writes of about `PACK_WRITE`: for thousands of
/// small files a few large writes beat a sendfile call and three frames each.
const PACK_MAX: u64 = 64 << 10;
const PACK_WRITE: usize = 256 << 10;
/// How long a stopping sender waits for the receiver to say what it keeps.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// The sources of a tree session, checked and counted before connecting.
pub(super) struct Plan {
    sources: Vec<walk::Source>,
    totals: Totals,
    name: String,
}

impl Plan {
    pub(super) fn new(
        cfg: &SendConfig,
        sources: &[(PathBuf, Vec<u8>)],
        reporter: &Reporter,
    ) -> Result<Plan> {
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
        reporter.warn(
            "a tree carries files, directories, links inside it, permission bits and \
             modification times; not owners, ACLs or extended attributes",
        );
        if totals.hard_links > 0 {
            reporter.warn(&format!(
                "{} files have hard links; each is sent as a separate file",
                totals.hard_links
            ));
        }
        let first = String::from_utf8_lossy(&sources[0].top).into_owned();
        let name = match sources.len() {
            1 => first,
            n => format!("{first} and {} more", n - 1),
        };
        Ok(Plan {
            sources,
            totals,
            name,
        })
    }
}

/// One entry as the sender keeps it between the manifest and the data.
struct Item {
    /// The wire path; where to read it follows from its top entry.
    path: Vec<u8>,
    kind: EntryKind,
    size: u64,
    mtime_ns: u64,
    state: State,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// No reply yet.
    Offered,
    /// The receiver wants it; `good` is what it holds and we checked,
    /// `held` what it claims and we have not checked yet.
    Wanted { held: Ranges, good: Ranges },
    /// Data sent; the receiver's verdict is awaited.
    Sent,
    /// Its fate is known and recorded.
    Settled,
}

/// The receiver's frames, read on a thread of their own so that neither
/// side ever waits for the other to drain a full socket.
struct Reader {
    rx: mpsc::Receiver<Result<Message>>,
    stream: std::net::TcpStream,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    fn spawn(conn: &Conn) -> Result<Reader> {
        let stream = conn
            .stream
            .try_clone()
            .context("a second handle on the socket")?;
        // The session's own waits apply the idle timeout; this one only reads.
        let mut conn = Conn::new(stream.try_clone()?, Duration::from_secs(u32::MAX as u64))?;
        conn.finishing = true;
        // replies and results are small: read many with each call
        let mut reading = std::io::BufReader::with_capacity(64 << 10, conn);
        let (tx, rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("zc-replies".into())
            .spawn(move || loop {
                let msg = proto::read_frame(&mut reading).and_then(|f| Message::decode(&f));
                let last = !matches!(msg, Ok(ref m) if !matches!(m, Message::Result(_)));
                if tx.send(msg).is_err() || last {
                    return;
                }
            })?;
        Ok(Reader {
            rx,
            stream,
            thread: Some(thread),
        })
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // wakes the thread if it still waits for a frame
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A tree session in progress.
struct Run<'a> {
    cfg: &'a SendConfig,
    conn: &'a mut Conn,
    reader: Reader,
    key: Option<Session>,
    items: Vec<Item>,
    ledger: Ledger,
    walk_failed: u64,
    go: bool,
    result: Option<proto::Outcome>,
    sent: u64,
    files_done: u64,
    zero_copy: bool,
    progress: Box<dyn TreeProgress>,
    /// Frames (and small files' data) waiting to go out in one write.
    pack: Vec<u8>,
    /// Where small files are read.
    scratch: Vec<u8>,
    /// Each top entry's source path.
    tops: HashMap<Vec<u8>, PathBuf>,
}

pub(super) fn session(
    cfg: &SendConfig,
    plan: &Plan,
    conn: &mut Conn,
    reporter: &Reporter,
    began: Instant,
) -> Result<()> {
    let nonce = match cfg.common.key {
        Some(_) => Some(auth::nonce().context("no randomness for the key handshake")?),
        None => None,
    };
    let offer = TreeOffer {
        entries: plan.totals.entries,
        bytes: plan.totals.bytes,
        verify: cfg.common.verify,
        resume: cfg.resume,
        fresh: !cfg.resume,
        nonce,
    };
    let body = offer.encode();
    let mut hello = Vec::new();
    proto::write_preamble(&mut hello)?;
    proto::write_frame(&mut hello, kind::OFFER, &body)?;
    conn.write_all(&hello).map_err(|e| lost(conn, e))?;
    let (key, _) = answered(cfg, conn, &body, nonce)?;
    let progress = reporter.tree(&TreeStart {
        role: Role::Send,
        name: plan.name.clone(),
        peer: conn.peer.clone(),
        entries: plan.totals.entries,
        bytes: plan.totals.bytes,
    });
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
    };
    let outcome = run.manifest(plan, reporter).and_then(|()| run.data());
    match outcome {
        Ok(()) => run.conclude(plan, began),
        Err(e) => {
            run.progress.abandon();
            Err(run.failed(e))
        }
    }
}

impl Run<'_> {
    /// Walks and writes every entry, taking replies as they come.
    fn manifest(&mut self, plan: &Plan, reporter: &Reporter) -> Result<()> {
        let mut batch = Vec::with_capacity(BATCH + 8192);
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
            self.items.push(item_of(&entry));
            let id = self.items.len() as u64 - 1;
            Message::Entry(wire_entry(id, entry)).append_to(&mut batch);
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

    /// Sends every file the receiver asked for, in order.
    fn data(&mut self) -> Result<()> {
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

    /// Sends one file: BEGIN, its missing ranges, FILE END with its digest.
    fn send_one(&mut self, id: usize) -> Result<()> {
        let item = &self.items[id];
        let State::Wanted { good, .. } = &item.state else {
            unreachable!("only wanted files are sent")
        };
        let (path, size, good) = (item.path.clone(), item.size, good.clone());
        let file = match open_unchanged(item, &source_of(&self.tops, &item.path)) {
            Ok(file) => file,
            Err(why) => return self.give_up(id, 0, why, false),
        };
        self.progress
            .update(self.sent, self.files_done, &lossy(&path));
        if size <= PACK_MAX && good.total() == 0 {
            return self.pack_one(id, &file);
        }
        self.queue(&Message::Begin(Begin {
            id: id as u64,
            path: path.clone(),
        }));
        self.flush()?;
        let to_send = good.missing(0, size);
        let digest = self.digest_and_send(&file, &path, size, &to_send, good.total() > 0);
        let (bytes, digest) = match digest {
            Ok(done) => done,
            Err(Lost::Source(bytes, why)) => return self.give_up(id, bytes, why, true),
            Err(Lost::Session(e)) => return Err(e),
        };
        if let Err(why) = unchanged(&file, &self.items[id]) {
            return self.give_up(id, bytes, why, true);
        }
        self.ended(id, bytes, digest)
    }

    /// A small file: read once, hashed from that buffer, and packed with
    /// its frames into the next large write.
    fn pack_one(&mut self, id: usize, file: &File) -> Result<()> {
        let size = self.items[id].size;
        let mut data = Vec::with_capacity(size as usize);
        let read = crate::copy::read_range(file, 0, size, &mut self.scratch, true, |_, chunk| {
            data.extend_from_slice(chunk);
            Ok(())
        });
        if let Err(e) = read {
            if crate::interrupt::requested() {
                return Err(exit::interrupted("interrupted"));
            }
            return self.give_up(id, 0, e.to_string(), false);
        }
        if let Err(why) = unchanged(file, &self.items[id]) {
            return self.give_up(id, 0, why, false);
        }
        let digest = self.cfg.common.verify.then(|| Sha256::digest(&data).into());
        self.queue(&Message::Begin(Begin {
            id: id as u64,
            path: self.items[id].path.clone(),
        }));
        if size > 0 {
            self.pack.extend_from_slice(&proto::data_header(0, size));
            self.pack.extend_from_slice(&data);
        }
        self.sent += size;
        self.ended(id, size, digest)?;
        if self.pack.len() >= PACK_WRITE {
            self.flush()?;
        }
        Ok(())
    }

    /// A file's data is out: FILE END with its digest (keyed, with a key).
    fn ended(&mut self, id: usize, bytes: u64, digest: Option<Sha>) -> Result<()> {
        let wire = digest.map(|d| self.key.as_ref().map_or(d, |k| k.keyed_digest(&d)));
        self.items[id].state = State::Sent;
        self.queue(&Message::FileEnd(FileEnd {
            id: id as u64,
            sent: bytes,
            sha256: wire,
            failed: None,
        }));
        Ok(())
    }

    /// Sends `ranges` of the file and computes its whole SHA-256 (when
    /// verifying): inline for small files, on a thread beside sendfile for
    /// large ones, so the bytes sendfile sends never enter user space here.
    fn digest_and_send(
        &mut self,
        file: &File,
        path: &[u8],
        size: u64,
        ranges: &[(u64, u64)],
        resumed: bool,
    ) -> Result<(u64, Option<Sha>), Lost> {
        let verify = self.cfg.common.verify;
        let inline = verify && size <= HASH_INLINE && !resumed;
        let early = match inline {
            true => {
                Some(hash::hash_range(file, 0, size).map_err(|e| Lost::Source(0, e.to_string()))?)
            }
            false => None,
        };
        let hasher = match verify && !inline {
            true => Some(hash::spawn_ranges(
                file.try_clone()
                    .map_err(|e| Lost::Source(0, e.to_string()))?,
                vec![(0, size)],
            )),
            false => None,
        };
        let base = self.sent;
        let mut sent = Sent {
            bytes: 0,
            zero_copy: self.cfg.sendfile,
            fallback: None,
        };
        let (progress, files, name) = (&mut self.progress, self.files_done, lossy(path));
        let mut update = |n: u64| progress.update(base + n, files, &name);
        let moved = send_file_ranges(
            file,
            self.conn,
            ranges,
            self.cfg.sendfile,
            Framing::Padded,
            &mut update,
            &mut sent,
        );
        self.sent += sent.bytes;
        self.zero_copy &= sent.zero_copy || sent.bytes == 0;
        match moved {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(Lost::Source(sent.bytes, e.to_string()))
            }
            Err(e) => return Err(Lost::Session(lost(self.conn, e))),
        }
        let late = match hasher {
            Some(handle) => Some(
                with_keepalive(self.conn, || handle.join())
                    .map_err(|_| Lost::Session(anyhow!("the hashing thread failed")))?
                    .map_err(|e| Lost::Source(sent.bytes, e.to_string()))?,
            ),
            None => None,
        };
        Ok((sent.bytes, early.or(late)))
    }

    /// The source could not be sent whole: after its BEGIN, tell the
    /// receiver (which keeps none of it); either way go on with the next.
    fn give_up(&mut self, id: usize, bytes: u64, why: String, begun: bool) -> Result<()> {
        let path = lossy(&self.items[id].path);
        self.items[id].state = State::Settled;
        self.settle(&path, "file", bytes, None, Fate::Failed(why.clone()));
        if !begun {
            return Ok(());
        }
        self.queue(&Message::FileEnd(FileEnd {
            id: id as u64,
            sent: bytes,
            sha256: None,
            failed: Some(why),
        }));
        Ok(())
    }

    /// Waits for the receiver's durable verdict on the whole session.
    fn conclude(mut self, plan: &Plan, began: Instant) -> Result<()> {
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
            bytes: self.sent,
            elapsed: began.elapsed(),
            zero_copy: self.zero_copy && self.sent > 0,
            verified: self.cfg.common.verify,
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
        self.progress.finish(&summary);
        match verdict {
            Verdict::Complete => Ok(()),
            Verdict::Partial(line) => Err(exit::partial(line)),
            Verdict::Integrity(line) => Err(exit::integrity(line)),
        }
    }

    /// Turns a session error into what the user sees: Ctrl-C tells the
    /// receiver and prints the resume command; a broken connection is retried.
    fn failed(&mut self, err: anyhow::Error) -> anyhow::Error {
        if exit::code_of(&err) == ExitCode::Interrupted || crate::interrupt::requested() {
            return self.stop();
        }
        err
    }

    fn stop(&mut self) -> anyhow::Error {
        self.conn.finishing = true;
        let mut said = format!("interrupted after sending {}", human_bytes(self.sent));
        if self.send(&Message::Stop).is_ok() {
            let deadline = Instant::now() + STOP_WAIT;
            while Instant::now() < deadline {
                match self.reader.rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(Ok(Message::Result(o))) => {
                        said.push_str(&format!(
                            "; the receiver keeps what it got ({} entries in place)",
                            o.held
                        ));
                        break;
                    }
                    Ok(Ok(_)) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => break,
                }
            }
        }
        exit::interrupted(format!("{said}; resume with: {}", resume_command(None)))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.conn.write_all(bytes).map_err(|e| lost(self.conn, e))
    }

    /// Sends a frame now, after whatever is packed.
    fn send(&mut self, msg: &Message) -> Result<()> {
        self.queue(msg);
        self.flush()
    }

    /// Adds a frame to the next write.
    fn queue(&mut self, msg: &Message) {
        msg.append_to(&mut self.pack);
    }

    fn flush(&mut self) -> Result<()> {
        if self.pack.is_empty() {
            return Ok(());
        }
        let pack = std::mem::take(&mut self.pack);
        let written = self.write(&pack);
        self.pack = pack;
        self.pack.clear();
        written
    }

    /// The next frame from the receiver, within the idle timeout.
    fn wait(&mut self) -> Result<Message> {
        let idle = self.cfg.common.idle_timeout;
        let deadline = Instant::now() + idle;
        loop {
            if crate::interrupt::requested() {
                return Err(exit::interrupted("interrupted"));
            }
            match self.reader.rx.recv_timeout(crate::conn::TICK) {
                Ok(msg) => return msg.map_err(|e| lost(self.conn, e)),
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let e = io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("nothing moved for {} s (--timeout)", idle.as_secs_f64()),
                    );
                    return Err(lost(self.conn, e));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(lost(self.conn, anyhow!("the connection closed")))
                }
            }
        }
    }

    /// Takes every frame that has already arrived.
    fn absorb_ready(&mut self) -> Result<()> {
        while let Ok(msg) = self.reader.rx.try_recv() {
            self.absorb(msg.map_err(|e| lost(self.conn, e))?)?;
        }
        Ok(())
    }

    /// Applies one frame from the receiver to the session.
    fn absorb(&mut self, msg: Message) -> Result<()> {
        match msg {
            Message::Keepalive => Ok(()),
            Message::Reply(reply) => self.replied(reply.id, reply.action),
            Message::FileHashes(id, blocks, last) => self.check_blocks(id, &blocks, last),
            Message::FileResult(id, outcome) => self.landed(id, &outcome),
            Message::Go => {
                self.go = true;
                Ok(())
            }
            Message::Answer(proto::Answer::Refuse { reason, .. }) => Err(exit::refused(format!(
                "{} refused: {reason}",
                self.conn.peer
            ))),
            Message::Result(outcome) => {
                self.result = Some(outcome);
                Ok(())
            }
            other => bail!("{}: unexpected {other:?} in a tree session", self.conn.peer),
        }
    }

    fn item(&mut self, id: u64) -> Result<&mut Item> {
        let peer = self.conn.peer.clone();
        self.items
            .get_mut(id as usize)
            .ok_or_else(|| anyhow!("{peer}: an answer for entry {id}, which was never offered"))
    }

    fn replied(&mut self, id: u64, action: Action) -> Result<()> {
        let resuming = self.cfg.resume;
        let item = self.item(id)?;
        if item.state != State::Offered {
            bail!("a second reply for entry {id}");
        }
        let (path, kind) = (lossy(&item.path), kind_name(item.kind));
        let fate = match action {
            Action::Send { held, hashes } => {
                let mut held = Ranges::from_pairs(&held);
                held.clip(item.size);
                // unchecked ranges are sent again, unless resuming checks them
                let good = Ranges::new();
                let resume = hashes && resuming && held.total() > 0;
                item.state = State::Wanted {
                    held: if resume { held } else { Ranges::new() },
                    good,
                };
                return Ok(());
            }
            Action::Skip => Fate::UpToDate,
            Action::Done => Fate::Landed,
            Action::Refuse { reason, .. } => Fate::Refused(reason),
        };
        item.state = State::Settled;
        self.settle_path(&path, kind, fate);
        Ok(())
    }

    /// Checks the receiver's hashes of a held part against the source.
    fn check_blocks(&mut self, id: u64, blocks: &[proto::BlockHash], _last: bool) -> Result<()> {
        let path = self.item(id)?.path.clone();
        let source = source_of(&self.tops, &path);
        let item = self.item(id)?;
        let State::Wanted { held, good } = &mut item.state else {
            bail!("hashes for entry {id}, which is not being sent");
        };
        let Ok(file) = File::open(&source) else {
            return Ok(()); // found out again, and reported, when it is sent
        };
        let mut buf = vec![0u8; crate::copy::BUF_SIZE];
        for b in blocks {
            let (from, to) = (b.offset, b.offset + b.len as u64);
            if !held.covers(from, to) {
                bail!("a hash for bytes {from}..{to} of entry {id}, which is not held");
            }
            let ours = hash::block(&file, from, to - from, None, &mut buf)
                .with_context(|| source.display().to_string())?;
            if ours == b.sha256 {
                good.insert(from, to);
            }
        }
        Ok(())
    }

    fn landed(&mut self, id: u64, outcome: &proto::Outcome) -> Result<()> {
        let item = self.item(id)?;
        if item.state != State::Sent && item.state != State::Settled {
            bail!("a result for entry {id}, which was not sent");
        }
        if item.state == State::Settled {
            return Ok(()); // the receiver's word on an entry we gave up
        }
        item.state = State::Settled;
        let (path, size) = (lossy(&item.path), item.size);
        if let Some(key) = &self.key {
            let mac = outcome.mac.unwrap_or_default();
            if !key.check_file_result(id, outcome.status as u8, outcome.held, &mac) {
                return Err(exit::integrity(format!(
                    "{}: the result for {path} does not carry the key's MAC",
                    self.conn.peer
                )));
            }
        }
        let fate = match outcome.status {
            Status::Ok if outcome.held == size => Fate::Landed,
            Status::Ok => Fate::Failed(format!(
                "the receiver holds {} of {size} bytes",
                outcome.held
            )),
            Status::Mismatch => Fate::Mismatch,
            Status::Failed | Status::Stopped => Fate::Failed(outcome.message.clone()),
        };
        if fate == Fate::Landed {
            self.files_done += 1;
        }
        let sha = outcome.sha256.map(|d| proto::hex(&d));
        self.settle(&path, "file", size, sha, fate);
        Ok(())
    }

    fn settle_path(&mut self, path: &str, kind: &'static str, fate: Fate) {
        self.settle(path, kind, 0, None, fate);
    }

    /// Records an entry's fate and shows it.
    fn settle(
        &mut self,
        path: &str,
        kind: &'static str,
        bytes: u64,
        sha: Option<String>,
        fate: Fate,
    ) {
        let (status, message) = match &fate {
            Fate::Landed if kind == "file" => (Shown::Done, None),
            Fate::Landed => (Shown::Made, None),
            Fate::UpToDate => (Shown::Skipped, None),
            Fate::Refused(why) => (Shown::Refused, Some(why.clone())),
            Fate::Failed(why) => (Shown::Failed, Some(why.clone())),
            Fate::Mismatch => (Shown::Failed, Some("SHA-256 mismatch".to_string())),
        };
        self.ledger.record(path, &fate);
        self.progress.entry(&EntryEvent {
            path,
            kind,
            bytes,
            sha256: sha,
            status,
            message: message.as_deref(),
        });
    }
}

/// Why one file's data could not all go out.
enum Lost {
    /// The source: the session goes on without this file.
    Source(u64, String),
    /// The connection: the session ends.
    Session(anyhow::Error),
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
    }
}

/// Opens a file to send, refusing one that changed since the walk.
fn open_unchanged(item: &Item, source: &std::path::Path) -> Result<File, String> {
    let file = File::open(source).map_err(|e| format!("cannot open it: {e}"))?;
    unchanged(&file, item)?;
    Ok(file)
}

fn unchanged(file: &File, item: &Item) -> Result<(), String> {
    let meta = file.metadata().map_err(|e| e.to_string())?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    if meta.len() != item.size || mtime != item.mtime_ns {
        return Err(format!(
            "changed while it was being sent ({} bytes then, {} now)",
            item.size,
            meta.len()
        ));
    }
    Ok(())
}

/// Where an entry is read: its top source's path, then the rest of its
/// wire path (kept once per entry, not twice).
fn source_of(tops: &HashMap<Vec<u8>, PathBuf>, path: &[u8]) -> PathBuf {
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

fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Link => "link",
    }
}

/// A wire path as text: lossy UTF-8 (escaped where it is printed).
fn lossy(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}
