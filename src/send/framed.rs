//! A framed send: offer, verify what the receiver holds, send what is
//! missing, and wait for the receiver's durable, verified answer.

use std::io;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::peer::{answered, lost, next_frame};
use super::verify::verify_held;
use super::{resume_command, send_file_ranges, Input, Plan};
use crate::auth::{self, Session};
use crate::config::SendConfig;
use crate::conn::{with_keepalive, Conn};
use crate::copy::{self, Sent};
use crate::exit::{self, ExitCode};
use crate::hash::{self, Prefix, Sha};
use crate::held::Ranges;
use crate::progress::{Progress, Reporter, Role, Summary};
use crate::protocol::{self as proto, kind, End, Offer, Outcome, Status};
use crate::units::human_bytes;

/// How long a stopping sender waits for the receiver to say what it keeps.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// How long a failed sender waits for the receiver's reason (a full disk).
const REASON_WAIT: Duration = Duration::from_secs(1);

pub(super) fn session(
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
    let resume = size.is_some() && cfg.resume && !plan.forced;
    let offer = Offer {
        name: plan.name.clone(),
        size,
        offset: plan.offset,
        count: plan.count.filter(|_| size.is_some()),
        verify,
        mtime_ns,
        resume,
        fresh: !cfg.resume,
        nonce: match cfg.common.key {
            Some(_) => Some(auth::nonce().context("no randomness for the key handshake")?),
            None => None,
        },
    };
    let offer_body = offer.encode();
    let mut hello = Vec::new();
    proto::write_preamble(&mut hello)?;
    proto::write_frame(&mut hello, kind::OFFER, &offer_body)?;
    io::Write::write_all(conn, &hello).map_err(|e| lost(conn, e))?;

    let (session, (held, hashes)) = answered(cfg, conn, &offer_body, offer.nonce)?;
    let Some(size) = size else {
        return send_stream(cfg, plan, conn, session.as_ref(), reporter, began);
    };
    let mut held = Ranges::from_pairs(&held);
    held.clip(size);
    let (start, end) = plan.range();
    let mut after = held.clone();
    after.insert(start, end);
    let will_complete = after.covers(0, size);

    let Input::File { file, .. } = &plan.input else {
        unreachable!("sized inputs are files")
    };
    let mut prefix = Prefix::default();
    let good = if resume && hashes {
        verify_held(
            conn,
            file,
            &held,
            size,
            will_complete.then_some(&mut prefix),
            plan,
            reporter,
        )?
    } else {
        Ranges::new()
    };
    let to_send = if resume {
        good.missing(start, end)
    } else {
        vec![(start, end)]
    };
    let resumed_from = match to_send.first() {
        Some(&(first, _)) if first > start => first,
        None if end > start => end,
        _ => 0,
    };
    let hasher = match verify {
        false => None,
        true => {
            let clone = file.try_clone().with_context(|| plan.label.clone())?;
            Some(if will_complete {
                prefix.spawn_finish(clone, size)
            } else {
                hash::spawn_ranges(clone, to_send.clone())
            })
        }
    };
    let mut start_info = plan.start(conn, resumed_from);
    start_info.count = Some(to_send.iter().map(|(a, b)| b - a).sum());
    let mut bar = reporter.transfer(&start_info);
    let mut sent = Sent {
        bytes: 0,
        zero_copy: false,
        fallback: None,
    };
    let mut progress = |n| bar.update(n);
    let moved = send_file_ranges(
        file,
        conn,
        &to_send,
        cfg.sendfile,
        super::Framing::Framed,
        &mut progress,
        &mut sent,
    );
    if let Err(e) = moved {
        bar.abandon();
        return Err(data_failed(conn, plan, sent.bytes, e));
    }
    // The hash may still be catching up with the kernel: keep the
    // receiver posted while it does.
    let digest = match hasher {
        Some(handle) => Some(
            with_keepalive(conn, || handle.join())
                .map_err(|_| anyhow::anyhow!("the hashing thread failed"))?
                .with_context(|| plan.label.clone())?,
        ),
        None => None,
    };
    let closing = Closing {
        sent: sent.bytes,
        digest,
        whole: will_complete,
        zero_copy: sent.zero_copy && sent.bytes > 0,
        resumed_from,
        note: plan.note.clone().or(sent.fallback.take()),
    };
    conclude(conn, plan, session.as_ref(), closing, bar.as_mut(), began)
}

fn send_stream(
    cfg: &SendConfig,
    plan: &mut Plan,
    conn: &mut Conn,
    session: Option<&Session>,
    reporter: &Reporter,
    began: Instant,
) -> Result<()> {
    let mut hasher = cfg.common.verify.then(Sha256::new);
    let mut bar = reporter.transfer(&plan.start(conn, 0));
    let Input::Stream { reader } = &mut plan.input else {
        unreachable!("only streams have no size")
    };
    let mut progress = |n| bar.update(n);
    let sent = match copy::send_stream(
        reader,
        conn,
        true,
        plan.count,
        hasher.as_mut(),
        &mut progress,
    ) {
        Ok(n) => n,
        Err(e) => {
            bar.abandon();
            return Err(data_failed(conn, plan, 0, e));
        }
    };
    let digest: Option<Sha> = hasher.map(|h| h.finalize().into());
    let closing = Closing {
        sent,
        digest,
        whole: false,
        zero_copy: false,
        resumed_from: 0,
        note: plan.note.clone(),
    };
    conclude(conn, plan, session, closing, bar.as_mut(), began)
}

/// How a send ends: what went out and what the receiver must check.
struct Closing {
    sent: u64,
    digest: Option<Sha>,
    /// The digest covers the whole file (else: this connection's payloads).
    whole: bool,
    zero_copy: bool,
    resumed_from: u64,
    note: Option<String>,
}

/// Sends END, waits for the receiver's durable answer, prints the summary.
fn conclude(
    conn: &mut Conn,
    plan: &Plan,
    session: Option<&Session>,
    closing: Closing,
    bar: &mut dyn Progress,
    began: Instant,
) -> Result<()> {
    let Closing {
        sent,
        digest,
        whole,
        zero_copy,
        resumed_from,
        note,
    } = closing;
    let wire = digest.map(|d| session.map_or(d, |s| s.keyed_digest(&d)));
    let end = match whole {
        true => End {
            sent,
            sent_sha256: None,
            file_sha256: wire,
        },
        false => End {
            sent,
            sent_sha256: wire,
            file_sha256: None,
        },
    };
    proto::write_frame(conn, kind::END, &end.encode()).map_err(|e| lost(conn, e))?;
    let frame =
        next_frame(conn).map_err(|e| lost(conn, e.context("before the receiver confirmed")))?;
    if frame.kind != kind::RESULT {
        bail!(
            "{}: unexpected frame {:#x} instead of the result",
            conn.peer,
            frame.kind
        );
    }
    let outcome = Outcome::decode(&frame.body).with_context(|| conn.peer.clone())?;
    if let Some(session) = session {
        let mac = outcome.mac.unwrap_or_default();
        if !session.check_result(outcome.status as u8, outcome.held, &mac) {
            bar.abandon();
            let why = "the receiver's answer does not carry the key's MAC (altered in transit?)";
            return Err(exit::integrity(format!("{}: {why}", conn.peer)));
        }
    }
    match outcome.status {
        // A whole file must be whole on the other side too.
        Status::Ok if whole && Some(outcome.held) != plan.size() => {
            bar.abandon();
            bail!(
                "{} says it holds {} bytes of {}, not all {}",
                conn.peer,
                outcome.held,
                plan.display_name(),
                plan.size().unwrap_or(0)
            );
        }
        Status::Ok => {}
        Status::Mismatch => {
            bar.abandon();
            return Err(exit::integrity(format!(
                "SHA-256 mismatch: sent {}, {} has {}; the file was not kept",
                digest.map(|d| proto::hex(&d)).unwrap_or_default(),
                conn.peer,
                outcome.sha256.map(|d| proto::hex(&d)).unwrap_or_default()
            )));
        }
        Status::Failed | Status::Stopped => {
            bar.abandon();
            bail!("{} failed: {}", conn.peer, outcome.message);
        }
    }
    bar.finish(&Summary {
        role: Role::Send,
        name: plan.display_name(),
        path: None,
        bytes: sent,
        elapsed: began.elapsed(),
        zero_copy,
        sha256: digest.map(|d| proto::hex(&d)),
        resumed_from,
        note,
    });
    Ok(())
}

/// The data could not all go out: Ctrl-C (tell the receiver and say how to
/// resume), the source changed, or the connection broke (with the
/// receiver's own reason when it gave one).
fn data_failed(conn: &mut Conn, plan: &Plan, sent: u64, err: io::Error) -> anyhow::Error {
    let err = anyhow::Error::new(err);
    if exit::code_of(&err) == ExitCode::Interrupted {
        return stop(conn, plan, sent);
    }
    if err.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::UnexpectedEof)
    }) {
        return err.context(plan.label.clone());
    }
    conn.set_idle(REASON_WAIT);
    if let Ok(frame) = proto::read_frame(conn) {
        if frame.kind == kind::RESULT {
            if let Ok(outcome) = Outcome::decode(&frame.body) {
                return anyhow::anyhow!("{} failed: {}", conn.peer, outcome.message);
            }
        }
    }
    lost(conn, err)
}

/// First Ctrl-C: tell the receiver, hear what it keeps, print the resume command.
fn stop(conn: &mut Conn, plan: &Plan, sent: u64) -> anyhow::Error {
    conn.finishing = true;
    conn.set_idle(STOP_WAIT);
    let mut said = format!("interrupted after sending {}", human_bytes(sent));
    if proto::write_frame(conn, kind::STOP, &[]).is_ok() {
        if let Ok(frame) = next_frame(conn) {
            if let (kind::RESULT, Ok(outcome)) = (frame.kind, Outcome::decode(&frame.body)) {
                said.push_str(&format!("; the receiver holds {} bytes", outcome.held));
                if let Some(size) = plan.size() {
                    said.push_str(&format!(" of {size}"));
                }
            }
        }
    }
    let resume = match plan.input {
        Input::File { .. } => format!("; resume with: {}", resume_command(None)),
        Input::Stream { .. } => String::new(),
    };
    exit::interrupted(format!("{said}{resume}"))
}
