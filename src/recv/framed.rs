//! One framed transfer on the receiving side: check the offer, report what
//! is held (and its block hashes), write into `NAME.zcpart`, verify, fsync,
//! rename, and only then say "done".

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::auth::{self, Session};
use crate::config::{Output, RecvConfig};
use crate::conn::{with_keepalive, Conn, Keepalive};
use crate::copy::{self, RecvError, BUF_SIZE};
use crate::exit::{self, ExitCode, Failure, Tag};
use crate::hash::{self, Hashers, Pipe, Prefix, Sha};
use crate::held::{Checkpointer, Identity, Ranges, Record};
use crate::output::{self, OpenError, Part};
use crate::progress::{Progress, Reporter, Role, Start, Summary};
use crate::protocol::{
    self as proto, kind, Answer, BlockHash, End, Offer, Outcome, RefuseCode, Status,
};
use crate::sys;
use crate::units::human_bytes;

/// Block hashes per HASHES frame while verifying: 64 MiB of data, so the
/// sender starts checking early and both sides hash in parallel.
const HASH_BATCH: usize = 16;

pub fn is_not_a_sender(err: &anyhow::Error) -> bool {
    exit::tag_of(err) == Some(Tag::NotASender)
}

pub fn is_resumable(err: &anyhow::Error) -> bool {
    exit::tag_of(err) == Some(Tag::Resumable)
}

/// Where this transfer's bytes go.
enum Target {
    /// stdout, a device or a FIFO (with its label): written in order.
    Stream(output::Stream, String),
    Part(Part),
}

fn refuse(conn: &mut Conn, code: RefuseCode, reason: String) -> anyhow::Error {
    let answer = Answer::Refuse {
        code,
        reason: reason.clone(),
    };
    let _ = proto::write_frame(conn, kind::ANSWER, &answer.encode());
    exit::refused(format!("refused a transfer from {}: {reason}", conn.peer))
}

pub fn receive(cfg: &RecvConfig, stream: std::net::TcpStream, reporter: &Reporter) -> Result<()> {
    let mut conn = Conn::new(stream, cfg.common.idle_timeout).context("accepting a connection")?;
    let peer = conn.peer.clone();
    let version = proto::read_preamble(&mut conn)
        .map_err(|e| exit::tag(e.context(format!("{peer}: dropped")), Tag::NotASender))?;
    if version != proto::VERSION {
        let reason = format!(
            "this receiver speaks zc protocol {}, the sender {version}",
            proto::VERSION
        );
        return Err(refuse(&mut conn, RefuseCode::Version, reason));
    }
    let frame =
        proto::read_frame(&mut conn).with_context(|| format!("{peer}: reading the offer"))?;
    if frame.kind != kind::OFFER {
        return Err(refuse(
            &mut conn,
            RefuseCode::BadOffer,
            format!("expected an offer, got frame {:#x}", frame.kind),
        ));
    }
    let offer = match Offer::decode(&frame.body) {
        Ok(offer) => offer,
        Err(e) => {
            return Err(refuse(
                &mut conn,
                RefuseCode::BadOffer,
                format!("bad offer: {e:#}"),
            ))
        }
    };
    // Keys first: nothing is opened or created for an unauthenticated peer.
    let session = match authenticate(cfg, &mut conn, &offer, &frame.body) {
        Ok(session) => session,
        Err(reason) => return Err(refuse(&mut conn, RefuseCode::Auth, reason)),
    };
    let name = offer
        .name
        .clone()
        .unwrap_or_else(|| output::STREAM_NAME.to_string());
    let (target, held, note) = match plan(cfg, &offer, &name) {
        Ok(planned) => planned,
        Err((code, reason)) => return Err(refuse(&mut conn, code, reason)),
    };
    if let Some(note) = &note {
        reporter.warn(note);
    }
    let hashes = offer.resume && held.total() > 0;
    let answer = Answer::Accept {
        held: held.pairs().to_vec(),
        hashes,
    };
    proto::write_frame(&mut conn, kind::ANSWER, &answer.encode())
        .with_context(|| format!("{peer}: connection lost"))?;
    let transfer = Transfer {
        cfg,
        offer,
        name,
        target,
        held,
        hashes,
        session,
        began: Instant::now(),
    };
    transfer.run(&mut conn, reporter)
}

/// With a key on either side: the challenge, and the sender's proof. An
/// error is the reason for refusing.
fn authenticate(
    cfg: &RecvConfig,
    conn: &mut Conn,
    offer: &Offer,
    offer_body: &[u8],
) -> Result<Option<Session>, String> {
    let (key, sender_nonce) = match (&cfg.common.key, offer.nonce) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Err("this receiver needs a key (--key or ZC_KEY)".into()),
        (None, Some(_)) => return Err("the sender uses a key and this receiver has none".into()),
        (Some(key), Some(nonce)) => (key, nonce),
    };
    let ours = auth::nonce().map_err(|e| format!("no randomness: {e}"))?;
    let session = Session::new(key, sender_nonce, ours, offer_body);
    let mut challenge = ours.to_vec();
    challenge.extend_from_slice(&session.receiver_proof());
    let lost = |e: anyhow::Error| format!("connection lost during the handshake: {e:#}");
    proto::write_frame(conn, kind::CHALLENGE, &challenge).map_err(|e| lost(e.into()))?;
    // A sender that finds our proof wrong hangs up instead of answering.
    let frame = proto::read_frame(conn)
        .map_err(|_| "wrong key (the sender did not accept this receiver's proof)".to_string())?;
    if frame.kind != kind::PROOF || !session.check_sender(&frame.body) {
        return Err("wrong key".into());
    }
    Ok(Some(session))
}

/// Decides where the offer goes and what of it is already held, or why it
/// cannot be taken. A held copy of another source is dropped (with a note).
fn plan(
    cfg: &RecvConfig,
    offer: &Offer,
    name: &str,
) -> Result<(Target, Ranges, Option<String>), (RefuseCode, String)> {
    if let Err(why) = output::check_name(name) {
        return Err((RefuseCode::BadName, why));
    }
    if let (Some(max), Some(size)) = (cfg.max_size, offer.size) {
        if size > max {
            return Err((
                RefuseCode::TooLarge,
                format!(
                    "{name} is {}, over --max-size {}",
                    human_bytes(size),
                    human_bytes(max)
                ),
            ));
        }
    }
    let target: PathBuf = match &cfg.output {
        Output::Stdout => {
            return Ok((
                Target::Stream(output::Stream::stdout(), "-".into()),
                Ranges::new(),
                None,
            ))
        }
        Output::Stream(path) => {
            let sink = output::Stream::open(path)
                .map_err(|e| (RefuseCode::Other, format!("{}: {e}", path.display())))?;
            return Ok((
                Target::Stream(sink, path.display().to_string()),
                Ranges::new(),
                None,
            ));
        }
        Output::Dir(dir) => dir.join(name),
        Output::File(file) => file.clone(),
    };
    if !cfg.force && target.symlink_metadata().is_ok() {
        return Err((
            RefuseCode::Exists,
            format!(
                "{} exists (the receiver can overwrite it with --force)",
                target.display()
            ),
        ));
    }
    let part = match Part::open(&target) {
        Ok(part) => part,
        Err(OpenError::Busy) => {
            return Err((
                RefuseCode::Busy,
                format!("{} is being received by another transfer", target.display()),
            ))
        }
        Err(OpenError::Io(e)) => return Err((RefuseCode::Other, format!("{e:#}"))),
    };
    let io_err = |e: io::Error| (RefuseCode::Other, format!("{}: {e}", part.path.display()));
    let on_disk = part.file.metadata().map_err(io_err)?.len();
    let identity = offer.size.map(|size| Identity {
        name: name.to_string(),
        size,
        mtime_ns: offer.mtime_ns,
    });
    let record = Record::load(&part.path);
    let (mut held, mut note) = (Ranges::new(), None);
    match (&identity, record) {
        (Some(id), Some(rec)) if !offer.fresh && rec.source == *id => {
            held = rec.held;
            held.clip(on_disk);
        }
        (_, rec) => {
            if on_disk > 0 && !offer.fresh {
                let why = if rec.is_some() {
                    "of another version of the file"
                } else {
                    "without a record of what it holds"
                };
                note = Some(format!("{} is {why}; starting over", part.path.display()));
            }
            part.file.set_len(0).map_err(io_err)?;
            Record::remove(&part.path);
        }
    }
    if let Some(size) = offer.size {
        let (start, end) = (
            offer.offset,
            offer.offset + offer.count.unwrap_or(size - offer.offset),
        );
        let needed: u64 = held.missing(start, end).iter().map(|(a, b)| b - a).sum();
        let dir = output::dir_of(&target);
        if let Ok(free) = sys::free_space(&dir) {
            if needed > free {
                let why = format!(
                    "{name} needs {} but {} has {} free",
                    human_bytes(needed),
                    dir.display(),
                    human_bytes(free)
                );
                return Err((RefuseCode::NoSpace, why));
            }
        }
    }
    Ok((Target::Part(part), held, note))
}

struct Transfer<'a> {
    cfg: &'a RecvConfig,
    offer: Offer,
    name: String,
    target: Target,
    held: Ranges,
    hashes: bool,
    session: Option<Session>,
    began: Instant,
}

/// What the data loop keeps track of.
struct Tally {
    received: u64,
    /// SHA-256 of DATA payloads in order, when the file will not be whole.
    sent: Option<Sha256>,
    /// The whole file's SHA-256, fed in order, when it will be.
    prefix: Option<Prefix>,
    checkpoint: Option<Checkpointer>,
    /// Some data went through splice(2), never through user space.
    spliced: bool,
    /// The hashers while data arrives.
    pipe: Option<Pipe>,
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
    fn path_label(&self) -> String {
        match &self.target {
            Target::Stream(_, label) => label.clone(),
            Target::Part(part) => part.target.display().to_string(),
        }
    }

    fn part(&self) -> Option<&Part> {
        match &self.target {
            Target::Part(part) => Some(part),
            Target::Stream(..) => None,
        }
    }

    fn will_complete(&self) -> bool {
        let Some(size) = self.offer.size else {
            return true;
        };
        let mut after = self.held.clone();
        after.insert(
            self.offer.offset,
            self.offer.offset + self.offer.count.unwrap_or(0),
        );
        after.covers(0, size)
    }

    fn run(mut self, conn: &mut Conn, reporter: &Reporter) -> Result<()> {
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
            self.send_hashes(conn, tally.prefix.as_mut(), reporter)?;
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
        let (start, end) = (
            self.offer.offset,
            self.offer.offset + self.offer.count.unwrap_or(0),
        );
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
    fn send_hashes(
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

    fn receive(
        &mut self,
        conn: &mut Conn,
        tally: &mut Tally,
        bar: &mut dyn Progress,
    ) -> Result<Summary> {
        // Hashing runs on its own thread, overlapping the reads.
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
                            (copy::Sink::File(&mut part.file), false)
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

    fn check_data(&self, offset: u64, len: u64, received: u64) -> Result<()> {
        let end = offset + len;
        match (self.offer.size, &self.target) {
            (Some(size), Target::Part(_)) if end > size => {
                bail!("data for bytes {offset}..{end}, past the size {size}")
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

    /// After END: fsync, record, compare digests, publish, tell the sender.
    fn finish(
        &mut self,
        conn: &mut Conn,
        tally: &mut Tally,
        end: End,
        resumed_from: u64,
    ) -> Result<Summary> {
        let received = tally.received;
        if let Some(pipe) = tally.pipe.take() {
            let hashers = pipe.finish();
            tally.sent = hashers.sent;
            tally.prefix = hashers.prefix;
        }
        let durable = match (&mut self.target, tally.checkpoint.take()) {
            (Target::Part(_), Some(cp)) => with_keepalive(conn, move || cp.finish()).map(Some),
            (Target::Part(part), None) => {
                with_keepalive(conn, || part.file.sync_all()).map(|()| None)
            }
            (Target::Stream(out, _), _) => out.flush().map(|()| None),
        };
        let held = match durable {
            Ok(held) => held,
            Err(e) => {
                let err = anyhow::Error::new(e).context(format!("{}: fsync", self.path_label()));
                tell(
                    conn,
                    self.session.as_ref(),
                    Status::Failed,
                    received,
                    &exit::message_of(&err),
                );
                return Err(err);
            }
        };
        let complete = match (self.offer.size, &held) {
            (Some(size), Some(held)) => held.covers(0, size),
            _ => true,
        };
        let ours: Option<Sha> = match (complete, self.offer.size, self.part()) {
            (true, Some(size), Some(part)) if end.file_sha256.is_some() => {
                let prefix = tally.prefix.take().unwrap_or_default();
                let file: &File = &part.file;
                Some(
                    with_keepalive(conn, || prefix.finish(file, size))
                        .with_context(|| part.path.display().to_string())?,
                )
            }
            _ => tally.sent.take().map(|h| h.finalize().into()),
        };
        let theirs = if complete && end.file_sha256.is_some() {
            end.file_sha256
        } else {
            end.sent_sha256
        };
        // With a key, the sender's digest is keyed: ours is keyed the same
        // way before comparing, so altered data cannot carry a fixed digest.
        let checked = match (ours, theirs) {
            (Some(ours), Some(theirs)) => {
                let wire = self
                    .session
                    .as_ref()
                    .map_or(ours, |s| s.keyed_digest(&ours));
                Some((ours, theirs, wire))
            }
            _ => None,
        };
        if let Some((ours, theirs, _)) = checked.filter(|(_, theirs, wire)| wire != theirs) {
            let _ = result(
                conn,
                self.session.as_ref(),
                Status::Mismatch,
                Some(ours),
                0,
                "SHA-256 mismatch",
            );
            let kept = match self.part() {
                Some(part) => {
                    // nothing in it can be trusted now
                    Record::remove(&part.path);
                    format!("; {} was not renamed into place", part.path.display())
                }
                None => "; the data already written to stdout is not what was sent".into(),
            };
            return Err(exit::integrity(format!(
                "SHA-256 mismatch for {} from {}: sender {}, received {}{kept}",
                self.name,
                conn.peer,
                proto::hex(&theirs),
                proto::hex(&ours)
            )));
        }
        let mut note = None;
        let mut held_bytes = received;
        if let Some(part) = self.part() {
            held_bytes = held.as_ref().map_or(received, |h| h.total());
            if complete {
                if let Err(e) = part.publish() {
                    tell(
                        conn,
                        self.session.as_ref(),
                        Status::Failed,
                        received,
                        &exit::message_of(&e),
                    );
                    return Err(e);
                }
                Record::remove(&part.path);
            } else {
                note = Some(format!(
                    "{} holds {} of the file",
                    part.path.display(),
                    human_bytes(held_bytes)
                ));
            }
        }
        result(
            conn,
            self.session.as_ref(),
            Status::Ok,
            ours,
            held_bytes,
            "",
        )
        .with_context(|| format!("{}: connection lost before the result was sent", conn.peer))?;
        Ok(Summary {
            role: Role::Recv,
            name: self.name.clone(),
            path: Some(self.path_label()),
            bytes: received,
            elapsed: self.began.elapsed(),
            zero_copy: tally.spliced,
            sha256: checked.map(|(ours, ..)| proto::hex(&ours)),
            resumed_from,
            note,
        })
    }

    /// Makes what arrived durable and recorded; returns the bytes now held.
    fn make_durable(&self, tally: &mut Tally) -> Result<u64> {
        let Some(part) = self.part() else {
            return Ok(tally.received);
        };
        match tally.checkpoint.take() {
            Some(cp) => Ok(cp
                .finish()
                .with_context(|| part.path.display().to_string())?
                .total()),
            None => {
                part.sync()?;
                Ok(tally.received)
            }
        }
    }

    /// The sender pressed Ctrl-C: keep everything and say so.
    fn stopped(&self, conn: &mut Conn, tally: &mut Tally) -> anyhow::Error {
        let held = match self.make_durable(tally) {
            Ok(held) => held,
            Err(e) => return e,
        };
        tell(
            conn,
            self.session.as_ref(),
            Status::Stopped,
            held,
            "stopped",
        );
        let kept = match self.part() {
            Some(part) => format!("; kept {} ({held} bytes held)", part.path.display()),
            None => String::new(),
        };
        anyhow::Error::new(Failure {
            code: ExitCode::Interrupted,
            message: format!("{} stopped sending {}{kept}", conn.peer, self.name),
        })
    }

    /// An interrupted transfer: make what arrived durable and say where it is.
    fn keep(&self, conn: &Conn, tally: &mut Tally, err: anyhow::Error) -> anyhow::Error {
        let Some(part) = self.part() else {
            return err.context(format!("{}: after {} bytes", conn.peer, tally.received));
        };
        let kept = match self.make_durable(tally) {
            Ok(held) => format!("kept {} ({held} bytes held)", part.path.display()),
            Err(e) => format!("could not sync {}: {e:#}", part.path.display()),
        };
        if crate::interrupt::requested() || exit::code_of(&err) == ExitCode::Interrupted {
            return anyhow::Error::new(Failure {
                code: ExitCode::Interrupted,
                message: format!("interrupted; {kept}"),
            });
        }
        let resumable = self.offer.size.is_some();
        let err = err.context(format!("{}: {} — {kept}", conn.peer, self.name));
        if resumable {
            exit::tag(err, Tag::Resumable)
        } else {
            err
        }
    }
}

/// Sends a RESULT, with its MAC when a key is in use.
fn result(
    conn: &mut Conn,
    session: Option<&Session>,
    status: Status,
    sha256: Option<Sha>,
    held: u64,
    message: &str,
) -> io::Result<()> {
    let outcome = Outcome {
        status,
        sha256,
        held,
        message: message.to_string(),
        mac: session.map(|s| s.result_mac(status as u8, held)),
    };
    proto::write_frame(conn, kind::RESULT, &outcome.encode())
}

/// Sends a RESULT on an error path: failing to send it is not worth more
/// than the error at hand.
fn tell(conn: &mut Conn, session: Option<&Session>, status: Status, held: u64, message: &str) {
    let _ = result(conn, session, status, None, held, message);
}
