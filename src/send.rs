//! The sending role: open the source, offer it, hand it to the kernel, and
//! exit 0 only when the receiver says the bytes are durable and verified.

use std::fs::File;
use std::io::{self, Read};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::config::{SendConfig, Source};
use crate::conn::Conn;
use crate::copy::{self, Sent};
use crate::exit;
use crate::hash::{self, Sha};
use crate::net;
use crate::output::base_name;
use crate::progress::{Progress, Reporter, Role, Start, Summary};
use crate::protocol::{self as proto, kind, Answer, End, Offer, Outcome, Status};

/// How long a sender waits for the receiver's reason after its data was cut.
const REASON_WAIT: Duration = Duration::from_secs(1);

/// The source, opened and measured.
enum Input {
    /// A regular file: sendfile-able, size known, range [offset, offset+count).
    File {
        file: File,
        size: u64,
        mtime_ns: Option<u64>,
    },
    /// stdin, a pipe, a FIFO, a device: read to its end (or `--count`).
    Stream { reader: Box<dyn Read + Send> },
}

struct Plan {
    input: Input,
    label: String,
    name: Option<String>,
    offset: u64,
    /// Known for files; for streams only when `--count` caps them.
    count: Option<u64>,
    note: Option<String>,
}

fn open(cfg: &SendConfig) -> Result<Plan> {
    let path = match &cfg.source {
        Source::Stdin => {
            return Ok(Plan {
                input: Input::Stream {
                    reader: Box::new(io::stdin()),
                },
                label: "stdin".into(),
                name: cfg.name.as_deref().and_then(base_name),
                offset: 0,
                count: cfg.count,
                note: None,
            })
        }
        Source::File(path) => path,
    };
    let label = path.display().to_string();
    let file = File::open(path).with_context(|| label.clone())?;
    let meta = file.metadata().with_context(|| label.clone())?;
    if meta.is_dir() {
        return Err(exit::usage(format!(
            "{label}: is a directory (zc sends files; try 'tar c {label} | zc send - HOST:PORT')"
        )));
    }
    let name = cfg
        .name
        .as_deref()
        .or_else(|| path.to_str())
        .and_then(base_name);
    if !meta.is_file() {
        if cfg.offset > 0 {
            return Err(exit::usage(format!(
                "{label}: --offset needs a regular file"
            )));
        }
        return Ok(Plan {
            input: Input::Stream {
                reader: Box::new(file),
            },
            label,
            name,
            offset: 0,
            count: cfg.count,
            note: None,
        });
    }
    let size = meta.len();
    if cfg.offset > size {
        return Err(exit::usage(format!(
            "{label}: --offset {} is past the end of the file ({size} bytes)",
            cfg.offset
        )));
    }
    let left = size - cfg.offset;
    let (count, note) = match cfg.count {
        Some(c) if c > left => (
            left,
            Some(format!(
                "--count stopped at the end of the file, {left} bytes"
            )),
        ),
        Some(c) => (c, None),
        None => (left, None),
    };
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64);
    Ok(Plan {
        input: Input::File {
            file,
            size,
            mtime_ns,
        },
        label,
        name,
        offset: cfg.offset,
        count: Some(count),
        note,
    })
}

pub fn run(cfg: &SendConfig, reporter: &Reporter) -> Result<()> {
    let mut plan = open(cfg)?;
    let began = Instant::now();
    let stream = net::connect(&cfg.dest, cfg.common.family, cfg.common.connect_timeout)?;
    let mut conn = Conn::new(stream, cfg.common.idle_timeout).context(cfg.dest.clone())?;
    conn.peer = cfg.dest.clone();
    if cfg.common.raw {
        return send_raw(cfg, &mut plan, &mut conn, reporter, began);
    }
    send_framed(cfg, &mut plan, &mut conn, reporter, began)
}

/// Moves the plan's bytes; DATA frames around them when `framed`.
fn move_bytes(
    cfg: &SendConfig,
    plan: &mut Plan,
    conn: &mut Conn,
    framed: bool,
    hasher: Option<&mut Sha256>,
    bar: &mut dyn Progress,
) -> io::Result<Sent> {
    let mut progress = |n| bar.update(n);
    match &mut plan.input {
        Input::File { file, .. } => {
            let count = plan.count.unwrap_or(0);
            if framed && count > 0 {
                io::Write::write_all(conn, &proto::data_header(plan.offset, count))?;
            }
            copy::send_file(file, conn, plan.offset, count, cfg.sendfile, &mut progress)
        }
        Input::Stream { reader } => {
            let bytes = copy::send_stream(reader, conn, framed, plan.count, hasher, &mut progress)?;
            Ok(Sent {
                bytes,
                zero_copy: false,
                fallback: None,
            })
        }
    }
}

fn start_of(plan: &Plan, conn: &Conn) -> Start {
    Start {
        role: Role::Send,
        name: plan.name.clone().unwrap_or_else(|| plan.label.clone()),
        peer: conn.peer.clone(),
        size: match plan.input {
            Input::File { size, .. } => Some(size),
            Input::Stream { .. } => None,
        },
        offset: plan.offset,
        count: plan.count,
        resumed_from: 0,
    }
}

/// A failure while moving data, named after what failed.
fn data_error(plan: &Plan, conn: &Conn, err: io::Error) -> anyhow::Error {
    if err.kind() == io::ErrorKind::UnexpectedEof {
        return anyhow::Error::new(err).context(plan.label.clone());
    }
    anyhow::Error::new(err).context(format!("{}: connection lost", conn.peer))
}

fn send_raw(
    cfg: &SendConfig,
    plan: &mut Plan,
    conn: &mut Conn,
    reporter: &Reporter,
    began: Instant,
) -> Result<()> {
    let mut bar = reporter.transfer(&start_of(plan, conn));
    let sent = match move_bytes(cfg, plan, conn, false, None, bar.as_mut()) {
        Ok(sent) => sent,
        Err(e) => {
            bar.abandon();
            return Err(data_error(plan, conn, e));
        }
    };
    // Closing our side and waiting for the peer to close tells us it read
    // everything; a raw peer has no other way to say so.
    conn.shutdown_write();
    let mut sink = [0u8; 512];
    while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
    bar.finish(&Summary {
        role: Role::Send,
        name: plan.name.clone().unwrap_or_else(|| plan.label.clone()),
        path: None,
        bytes: sent.bytes,
        elapsed: began.elapsed(),
        zero_copy: sent.zero_copy,
        sha256: None,
        resumed_from: 0,
        note: plan.note.clone().or(sent.fallback),
    });
    Ok(())
}

/// Reads the next frame that is not a keepalive.
fn next_frame(conn: &mut Conn) -> Result<proto::Frame> {
    loop {
        let frame = proto::read_frame(conn)?;
        if frame.kind != kind::KEEPALIVE {
            return Ok(frame);
        }
    }
}

fn send_framed(
    cfg: &SendConfig,
    plan: &mut Plan,
    conn: &mut Conn,
    reporter: &Reporter,
    began: Instant,
) -> Result<()> {
    let verify = cfg.common.verify;
    let (size, mtime_ns) = match plan.input {
        Input::File { size, mtime_ns, .. } => (Some(size), mtime_ns),
        Input::Stream { .. } => (None, None),
    };
    let offer = Offer {
        name: plan.name.clone(),
        size,
        offset: plan.offset,
        count: plan.count.filter(|_| size.is_some()),
        verify,
        mtime_ns,
    };
    let mut hello = Vec::new();
    proto::write_preamble(&mut hello)?;
    proto::write_frame(&mut hello, kind::OFFER, &offer.encode())?;
    io::Write::write_all(conn, &hello).with_context(|| conn.peer.clone())?;

    let frame =
        next_frame(conn).with_context(|| format!("{}: no answer from a zc receiver", conn.peer))?;
    if frame.kind != kind::ANSWER {
        bail!(
            "{}: unexpected frame {:#x} instead of an answer",
            conn.peer,
            frame.kind
        );
    }
    match Answer::decode(&frame.body).with_context(|| conn.peer.clone())? {
        Answer::Refuse { reason, .. } => {
            return Err(exit::refused(format!("{} refused: {reason}", conn.peer)))
        }
        Answer::Accept { .. } => {}
    }

    let mut bar = reporter.transfer(&start_of(plan, conn));
    // The file's digest comes from a second reader on another thread, so the
    // bytes sendfile moves never pass through user space.
    let file_hasher = match (&plan.input, verify) {
        (Input::File { file, .. }, true) => Some(hash::spawn_range(
            file.try_clone().with_context(|| plan.label.clone())?,
            plan.offset,
            plan.count.unwrap_or(0),
        )),
        _ => None,
    };
    let mut stream_hasher = (verify && file_hasher.is_none()).then(Sha256::new);
    let sent = match move_bytes(cfg, plan, conn, true, stream_hasher.as_mut(), bar.as_mut()) {
        Ok(sent) => sent,
        Err(e) => {
            bar.abandon();
            return Err(with_receiver_reason(conn, data_error(plan, conn, e)));
        }
    };
    let digest: Option<Sha> = match (file_hasher, stream_hasher) {
        (Some(handle), _) => Some(
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("the hashing thread failed"))?
                .with_context(|| plan.label.clone())?,
        ),
        (None, Some(h)) => Some(h.finalize().into()),
        (None, None) => None,
    };
    let end = End {
        sent: sent.bytes,
        range_sha256: digest,
    };
    proto::write_frame(conn, kind::END, &end.encode())
        .with_context(|| format!("{}: connection lost", conn.peer))?;

    let frame = next_frame(conn).with_context(|| {
        format!(
            "{}: connection lost before the receiver confirmed",
            conn.peer
        )
    })?;
    if frame.kind != kind::RESULT {
        bail!(
            "{}: unexpected frame {:#x} instead of the result",
            conn.peer,
            frame.kind
        );
    }
    let outcome = Outcome::decode(&frame.body).with_context(|| conn.peer.clone())?;
    match outcome.status {
        Status::Ok => {}
        Status::Mismatch => {
            bar.abandon();
            return Err(exit::integrity(format!(
                "SHA-256 mismatch: sent {}, {} received {}; the file was not kept",
                digest.map(|d| proto::hex(&d)).unwrap_or_default(),
                conn.peer,
                outcome.sha256.map(|d| proto::hex(&d)).unwrap_or_default()
            )));
        }
        Status::Failed => {
            bar.abandon();
            bail!("{} failed: {}", conn.peer, outcome.message);
        }
    }
    bar.finish(&Summary {
        role: Role::Send,
        name: plan.name.clone().unwrap_or_else(|| plan.label.clone()),
        path: None,
        bytes: sent.bytes,
        elapsed: began.elapsed(),
        zero_copy: sent.zero_copy,
        sha256: digest.map(|d| proto::hex(&d)),
        resumed_from: 0,
        note: plan.note.clone().or(sent.fallback),
    });
    Ok(())
}

/// After the data was cut, the receiver may have said why (a full disk):
/// prefer its words to "broken pipe".
fn with_receiver_reason(conn: &mut Conn, err: anyhow::Error) -> anyhow::Error {
    if exit::code_of(&err) != exit::ExitCode::Failure {
        return err;
    }
    conn.set_idle(REASON_WAIT);
    match proto::read_frame(conn) {
        Ok(frame) if frame.kind == kind::RESULT => match Outcome::decode(&frame.body) {
            Ok(outcome) => anyhow::anyhow!("{} failed: {}", conn.peer, outcome.message),
            Err(_) => err,
        },
        _ => err,
    }
}
