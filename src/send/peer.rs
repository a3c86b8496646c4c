//! What the sending side hears from a receiver: frames past keepalives,
//! the key handshake and ANSWER after an offer, and lost connections
//! (tagged retryable), for a session and its replies (a file alone is a
//! session of one entry).

use anyhow::{anyhow, bail, Context, Result};

use crate::auth::{self, Session};
use crate::config::SendConfig;
use crate::conn::Conn;
use crate::exit::{self, Tag};
use crate::protocol::{self as proto, kind, Answer, RefuseCode};
use crate::secure::handshake::{self, Error as Handshake};
use crate::secure::{Secret, SecretKind};

pub(super) fn lost(conn: &Conn, err: impl Into<anyhow::Error>) -> anyhow::Error {
    let err = err
        .into()
        .context(format!("{}: connection lost", conn.peer));
    exit::tag(err, Tag::Retryable)
}

/// An encrypted session's key exchange, which seals `conn`. A refusal
/// either way, or a receiver without the secret, is exit 4; a lost
/// connection may be retried.
pub(super) fn key_exchange(conn: &mut Conn, secret: &Secret, listening: bool) -> Result<()> {
    let agreed = handshake::as_sender(conn, secret, listening).map_err(|e| {
        let peer = &conn.peer;
        match e {
            Handshake::Lost {
                error,
                reading: false,
            } => lost(conn, error),
            Handshake::Lost { error, .. } => {
                let error = anyhow::Error::new(error)
                    .context(format!("{peer}: connection lost during the key exchange"));
                exit::tag(error, Tag::Retryable)
            }
            Handshake::Refused { code, reason } => {
                let hint = match code {
                    RefuseCode::Version => {
                        " (a zc from before encryption: upgrade it, or give --no-encrypt and a key to both sides)"
                    }
                    _ => "",
                };
                exit::refused(format!("{peer} refused: {reason}{hint}"))
            }
            Handshake::Refusing { why, .. } => exit::refused(format!("refused {peer}: {why}")),
            Handshake::Unproven { counted, .. } => {
                let noun = secret.noun();
                let mut line =
                    format!("{peer}: wrong {noun}: the receiver does not hold this {noun}");
                match counted {
                    Some(counted) => line = format!("{line}; {counted}"),
                    None if secret.kind() == SecretKind::Code => {
                        line.push_str(" (a code is burnt by one wrong try: ask for the new one)")
                    }
                    None => {}
                }
                exit::refused(line)
            }
            Handshake::Unexpected(what) => anyhow!("{peer}: {what}"),
        }
    })?;
    conn.seal(&agreed.outgoing, &agreed.incoming);
    Ok(())
}

/// Reads the next frame that is not a keepalive.
pub(super) fn next_frame(conn: &mut Conn) -> Result<proto::Frame> {
    loop {
        let frame = proto::read_frame(conn)?;
        if frame.kind != kind::KEEPALIVE {
            return Ok(frame);
        }
    }
}

/// After the OFFER: the key handshake when there is a key, then the
/// receiver's ANSWER. A refusal is an error (exit 4); an acceptance returns
/// the session's keys (what a tree's receiver holds comes entry by entry,
/// in its replies).
pub(super) fn answered(
    cfg: &SendConfig,
    conn: &mut Conn,
    offer_body: &[u8],
    nonce: Option<[u8; 32]>,
) -> Result<Option<Session>> {
    let no_answer = |conn: &Conn, e: anyhow::Error| {
        let err = e.context(format!("{}: no answer from a zc receiver", conn.peer));
        exit::tag(err, Tag::Retryable)
    };
    let mut frame = next_frame(conn).map_err(|e| no_answer(conn, e))?;
    let session = match (&cfg.common.key, nonce, frame.kind) {
        (Some(key), Some(ours), kind::CHALLENGE) => {
            let session = handshake(conn, key, ours, offer_body, &frame.body)?;
            frame = next_frame(conn).map_err(|e| no_answer(conn, e))?;
            Some(session)
        }
        (None, _, kind::CHALLENGE) => {
            let why = "the receiver needs a key (--key or ZC_KEY)";
            return Err(exit::refused(format!("{}: {why}", conn.peer)));
        }
        _ => None,
    };
    if frame.kind != kind::ANSWER {
        bail!(
            "{}: unexpected frame {:#x} instead of an answer",
            conn.peer,
            frame.kind
        );
    }
    match Answer::decode(&frame.body).with_context(|| conn.peer.clone())? {
        Answer::Refuse { reason, .. } => {
            Err(exit::refused(format!("{} refused: {reason}", conn.peer)))
        }
        Answer::Accept { .. } if cfg.common.key.is_some() && session.is_none() => {
            let why = "the receiver did not prove it holds the key";
            Err(exit::refused(format!("{}: {why}", conn.peer)))
        }
        Answer::Accept { .. } => Ok(session),
    }
}

/// Checks the receiver's proof and answers with ours.
fn handshake(
    conn: &mut Conn,
    key: &auth::Key,
    ours: [u8; 32],
    offer_body: &[u8],
    challenge: &[u8],
) -> Result<Session> {
    if challenge.len() != 64 {
        bail!("{}: a malformed key challenge", conn.peer);
    }
    let theirs: [u8; 32] = challenge[..32].try_into().expect("32 bytes");
    let session = Session::new(key, ours, theirs, offer_body);
    if !session.check_receiver(&challenge[32..]) {
        let why = "wrong key: the receiver does not hold the same key";
        return Err(exit::refused(format!("{}: {why}", conn.peer)));
    }
    proto::write_frame(conn, kind::PROOF, &session.sender_proof()).map_err(|e| lost(conn, e))?;
    Ok(session)
}
