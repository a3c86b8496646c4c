//! The data phase of a tree session on the receiving side: each wanted
//! file's `.zcpart` opened beneath the output directory, written (through
//! splice when nothing needs the bytes), verified, and renamed into place in
//! batches that cost one flush of the file system each.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use sha2::Digest;

mod lander;
mod landing;

use super::incoming::Incoming;
use super::session::{identity_of, lost, Disk, Said, Want};
use super::wants::Wants;
use crate::conn::{with_keepalive, Conn};
use crate::copy::{self, Chunks, RecvError, BUF_SIZE};
use crate::exit::{self, ExitCode, Tag};
use crate::hash::{self, Running, Sha};
use crate::held::{self, Checkpointer, Record};
use crate::peer_text::escape;
use crate::protocol::receiver::{Ended, Ending, Event, FileOutcome, Fits, Unwritable};
use crate::protocol::ToReceiver;
use crate::units::human_bytes;
use landing::{device, Batch, BATCH_FILES};

/// Files this large keep their held record current while they arrive (as a
/// single file does), so even a killed receiver resumes them where they
/// stopped; smaller ones are simply sent again.
const CHECKPOINT_MIN: u64 = 64 << 20;
/// Files this large (and streams) are hashed on a thread beside the
/// receive loop: reading the socket and hashing then overlap on two cores
/// (1 GiB into a tmpfs file: 0.32 GiB/s inline, see the closing note).
const HASH_THREAD_MIN: u64 = 64 << 20;
/// A DATA frame this large has its range reserved (fallocate) before any of
/// it is written: the file system then takes its pages or blocks in one
/// call instead of a page at a time inside every write. 1 GiB over
/// loopback, --no-verify, CPU s/GiB of both sides together, interleaved
/// with the binary before: into tmpfs 0.83 -> 0.65 on an idle machine (the
/// same wall time) and receiver 0.70 -> 0.56 on a busy one; into ext4 on the
/// virtual disk, fsync included, 0.59 -> 0.50 and 1.15 -> 1.34 GiB/s. On
/// tmpfs the call holds the file's lock while it allocates (about 4 ms per
/// 16 MiB), so a thread reserving ahead of the writer only takes turns with
/// it. Files of a few MiB, a tree's, are left as they were. Nor is a file
/// in memory (tmpfs): no blocks to lay out, and the receive loop stopped
/// reading while the call took the pages ahead of the bytes (1 GiB,
/// --no-verify, 7 rounds interleaved: 0.55-0.63 s with it, 0.48-0.50
/// without, the same CPU).
const RESERVE_MIN: u64 = 4 << 20;
/// At most this much of a frame is reserved: a zc sender's frames are no
/// larger, and a peer that announces a huge frame and then stalls must not
/// make this side take the space (on tmpfs, the memory) ahead of the bytes.
const RESERVE_MAX: u64 = 64 << 20;
/// Results to the sender are written once this many bytes wait.
const OUT_BATCH: usize = 16 << 10;

/// The file whose data is arriving (the protocol's view of it, what fits
/// and what came, is the session's).
struct Current {
    want: Want,
    out: Out,
    /// SHA-256 of the data as it arrives: the file's while it comes in
    /// order from byte 0 (dropped when it does not, and the file hashed
    /// from disk), or that of the DATA payloads when the file will not be
    /// whole (see `protocol::whole`).
    hasher: Option<Running>,
    /// Where the part's file position stands (a seek only when it differs).
    pos: u64,
    /// Keeps the record of a large part current.
    checkpoint: Option<Checkpointer>,
    /// Large frames have their range reserved first (see [`RESERVE_MIN`]).
    reserve: bool,
}

impl Current {
    /// Readies the part for a frame's `len` bytes at `offset`: the range
    /// reserved first when the frame is large, the file position moved
    /// there only when it stands elsewhere.
    fn place(&mut self, offset: u64, len: u64, end: u64) -> io::Result<()> {
        if let Out::Part(file) = &mut self.out {
            if self.reserve && len >= RESERVE_MIN {
                // only speed rides on it: a file system that cannot
                // reserve takes the writes all the same, and a full one
                // fails them with the error that says so
                let _ = crate::sys::preallocate(file, offset, len.min(RESERVE_MAX));
            }
            if self.pos != offset {
                file.seek(SeekFrom::Start(offset))?;
            }
        }
        self.pos = end;
        Ok(())
    }
}

impl Current {
    /// The file's SHA-256: as it came (`as_it_came`: that is the one to
    /// check), else read back from the part (resumed, or out of order);
    /// none when neither can be had.
    fn digest(&mut self, conn: &mut Conn, as_it_came: bool) -> Result<Option<Sha>> {
        let size = self.want.size;
        Ok(match (self.hasher.take(), &self.out) {
            (Some(h), _) if as_it_came => Some(h.finish()),
            (_, Out::Part(file)) => Some(
                with_keepalive(conn, || hash::hash_range(file, 0, size))
                    .map_err(|e| local(&self.want, e))?,
            ),
            _ => None,
        })
    }
}

/// Where a file's data goes.
enum Out {
    Part(File),
    /// The session's stream (stdout, a device), in order.
    Stream,
    /// It cannot be written: the data is read and dropped, and only this
    /// entry fails.
    Dropped(Unwritable),
}

/// The data phase: it borrows the protocol's side, the files asked for and
/// the output, each on its own, from the manifest's [`Tree`](super::session::Tree).
pub(super) struct Files<'t> {
    said: &'t mut Said,
    wants: &'t mut Wants,
    disk: &'t mut Disk,
    /// Digests are checked (the sender's offer and this side's --no-verify).
    verify: bool,
    incoming: Incoming,
    cur: Option<Current>,
    batch: Batch,
    /// Data bytes received in the session.
    pub bytes: u64,
    /// Some data went through splice(2).
    pub spliced: bool,
    /// Files received and verified.
    pub files: u64,
    /// The output root's device: what its syncfs flushes.
    root_dev: Option<u64>,
    /// The buffer DATA frames are read into, between frames.
    spare: Option<Vec<u8>>,
}

/// How many verified parts a batch holds open: a quarter of the
/// descriptors (-k runs sessions side by side), raising their limit first.
pub(super) fn batch_most() -> usize {
    BATCH_FILES.min((crate::sys::raise_open_files() / 4).max(16) as usize)
}

impl<'t> Files<'t> {
    pub(super) fn new(
        said: &'t mut Said,
        wants: &'t mut Wants,
        disk: &'t mut Disk,
        verify: bool,
    ) -> Self {
        let root_dev = std::fs::metadata(disk.root.path())
            .ok()
            .as_ref()
            .and_then(device);
        Files {
            said,
            wants,
            disk,
            verify,
            incoming: Incoming::new(),
            cur: None,
            batch: Batch {
                parts: Vec::new(),
                most: batch_most(),
                bytes: 0,
                since: Instant::now(),
                lander: None,
                flush: Duration::ZERO,
            },
            bytes: 0,
            spliced: false,
            files: 0,
            root_dev,
            spare: None,
        }
    }

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
            let event = self.said.session.handle(msg, self.wants);
            self.said.show();
            match event {
                Ok(Event::Open(want)) => self.begin(want)?,
                Ok(Event::Write(write)) => self.data(conn, write)?,
                Ok(Event::Ended(ended)) => self.file_end(conn, ended)?,
                Ok(Event::Finished) => return Ok(()),
                Ok(Event::Stopped(stop)) => return Err(exit::interrupted(stop.line(&conn.peer))),
                Ok(_) => {} // a keepalive (the phase took no other)
                Err(v) => {
                    // a file the session ended is over here too
                    if self.said.session.current().is_none() {
                        self.cur = None;
                    }
                    return Err(anyhow!(v.line(&conn.peer)));
                }
            }
            if self.said.session.outbox_len() >= OUT_BATCH {
                self.said.flush(conn)?;
            }
        }
    }

    fn begin(&mut self, mut want: Want) -> Result<()> {
        let out = match (self.disk.stream().is_some(), want.part.take()) {
            (true, _) => Out::Stream,
            (_, Some(part)) => Out::Part(part),
            _ => match self.open_part(&mut want) {
                Ok(file) => Out::Part(file),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Out::Dropped(Unwritable::Busy),
                Err(e) => Out::Dropped(Unwritable::Cannot(e.to_string())),
            },
        };
        let verify = self.verify;
        let checkpoint = match &out {
            // a file alone keeps its record current at any size, as it always has
            Out::Part(file) if want.size >= CHECKPOINT_MIN || self.said.session.alone() => {
                Some(self.checkpointer(file, &want)?)
            }
            _ => None,
        };
        want.recorded |= checkpoint.is_some();
        let hashed = verify && (!want.whole || want.held.total() == 0);
        self.said.progress.file(&file_start(&want));
        let reserve = matches!(&out, Out::Part(file)
            if (want.size >= RESERVE_MIN || want.stream) && !crate::sys::in_memory(file));
        self.cur = Some(Current {
            checkpoint,
            reserve,
            hasher: hashed.then(|| Running::new(want.size >= HASH_THREAD_MIN || want.stream)),
            pos: 0, // a part just opened stands at its start
            want,
            out,
        });
        Ok(())
    }

    /// The part a file is written into. In a directory this session made
    /// it is created with its final mode, which then needs no chmod unless
    /// the umask takes bits from it (the directory stays 1700, owner only,
    /// until its entries are in, so no one else can read the part
    /// meanwhile).
    fn open_part(&self, want: &mut Want) -> io::Result<File> {
        let root = &self.disk.root;
        if want.fresh && want.held.total() == 0 {
            let mode = (want.mode & 0o777) | 0o600;
            if let Some(file) = root.create_part(&want.rel, mode)? {
                want.moded = crate::sys::umask().is_some_and(|m| mode & !m == want.mode & 0o777);
                return Ok(file);
            }
        }
        root.open_part(&want.rel, want.held.total() == 0)
    }

    /// A checkpoint thread whose records go beneath the output handle.
    fn checkpointer(&self, file: &File, want: &Want) -> Result<Checkpointer> {
        let (root, rel) = (self.disk.root.clone(), want.rel.clone());
        let store: held::Store = Arc::new(move |r: &Record| root.write_record(&rel, &r.encode()));
        let source = identity_of(want);
        Checkpointer::start_with(file, store, source, want.held.clone()).map_err(|e| local(want, e))
    }

    fn data(&mut self, conn: &mut Conn, write: Fits) -> Result<()> {
        let Fits {
            offset,
            len,
            end,
            in_order,
        } = write;
        let Some(cur) = self.cur.as_mut() else {
            bail!("{}: data outside a file", conn.peer);
        };
        if !in_order && cur.want.whole {
            cur.hasher = None; // out of order: hashed from disk at the end
        }
        cur.place(offset, len, end)
            .map_err(|e| local(&cur.want, e))?;
        // what already arrived with the frame (all of a small file's data)
        let early = self.incoming.take(len);
        match (&mut cur.out, self.disk.stream()) {
            (Out::Part(file), _) => file.write_all(early).map_err(|e| local(&cur.want, e))?,
            (Out::Stream, Some(stream)) => {
                stream.write_all(early).map_err(|e| local(&cur.want, e))?
            }
            _ => {}
        }
        if let Some(h) = cur.hasher.as_mut() {
            h.update(offset, early);
        }
        let start = offset;
        let (offset, len) = (offset + early.len() as u64, len - early.len() as u64);
        self.bytes += early.len() as u64;
        self.said.session.arrived(start, offset);
        if let Some(cp) = &cur.checkpoint {
            cp.add(start, offset);
        }
        if len == 0 {
            self.said.progress.update(self.bytes, self.files, "");
            return Ok(());
        }
        let mut sink = io::sink();
        let (target, splice) = match (&mut cur.out, self.disk.stream()) {
            (Out::Part(file), _) => (copy::Sink::File(file), cur.hasher.is_none()),
            (Out::Stream, Some(stream)) => {
                let splice = cur.hasher.is_none() && stream.is_char_device();
                (stream.sink(), splice)
            }
            _ => (copy::Sink::Writer(&mut sink), false),
        };
        let (base, files) = (self.bytes, self.files);
        let mut chunks = Fed {
            hasher: cur.hasher.as_mut(),
            checkpoint: cur.checkpoint.as_ref(),
            at: offset,
            buf: self.spare.take(),
            done: 0,
            show: &mut |n| self.said.progress.update(base + n, files, ""),
        };
        let got = copy::recv(conn, target, Some(len), splice, &mut chunks);
        // kept for the next frame: a fresh zeroed MiB per small file cost
        // more than the file's own bytes
        self.spare = chunks.buf.take();
        let bytes = match &got {
            Ok(r) => r.bytes,
            Err(RecvError { bytes, .. }) => *bytes,
        };
        self.bytes += bytes;
        self.spliced |= splice && bytes > 0;
        self.said.session.arrived(offset, offset + bytes);
        match got {
            Ok(r) if r.cut => Err(network(
                conn,
                anyhow!("connection closed in the middle of the data"),
            )),
            Ok(_) => Ok(()),
            Err(RecvError {
                local: true, error, ..
            }) => Err(local(&cur.want, error)),
            Err(RecvError { error, .. }) => Err(network(conn, error.into())),
        }
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
        let have = match (ended.ending, &cur.out) {
            (Ending::SenderFailed(_), _) => {
                // settled; the padding the sender wrote is no data of the file
                let _ = self.disk.root.discard_part(&cur.want.rel);
                return Ok(());
            }
            (_, Out::Dropped(why)) => {
                return self.outcome(FileOutcome::Unwritable(why.clone()));
            }
            (Ending::Incomplete, _) => return self.outcome(FileOutcome::Incomplete),
            (Ending::Complete { have }, _) => have,
        };
        let ours = match self.verify {
            true => match cur.digest(conn, ended.hashed_as_it_came)? {
                Some(ours) if self.said.session.digest_matches(&ours, ended.sha256) => Some(ours),
                // a mismatch, or a digest that could not be had
                _ => {
                    if let Out::Part(_) = cur.out {
                        let _ = self.disk.root.discard_part(&cur.want.rel);
                    }
                    return self.outcome(FileOutcome::Mismatch);
                }
            },
            false => None,
        };
        match std::mem::replace(&mut cur.out, Out::Stream) {
            Out::Part(file) if cur.want.whole => self.verified(conn, &cur.want, file, ours),
            Out::Part(file) => self.held(&mut cur, file, have, ours),
            _ => {
                if let Some(stream) = self.disk.stream() {
                    stream.flush().map_err(|e| local(&cur.want, e))?;
                }
                self.files += 1;
                let held = cur.want.size;
                self.outcome(FileOutcome::Verified { sha256: ours, held })
            }
        }
    }

    /// How the file that ended went: the session answers the sender and
    /// settles it.
    pub(super) fn outcome(&mut self, outcome: FileOutcome) -> Result<()> {
        self.said.session.file_result(outcome);
        self.said.show();
        Ok(())
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
        let kept_line = (self.said.session).kept_line(self.files, not_kept, human_bytes);
        let stopped = exit::code_of(&err) == ExitCode::Interrupted;
        if stopped || crate::interrupt::requested() {
            if stopped && !crate::interrupt::requested() {
                // a file alone tells the sender the bytes held, a tree its entries
                self.said.session.stopped();
                let _ = self.said.flush(conn);
            }
            let what = match crate::interrupt::requested() {
                true => "interrupted".to_string(),
                false => exit::message_of(&err),
            };
            return exit::interrupted(format!("{what}; {kept_line}"));
        }
        if exit::tag_of(&err).is_none() {
            // this side failed (a disk, a bad frame): the sender hears why
            let _ = self.said.fail(conn, &exit::message_of(&err));
            super::peer::linger(conn);
            return err.context(kept_line);
        }
        exit::tag(exit::noted(err, kept_line), Tag::Resumable)
    }
}

/// One DATA frame's chunks: hashed in order, counted for progress.
struct Fed<'h, 's> {
    hasher: Option<&'h mut Running>,
    /// Told of every chunk once written, so a record is current mid-frame
    /// (a frame can carry 64 MiB).
    checkpoint: Option<&'h Checkpointer>,
    /// Where this frame's data starts in the file.
    at: u64,
    buf: Option<Vec<u8>>,
    done: u64,
    show: &'s mut dyn FnMut(u64),
}

impl Chunks for Fed<'_, '_> {
    fn take(&mut self) -> Vec<u8> {
        match self.hasher.as_deref() {
            Some(Running::Thread(pipe)) => pipe.buffer(),
            _ => self.buf.take().unwrap_or_else(|| vec![0u8; BUF_SIZE]),
        }
    }
    fn written(&mut self, buf: Vec<u8>, len: usize) {
        match self.hasher.as_deref_mut() {
            Some(Running::Thread(pipe)) => pipe.push(self.at + self.done, buf, len),
            Some(Running::Inline(h)) => {
                h.update(&buf[..len]);
                self.buf = Some(buf);
            }
            None => self.buf = Some(buf),
        }
        self.spliced(len as u64);
    }
    fn spliced(&mut self, n: u64) {
        self.done += n;
        if let Some(cp) = self.checkpoint {
            cp.add(self.at, self.at + self.done);
        }
        (self.show)(self.done);
    }
}

/// How one file's data begins, for a display of one file.
fn file_start(want: &Want) -> crate::progress::Start {
    let (start, end) = want.range;
    let missing = want.held.missing(start, end);
    let resumed_from = match missing.first() {
        Some(&(first, _)) if first > start => first,
        None if end > start => end,
        _ => 0,
    };
    crate::progress::Start {
        role: crate::progress::Role::Recv,
        name: Default::default(),
        peer: String::new(),
        size: (!want.stream).then_some(want.size),
        offset: start,
        count: (!want.stream).then(|| missing.iter().map(|(a, b)| b - a).sum()),
        resumed_from,
    }
}

/// A failure of this side's disk, naming the file.
fn local(want: &Want, err: io::Error) -> anyhow::Error {
    anyhow::Error::new(err).context(escape(want.path()))
}

/// A failure of the connection: the sender may come back and resume.
fn network(conn: &Conn, err: anyhow::Error) -> anyhow::Error {
    lost(err, format!("{}: connection lost", conn.peer))
}
