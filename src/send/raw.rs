//! A raw send: the bytes and nothing else, for nc, socat and `zc recv --raw`.

use std::io::{self, Read};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::{resume_command, send_file_ranges, Input, Plan};
use crate::config::SendConfig;
use crate::conn::Conn;
use crate::copy::{self, Sent};
use crate::exit::{self, ExitCode, Tag};
use crate::hash::{self, Sha};
use crate::progress::{Reporter, Role, Summary};
use crate::protocol as proto;

/// The SHA-256 of what went out, printed so that it can be compared by eye
/// with `sha256sum` on the other end: a raw peer cannot check it for us.
enum Pending {
    /// Read back from the file on a thread beside sendfile(2).
    Thread(JoinHandle<io::Result<Sha>>),
    /// Taken from the bytes as they passed through our buffer.
    Ready(Sha),
}

pub(super) fn session(
    cfg: &SendConfig,
    plan: &mut Plan,
    conn: &mut Conn,
    reporter: &Reporter,
    began: Instant,
) -> Result<()> {
    // a raw peer says nothing: whoever connected gets the bytes
    conn.trusted();
    let mut bar = reporter.transfer(&plan.start(conn, plan.offset));
    let mut progress = |n| bar.update(n);
    let mut sent = Sent::default();
    let (moved, pending) = send_bytes(cfg, plan, conn, &mut progress, &mut sent)?;
    if let Err(e) = moved {
        // No digest of a partial send is shown: the hashing thread, if any,
        // is left to end with the process.
        bar.abandon();
        return Err(failed(plan, conn, sent.bytes, e));
    }
    // Closing our side and waiting for the peer to close tells us it read
    // everything; a raw peer has no other way to say so.
    conn.shutdown_write();
    let mut sink = [0u8; 512];
    while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
    let digest = match pending.map(|p| p.finish(plan, sent.bytes)).transpose() {
        Ok(digest) => digest,
        Err(e) => {
            bar.abandon();
            return Err(e);
        }
    };
    bar.finish(&Summary {
        encrypted: false,
        role: Role::Send,
        name: plan.display_name().into(),
        path: None,
        bytes: sent.bytes,
        elapsed: began.elapsed(),
        zero_copy: sent.zero_copy && sent.bytes > 0,
        sha256: digest.map(|d| proto::hex(&d)),
        resumed_from: plan.offset,
        reconnects: 0,
        sent_before: 0,
        note: note(plan, digest.is_some(), sent.bytes, sent.fallback.take()),
        digest: None,
    });
    Ok(())
}

/// Sends the bytes (sendfile for a file, the buffered copy for a stream)
/// with their digest started beside them: what moved, and the digest to come.
fn send_bytes(
    cfg: &SendConfig,
    plan: &mut Plan,
    conn: &mut Conn,
    progress: &mut impl FnMut(u64),
    sent: &mut Sent,
) -> Result<(io::Result<()>, Option<Pending>)> {
    let verify = cfg.common.verify;
    let range = plan.range();
    Ok(match &mut plan.input {
        Input::File { file, .. } => {
            // sendfile never shows us the bytes, so a thread reads the same
            // range, mostly from the page cache sendfile fills, and hashes it
            // while the kernel sends: zero-copy stays, and the hash overlaps.
            let clone = verify.then(|| file.try_clone()).transpose();
            let clone = clone.with_context(|| plan.label.clone())?;
            let pending = clone.map(|c| Pending::Thread(hash::spawn_ranges(c, vec![range])));
            let moved = send_file_ranges(
                file,
                conn,
                &[range],
                cfg.sendfile,
                super::Framing::Raw,
                progress,
                sent,
            );
            (moved, pending)
        }
        Input::Stream { reader } => {
            // These bytes are in our buffer anyway: hashing them there costs
            // no extra read.
            let mut hasher = verify.then(Sha256::new);
            let count = plan.count;
            // raw bytes go as they are, and may stop anywhere
            let moved =
                copy::send_stream(reader, conn, |_, _| [], count, hasher.as_mut(), progress);
            let pending = hasher.map(|h| Pending::Ready(h.finalize().into()));
            (moved.map(|n| sent.bytes = n), pending)
        }
    })
}

impl Pending {
    /// The digest, once every byte of it was sent; a failure to read the
    /// file back fails the send, as it does in framed mode.
    fn finish(self, plan: &Plan, sent: u64) -> Result<Sha> {
        let handle = match self {
            Pending::Ready(sha) => return Ok(sha),
            Pending::Thread(handle) => handle,
        };
        let read = handle
            .join()
            .map_err(|_| anyhow::anyhow!("the hashing thread failed"))?;
        read.map_err(|e| {
            let err = anyhow::Error::new(e);
            if exit::code_of(&err) == ExitCode::Interrupted {
                return exit::interrupted(format!(
                    "interrupted after all {sent} bytes were sent, before their SHA-256 was known"
                ));
            }
            err.context(format!("{}: reading it back for its SHA-256", plan.label))
        })
    }
}

/// The summary's note: the plan's, a sendfile fallback, and what the digest
/// covers when that is not the whole source.
fn note(plan: &Plan, digest: bool, sent: u64, fallback: Option<String>) -> Option<String> {
    let partial = match plan.size() {
        Some(size) => plan.offset > 0 || sent < size,
        None => false,
    };
    let covers = (digest && partial)
        .then(|| format!("sha256 of the {sent} bytes sent, from byte {}", plan.offset));
    let notes: Vec<String> = [plan.note.clone().or(fallback), covers]
        .into_iter()
        .flatten()
        .collect();
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// The line for a send that stopped early: how far it got, and (for a file)
/// how to go on by hand.
fn failed(plan: &Plan, conn: &Conn, sent: u64, e: io::Error) -> anyhow::Error {
    let at = plan.offset + sent;
    // What was handed to the network may sit in buffers (ours, a
    // proxy's, the peer's) when a connection dies, and a raw peer cannot
    // say what it got: only the receiver's count is safe to resume from.
    let resume = match plan.input {
        Input::File { .. } => format!(
            "up to byte {at} left this side; N is the byte count 'zc recv --raw' reported; resume with: {}",
            resume_command(Some("N"))
        ),
        Input::Stream { .. } => format!("up to byte {at} left this side"),
    };
    let err = anyhow::Error::new(e);
    if exit::code_of(&err) == ExitCode::Interrupted {
        return exit::interrupted(format!("interrupted; {resume}"));
    }
    if exit::has_io(&err, io::ErrorKind::UnexpectedEof) {
        return err.context(plan.label.clone());
    }
    // The resume command ends the line, so it can be pasted as it is.
    let lost = err.context(format!("{}: connection lost", conn.peer));
    exit::tag(exit::noted(lost, resume), Tag::Retryable)
}
