//! One framed transfer on the receiving side: check the offer, write into
//! `NAME.zcpart`, verify, fsync, rename, and only then say "done".

use std::io::{self, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::config::{Output, RecvConfig};
use crate::conn::Conn;
use crate::copy::{self, RecvError, BUF_SIZE};
use crate::exit::{self, ExitCode, Failure};
use crate::output::{self, OpenError, Part};
use crate::progress::{Progress, Reporter, Role, Start, Summary};
use crate::protocol::{self as proto, kind, Answer, End, Offer, Outcome, RefuseCode, Status};
use crate::units::human_bytes;
use crate::{interrupt, sys};

/// While fsync runs, the sender hears from us this often, so its idle
/// timeout measures a silent peer, not a slow disk.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(2);

/// The marker for a connection that never spoke zc (a scan, a stray nc).
#[derive(Debug)]
struct NotASender;

impl std::fmt::Display for NotASender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a zc sender")
    }
}

impl std::error::Error for NotASender {}

pub fn is_not_a_sender(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.is::<NotASender>())
}

/// Where this transfer's bytes go.
enum Target {
    Stdout(Box<dyn Write + Send>),
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
        .map_err(|e| e.context(NotASender).context(format!("{peer}: dropped")))?;
    if version != proto::VERSION {
        return Err(refuse(
            &mut conn,
            RefuseCode::Version,
            format!(
                "this receiver speaks zc protocol {}, the sender {version}",
                proto::VERSION
            ),
        ));
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
    let name = offer
        .name
        .clone()
        .unwrap_or_else(|| output::STREAM_NAME.to_string());
    let target = match plan(cfg, &offer, &name) {
        Ok(target) => target,
        Err((code, reason)) => return Err(refuse(&mut conn, code, reason)),
    };
    proto::write_frame(
        &mut conn,
        kind::ANSWER,
        &Answer::Accept { held: vec![] }.encode(),
    )
    .with_context(|| format!("{peer}: connection lost"))?;
    Transfer {
        cfg,
        offer,
        name,
        target,
        began: Instant::now(),
    }
    .run(&mut conn, reporter)
}

/// Decides where the offer goes, or why it cannot be taken.
fn plan(cfg: &RecvConfig, offer: &Offer, name: &str) -> Result<Target, (RefuseCode, String)> {
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
        Output::Stdout => return Ok(Target::Stdout(output::stdout_sink())),
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
    let whole = offer.offset == 0 && offer.count == offer.size;
    if whole || offer.size.is_none() {
        // A new copy of the whole source: nothing held is worth keeping.
        part.file
            .set_len(0)
            .map_err(|e| (RefuseCode::Other, format!("{}: {e}", part.path.display())))?;
    }
    if let Some(size) = offer.size {
        let held = part.file.metadata().map_or(0, |m| m.len());
        let needed = (offer.offset + offer.count.unwrap_or(0)).saturating_sub(held);
        if let Ok(free) = sys::free_space(&output::dir_of(&target)) {
            if needed > free {
                return Err((
                    RefuseCode::NoSpace,
                    format!(
                        "{name} needs {} but {} has {} free",
                        human_bytes(needed),
                        output::dir_of(&target).display(),
                        human_bytes(free)
                    ),
                ));
            }
        }
        let _ = size;
    }
    Ok(Target::Part(part))
}

struct Transfer<'a> {
    cfg: &'a RecvConfig,
    offer: Offer,
    name: String,
    target: Target,
    began: Instant,
}

impl Transfer<'_> {
    fn sink(&mut self, offset: u64) -> io::Result<&mut dyn Write> {
        match &mut self.target {
            Target::Stdout(out) => Ok(out.as_mut()),
            Target::Part(part) => {
                part.file.seek(SeekFrom::Start(offset))?;
                Ok(&mut part.file)
            }
        }
    }

    fn path_label(&self) -> String {
        match &self.target {
            Target::Stdout(_) => "-".into(),
            Target::Part(part) => part.target.display().to_string(),
        }
    }

    fn run(mut self, conn: &mut Conn, reporter: &Reporter) -> Result<()> {
        let mut bar = reporter.transfer(&Start {
            role: Role::Recv,
            name: self.name.clone(),
            peer: conn.peer.clone(),
            size: self.offer.size,
            offset: self.offer.offset,
            count: self.offer.count,
            resumed_from: 0,
        });
        let result = self.receive(conn, bar.as_mut());
        match result {
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

    fn receive(&mut self, conn: &mut Conn, bar: &mut dyn Progress) -> Result<Summary> {
        let mut hasher = (self.cfg.common.verify && self.offer.verify).then(Sha256::new);
        let mut buf = vec![0u8; BUF_SIZE];
        let mut received = 0u64;
        let end = loop {
            let frame = match proto::read_frame(conn) {
                Ok(f) => f,
                Err(e) => return Err(self.keep(conn, received, e.context("connection lost"))),
            };
            match frame.kind {
                kind::DATA => {
                    let (offset, len) = proto::parse_data(&frame.body)?;
                    self.check_data(offset, len, received)?;
                    let label = self.path_label();
                    let sink = self.sink(offset).with_context(|| label)?;
                    let mut progress = |n| bar.update(received + n);
                    match copy::recv_to_sink(
                        conn,
                        sink,
                        Some(len),
                        hasher.as_mut(),
                        &mut buf,
                        &mut progress,
                    ) {
                        Ok(got) => {
                            received += got.bytes;
                            if got.cut {
                                let e = anyhow::anyhow!("connection closed after {received} bytes, in the middle of the data");
                                return Err(self.keep(conn, received, e));
                            }
                        }
                        Err(RecvError {
                            bytes,
                            local,
                            error,
                        }) => {
                            received += bytes;
                            let what = if local {
                                self.path_label()
                            } else {
                                "connection lost".into()
                            };
                            let err = anyhow::Error::new(error).context(what);
                            if local {
                                self.tell_failed(conn, received, &err);
                            }
                            return Err(self.keep(conn, received, err));
                        }
                    }
                }
                kind::END => break End::decode(&frame.body)?,
                kind::KEEPALIVE => {}
                other => bail!("{}: unexpected frame {other:#x} during the data", conn.peer),
            }
        };
        if end.sent != received {
            bail!(
                "{}: the sender says it sent {} bytes, {received} arrived",
                conn.peer,
                end.sent
            );
        }
        self.finish(conn, received, end, hasher)
    }

    fn check_data(&self, offset: u64, len: u64, received: u64) -> Result<()> {
        let expected = self.offer.offset + received;
        if offset != expected {
            bail!("data for byte {offset} arrived where byte {expected} was due");
        }
        let limit = match self.offer.count {
            Some(count) => Some(self.offer.offset + count),
            None => self.cfg.max_size,
        };
        if let Some(limit) = limit {
            if offset + len > limit {
                bail!(
                    "data past the offered range (byte {} of {limit})",
                    offset + len
                );
            }
        }
        Ok(())
    }

    /// After END: fsync, compare digests, publish, and tell the sender.
    fn finish(
        &mut self,
        conn: &mut Conn,
        received: u64,
        end: End,
        hasher: Option<Sha256>,
    ) -> Result<Summary> {
        let ours: Option<[u8; 32]> = hasher.map(|h| h.finalize().into());
        let synced = match &self.target {
            Target::Part(part) => with_keepalive(conn, || part.sync()),
            Target::Stdout(_) => Ok(()),
        };
        if let Err(e) = synced {
            self.tell_failed(conn, received, &e);
            return Err(e);
        }
        let checked = match (ours, end.range_sha256) {
            (Some(ours), Some(theirs)) => Some((ours, theirs)),
            _ => None,
        };
        if let Some((ours, theirs)) = checked {
            if ours != theirs {
                let outcome = Outcome {
                    status: Status::Mismatch,
                    sha256: Some(ours),
                    held: 0,
                    message: "SHA-256 mismatch".into(),
                };
                let _ = proto::write_frame(conn, kind::RESULT, &outcome.encode());
                let kept = match &self.target {
                    Target::Part(part) => {
                        format!("; {} was not renamed into place", part.path.display())
                    }
                    Target::Stdout(_) => {
                        "; the data already written to stdout is not what was sent".into()
                    }
                };
                return Err(exit::integrity(format!(
                    "SHA-256 mismatch for {} from {}: sender {}, received {}{kept}",
                    self.name,
                    conn.peer,
                    proto::hex(&theirs),
                    proto::hex(&ours)
                )));
            }
        }
        let complete = self.offer.size.is_none()
            || (self.offer.offset == 0 && Some(received) == self.offer.size);
        let mut note = None;
        if let Target::Part(part) = &self.target {
            if complete {
                if let Err(e) = part.publish() {
                    self.tell_failed(conn, received, &e);
                    return Err(e);
                }
            } else {
                note = Some(format!(
                    "a range; {} holds it until the file is complete",
                    part.path.display()
                ));
            }
        }
        let outcome = Outcome {
            status: Status::Ok,
            sha256: ours,
            held: received,
            message: String::new(),
        };
        proto::write_frame(conn, kind::RESULT, &outcome.encode()).with_context(|| {
            format!("{}: connection lost before the result was sent", conn.peer)
        })?;
        Ok(Summary {
            role: Role::Recv,
            name: self.name.clone(),
            path: Some(self.path_label()),
            bytes: received,
            elapsed: self.began.elapsed(),
            zero_copy: false,
            sha256: checked.map(|(ours, _)| proto::hex(&ours)),
            resumed_from: 0,
            note,
        })
    }

    /// Tells the sender why this side failed, so it can say so too.
    fn tell_failed(&self, conn: &mut Conn, received: u64, err: &anyhow::Error) {
        let outcome = Outcome {
            status: Status::Failed,
            sha256: None,
            held: received,
            message: exit::message_of(err),
        };
        let _ = proto::write_frame(conn, kind::RESULT, &outcome.encode());
    }

    /// An interrupted transfer: make what arrived durable and say where it is.
    fn keep(&self, conn: &Conn, received: u64, err: anyhow::Error) -> anyhow::Error {
        let Target::Part(part) = &self.target else {
            return err.context(format!("{}: after {received} bytes", conn.peer));
        };
        let kept = match part.sync() {
            Ok(()) => format!(
                "kept {} ({} received)",
                part.path.display(),
                human_bytes(received)
            ),
            Err(e) => format!("could not sync {}: {e:#}", part.path.display()),
        };
        if interrupt::requested() || exit::code_of(&err) == ExitCode::Interrupted {
            return anyhow::Error::new(Failure {
                code: ExitCode::Interrupted,
                message: format!("interrupted; {kept}"),
            });
        }
        err.context(format!("{}: {} — {kept}", conn.peer, self.name))
    }
}

/// Runs `work` (an fsync) while sending keepalives, so a long flush to a
/// slow disk is not mistaken for a dead receiver.
fn with_keepalive<T: Send>(conn: &mut Conn, work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let handle = scope.spawn(move || {
            let out = work();
            let _ = done_tx.send(());
            out
        });
        while let Err(RecvTimeoutError::Timeout) = done_rx.recv_timeout(KEEPALIVE_EVERY) {
            let _ = proto::write_frame(conn, kind::KEEPALIVE, &[]);
        }
        handle.join().expect("the fsync thread does not panic")
    })
}
