//! A connection on the receiving side: the preamble and the offer, then
//! the session (a tree, or a tree of one file).

use anyhow::{Context, Result};

use crate::admission::{Unproven, HANDSHAKE_WITHIN};
use crate::config::{Peer, RecvConfig};
use crate::conn::{Conn, Way};
use crate::exit::{self, Tag};
use crate::progress::Reporter;
use crate::protocol::hello::{Hello, SecretKind};
use crate::protocol::{self as proto, kind, RefuseCode};
use crate::secure::{handshake, Secret};

use super::peer::refuse;

/// One connection's session. `unproven` is its place on a `-k` listener
/// until the sender has proven itself.
pub fn receive(
    cfg: &RecvConfig,
    stream: std::net::TcpStream,
    unproven: Option<Unproven>,
    reporter: &Reporter,
) -> Result<()> {
    let mut conn = Conn::new(stream, cfg.common.idle_timeout).context("accepting a connection")?;
    conn.set_keepalive(&proto::KEEPALIVE_FRAME);
    // a zc sender writes its preamble and offer at once: a peer that does
    // not frees its place (of --max-conns) soon. Not in reverse mode: there
    // this side connected, and may wait in a busy sender's queue for as
    // long as --timeout allows.
    if let Peer::Listen(_) = cfg.peer {
        conn.handshake(HANDSHAKE_WITHIN.min(cfg.common.idle_timeout), unproven);
    }
    let peer = conn.peer.clone();
    let version = proto::read_preamble(&mut conn).map_err(|e| {
        let queued = !matches!(cfg.peer, Peer::Listen(_)) && timed_out(&e);
        let e = e.context(format!("{peer}: dropped"));
        let e = match queued {
            true => queued_hint(e, cfg),
            false => e,
        };
        exit::tag(e, Tag::NotASender)
    })?;
    if version != proto::VERSION && version != proto::VERSION_SEALED {
        let reason = format!(
            "this receiver speaks zc protocol {} and {} (encrypted), the sender {version}",
            proto::VERSION,
            proto::VERSION_SEALED
        );
        return Err(refuse(&mut conn, RefuseCode::Version, reason));
    }
    let frame = offer_frame(cfg, &mut conn, version, &peer)?;
    // In the clear the peer is trusted once its OFFER decodes (no key) or
    // its PROOF checks (--key --no-encrypt): see tree::receive.
    if frame.kind != kind::OFFER {
        let why = format!("expected an offer, got frame {:#x}", frame.kind);
        let err = refuse(&mut conn, RefuseCode::BadOffer, why);
        return Err(before_an_offer(&conn, err));
    }
    // Paced from here: the peer is a zc sender, which takes keepalives.
    conn.limit(Way::Recv, cfg.common.limit_rate);
    conn.keepalives_while_paced();
    if !proto::tree::is_tree(&frame.body) {
        // what a sender from before trees offers: one file, the old way
        let why = "an offer without the tree field (a zc sender older than this receiver)";
        let err = refuse(&mut conn, RefuseCode::BadOffer, why.into());
        return Err(before_an_offer(&conn, err));
    }
    super::tree::receive(cfg, &mut conn, &frame.body, reporter)
}

/// The sender's OFFER frame: the first frame in the clear, or the first
/// inside records once an encrypted session's key exchange sealed `conn`;
/// a listening sender that takes no more attempts refuses instead.
fn offer_frame(
    cfg: &RecvConfig,
    conn: &mut Conn,
    version: u16,
    peer: &str,
) -> Result<proto::Frame> {
    let reading = |peer: &str| format!("{peer}: reading the offer");
    let first = proto::read_frame(conn)
        .with_context(|| reading(peer))
        .map_err(|e| exit::tag(e, Tag::NotASender))?;
    Ok(match (version, &cfg.common.secret) {
        (proto::VERSION, None) => first,
        (proto::VERSION_SEALED, Some(secret)) if first.kind == kind::HELLO => {
            let listening = matches!(cfg.peer, Peer::Listen(_));
            let agreed = handshake::as_receiver(conn, secret, &first.body, listening)
                .map_err(|e| unsealed(peer, secret, e))?;
            conn.seal(&agreed.outgoing, &agreed.incoming);
            // from here on, inside records
            let offer = proto::read_frame(conn).with_context(|| reading(peer))?;
            // it proved it holds the secret: only the idle timeout from here
            conn.trusted();
            offer
        }
        (proto::VERSION_SEALED, _) if first.kind == kind::ANSWER => {
            // a sender that listens and takes no more attempts says so
            let why = match proto::Answer::decode(&first.body) {
                Ok(proto::Answer::Refuse { reason, .. }) => reason,
                _ => "a malformed answer".into(),
            };
            return Err(exit::refused(format!("{peer} refused: {why}")));
        }
        (_, secret) => {
            let why = mismatch(cfg, secret.as_ref(), &first);
            let err = refuse(conn, RefuseCode::Auth, why);
            return Err(match opens_a_session(version, &first) {
                true => err,
                false => exit::tag(err, Tag::NotASender),
            });
        }
    })
}

/// A failed key exchange, as the user is told of it: a refusal either way,
/// or a sender that did not prove it holds the secret, is exit 4; a
/// malformed HELLO may come from no zc sender at all.
fn unsealed(peer: &str, secret: &Secret, err: handshake::Error) -> anyhow::Error {
    use handshake::{Error, Unproven};
    let noun = secret.noun();
    match err {
        Error::Lost { error, .. } => anyhow::Error::new(error)
            .context(format!("{peer}: connection lost during the key exchange")),
        Error::Refused { reason, .. } => exit::refused(format!("{peer} refused: {reason}")),
        Error::Refusing { why, malformed } => {
            let err = exit::refused(format!("refused {peer}: {why}"));
            match malformed {
                true => exit::tag(err, Tag::NotASender),
                false => err,
            }
        }
        Error::Unproven { how, counted } => {
            let line = match how {
                Unproven::WrongProof => {
                    format!("{peer} did not prove it holds the {noun} (a wrong {noun}?)")
                }
                Unproven::RefusedOurs => {
                    format!("{peer} holds another {noun}: it found this side's proof wrong")
                }
                Unproven::HungUp => {
                    format!("{peer} hung up before it proved it holds the {noun} (a wrong {noun}?)")
                }
            };
            exit::refused(match counted {
                Some(counted) => format!("{line}; {counted}"),
                None => line,
            })
        }
        Error::Unexpected(what) => anyhow::anyhow!("{peer}: {what}"),
    }
}

/// A peer in the clear that never sent a complete, well-formed OFFER is no
/// sender (a port scan, garbage): like one that sent bad magic, it is
/// refused and a one-shot receiver warns and goes on waiting. Past a
/// handshake the peer proved it holds the secret: its errors are a sender's.
pub(super) fn before_an_offer(conn: &Conn, err: anyhow::Error) -> anyhow::Error {
    match conn.is_sealed() {
        true => err,
        false => exit::tag(err, Tag::NotASender),
    }
}

/// Whether a first frame is how a zc sender opens: an OFFER that decodes
/// (version 1) or a sender's HELLO (version 2).
fn opens_a_session(version: u16, first: &proto::Frame) -> bool {
    match (version, first.kind) {
        (proto::VERSION, kind::OFFER) => proto::tree::TreeOffer::decode(&first.body).is_ok(),
        (proto::VERSION_SEALED, kind::HELLO) => Hello::decode_sender(&first.body).is_ok(),
        _ => false,
    }
}

/// Why a session is refused when one side encrypts and the other does
/// not: `secret` is this side's, `first` the sender's first frame (an
/// OFFER in the clear, or an encrypted session's HELLO).
fn mismatch(cfg: &RecvConfig, secret: Option<&Secret>, first: &proto::Frame) -> String {
    match secret {
        Some(secret) if secret.kind() == SecretKind::Code => {
            "this receiver takes only encrypted sessions: give the sender --code and the code this receiver printed".into()
        }
        Some(_) if proto::tree::offers_key(&first.body) => {
            "the sender authenticates with a key but sends in the clear (--no-encrypt, or a zc \
             from before encryption) and this receiver encrypts with its key: give --no-encrypt \
             to both sides, or to neither"
                .into()
        }
        Some(_) => "this receiver holds a key and encrypts: give the sender the same key (ZC_KEY or --key)".into(),
        None if cfg.common.key.is_some() => {
            "the sender encrypts with its key and this receiver runs --no-encrypt: give \
             --no-encrypt to both sides, or to neither"
                .into()
        }
        None => {
            let kind = Hello::decode(&first.body).ok().and_then(|h| h.secret);
            let with = kind.map_or("a secret", |k| match k {
                SecretKind::Code => "a code",
                SecretKind::Key => "a key",
            });
            format!(
                "the sender wants an encrypted session (it holds {with}): run this receiver with \
                 --code, or with the same key (ZC_KEY)"
            )
        }
    }
}

pub(super) fn timed_out(err: &anyhow::Error) -> bool {
    exit::has_io(err, std::io::ErrorKind::TimedOut)
}

/// A sender that took our connection and then said nothing for the whole
/// `--timeout` is most likely serving others (`send -k` at its
/// `--max-conns`), with this receiver queued in its backlog: say so.
fn queued_hint(err: anyhow::Error, cfg: &RecvConfig) -> anyhow::Error {
    let hint = format!(
        "a sender serving with -k may be busy with its --max-conns receivers \
         (try again, or wait longer: --timeout above {} s)",
        cfg.common.idle_timeout.as_secs_f64()
    );
    exit::noted(err, hint)
}
