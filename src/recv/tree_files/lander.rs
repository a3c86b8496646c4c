//! Verified parts land on a thread of their own, in batches: the output is
//! flushed and the parts renamed into place while the next files arrive.

use std::fs::File;
use std::io;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::conn::{Conn, KEEPALIVE_EVERY};
use crate::protocol;
use crate::recv::sink::{RelPath, Root};

/// A verified part waiting for its name.
pub(super) struct Part {
    pub(super) rel: RelPath,
    /// A held record lies beside it, to remove once it lands.
    pub(super) recorded: bool,
    /// Kept open until it is renamed, and so locked (or, with no name, out
    /// of every other session's reach): no other session can rewrite a
    /// verified part while it waits.
    pub(super) file: File,
    /// It has no name yet: it is linked, not renamed, into place.
    pub(super) unnamed: bool,
}

/// What became of one batch: the parts that could not be renamed (with
/// why) and how long its flush took, or the flush that failed (then none
/// was renamed).
pub(super) type Landed = io::Result<(Vec<(RelPath, String)>, Duration)>;

/// The lander's end of the session: batches go, outcomes come back.
type Lander = (Sender<Vec<Part>>, Receiver<Landed>, JoinHandle<()>);

/// Verified parts waiting to be handed to the lander, and the lander: a
/// thread that lands batches, one at a time, in the order given.
pub(in crate::recv) struct Batch {
    pub(super) parts: Vec<Part>,
    /// At most this many parts (open files) wait.
    pub(super) most: usize,
    pub(super) bytes: u64,
    pub(super) since: Instant,
    /// How long the last flush took.
    pub(super) flush: Duration,
    /// The output root's device: what its syncfs flushes.
    pub(super) root_dev: Option<u64>,
    /// Started with the first batch handed over.
    lander: Option<Lander>,
    /// A batch was handed over and its outcome not yet taken.
    pub(super) busy: bool,
}

impl Batch {
    pub(in crate::recv) fn new(root: &Root) -> Batch {
        let root_dev = std::fs::metadata(root.path()).ok();
        Batch {
            parts: Vec::new(),
            most: super::batch_most(),
            bytes: 0,
            since: Instant::now(),
            flush: Duration::ZERO,
            root_dev: root_dev.as_ref().and_then(super::landing::device),
            lander: None,
            busy: false,
        }
    }

    /// Hands the parts over, starting the lander with the first batch; the
    /// lander must not be busy.
    pub(super) fn hand(&mut self, root: &Arc<Root>) -> anyhow::Result<()> {
        debug_assert!(!self.busy);
        let (jobs, _, _) = match &mut self.lander {
            Some(lander) => lander,
            slot => slot.insert(start(root.clone()).context("starting to land files")?),
        };
        (jobs.send(std::mem::take(&mut self.parts)))
            .map_err(|_| io::Error::other("the landing thread stopped"))
            .context("landing files")?;
        (self.busy, self.bytes, self.since) = (true, 0, Instant::now());
        Ok(())
    }

    /// The last batch's outcome (none if nothing is under way): if it is
    /// in, without `conn`; else waited for, and as a slow disk may take a
    /// while, the sender hears keepalives on `conn`.
    pub(super) fn outcome(&mut self, conn: Option<&mut Conn>) -> Option<Landed> {
        let (_, landed, _) = self.lander.as_ref().filter(|_| self.busy)?;
        let landed = match conn {
            None => landed.try_recv().ok()?,
            Some(conn) => loop {
                match landed.recv_timeout(KEEPALIVE_EVERY) {
                    Ok(landed) => break landed,
                    Err(RecvTimeoutError::Timeout) => {
                        let _ = protocol::write_frame(conn, protocol::kind::KEEPALIVE, &[]);
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        break Err(io::Error::other("the landing thread stopped"))
                    }
                }
            },
        };
        self.busy = false;
        Some(landed)
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some((jobs, _, thread)) = self.lander.take() {
            drop(jobs);
            let _ = thread.join();
        }
    }
}

/// The lander: each batch it is handed is landed, and its outcome sent back.
fn start(root: Arc<Root>) -> io::Result<Lander> {
    let (jobs, todo) = mpsc::channel::<Vec<Part>>();
    let (report, landed) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("zc-lander".into())
        .spawn(move || {
            for parts in todo {
                if report.send(land(&root, parts)).is_err() {
                    return;
                }
            }
        })?;
    Ok((jobs, landed, thread))
}

/// Makes the batch durable (one flush of the file system), then renames
/// every part into place, even after one fails: they are all verified.
fn land(root: &Root, parts: Vec<Part>) -> Landed {
    let began = Instant::now();
    let syncfs = match root.sync_all() {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::Unsupported => false,
        Err(e) => return Err(e),
    };
    let flushed = began.elapsed();
    let mut failed = Vec::new();
    for Part {
        rel,
        recorded,
        file,
        unnamed,
    } in parts
    {
        let renamed = match unnamed {
            true => root.publish_unnamed(&rel, &file),
            false => root.publish(&rel),
        };
        drop(file); // the lock goes once the name is final
        if let Err(e) = renamed {
            failed.push((rel, format!("renaming it into place: {e}")));
            continue;
        }
        if recorded {
            let _ = root.discard_part(&rel); // its held record
        }
        if !syncfs {
            let _ = root.sync_parent(&rel);
        }
    }
    Ok((failed, flushed))
}
