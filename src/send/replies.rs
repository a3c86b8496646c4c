//! What comes back during a tree session on the sending side: replies,
//! block hashes of held parts, per-file results, read on a thread of their
//! own so that neither side ever waits for the other to drain a socket.

use std::fs::File;
use std::io;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use super::peer::lost;
use super::tree::{kind_name, lossy, source_of, Item, Run};
use crate::conn::Conn;
use crate::exit;
use crate::hash;
use crate::peer_text::escape;
use crate::progress::tree as tree_progress;
use crate::progress::Role;
use crate::protocol::ledger::Fate;
use crate::protocol::sender::{Sending, Wanted};
use crate::protocol::session::SenderPhase;
use crate::protocol::tree::Action;
use crate::protocol::{self as proto, ToSender};

/// Bad held blocks warned about one by one; the rest are counted.
const MAX_BAD_WARNINGS: u64 = 8;

/// The receiver's frames, read on a thread of their own so that neither
/// side ever waits for the other to drain a full socket.
pub(super) struct Reader {
    rx: mpsc::Receiver<Vec<Result<ToSender>>>,
    /// Frames of the last batch not taken yet.
    pending: std::collections::VecDeque<Result<ToSender>>,
    stream: std::net::TcpStream,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    pub(super) fn spawn(conn: &mut Conn) -> Result<Reader> {
        let stream = conn
            .stream
            .try_clone()
            .context("a second handle on the socket")?;
        // The session's own waits apply the idle timeout; this one only reads.
        let mut reading_conn =
            Conn::new(stream.try_clone()?, Duration::from_secs(u32::MAX as u64))?;
        reading_conn.finishing = true;
        // an encrypted session's receiving direction (its record sequence,
        // and what was read ahead) goes with the reading
        conn.hand_reading_to(&mut reading_conn);
        // what this thread hears keeps the writer's idle clock alive
        conn.share_heard(&mut reading_conn);
        let conn = reading_conn;
        // replies and results are small: read many with each call
        let mut reading = std::io::BufReader::with_capacity(64 << 10, conn);
        let (tx, rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("zc-replies".into())
            .spawn(move || loop {
                // one frame, waiting for it; then every whole frame already
                // read ahead, sent as one batch: the session's thread wakes
                // once per read, not once per result (5,000 small files made
                // thousands of wakeups each way)
                let mut batch = Vec::new();
                let last = loop {
                    let msg = proto::read_frame(&mut reading).and_then(|f| ToSender::decode(&f));
                    let last = !matches!(msg, Ok(ref m) if !matches!(m, ToSender::Result(_)));
                    batch.push(msg);
                    if last || !whole_frame(reading.buffer()) {
                        break last;
                    }
                };
                if tx.send(batch).is_err() || last {
                    return;
                }
            })?;
        Ok(Reader {
            rx,
            pending: Default::default(),
            stream,
            thread: Some(thread),
        })
    }

    /// The next frame if one has arrived.
    pub(super) fn try_recv(&mut self) -> Option<Result<ToSender>> {
        if self.pending.is_empty() {
            self.pending.extend(self.rx.try_recv().ok()?);
        }
        self.pending.pop_front()
    }

    /// The next frame, waiting up to `wait` for it.
    pub(super) fn recv_timeout(
        &mut self,
        wait: Duration,
    ) -> std::result::Result<Result<ToSender>, mpsc::RecvTimeoutError> {
        if self.pending.is_empty() {
            self.pending.extend(self.rx.recv_timeout(wait)?);
        }
        self.pending
            .pop_front()
            .ok_or(mpsc::RecvTimeoutError::Timeout)
    }
}

/// Whether `buffered` starts with a whole frame (reading it cannot wait),
/// or a header the read refuses at once.
fn whole_frame(buffered: &[u8]) -> bool {
    let Some(head) = buffered.first_chunk::<{ proto::HEAD }>() else {
        return false;
    };
    match proto::frame_head(head) {
        Ok((_, len)) => buffered.len() - proto::HEAD >= len,
        Err(_) => true,
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

impl Run<'_> {
    /// The next frame from the receiver, within the idle timeout.
    pub(super) fn wait(&mut self) -> Result<ToSender> {
        let idle = self.cfg.common.idle_timeout;
        let deadline = Instant::now() + idle;
        loop {
            if crate::interrupt::requested() {
                return Err(exit::interrupted("interrupted"));
            }
            match self.reader.recv_timeout(crate::conn::TICK) {
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
    pub(super) fn absorb_ready(&mut self) -> Result<()> {
        while let Some(msg) = self.reader.try_recv() {
            self.absorb(msg.map_err(|e| lost(self.conn, e))?)?;
        }
        Ok(())
    }

    /// Applies one frame from the receiver to the session.
    pub(super) fn absorb(&mut self, msg: ToSender) -> Result<()> {
        let peer = &self.conn.peer;
        let before_go = self.phase == SenderPhase::Offering;
        self.phase
            .take(&msg)
            .map_err(|why| anyhow!("{peer}: unexpected {why}"))?;
        match msg {
            ToSender::Keepalive => Ok(()),
            ToSender::Reply(reply) => self.replied(reply.id, reply.action),
            ToSender::FileHashes(id, blocks, last) => self.check_blocks(id, &blocks, last),
            ToSender::FileResult(id, outcome) => self.landed(id, &outcome),
            ToSender::Go => Ok(()), // the phase moved on
            ToSender::Answer(proto::Answer::Refuse { reason, .. }) => Err(exit::refused(format!(
                "{} refused: {reason}",
                self.conn.peer
            ))),
            // before GO a RESULT is the receiver giving up (it read it
            // in the walk or while waiting for GO alike): say its reason,
            // once the key's MAC shows it is the receiver's
            ToSender::Result(outcome) if before_go => {
                self.check_result_mac(&outcome)?;
                let why = match outcome.message.is_empty() {
                    true => proto::PeerText::from("it ended the session before GO"),
                    false => outcome.message,
                };
                bail!("{peer} failed: {why}")
            }
            ToSender::Result(outcome) => {
                self.result = Some(outcome);
                Ok(())
            }
            other => bail!("{}: unexpected {other:?} in a tree session", self.conn.peer),
        }
    }

    pub(super) fn item(&mut self, id: u64) -> Result<&mut Item> {
        let peer = self.conn.peer.clone();
        self.items
            .get_mut(id as usize)
            .ok_or_else(|| anyhow!("{peer}: an answer for entry {id}, which was never offered"))
    }

    pub(super) fn replied(&mut self, id: u64, action: Action) -> Result<()> {
        let resuming = self.cfg.resume;
        let item = self.item(id)?;
        let (path, kind) = (lossy(&item.path), kind_name(item.kind));
        let fate = item
            .state
            .replied(action, item.size, resuming)
            .map_err(|why| anyhow!("{why} for entry {id}"))?;
        if let Some(fate) = fate {
            self.settle_path(&path, kind, fate);
        }
        Ok(())
    }

    /// Checks the receiver's hashes of a held part against the source.
    pub(super) fn check_blocks(
        &mut self,
        id: u64,
        blocks: &[proto::BlockHash],
        last: bool,
    ) -> Result<()> {
        let path = self.item(id)?.path.clone();
        let source = source_of(&self.tops, &path);
        let Sending::Wanted(Wanted { held, .. }) = &self.item(id)?.state else {
            bail!("hashes for entry {id}, which is not being sent");
        };
        let held = held.clone();
        if self.single.is_some() && self.verifying.is_none() {
            let shown = lossy(&path);
            let bar = self.reporter.verifier(Role::Send, &shown, held.total());
            self.verifying = Some((bar, 0));
        }
        let Ok(file) = File::open(&source) else {
            return Ok(()); // found out again, and reported, when it is sent
        };
        let mut buf = vec![0u8; crate::copy::BUF_SIZE];
        let mut matched = Vec::new();
        for b in blocks {
            // decode_hashes checked that this does not overflow
            let (from, to) = (b.offset, b.offset + b.len as u64);
            if let Err(why) = self.items[id as usize].state.hashes_for(from, to) {
                bail!("{why} (entry {id})");
            }
            // the receiver waits for entries while this hashes
            self.keepalive
                .tick(self.conn)
                .map_err(|e| lost(self.conn, e))?;
            let ours = hash::block(&file, from, to - from, &mut buf)
                .with_context(|| source.display().to_string())?;
            if let Some((bar, good)) = self.verifying.as_mut() {
                *good += (to - from) * u64::from(ours == b.sha256);
                bar.update(to);
            }
            if ours == b.sha256 {
                matched.push((from, to));
                continue;
            }
            self.bad_blocks += 1;
            // a whole file of bad blocks is one story, not thousands of lines
            if self.bad_blocks <= MAX_BAD_WARNINGS {
                self.reporter.warn(&format!(
                    "{}: the receiver's bytes {from}..{to} differ from the source; re-sending them",
                    escape(&path)
                ));
            }
        }
        if last {
            if let Some((mut bar, good)) = self.verifying.take() {
                bar.finish_verify(good, self.bad_blocks);
            }
        }
        if last && self.bad_blocks > MAX_BAD_WARNINGS {
            self.reporter.warn(&format!(
                "{}: {} more blocks differ and are re-sent",
                escape(&path),
                self.bad_blocks - MAX_BAD_WARNINGS
            ));
        }
        let state = &mut self.item(id)?.state;
        for (from, to) in matched {
            state.matched(from, to);
        }
        Ok(())
    }

    /// With a key in the clear (`--no-encrypt`), a RESULT is the
    /// receiver's word only under the key's MAC, before GO as at the end;
    /// an encrypted session's records already vouch for it.
    pub(super) fn check_result_mac(&self, outcome: &proto::Outcome) -> Result<()> {
        let Some(key) = &self.key else { return Ok(()) };
        let mac = outcome.mac.unwrap_or_default();
        if key.check_result(outcome.status as u8, outcome.held, &mac) {
            return Ok(());
        }
        let why = "the receiver's answer does not carry the key's MAC (altered in transit?)";
        Err(exit::integrity(format!("{}: {why}", self.conn.peer)))
    }

    pub(super) fn landed(&mut self, id: u64, outcome: &proto::Outcome) -> Result<()> {
        let item = self.item(id)?;
        let (path, size, whole) = (lossy(&item.path), item.size, item.whole);
        let fate = item
            .state
            .resulted(outcome, size, whole)
            .map_err(|why| anyhow!("{why} (entry {id})"))?;
        // None: the receiver's word on an entry given up here
        let Some(fate) = fate else { return Ok(()) };
        if let Some(key) = &self.key {
            let mac = outcome.mac.unwrap_or_default();
            if !key.check_file_result(id, outcome.status as u8, outcome.held, &mac) {
                return Err(exit::integrity(format!(
                    "{}: the result for {path} does not carry the key's MAC",
                    self.conn.peer
                )));
            }
        }
        if let (Fate::Mismatch, Some(cached)) = (&fate, self.cached.get(&(id as usize))) {
            // whatever went wrong, the next receiver gets a digest read afresh
            self.hashing.cache.forget(cached);
        }
        if fate == Fate::Landed {
            self.files_done += 1;
            // a receiver with --no-verify lands files without checking them
            self.unchecked |= outcome.sha256.is_none();
        }
        let sha = outcome.sha256.map(|d| proto::hex(&d));
        self.settle(&path, "file", size, sha, fate);
        Ok(())
    }

    pub(super) fn settle_path(&mut self, path: &str, kind: &'static str, fate: Fate) {
        self.settle(path, kind, 0, None, fate);
    }

    /// Records an entry's fate and shows it.
    pub(super) fn settle(
        &mut self,
        path: &str,
        kind: &'static str,
        bytes: u64,
        sha: Option<String>,
        fate: Fate,
    ) {
        let progress = self.progress.as_mut();
        tree_progress::settle(&mut self.ledger, progress, (path, kind), bytes, sha, &fate);
        if let Some(one) = self.single.as_mut() {
            *one = fate;
        }
    }
}
