//! The data phase of a tree session on the receiving side: each wanted
//! file's `.zcpart` opened beneath the output directory, written (through
//! splice when nothing needs the bytes), verified, and renamed into place in
//! batches that cost one flush of the file system each.

use std::fs::File;
use std::io;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};

mod current;
mod lander;
mod landing;

use super::session::{identity, lost, Tree, Want};
use crate::conn::Conn;
use crate::exit::{self, ExitCode, Tag};
use crate::hash::Running;
use crate::held::{self, Checkpointer, Record};
use crate::peer_text::escape;
use crate::protocol::receiver::{Ended, Event, Fits, Then, Unwritable};
use crate::protocol::ToReceiver;
use crate::units::human_bytes;
pub(super) use current::Current;
use current::{file_start, HASH_THREAD_MIN, RESERVE_MIN};
pub(super) use lander::Batch;
use landing::BATCH_FILES;

/// Files this large keep their held record current while they arrive (as a
/// single file does), so even a killed receiver resumes them where they
/// stopped; smaller ones are simply sent again.
const CHECKPOINT_MIN: u64 = 64 << 20;
/// Files up to this size, in a directory this session made, are written
/// into a part with no name (O_TMPFILE, where there is one) and linked into
/// place: no `NAME.zcpart` to create, lock and rename, which is most of a
/// small file's cost on the receiving side (5,000 files of 4 KiB: a rename
/// is about 7 us of the receiver's 35 us a file). A session that ends
/// first leaves nothing of them; they are sent again, as the smaller ones
/// are anyway.
const UNNAMED_MAX: u64 = 1 << 20;
/// Results to the sender are written once this many bytes wait.
const OUT_BATCH: usize = 16 << 10;

/// How many verified parts a batch holds open: a quarter of the
/// descriptors (-k runs sessions side by side), raising their limit first.
pub(super) fn batch_most() -> usize {
    BATCH_FILES.min((crate::sys::raise_open_files() / 4).max(16) as usize)
}

impl Tree<'_> {
    /// Reads frames until END; any failure keeps what arrived (the current
    /// part with its record, the verified batch renamed into place).
    pub(super) fn run(&mut self, conn: &mut Conn) -> Result<()> {
        let outcome = self.frames(conn);
        let kept = self.keep(conn);
        match outcome {
            Ok(()) => kept,
            Err(e) => Err(self.failed(conn, e, kept.err())),
        }
    }

    fn frames(&mut self, conn: &mut Conn) -> Result<()> {
        loop {
            // a socket that never waits never sees Ctrl-C: look between frames
            if crate::interrupt::requested() {
                return Err(crate::interrupt::stopped().into());
            }
            let frame = self.incoming.frame(conn).map_err(|e| network(conn, e))?;
            let msg = ToReceiver::decode(&frame).with_context(|| conn.peer.clone())?;
            let event = self.session.handle(msg, &mut self.wants);
            self.show();
            match event {
                Ok(Event::Open(want)) => self.begin(want)?,
                Ok(Event::Write(write)) => self.data(conn, write)?,
                Ok(Event::Ended(ended)) => self.file_end(conn, ended)?,
                Ok(Event::Finished) => return Ok(()),
                Ok(Event::Stopped(stop)) => return Err(exit::interrupted(stop.line(&conn.peer))),
                Ok(_) => {} // a keepalive (the phase took no other)
                Err(v) => {
                    // a file the session ended is over here too
                    if self.session.current().is_none() {
                        self.cur = None;
                    }
                    return Err(anyhow!(v.line(&conn.peer)));
                }
            }
            // what the driver's answers settled (a file's end) shows at once
            self.show();
            if self.session.outbox_len() >= OUT_BATCH {
                self.flush(conn)?;
            }
        }
    }

    fn begin(&mut self, mut want: Want) -> Result<()> {
        let part = match (self.dest.stream().is_some(), want.part.take()) {
            (true, _) => None,
            (_, Some(part)) => Some(part),
            _ => (self.open_part(&mut want))
                .map_err(|e| {
                    self.session.unwritable(match e.kind() {
                        io::ErrorKind::WouldBlock => Unwritable::Busy,
                        _ => Unwritable::Cannot(e.to_string()),
                    })
                })
                .ok(),
        };
        let checkpoint = match &part {
            // a file alone keeps its record current at any size, as it always has
            Some(file) if want.size >= CHECKPOINT_MIN || self.session.alone() => {
                Some(self.checkpointer(file, &want)?)
            }
            _ => None,
        };
        want.recorded |= checkpoint.is_some();
        let hashed = self.session.hashing();
        let threaded = (want.size >= HASH_THREAD_MIN || want.stream) && self.hash_thread;
        if let Some(arrival) = self.session.current() {
            self.progress.file(&file_start(arrival));
        }
        let reserve = matches!(&part, Some(file)
            if (want.size >= RESERVE_MIN || want.stream) && !crate::sys::in_memory(file));
        self.cur = Some(Current {
            checkpoint,
            reserve,
            hasher: hashed.then(|| Running::new(threaded)),
            pos: 0, // a part just opened stands at its start
            want,
            part,
        });
        Ok(())
    }

    /// The part a file is written into. In a directory this session made
    /// it is created with its final mode, which then needs no chmod unless
    /// the umask takes bits from it (the directory stays 1700, owner only,
    /// until its entries are in, so no one else can read the part
    /// meanwhile).
    fn open_part(&self, want: &mut Want) -> io::Result<File> {
        let root = &self.root;
        if want.fresh && want.held.total() == 0 {
            let mode = (want.mode & 0o777) | 0o600;
            // a small file whole: nothing worth resuming if the session
            // ends before it lands, so no name until then
            let unnamed = want.whole && want.size <= UNNAMED_MAX && !self.session.alone();
            let file = match unnamed {
                true => root.create_unnamed(&want.rel, mode)?,
                false => None,
            };
            want.unnamed = file.is_some();
            let file = match file {
                Some(file) => Some(file),
                None => root.create_part(&want.rel, mode)?,
            };
            if let Some(file) = file {
                // a kernel before 6.0 gave an unnamed file its mode without
                // the umask: then only a mode we did not add to is sure
                let exact = !want.unnamed || mode == want.mode & 0o777;
                want.moded =
                    exact && crate::sys::umask().is_some_and(|m| mode & !m == want.mode & 0o777);
                return Ok(file);
            }
        }
        root.open_part(&want.rel, want.held.total() == 0)
    }

    /// A checkpoint thread whose records go beneath the output handle.
    fn checkpointer(&self, file: &File, want: &Want) -> Result<Checkpointer> {
        let (root, rel) = (self.root.clone(), want.rel.clone());
        let store: held::Store = Arc::new(move |r: &Record| root.write_record(&rel, &r.encode()));
        let source = identity(&want.rel, want.size, want.mtime_ns);
        Checkpointer::start_with(file, store, source, want.held.clone()).map_err(|e| local(want, e))
    }

    fn data(&mut self, conn: &mut Conn, fits: Fits) -> Result<()> {
        let Some(cur) = self.cur.as_mut() else {
            bail!("{}: data outside a file", conn.peer);
        };
        // what already arrived with the frame (all of a small file's data)
        let early = self.incoming.take(fits.len);
        let at = cur.early(fits, early, self.dest.stream())?;
        self.session.arrived(fits.offset, at);
        let (base, files) = self.session.received();
        if at == fits.end {
            self.progress.update(base, files, "");
            return Ok(());
        }
        let progress = &mut self.progress;
        let show = &mut |n| progress.update(base + n, files, "");
        let stream = self.dest.stream();
        let (bytes, spliced, got) =
            cur.rest(conn, (at, fits.end - at), stream, &mut self.spare, show);
        self.spliced |= spliced;
        self.session.arrived(at, at + bytes);
        got
    }

    fn file_end(&mut self, conn: &mut Conn, ended: Ended) -> Result<()> {
        let Some(mut cur) = self.cur.take() else {
            bail!("{}: a file ended that never began", conn.peer);
        };
        // its data is done: the checkpoint thread stops before the part is
        // discarded or handed to the lander, or its last record could land
        // beside the file renamed into place (a stray .zcpart.held)
        drop(cur.checkpoint.take());
        // a stream's size is known now
        (cur.want.size, cur.want.range) = (ended.size, ended.range);
        let have = match ended.then {
            Then::Told => return Ok(()),
            Then::Keep(have) => Some(have),
            // none: a mismatch, or a digest that could not be had
            Then::Digest { as_it_came } => (self.session).digest(cur.digest(conn, as_it_came)?),
            Then::Discard => None,
        };
        let Some(have) = have else {
            // nothing of it is kept. Only a file written into a part has
            // one: a stream's name (stdout, a device) is the sender's, and a
            // part by that name in the working directory is not this session's
            if cur.part.is_some() && !cur.want.unnamed {
                let _ = self.root.discard_part(&cur.want.rel);
            }
            return Ok(());
        };
        match cur.part.take() {
            Some(file) if !cur.want.whole => return self.held(&cur.want, file, have),
            Some(file) => self.verified(&cur.want, file)?,
            None => {
                if let Some(stream) = self.dest.stream() {
                    stream.flush().map_err(|e| local(&cur.want, e))?;
                }
            }
        }
        self.session.landed();
        self.hand_batch(conn, false)
    }

    /// What a failed data phase says: the sender's Ctrl-C is answered with
    /// what is kept; a failure here is told to the sender; a lost
    /// connection may be resumed.
    fn failed(
        &mut self,
        conn: &mut Conn,
        err: anyhow::Error,
        kept: Option<anyhow::Error>,
    ) -> anyhow::Error {
        let not_kept = kept.map(|e| exit::message_of(&e));
        let kept_line = (self.session).kept_line(self.session.received().1, not_kept, human_bytes);
        let stopped = exit::code_of(&err) == ExitCode::Interrupted;
        if stopped || crate::interrupt::requested() {
            if stopped && !crate::interrupt::requested() {
                // a file alone tells the sender the bytes held, a tree its entries
                self.session.stopped();
                let _ = self.flush(conn);
            }
            let what = match crate::interrupt::requested() {
                true => "interrupted".to_string(),
                false => exit::message_of(&err),
            };
            return exit::interrupted(format!("{what}; {kept_line}"));
        }
        match self.tell(conn, &err) {
            true => err.context(kept_line),
            false => exit::tag(exit::noted(err, kept_line), Tag::Resumable),
        }
    }
}

/// A failure of this side's disk, naming the file.
fn local(want: &Want, err: io::Error) -> anyhow::Error {
    anyhow::Error::new(err).context(escape(want.rel.bytes()))
}

/// A failure of the connection: the sender may come back and resume.
fn network(conn: &Conn, err: anyhow::Error) -> anyhow::Error {
    lost(err, format!("{}: connection lost", conn.peer))
}
