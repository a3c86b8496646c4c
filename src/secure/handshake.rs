//! The handshake of an encrypted session, right after the preamble: one
//! SPAKE2 message each way, key confirmation both ways (the receiver's
//! first, then the sender's), and HKDF-SHA256 from the shared secret to
//! each direction's record key and IV. Nothing of the session (no name, no
//! size) is said before both confirmations hold.

use std::io::Write;

use anyhow::{anyhow, bail, Context, Result};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Identity, Password, Spake2};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use super::record::Keys;
use super::Secret;
use crate::conn::Conn;
use crate::exit::{self, Tag};
use crate::protocol::hello::{Hello, CONFIRM_LEN};
use crate::protocol::{self as proto, kind, Answer, RefuseCode, VERSION_SEALED};

type HmacSha256 = Hmac<Sha256>;

/// What a handshake derives: a confirmation key per side, a record key
/// and IV per direction, and the transcript they are bound to; wiped on
/// drop.
#[derive(ZeroizeOnDrop)]
struct Schedule {
    transcript: [u8; 32],
    confirm_sender: [u8; 32],
    confirm_receiver: [u8; 32],
    to_receiver: Keys,
    to_sender: Keys,
}

impl Schedule {
    /// `shared` is SPAKE2's key (a hash of both messages, both identities,
    /// the password and the shared point); the transcript (the preamble,
    /// the sender's whole HELLO, the receiver's SPAKE2 message) is the salt.
    fn new(shared: &[u8], transcript: [u8; 32]) -> Schedule {
        let hk = Hkdf::<Sha256>::new(Some(&transcript), shared);
        let expand = |label: &str, out: &mut [u8]| {
            hk.expand(label.as_bytes(), out)
                .expect("HKDF gives up to 8160 bytes");
        };
        let mut s = Schedule {
            transcript,
            confirm_sender: [0; 32],
            confirm_receiver: [0; 32],
            to_receiver: Keys {
                key: [0; 32],
                iv: [0; 12],
            },
            to_sender: Keys {
                key: [0; 32],
                iv: [0; 12],
            },
        };
        expand("zc2 confirm sender", &mut s.confirm_sender);
        expand("zc2 confirm receiver", &mut s.confirm_receiver);
        expand("zc2 sender to receiver key", &mut s.to_receiver.key);
        expand("zc2 sender to receiver iv", &mut s.to_receiver.iv);
        expand("zc2 receiver to sender key", &mut s.to_sender.key);
        expand("zc2 receiver to sender iv", &mut s.to_sender.iv);
        s
    }

    fn mac(&self, key: &[u8; 32]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key");
        mac.update(&self.transcript);
        mac
    }

    fn confirm(&self, key: &[u8; 32]) -> [u8; CONFIRM_LEN] {
        self.mac(key).finalize().into_bytes().into()
    }

    /// Constant time.
    fn check(&self, key: &[u8; 32], theirs: &[u8]) -> bool {
        self.mac(key).verify_slice(theirs).is_ok()
    }
}

fn transcript(sender_hello: &[u8], receiver_pake: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"zc2 handshake");
    h.update(proto::preamble(VERSION_SEALED));
    for part in [sender_hello, receiver_pake] {
        h.update((part.len() as u32).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// SPAKE2's password: the secret with its kind, so a code never meets a
/// key of the same text.
/// Our buffer is wiped; spake2 0.4 keeps copies in its `Password` and its
/// state that it does not wipe, which live until the handshake ends.
fn password(secret: &Secret) -> Password {
    let prefix = format!("zc2 {} ", secret.noun());
    // sized up front: a reallocation would leave the secret behind unwiped
    let mut pw = Zeroizing::new(Vec::with_capacity(prefix.len() + secret.text.len()));
    pw.extend_from_slice(prefix.as_bytes());
    pw.extend_from_slice(&secret.text);
    Password::new(&*pw)
}

fn identities() -> (Identity, Identity) {
    (Identity::new(b"zc sender"), Identity::new(b"zc receiver"))
}

/// A refusal in the clear, which either side may send during the
/// handshake; returns the error this side exits with (4).
fn refuse(conn: &mut Conn, reason: &str, line: String) -> anyhow::Error {
    let answer = Answer::Refuse {
        code: RefuseCode::Auth,
        reason: reason.into(),
    };
    let _ = proto::write_frame(conn, kind::ANSWER, &answer.encode());
    exit::refused(line)
}

/// The next handshake frame, or the peer's refusal as an error (exit 4).
fn next(conn: &mut Conn, what: &str) -> Result<proto::Frame> {
    let frame = proto::read_frame(conn)
        .with_context(|| format!("{}: connection lost during the key exchange", conn.peer))
        .map_err(|e| exit::tag(e, Tag::Retryable))?;
    if frame.kind != kind::ANSWER {
        return Ok(frame);
    }
    match Answer::decode(&frame.body) {
        Ok(Answer::Refuse { reason, code }) => {
            let hint = match code {
                RefuseCode::Version => {
                    " (a zc from before encryption: upgrade it, or give --no-encrypt and a key to both sides)"
                }
                _ => "",
            };
            Err(exit::refused(format!(
                "{} refused: {reason}{hint}",
                conn.peer
            )))
        }
        _ => bail!("{}: expected {what}, got an answer", conn.peer),
    }
}

/// The sender's half. It writes the preamble and its HELLO, checks the
/// receiver's confirmation, and confirms in turn; `conn` is sealed after.
/// `listening`: this side accepted the connection (reverse mode), so a
/// wrong confirmation counts against the secret.
pub fn as_sender(conn: &mut Conn, secret: &Secret, listening: bool) -> Result<()> {
    let lost = |conn: &Conn, e: std::io::Error| {
        let e = anyhow::Error::new(e).context(format!("{}: connection lost", conn.peer));
        exit::tag(e, Tag::Retryable)
    };
    let mut hello = proto::preamble(VERSION_SEALED).to_vec();
    // listening, this side counts the receiver's guess from here on
    let attempt = match listening.then(|| secret.attempts.begin()) {
        Some(Err(why)) => {
            // said in place of a HELLO: the receiver reads it where it expects one
            let answer = Answer::Refuse {
                code: RefuseCode::Auth,
                reason: why.as_str().into(),
            };
            proto::write_frame(&mut hello, kind::ANSWER, &answer.encode())?;
            let _ = conn.write_all(&hello);
            return Err(exit::refused(format!("refused {}: {why}", conn.peer)));
        }
        Some(Ok(attempt)) => Some(attempt),
        None => None,
    };
    let (id_a, id_b) = identities();
    let (pake, ours) = Spake2::<Ed25519Group>::start_a(&password(secret), &id_a, &id_b);
    let body = Hello {
        secret: Some(secret.kind()),
        pake: ours,
        confirm: None,
    }
    .encode();
    proto::write_frame(&mut hello, kind::HELLO, &body)?;
    conn.write_all(&hello).map_err(|e| lost(conn, e))?;
    let frame = next(conn, "the receiver's hello")?;
    if frame.kind != kind::HELLO {
        bail!(
            "{}: expected the receiver's hello, got frame {:#x}",
            conn.peer,
            frame.kind
        );
    }
    let theirs = Hello::decode(&frame.body).with_context(|| conn.peer.clone())?;
    let shared = pake
        .finish(&theirs.pake)
        .map(Zeroizing::new)
        .map_err(|e| anyhow!("{}: a malformed key exchange ({e:?})", conn.peer))?;
    let s = Schedule::new(&shared, transcript(&body, &theirs.pake));
    let confirmed = theirs
        .confirm
        .is_some_and(|c| s.check(&s.confirm_receiver, &c));
    if !confirmed {
        let mut line = format!(
            "{}: wrong {noun}: the receiver does not hold this {noun}",
            conn.peer,
            noun = secret.noun()
        );
        if let Some(attempt) = attempt {
            line = format!("{line}; {}", attempt.failed());
        } else if secret.kind() == super::SecretKind::Code {
            line.push_str(" (a code is burnt by one wrong try: ask for the new one)");
        }
        let reason = format!("wrong {}", secret.noun());
        return Err(refuse(conn, &reason, line));
    }
    if let Some(attempt) = attempt {
        attempt.proven();
    }
    proto::write_frame(conn, kind::CONFIRM, &s.confirm(&s.confirm_sender))
        .map_err(|e| lost(conn, e))?;
    conn.seal(&s.to_receiver, &s.to_sender);
    Ok(())
}

/// The receiver's half, once the sender's HELLO is read: answers with its
/// own HELLO and confirmation, then checks the sender's; `conn` is sealed
/// after. A refusal is written here and returned as the error (exit 4).
pub fn as_receiver(conn: &mut Conn, secret: &Secret, body: &[u8], listening: bool) -> Result<()> {
    let peer = conn.peer.clone();
    let hello = match Hello::decode_sender(body) {
        Ok(hello) => hello,
        Err(e) => {
            // no attempt, and not a sender: a one-shot receiver goes on
            let why = format!("a malformed hello: {e:#}");
            let err = refuse(conn, &why, format!("refused {peer}: {why}"));
            return Err(exit::tag(err, Tag::NotASender));
        }
    };
    if let Some(kind) = hello.secret.filter(|k| *k != secret.kind()) {
        let why = format!(
            "the sender uses a {}, this receiver a {}",
            super::noun(kind),
            secret.noun()
        );
        return Err(refuse(conn, &why, format!("refused {peer}: {why}")));
    }
    // listening, this side counts the sender's guess from here on
    let attempt = match listening.then(|| secret.attempts.begin()) {
        Some(Err(why)) => return Err(refuse(conn, &why, format!("refused {peer}: {why}"))),
        Some(Ok(attempt)) => Some(attempt),
        None => None,
    };
    let (id_a, id_b) = identities();
    let (pake, ours) = Spake2::<Ed25519Group>::start_b(&password(secret), &id_a, &id_b);
    let shared = match pake.finish(&hello.pake) {
        Ok(shared) => Zeroizing::new(shared),
        Err(e) => {
            let why = format!("a malformed key exchange ({e:?})");
            return Err(refuse(conn, &why, format!("refused {peer}: {why}")));
        }
    };
    let s = Schedule::new(&shared, transcript(body, &ours));
    let reply = Hello {
        secret: None,
        confirm: Some(s.confirm(&s.confirm_receiver)),
        pake: ours,
    };
    proto::write_frame(conn, kind::HELLO, &reply.encode())
        .with_context(|| format!("{peer}: connection lost during the key exchange"))?;
    // From here the peer could test one guess against our confirmation:
    // whatever stops it confirming in turn counts as a failed attempt.
    let noun = secret.noun();
    let confirmed = match next(conn, "the sender's confirmation") {
        Ok(f) if f.kind == kind::CONFIRM && s.check(&s.confirm_sender, &f.body) => Ok(()),
        Ok(_) => Err(format!(
            "{peer} did not prove it holds the {noun} (a wrong {noun}?)"
        )),
        Err(e) if exit::code_of(&e) == exit::ExitCode::Refused => Err(format!(
            "{peer} holds another {noun}: it found this side's proof wrong"
        )),
        Err(_) => Err(format!(
            "{peer} hung up before it proved it holds the {noun} (a wrong {noun}?)"
        )),
    };
    if let Err(mut line) = confirmed {
        if let Some(attempt) = attempt {
            line = format!("{line}; {}", attempt.failed());
        }
        return Err(exit::refused(line));
    }
    if let Some(attempt) = attempt {
        attempt.proven();
    }
    conn.seal(&s.to_sender, &s.to_receiver);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// Both halves over loopback; what each returned, and a line each
    /// way through the records when both succeeded.
    fn shake(sender: &str, receiver: &str) -> (Result<()>, Result<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let theirs = Secret::code(receiver);
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut conn = Conn::new(stream, Duration::from_secs(5)).unwrap();
            let version = proto::read_preamble(&mut conn).unwrap();
            assert_eq!(version, VERSION_SEALED);
            let frame = proto::read_frame(&mut conn).unwrap();
            assert_eq!(frame.kind, kind::HELLO);
            let got = as_receiver(&mut conn, &theirs, &frame.body, true);
            if got.is_ok() {
                let f = proto::read_frame(&mut conn).unwrap();
                proto::write_frame(&mut conn, b'Z', &f.body).unwrap();
            }
            (got, theirs.attempts.admit())
        });
        let stream = TcpStream::connect(addr).unwrap();
        let mut conn = Conn::new(stream, Duration::from_secs(5)).unwrap();
        let got = as_sender(&mut conn, &Secret::code(sender), false);
        if got.is_ok() {
            assert!(conn.is_sealed());
            proto::write_frame(&mut conn, b'Y', b"ping").unwrap();
            let echo = proto::read_frame(&mut conn).unwrap();
            assert_eq!((echo.kind, &echo.body[..]), (b'Z', &b"ping"[..]));
        }
        let (theirs, admit) = server.join().unwrap();
        assert_eq!(admit.is_ok(), theirs.is_ok(), "burnt only by a failure");
        (got, theirs)
    }

    #[test]
    fn the_same_code_makes_a_sealed_session() {
        let (a, b) = shake("7-plaza-quartz-ember", "7-plaza-quartz-ember");
        a.unwrap();
        b.unwrap();
    }

    #[test]
    fn a_wrong_code_is_refused_on_both_sides_and_burns_it() {
        let (a, b) = shake("7-plaza-quartz-ember", "8-plaza-quartz-ember");
        let (a, b) = (a.unwrap_err(), b.unwrap_err());
        assert_eq!(exit::code_of(&a), exit::ExitCode::Refused);
        assert!(exit::message_of(&a).contains("wrong code"), "{a:#}");
        assert_eq!(exit::code_of(&b), exit::ExitCode::Refused);
        assert!(exit::message_of(&b).contains("burnt"), "{b:#}");
    }

    #[test]
    fn the_schedule_separates_roles_and_directions() {
        let s = Schedule::new(b"shared", [1; 32]);
        assert_ne!(s.confirm_sender, s.confirm_receiver);
        assert_ne!(s.to_receiver.key, s.to_sender.key);
        assert_ne!(s.to_receiver.iv, s.to_sender.iv);
        let other = Schedule::new(b"shared", [2; 32]);
        assert_ne!(
            s.to_receiver.key, other.to_receiver.key,
            "bound to the transcript"
        );
        assert!(!s.check(&s.confirm_sender, &s.confirm(&s.confirm_receiver)));
    }

    /// Checked when the tests build: each holder of a code, a key or what
    /// is derived from them wipes it when dropped (issue 22; auth's Key is
    /// checked in auth, which secure does not import).
    #[test]
    fn secrets_and_what_they_derive_are_wiped_on_drop() {
        fn wiped_on_drop<T: ZeroizeOnDrop>() {}
        wiped_on_drop::<Secret>();
        wiped_on_drop::<Keys>();
        wiped_on_drop::<Schedule>();
        wiped_on_drop::<aes_gcm::Aes256Gcm>();
    }
}

/// docs/test-vectors.json, checked against this module's own steps.
#[cfg(test)]
mod vectors;
