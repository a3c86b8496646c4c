//! One framed transfer on the receiving side, once accepted: the hashes of
//! what is held, then the data, into `NAME.zcpart` or a stream.

use std::io::{Seek, SeekFrom};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::auth::Session;
use crate::config::RecvConfig;
use crate::conn::{Conn, Keepalive};
use crate::copy::{self, RecvError, BUF_SIZE};
use crate::exit::{self, ExitCode, Tag};
use crate::hash::{self, Hashers, Pipe, Prefix};
use crate::held::{Checkpointer, Identity, Ranges};
use crate::output::{self, Part};
use crate::progress::{Progress, Reporter, Role, Start, Summary};
use crate::protocol::{self as proto, kind, BlockHash, End, Offer, Status};

/// Block hashes per HASHES frame while verifying: 64 MiB of data, so the
/// sender starts checking early and both sides hash in parallel.
const HASH_BATCH: usize = 16;

use super::peer::tell;

/// Where this transfer's bytes go.
pub(super) enum Target {
    /// stdout, a device or a FIFO (with its label): written in order.
    Stream(output::Stream, String),
    Part(Part),
}

pub(super) struct Transfer<'a> {
    pub(super) cfg: &'a RecvConfig,
    pub(super) offer: Offer,
    pub(super) name: String,
    pub(super) target: Target,
    pub(super) held: Ranges,
    pub(super) hashes: bool,
    pub(super) session: Option<Session>,
    pub(super) began: Instant,
}

/// What the data loop keeps track of.
pub(super) struct Tally {
    pub(super) received: u64,
    /// SHA-256 of DATA payloads in order, when the file will not be whole.
    pub(super) sent: Option<Sha256>,
    /// The whole file's SHA-256, fed in order, when it will be.
    pub(super) prefix: Option<Prefix>,
    pub(super) checkpoint: Option<Checkpointer>,
    /// Some data went through splice(2), never through user space.
    pub(super) spliced: bool,
    /// The hashers while data arrives.
    pub(super) pipe: Option<Pipe>,
}

/// One DATA frame's chunks: hashed on the pipe's thread, recorded for the
/// checkpoint, counted for progress.
struct FrameChunks<'a> {
    pipe: Option<&'a Pipe>,
    /// The buffer reused when nothing is hashed.
    spare: &'a mut Option<Vec<u8>>,
    offset: u64,
    at: u64,
    /// Bytes received before this frame.
    base: u64,
    checkpoint: Option<&'a Checkpointer>,
    bar: &'a mut dyn Progress,
}

impl FrameChunks<'_> {
    fn advance(&mut self, n: u64) {
        self.at += n;
        if let Some(cp) = self.checkpoint {
            cp.add(self.offset, self.at);
        }
        self.bar.update(self.base + (self.at - self.offset));
    }
}

impl copy::Chunks for FrameChunks<'_> {
    fn take(&mut self) -> Vec<u8> {
        match self.pipe {
            Some(pipe) => pipe.buffer(),
            None => self.spare.take().unwrap_or_else(|| vec![0u8; BUF_SIZE]),
        }
    }

    fn written(&mut self, buf: Vec<u8>, len: usize) {
        match self.pipe {
            Some(pipe) => pipe.push(self.at, buf, len),
            None => *self.spare = Some(buf),
        }
        if len > 0 {
            self.advance(len as u64);
        }
    }

    fn spliced(&mut self, n: u64) {
        self.advance(n);
    }
}

impl Transfer<'_> {
    pub(super) fn path_label(&self) -> String {
        match &self.target {
            Target::Stream(_, label) => label.clone(),
            Target::Part(part) => part.target.display().to_string(),
        }
    }

    pub(super) fn part(&self) -> Option<&Part> {
        match &self.target {
            Target::Part(part) => Some(part),
            Target::Stream(..) => None,
        }
    }

    pub(super) fn will_complete(&self) -> bool {
        let Some(size) = self.offer.size else {
            return true;
        };
        let mut after = self.held.clone();
        if let Some((start, end)) = self.offer.range() {
            after.insert(start, end);
        }
        after.covers(0, size)
    }

    pub(super) fn run(mut self, conn: &mut Conn, reporter: &Reporter) -> Result<()> {
        let verify = self.cfg.common.verify && self.offer.verify;
        // A part is hashed as a whole file when it will be one; stdout and
        // streams are hashed as they arrive.
        let whole = self.offer.size.is_some() && self.part().is_some() && self.will_complete();
        let mut tally = Tally {
            received: 0,
            sent: (verify && !whole).then(Sha256::new),
            prefix: (verify && whole).then(Prefix::default),
            checkpoint: None,
            spliced: false,
            pipe: None,
        };
        if self.hashes {
            // A sender that vanishes while we hash may come back: nothing
            // was written yet, and the part and its record stand as they were.
            if let Err(e) = self.send_hashes(conn, tally.prefix.as_mut(), reporter) {
                return Err(match exit::code_of(&e) {
                    ExitCode::Failure => exit::tag(e, Tag::Resumable),
                    _ => e,
                });
            }
        }
        if let (Target::Part(part), Some(size)) = (&self.target, self.offer.size) {
            let id = Identity {
                name: self.name.clone(),
                size,
                mtime_ns: self.offer.mtime_ns,
            };
            let cp = Checkpointer::start(&part.file, &part.path, id, self.held.clone())
                .with_context(|| part.path.display().to_string())?;
            tally.checkpoint = Some(cp);
        }
        // What will come, if every held block checks out (the sender
        // re-sends bad ones on top).
        let (start, end) = self
            .offer
            .range()
            .unwrap_or((self.offer.offset, self.offer.offset));
        let missing = if self.hashes {
            self.held.missing(start, end)
        } else {
            vec![(start, end)]
        };
        let resumed_from = match missing.first() {
            Some(&(first, _)) if first > start => first,
            None if end > start => end,
            _ => 0,
        };
        let mut bar = reporter.transfer(&Start {
            role: Role::Recv,
            name: self.name.clone(),
            peer: conn.peer.clone(),
            size: self.offer.size,
            offset: self.offer.offset,
            count: self
                .offer
                .count
                .map(|_| missing.iter().map(|(a, b)| b - a).sum()),
            resumed_from,
        });
        match self.receive(conn, &mut tally, bar.as_mut()) {
            Ok(summary) => {
                bar.finish(&summary);
                Ok(())
            }
            Err(e) => {
                bar.abandon();
                Err(e)
            }
        }
    }

    /// Streams the hashes of every held block, read from the part.
    pub(super) fn send_hashes(
        &self,
        conn: &mut Conn,
        mut prefix: Option<&mut Prefix>,
        reporter: &Reporter,
    ) -> Result<()> {
        let part = self.part().expect("only parts hold data");
        let mut bar = reporter.verifier(Role::Recv, &self.name, self.held.total());
        let mut buf = vec![0u8; BUF_SIZE];
        let mut batch = Vec::with_capacity(proto::MAX_HASHES);
        let mut done = 0u64;
        // Small batches let the sender hash the same blocks while we hash
        // the next ones; a slow disk still sends one every KEEPALIVE_EVERY.
        let mut pace = Keepalive::new();
        for &(start, end) in self.held.pairs() {
            let mut at = start;
            while at < end {
                if crate::interrupt::requested() {
                    return Err(crate::conn::stopped().into());
                }
                let len = (end - at).min(proto::BLOCK);
                let sha256 = hash::block(&part.file, at, len, prefix.as_deref_mut(), &mut buf)
                    .with_context(|| part.path.display().to_string())?;
                batch.push(BlockHash {
                    offset: at,
                    len: len as u32,
                    sha256,
                });
                if batch.len() == HASH_BATCH || pace.due() {
                    proto::write_frame(conn, kind::HASHES, &proto::encode_hashes(&batch, false))
                        .with_context(|| format!("{}: connection lost", conn.peer))?;
                    batch.clear();
                    pace.sent();
                }
                at += len;
                done += len;
                bar.update(done);
            }
        }
        proto::write_frame(conn, kind::HASHES, &proto::encode_hashes(&batch, true))
            .with_context(|| format!("{}: connection lost", conn.peer))?;
        bar.finish_verify(done, 0);
        Ok(())
    }

    pub(super) fn receive(
        &mut self,
        conn: &mut Conn,
        tally: &mut Tally,
        bar: &mut dyn Progress,
    ) -> Result<Summary> {
        // Hashing runs on its own thread, overlapping the reads.
        // Measured: on 2 shared cores the two cost the same wall time (inline
        // uses ~10% less CPU); on a LAN, where the receiver has its cores to
        // itself, the thread lets reading and hashing run at once.
        if tally.sent.is_some() || tally.prefix.is_some() {
            let hashers = Hashers {
                sent: tally.sent.take(),
                prefix: tally.prefix.take(),
            };
            tally.pipe = Some(Pipe::start(hashers));
        }
        let mut spare = None;
        let mut first_byte = None;
        let end = loop {
            let frame = match proto::read_frame(conn) {
                Ok(f) => f,
                Err(e) => return Err(self.keep(conn, tally, e.context("connection lost"))),
            };
            match frame.kind {
                kind::DATA => {
                    let (offset, len) = proto::parse_data(&frame.body)?;
                    self.check_data(offset, len, tally.received)?;
                    first_byte.get_or_insert(offset);
                    let label = self.path_label();
                    // Bytes pass through user space only when something
                    // needs them: a digest, or a sink a copy serves better.
                    let hashing = tally.pipe.is_some();
                    let (sink, splice) = match &mut self.target {
                        Target::Stream(out, _) => {
                            let splice = !hashing && out.is_char_device();
                            tally.spliced |= splice;
                            (out.sink(), splice)
                        }
                        Target::Part(part) => {
                            part.file
                                .seek(SeekFrom::Start(offset))
                                .with_context(|| label.clone())?;
                            // Measured (1 GiB, --no-verify): splice into the
                            // file ran 0.97x the kernel's ceiling on ext4 and
                            // 0.82x on tmpfs, read/write 0.48x and 0.76x.
                            (copy::Sink::File(&mut part.file), !hashing)
                        }
                    };
                    let mut chunks = FrameChunks {
                        pipe: tally.pipe.as_ref(),
                        spare: &mut spare,
                        offset,
                        at: offset,
                        base: tally.received,
                        checkpoint: tally.checkpoint.as_ref(),
                        bar: &mut *bar,
                    };
                    let got = copy::recv(conn, sink, Some(len), splice, &mut chunks);
                    match got {
                        Ok(got) => {
                            tally.received += got.bytes;
                            if got.cut {
                                let e =
                                    anyhow::anyhow!("connection closed in the middle of the data");
                                return Err(self.keep(conn, tally, e));
                            }
                        }
                        Err(RecvError {
                            bytes,
                            local,
                            error,
                        }) => {
                            tally.received += bytes;
                            let what = if local {
                                label
                            } else {
                                "connection lost".into()
                            };
                            let err = anyhow::Error::new(error).context(what);
                            if local {
                                tell(
                                    conn,
                                    self.session.as_ref(),
                                    Status::Failed,
                                    tally.received,
                                    &exit::message_of(&err),
                                );
                            }
                            return Err(self.keep(conn, tally, err));
                        }
                    }
                }
                kind::END => break End::decode(&frame.body)?,
                kind::STOP => return Err(self.stopped(conn, tally)),
                kind::KEEPALIVE => {}
                other => bail!("{}: unexpected frame {other:#x} during the data", conn.peer),
            }
        };
        if end.sent != tally.received {
            bail!(
                "{}: the sender says it sent {} bytes, {} arrived",
                conn.peer,
                end.sent,
                tally.received
            );
        }
        let resumed_from = match first_byte {
            Some(first) if self.held.total() > 0 => first,
            _ => 0,
        };
        self.finish(conn, tally, end, resumed_from)
    }

    pub(super) fn check_data(&self, offset: u64, len: u64, received: u64) -> Result<()> {
        let end = offset + len;
        let (start, stop) = self
            .offer
            .range()
            .unwrap_or((self.offer.offset, self.offer.offset));
        match (self.offer.size, &self.target) {
            // only inside the offered range: the space check counted that
            (Some(_), Target::Part(_)) if offset < start || end > stop => {
                bail!("data for bytes {offset}..{end}, outside the offered {start}..{stop}")
            }
            (Some(_), Target::Part(_)) => Ok(()),
            // streams, and anything to stdout, come in order
            _ => {
                let expected = self.offer.offset + received;
                if offset != expected {
                    bail!("data for byte {offset} arrived where byte {expected} was due");
                }
                let limit = self
                    .offer
                    .count
                    .map(|c| self.offer.offset + c)
                    .or(self.cfg.max_size);
                match limit {
                    Some(limit) if end > limit => {
                        bail!("data past the allowed size (byte {end} of {limit})")
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}
