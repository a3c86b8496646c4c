//! A framed connection on the receiving side: preamble, offer, key
//! handshake, and the decision of where the data goes and what is held.

use std::io::{self};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::config::{Output, RecvConfig};
use crate::conn::{Conn, Way};
use crate::exit::{self, Tag};
use crate::held::{Identity, Ranges, Record};
use crate::output::{self, OpenError, Part};
use crate::progress::Reporter;
use crate::protocol::{self as proto, kind, Answer, Offer, RefuseCode};
use crate::sys;
use crate::units::human_bytes;

use super::peer::{authenticate, refuse};
use super::transfer::{Target, Transfer};

pub fn is_not_a_sender(err: &anyhow::Error) -> bool {
    exit::tag_of(err) == Some(Tag::NotASender)
}

pub fn is_resumable(err: &anyhow::Error) -> bool {
    exit::tag_of(err) == Some(Tag::Resumable)
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
    // Paced from here: the peer is a zc sender, which takes keepalives.
    conn.limit(Way::Recv, cfg.common.limit_rate);
    conn.keepalives_while_paced();
    if proto::tree::is_tree(&frame.body) {
        return super::tree::receive(cfg, &mut conn, &frame.body, reporter);
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
    let session = match authenticate(cfg, &mut conn, offer.nonce, &frame.body) {
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
    let identity = offer.size.map(|size| Identity {
        name: name.to_string(),
        size,
        mtime_ns: offer.mtime_ns,
    });
    // Space first, before anything is created or truncated: a refusal
    // leaves the output directory as it was.
    let (held, _) = holdings(&output::part_path(&target), identity.as_ref(), offer.fresh);
    check_space(offer, name, &target, &held)?;
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
    // Under the lock, the record is the truth.
    let (held, keep) = holdings(&part.path, identity.as_ref(), offer.fresh);
    let mut note = None;
    if !keep {
        let io_err = |e: io::Error| (RefuseCode::Other, format!("{}: {e}", part.path.display()));
        if part.file.metadata().map_err(io_err)?.len() > 0 && !offer.fresh {
            let why = if Record::load(&part.path).is_some() {
                "of another version of the file"
            } else {
                "without a record of what it holds"
            };
            note = Some(format!("{} is {why}; starting over", part.path.display()));
        }
        part.file.set_len(0).map_err(io_err)?;
        Record::remove(&part.path);
    }
    Ok((Target::Part(part), held, note))
}

/// What the part at `part_path` holds for this source, and whether it is
/// worth keeping (the same source, not `--no-resume`).
fn holdings(part_path: &std::path::Path, source: Option<&Identity>, fresh: bool) -> (Ranges, bool) {
    let on_disk = std::fs::symlink_metadata(part_path)
        .map(|m| if m.is_file() { m.len() } else { 0 })
        .unwrap_or(0);
    match (source, Record::load(part_path)) {
        (Some(id), Some(rec)) if !fresh && rec.source == *id => {
            let mut held = rec.held;
            held.clip(on_disk);
            (held, true)
        }
        _ => (Ranges::new(), false),
    }
}

/// Refuses an offer whose missing bytes would not fit the free space.
fn check_space(
    offer: &Offer,
    name: &str,
    target: &std::path::Path,
    held: &Ranges,
) -> Result<(), (RefuseCode, String)> {
    let (Some(_), Some((start, end))) = (offer.size, offer.range()) else {
        return Ok(());
    };
    let needed: u64 = held.missing(start, end).iter().map(|(a, b)| b - a).sum();
    let dir = output::dir_of(target);
    match sys::free_space(&dir) {
        Ok(free) if needed > free => Err((
            RefuseCode::NoSpace,
            format!(
                "{name} needs {} but {} has {} free",
                human_bytes(needed),
                dir.display(),
                human_bytes(free)
            ),
        )),
        _ => Ok(()),
    }
}
