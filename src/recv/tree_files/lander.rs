//! Verified parts land on a thread of their own: the output is flushed and
//! the parts renamed into place while the next files arrive.

use std::fs::File;
use std::io;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::conn::{Conn, KEEPALIVE_EVERY};
use crate::recv::sink::{RelPath, Root};

/// A verified part waiting for its name.
pub(super) struct Part {
    pub(super) rel: RelPath,
    /// A held record lies beside it, to remove once it lands.
    pub(super) recorded: bool,
    /// Kept open, and so locked, until it is renamed: no other session can
    /// rewrite a verified part while it waits.
    pub(super) file: File,
}

/// What became of one batch: the parts that could not be renamed (with
/// why) and how long its flush took, or the flush that failed (then none
/// was renamed).
pub(super) type Landed = io::Result<(Vec<(RelPath, String)>, Duration)>;

/// The thread that lands batches, one at a time, in the order given.
pub(super) struct Lander {
    jobs: Option<Sender<Vec<Part>>>,
    landed: Receiver<Landed>,
    thread: Option<JoinHandle<()>>,
    /// A batch was handed over and its outcome not yet taken.
    pub(super) busy: bool,
}

impl Lander {
    pub(super) fn start(root: Arc<Root>) -> io::Result<Lander> {
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
        Ok(Lander {
            jobs: Some(jobs),
            landed,
            thread: Some(thread),
            busy: false,
        })
    }

    /// Hands a batch over; the lander must not be busy.
    pub(super) fn hand(&mut self, parts: Vec<Part>) -> io::Result<()> {
        debug_assert!(!self.busy);
        let jobs = self.jobs.as_ref().expect("the lander runs until dropped");
        jobs.send(parts)
            .map_err(|_| io::Error::other("the landing thread stopped"))?;
        self.busy = true;
        Ok(())
    }

    /// The last batch's outcome, if it is in.
    pub(super) fn poll(&mut self) -> Option<Landed> {
        let landed = self.landed.try_recv().ok()?;
        self.busy = false;
        Some(landed)
    }

    /// Waits for the last batch's outcome (none if nothing is under way);
    /// a slow disk may take a while, so the sender hears keepalives.
    pub(super) fn wait(&mut self, conn: &mut Conn) -> Option<Landed> {
        if !self.busy {
            return None;
        }
        let landed = loop {
            match self.landed.recv_timeout(KEEPALIVE_EVERY) {
                Ok(landed) => break landed,
                Err(RecvTimeoutError::Timeout) => {
                    let _ =
                        crate::protocol::write_frame(conn, crate::protocol::kind::KEEPALIVE, &[]);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    break Err(io::Error::other("the landing thread stopped"))
                }
            }
        };
        self.busy = false;
        Some(landed)
    }
}

impl Drop for Lander {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
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
    } in parts
    {
        let renamed = root.publish(&rel);
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
