//! What comes back during a tree session on the sending side: replies,
//! block hashes of held parts, per-file results, read on a thread of their
//! own so that neither side ever waits for the other to drain a socket.

use std::io;
use std::sync::mpsc::{self, RecvTimeoutError as RecvError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::peer::lost;
use crate::conn::Conn;
use crate::exit;
use crate::protocol::{self as proto, ToSender};

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
        // replies and results are small: read many with each call
        let mut reading = std::io::BufReader::with_capacity(64 << 10, reading_conn);
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

    /// The next frame from the receiver, within the idle timeout.
    pub(super) fn wait(&mut self, idle: Duration, conn: &Conn) -> Result<ToSender> {
        let deadline = Instant::now() + idle;
        loop {
            if crate::interrupt::requested() {
                return Err(exit::interrupted("interrupted"));
            }
            let why = match self.next(Some(crate::conn::TICK)) {
                Ok(msg) => return msg,
                Err(RecvError::Timeout) if Instant::now() < deadline => continue,
                Err(RecvError::Timeout) => io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("nothing moved for {} s (--timeout)", idle.as_secs_f64()),
                ),
                Err(RecvError::Disconnected) => io::Error::other("the connection closed"),
            };
            return Err(lost(conn, why));
        }
    }

    /// What the receiver says within `wait`, once `pick` takes a frame;
    /// `None` if it says nothing that `pick` takes, or the connection ends.
    pub(super) fn hear<T>(
        &mut self,
        wait: Duration,
        mut pick: impl FnMut(ToSender) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + wait;
        let left = || deadline.saturating_duration_since(Instant::now());
        while let Ok(Ok(msg)) = self.next(Some(left())) {
            if let Some(heard) = pick(msg) {
                return Some(heard);
            }
        }
        None
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
