//! What comes back during a tree session on the sending side: replies,
//! block hashes of held parts, per-file results, read on a thread of their
//! own so that neither side ever waits for the other to drain a socket.

use std::fs::File;
use std::io;
use std::sync::mpsc::{self, RecvTimeoutError as RecvError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::peer::lost;
use super::tree::{ended, Run};
use crate::conn::Conn;
use crate::exit;
use crate::hash;
use crate::progress::Role;
use crate::protocol::ledger::Fate;
use crate::protocol::sender::{Event, Violation};
use crate::protocol::tree::lossy;
use crate::protocol::{self as proto, BlockHash, ToSender};

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
        reading_conn.ignore_ctrl_c();
        reading_conn.peer = conn.peer.clone();
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
                    // a frame that came whole but is not one a receiver sends
                    // (or none at all) broke the protocol: a new connection
                    // would not mend it, so it is not retried as a lost one is
                    let msg = match proto::read_frame(&mut reading) {
                        Ok(f) => {
                            ToSender::decode(&f).with_context(|| reading.get_ref().peer.clone())
                        }
                        Err(e) => Err(lost(reading.get_ref(), e)),
                    };
                    let last = !matches!(msg, Ok(ref m) if !matches!(m, ToSender::Result(_)));
                    batch.push(msg);
                    if last || !proto::whole_frame(reading.buffer()) {
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

    /// The next frame, waiting up to `wait` for it; without a wait, one
    /// that has arrived (`try_recv`: a zero timeout would spin and yield
    /// before it gives up).
    pub(super) fn next(&mut self, wait: Option<Duration>) -> Result<Result<ToSender>, RecvError> {
        if self.pending.is_empty() {
            let batch = match wait {
                Some(wait) => self.rx.recv_timeout(wait)?,
                None => self.rx.try_recv().map_err(|_| RecvError::Timeout)?,
            };
            self.pending.extend(batch);
        }
        self.pending.pop_front().ok_or(RecvError::Timeout)
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
            let why = match self.reader.next(Some(crate::conn::TICK)) {
                Ok(msg) => return msg,
                Err(RecvError::Timeout) if Instant::now() < deadline => continue,
                Err(RecvError::Timeout) => io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("nothing moved for {} s (--timeout)", idle.as_secs_f64()),
                ),
                Err(RecvError::Disconnected) => io::Error::other("the connection closed"),
            };
            return Err(lost(self.conn, why));
        }
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
                    self.hashing.cache.forget(cached);
                }
                self.show(&settled);
                Ok(())
            }
            Some(Event::CheckBlocks { id, blocks, last }) => self.check_blocks(id, &blocks, last),
            Some(Event::Ended(ending)) => ended(ending),
        }
    }

    /// Checks the receiver's hashes of a held part against the source (the
    /// session checked that they are for held bytes, each once).
    pub(super) fn check_blocks(&mut self, id: u64, blocks: &[BlockHash], last: bool) -> Result<()> {
        let path = (self.session.entry(id).expect("checked by the session").path).clone();
        if self.session.is_single() && self.verifying.is_none() {
            let held = self.session.held(id).map_or(0, |h| h.total());
            self.verifying = Some(self.reporter.verifier(Role::Send, &lossy(&path), held));
        }
        let source = self.sources.of(&path);
        let Ok(file) = File::open(&source) else {
            return Ok(()); // found out again, and reported, when it is sent
        };
        let mut buf = crate::copy::Buf::new(crate::copy::BUF_SIZE);
        for b in blocks {
            let (from, to) = (b.offset, b.offset + b.len as u64);
            // the receiver waits for entries while this hashes
            self.keepalive
                .tick(self.conn)
                .map_err(|e| lost(self.conn, e))?;
            let ours = hash::block(&file, from, to - from, &mut buf)
                .with_context(|| source.display().to_string())?;
            if let Some(bar) = self.verifying.as_mut() {
                bar.update(to);
            }
            if let Some(warning) = self.session.checked(id, b, &ours) {
                self.reporter.warn(&warning);
            }
        }
        if let Some(mut bar) = self.verifying.take_if(|_| last) {
            bar.finish_verify(self.session.good(id), self.session.bad_blocks());
        }
        if let Some(warning) = self.session.unwarned(id).filter(|_| last) {
            self.reporter.warn(&warning);
        }
        Ok(())
    }
}

/// A frame that broke the session's rules, as the session ends with it: a
/// MAC that does not check is an integrity failure (exit 3).
pub(super) fn violated(v: Violation) -> anyhow::Error {
    match v.is_forgery() {
        true => exit::integrity(v.to_string()),
        false => anyhow::Error::new(v),
    }
}
