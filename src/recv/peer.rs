//! What the receiving side says to a sender before and around the tree's
//! own frames: a refusal, the key handshake (CHALLENGE, then the sender's
//! PROOF), and the linger that lets a failure RESULT or a refusal be read;
//! a single file is received as a tree of one entry.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::auth::{self, Session};
use crate::config::RecvConfig;
use crate::conn::Conn;
use crate::exit;

use crate::protocol::{self as proto, kind, Answer, RefuseCode};

/// After a failure RESULT or a refusal in the middle of a session: closes
/// this side's writing and reads what the sender still sends, for a
/// moment, so that closing with unread data (a reset) cannot destroy the
/// answer before the sender has read it.
pub(super) fn linger(conn: &mut Conn) {
    const LINGER: Duration = Duration::from_secs(1);
    conn.shutdown_write();
    conn.set_idle(LINGER);
    let until = Instant::now() + LINGER;
    let mut sink = [0u8; 64 << 10];
    while Instant::now() < until {
        match std::io::Read::read(conn, &mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

pub(super) fn refuse(conn: &mut Conn, code: RefuseCode, reason: String) -> anyhow::Error {
    let answer = Answer::Refuse {
        code,
        reason: reason.as_str().into(),
    };
    let _ = proto::write_frame(conn, kind::ANSWER, &answer.encode());
    exit::refused(format!("refused a transfer from {}: {reason}", conn.peer))
}

/// With a key on either side: the challenge, and the sender's proof. An
/// error is the reason for refusing.
pub(super) fn authenticate(
    cfg: &RecvConfig,
    conn: &mut Conn,
    nonce: Option<[u8; 32]>,
    offer_body: &[u8],
) -> Result<Option<Session>, String> {
    let (key, sender_nonce) = match (&cfg.common.key, nonce) {
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
    let frame = proto::read_frame(conn).map_err(|e| match super::hello::timed_out(&e) {
        // the handshake deadline (or --timeout) ran out: no word on the key
        true => format!("no proof in time: {e:#}"),
        false => "wrong key (the sender did not accept this receiver's proof)".to_string(),
    })?;
    if frame.kind != kind::PROOF || !session.check_sender(&frame.body) {
        return Err("wrong key".into());
    }
    Ok(Some(session))
}
