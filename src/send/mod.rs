//! The sending role: open the source, connect (again, with `--retry`), and
//! run a framed or raw session.

pub(crate) mod digests;
mod peer;
mod raw;
mod replies;
mod serve;
mod tree;
mod tree_files;
pub mod walk;

use std::fs::File;
use std::io::{self, Read};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::config::{Payload, Peer, SendConfig, Source};
use crate::conn::{Conn, Way};
use crate::exit::{self, ExitCode, Tag};
use crate::net;
use crate::output::base_name;
use crate::progress::{Reporter, Role, Start};

/// The first wait before a retry; each next one doubles, up to the cap.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(30);

/// The whole transfer across its connections (`--retry`): what its
/// summary counts.
pub(crate) struct Journey {
    pub(crate) began: Instant,
    pub(crate) reconnects: u32,
    /// Data bytes sent on the earlier connections.
    pub(crate) sent_before: u64,
    /// Data bytes sent on this connection, set as its session ends.
    pub(crate) sent_now: std::cell::Cell<u64>,
}

impl Journey {
    pub(crate) fn new() -> Journey {
        Journey {
            began: Instant::now(),
            reconnects: 0,
            sent_before: 0,
            sent_now: std::cell::Cell::new(0),
        }
    }
}

/// The source, opened and measured.
pub(crate) enum Input {
    /// A regular file: sendfile-able, size known.
    File { file: File, size: u64 },
    /// stdin, a pipe, a FIFO, a device: read to its end (or `--count`).
    Stream { reader: Box<dyn Read + Send> },
}

pub(crate) struct Plan {
    input: Input,
    /// How the user named the source (a path, or "stdin").
    label: String,
    /// The name announced to the receiver.
    name: Option<String>,
    /// The range asked for: [offset, offset+count); count is known for
    /// files, and for streams only when `--count` caps them.
    offset: u64,
    count: Option<u64>,
    /// `--offset` was given: send the range as it is, whatever is held.
    forced: bool,
    note: Option<String>,
}

impl Plan {
    fn size(&self) -> Option<u64> {
        match self.input {
            Input::File { size, .. } => Some(size),
            Input::Stream { .. } => None,
        }
    }

    /// The bytes asked for, `[offset, offset + count)`; a file's count is
    /// always known (a stream's range is only used when it is capped).
    fn range(&self) -> (u64, u64) {
        (self.offset, self.offset + self.count.unwrap_or(0))
    }

    fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.label.clone())
    }

    fn start(&self, conn: &Conn, resumed_from: u64) -> Start {
        Start {
            role: Role::Send,
            name: self.display_name().into(),
            peer: conn.peer.clone(),
            size: self.size(),
            offset: self.offset,
            count: self.count,
            resumed_from,
        }
    }
}

fn open(cfg: &SendConfig, source: &Source) -> Result<Plan> {
    let path = match source {
        Source::Stdin => {
            return Ok(Plan {
                input: Input::Stream {
                    reader: Box::new(io::stdin()),
                },
                label: "stdin".into(),
                name: cfg.name.as_deref().and_then(base_name),
                offset: 0,
                count: cfg.count,
                forced: false,
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
    let offset = cfg.offset.unwrap_or(0);
    if !meta.is_file() {
        if offset > 0 {
            return Err(exit::usage(format!(
                "{label}: --offset needs a regular file"
            )));
        }
        let reader = Box::new(file);
        return Ok(Plan {
            input: Input::Stream { reader },
            label,
            name,
            offset,
            count: cfg.count,
            forced: false,
            note: None,
        });
    }
    let size = meta.len();
    if offset > size {
        return Err(exit::usage(format!(
            "{label}: --offset {offset} is past the end of the file ({size} bytes)"
        )));
    }
    let left = size - offset;
    let (count, note) = match cfg.count {
        Some(c) if c > left => (
            left,
            Some(format!(
                "--count stopped at the end of the file, after {left} bytes"
            )),
        ),
        Some(c) => (c, None),
        None => (left, None),
    };
    Ok(Plan {
        input: Input::File { file, size },
        label,
        name,
        offset,
        count: Some(count),
        forced: cfg.offset.is_some(),
        note,
    })
}

fn retryable(err: &anyhow::Error) -> bool {
    exit::code_of(err) == ExitCode::Failure && exit::tag_of(err) == Some(Tag::Retryable)
}

pub fn run(cfg: &SendConfig, reporter: &Reporter) -> Result<()> {
    if cfg.keep_open {
        return serve::serve(cfg, reporter);
    }
    match &cfg.payload {
        Payload::Single(source) if !cfg.common.raw => {
            let plan = tree::Outgoing::single(open(cfg, source)?);
            let resumable = plan.resumable();
            drive(cfg, reporter, resumable, |conn, journey| {
                tree::session(cfg, &plan, conn, reporter, journey)
            })
        }
        Payload::Single(source) => {
            let mut plan = open(cfg, source)?;
            // a raw receiver cannot say what it holds, so nothing resumes
            // (config refuses --retry with --raw)
            drive(cfg, reporter, false, |conn, journey| {
                raw::session(cfg, &mut plan, conn, reporter, journey.began)
            })
        }
        Payload::Tree(sources) => {
            let plan = tree::Outgoing::new(sources, Some(reporter))?;
            drive(cfg, reporter, true, |conn, journey| {
                tree::session(cfg, &plan, conn, reporter, journey)
            })
        }
    }
}

/// Connects (or waits, in reverse mode) and runs `session`; on a dropped
/// connection, with `--retry`, waits and runs it again, since every session
/// resumes from what the receiver holds.
fn drive(
    cfg: &SendConfig,
    reporter: &Reporter,
    resumable: bool,
    mut session: impl FnMut(&mut Conn, &Journey) -> Result<()>,
) -> Result<()> {
    let listener = match &cfg.peer {
        Peer::Listen(addr) => {
            let listener = net::listen(*addr, cfg.common.family)?;
            reporter.listening_on(&listener, cfg.common.fresh_code.as_deref(), true, false)?;
            Some(listener)
        }
        Peer::Connect(_) | Peer::Find(_) => None,
    };
    // a peer on the LAN is looked for once; a reconnection goes back to it
    let found = match &cfg.peer {
        Peer::Find(want) => Some(crate::lan::find(want, cfg.common.find_timeout)?),
        _ => None,
    };
    if let Some(found) = &found {
        reporter.found(found);
    }
    let made = listener
        .as_ref()
        .and_then(|l| cfg.common.announce(l, crate::lan::Role::Sender));
    let _announced = reporter.announced(cfg.common.announce.as_deref(), made);
    let mut attempt = 0;
    // A resume command only makes sense once a transfer has begun.
    let mut connected = false;
    // the summary covers every connection, and the waits between them
    let mut journey = Journey::new();
    loop {
        let result = connect(cfg, listener.as_ref(), found.as_ref()).and_then(|mut conn| {
            if !connected {
                // from the first connection: not the wait for a receiver
                journey.began = Instant::now();
            }
            connected = true;
            session(&mut conn, &journey)
        });
        let err = match result {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        if !(retryable(&err) && resumable) || attempt >= cfg.retry {
            if connected && retryable(&err) && resumable {
                return Err(exit::noted(
                    err,
                    format!("resume with: {}", resume_command(None)),
                ));
            }
            return Err(err);
        }
        attempt += 1;
        journey.reconnects += 1;
        journey.sent_before += journey.sent_now.take();
        let wait = RETRY_FIRST
            .saturating_mul(1 << (attempt - 1).min(16))
            .min(RETRY_CAP);
        reporter.retry(attempt, cfg.retry, wait, &exit::message_of(&err));
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if crate::interrupt::requested() {
                return Err(exit::interrupted("interrupted while waiting to retry"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Connects to the receiver, or (reverse mode) waits for it to connect.
fn connect(
    cfg: &SendConfig,
    listener: Option<&TcpListener>,
    found: Option<&crate::lan::Found>,
) -> Result<Conn> {
    let (stream, label) = match (&cfg.peer, listener) {
        (Peer::Find(_), _) => {
            let found = found.expect("drive() finds the peer first");
            let name = crate::lan::shown(&found.name);
            let c = &cfg.common;
            let stream = net::connect_any(&found.addrs, c.family, c.connect_timeout, &name)
                .map_err(|e| exit::tag(e, Tag::Retryable))?;
            let addr = stream
                .peer_addr()
                .map_or_else(|_| "?".into(), |a| a.to_string());
            (stream, Some(format!("{name} ({addr})")))
        }
        (Peer::Connect(dest), _) => {
            let stream = net::connect(dest, cfg.common.family, cfg.common.connect_timeout)
                .map_err(|e| exit::tag(e, Tag::Retryable))?;
            (stream, Some(dest.clone()))
        }
        (Peer::Listen(_), Some(listener)) => (
            net::accept(listener, None)?.expect("no deadline, so a connection"),
            None,
        ),
        (Peer::Listen(addr), None) => unreachable!("run() listens on {addr} first"),
    };
    let mut conn = Conn::new(stream, cfg.common.idle_timeout).context("a new connection")?;
    // what a tree session writes while it waits; a raw one never does
    conn.set_keepalive(&crate::protocol::KEEPALIVE_FRAME);
    conn.limit(Way::Send, cfg.common.limit_rate);
    match label {
        Some(label) => conn.peer = label,
        // whoever connected answers the offer soon, or makes room
        None => conn.handshake(handshake_within(cfg), None),
    }
    Ok(conn)
}

/// How long a receiver that connected to this listening sender may take
/// to answer its offer (and, with a secret, to prove it).
fn handshake_within(cfg: &SendConfig) -> Duration {
    crate::admission::HANDSHAKE_WITHIN.min(cfg.common.idle_timeout)
}

/// The command line that continues this transfer: the same one (framed
/// resume is automatic), or with `--offset` set (raw mode).
pub(crate) fn resume_command(offset: Option<&str>) -> String {
    let mut args: Vec<String> = std::env::args().collect();
    if let Some(first) = args.first_mut() {
        *first = "zc".into();
    }
    if let Some(offset) = offset {
        let mut kept = Vec::with_capacity(args.len() + 2);
        let mut skip = false;
        for arg in args {
            if skip {
                skip = false;
            } else if arg == "--offset" {
                skip = true;
            } else if !arg.starts_with("--offset=") {
                kept.push(arg);
            }
        }
        let at = kept
            .iter()
            .position(|a| a == "send")
            .map_or(kept.len(), |i| i + 1);
        kept.splice(at..at, ["--offset".to_string(), offset.to_string()]);
        // a placeholder such as N must not be quoted away
        return kept
            .iter()
            .map(|a| {
                if a == offset {
                    a.clone()
                } else {
                    shell_quote(a)
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
    }
    args.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,[]".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// Pieces of a range go out one DATA frame each, sized to last about this
/// long, so that Ctrl-C ends a transfer at a frame boundary promptly.
const PIECE_TIME: Duration = Duration::from_millis(250);
const PIECE_MIN: u64 = 64 << 10;
const PIECE_MAX: u64 = 64 << 20;
const PIECE_FIRST: u64 = 1 << 20;

/// How pieces go on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// The bytes alone (`--raw`).
    Raw,
    /// Each piece behind a DATA header; a source that ends early has the
    /// rest of its piece filled with zeros, so the session can go on to the
    /// next entry (the entry is then reported as failed and its bytes are
    /// not kept).
    Padded,
}

/// Sends `ranges` of `file` in pieces (each behind a DATA header unless
/// raw), looking at Ctrl-C between pieces. `progress` gets the running
/// total. A Ctrl-C returns [`crate::interrupt::stopped`] at a piece boundary, with the
/// count so far in `sent.bytes`.
pub(crate) fn send_file_ranges(
    file: &File,
    conn: &mut Conn,
    ranges: &[(u64, u64)],
    zero_copy: bool,
    framing: Framing,
    progress: &mut dyn FnMut(u64),
    sent: &mut crate::copy::Sent,
) -> io::Result<()> {
    use crate::copy;
    *sent = copy::Sent {
        bytes: 0,
        zero_copy,
        fallback: None,
    };
    let mut piece = PIECE_FIRST;
    for &(start, end) in ranges {
        let mut at = start;
        while at < end {
            if crate::interrupt::requested() {
                return Err(crate::interrupt::stopped());
            }
            let len = (end - at).min(piece);
            let began = Instant::now();
            let header = crate::protocol::data_header(at, len);
            let head: &[u8] = match framing {
                Framing::Raw => &[],
                Framing::Padded => &header,
            };
            let base = sent.bytes;
            let mut handed = 0;
            let mut inner = |n: u64| {
                handed = n;
                progress(base + n)
            };
            // the piece goes out whole, padding included, on every path
            let mut conn = conn.finishing();
            let step = copy::send_file(file, &mut conn, head, at, len, sent.zero_copy, &mut inner);
            let step = match step {
                Ok(step) => step,
                Err(e) => {
                    // what the kernel took before the failure counts as sent
                    sent.bytes = base + handed;
                    if framing == Framing::Padded && e.kind() == io::ErrorKind::UnexpectedEof {
                        pad(&mut conn, len - handed)?;
                    }
                    return Err(e);
                }
            };
            if !step.zero_copy {
                sent.zero_copy = false;
                sent.fallback = sent.fallback.take().or(step.fallback);
            }
            sent.bytes += step.bytes;
            at += len;
            let took = began.elapsed().as_secs_f64().max(1e-6);
            piece =
                ((len as f64 / took * PIECE_TIME.as_secs_f64()) as u64).clamp(PIECE_MIN, PIECE_MAX);
        }
    }
    Ok(())
}

/// Writes `n` zero bytes: the rest of a DATA frame whose source ended.
fn pad(conn: &mut Conn, mut n: u64) -> io::Result<()> {
    let zeros = [0u8; 64 << 10];
    while n > 0 {
        let step = n.min(zeros.len() as u64) as usize;
        io::Write::write_all(conn, &zeros[..step])?;
        n -= step as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_survives_more_context() {
        let err =
            exit::tag(anyhow::anyhow!("reset"), Tag::Retryable).context("peer: connection lost");
        assert!(retryable(&err));
        assert!(!retryable(&anyhow::anyhow!("plain")));
        let refused = exit::tag(exit::refused("no"), Tag::Retryable);
        assert!(!retryable(&refused));
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a.iso"), "a.iso");
        assert_eq!(shell_quote("[::1]:9000"), "[::1]:9000");
        assert_eq!(shell_quote("my file"), "'my file'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
