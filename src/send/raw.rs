//! A raw send: the bytes and nothing else, for nc, socat and `zc recv --raw`.

use std::io::{self, Read};
use std::time::Instant;

use anyhow::Result;

use super::{resume_command, send_file_ranges, Input, Plan};
use crate::config::SendConfig;
use crate::conn::Conn;
use crate::copy::{self, Sent};
use crate::exit::{self, ExitCode, Tag};
use crate::progress::{Reporter, Role, Summary};

pub(super) fn session(
    cfg: &SendConfig,
    plan: &mut Plan,
    conn: &mut Conn,
    reporter: &Reporter,
    began: Instant,
) -> Result<()> {
    let mut bar = reporter.transfer(&plan.start(conn, plan.offset));
    let mut progress = |n| bar.update(n);
    let mut sent = Sent {
        bytes: 0,
        zero_copy: false,
        fallback: None,
    };
    let range = [plan.range()];
    let moved = match &mut plan.input {
        Input::File { file, .. } => send_file_ranges(
            file,
            conn,
            &range,
            cfg.sendfile,
            super::Framing::Raw,
            &mut progress,
            &mut sent,
        ),
        Input::Stream { reader } => {
            copy::send_stream(reader, conn, false, plan.count, None, &mut progress).map(|n| {
                sent.bytes = n;
            })
        }
    };
    if let Err(e) = moved {
        bar.abandon();
        let at = plan.offset + sent.bytes;
        // What was handed to the network may sit in buffers (ours, a
        // proxy's, the peer's) when a connection dies, and a raw peer cannot
        // say what it got: only the receiver's count is safe to resume from.
        let resume = match plan.input {
            Input::File { .. } => format!(
                "; up to byte {at} left this side; N is the byte count 'zc recv --raw' reported; resume with: {}",
                resume_command(Some("N"))
            ),
            Input::Stream { .. } => format!("; up to byte {at} left this side"),
        };
        let err = anyhow::Error::new(e);
        if exit::code_of(&err) == ExitCode::Interrupted {
            return Err(exit::interrupted(format!("interrupted{resume}")));
        }
        if err.chain().any(|c| {
            c.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::UnexpectedEof)
        }) {
            return Err(err.context(plan.label.clone()));
        }
        // The resume command ends the line, so it can be pasted as it is.
        let why = exit::message_of(&err);
        let line = format!("{}: connection lost: {why}{resume}", conn.peer);
        return Err(exit::tag(anyhow::anyhow!(line), Tag::Retryable));
    }
    // Closing our side and waiting for the peer to close tells us it read
    // everything; a raw peer has no other way to say so.
    conn.shutdown_write();
    let mut sink = [0u8; 512];
    while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
    bar.finish(&Summary {
        role: Role::Send,
        name: plan.display_name(),
        path: None,
        bytes: sent.bytes,
        elapsed: began.elapsed(),
        zero_copy: sent.zero_copy && sent.bytes > 0,
        sha256: None,
        resumed_from: plan.offset,
        note: plan.note.clone().or(sent.fallback),
    });
    Ok(())
}
