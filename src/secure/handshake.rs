//! The handshake of an encrypted session, right after the preamble: one
//! SPAKE2 message each way, key confirmation both ways (the receiver's
//! first, then the sender's), and HKDF-SHA256 from the shared secret to
//! each direction's record key and IV. Nothing of the session (no name, no
//! size) is said before both confirmations hold.

use std::fmt;
use std::io::{self, Read, Write};

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Identity, Password, Spake2};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use super::record::Keys;
use super::Secret;
use crate::protocol::hello::{Hello, CONFIRM_LEN};
use crate::protocol::{self as proto, kind, Answer, PeerText, RefuseCode, VERSION_SEALED};

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

/// Why a handshake failed: what happened, without the peer's name. The
/// caller names the peer and decides what it means for the process (the
/// exit code, whether to retry).
#[derive(Debug)]
pub enum Error {
    /// The connection failed, writing or (`reading`) waiting for the
    /// peer's next message.
    Lost { error: io::Error, reading: bool },
    /// The peer refused this side, in the clear.
    Refused { code: RefuseCode, reason: PeerText },
    /// This side refused the peer and told it `why`. `malformed`: the
    /// peer's HELLO did not decode, so it may be no zc sender at all.
    Refusing { why: String, malformed: bool },
    /// The peer did not prove it holds the secret. `counted` is what the
    /// failure did to a listener's count of attempts (`Attempt::failed`),
    /// when this side was listening.
    Unproven {
        how: Unproven,
        counted: Option<String>,
    },
    /// A message with no place in a handshake, or one that does not decode.
    Unexpected(String),
}

/// How a peer failed to prove it holds the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unproven {
    /// Its proof did not check, or something else came in its place.
    WrongProof,
    /// It refused this side's proof: it holds another secret.
    RefusedOurs,
    /// It hung up, or sent what is no handshake, before proving anything.
    HungUp,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Lost { error, .. } => write!(f, "connection lost: {error}"),
            Error::Refused { reason, .. } => write!(f, "refused: {reason}"),
            Error::Refusing { why, .. } => write!(f, "refused the peer: {why}"),
            Error::Unproven { how, .. } => f.write_str(match how {
                Unproven::WrongProof => "the peer's proof of the secret did not check",
                Unproven::RefusedOurs => "the peer found this side's proof wrong",
                Unproven::HungUp => "the peer hung up before it proved it holds the secret",
            }),
            Error::Unexpected(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for Error {}

/// What a handshake agrees on, as this side sees it: the keys of the
/// records it writes and of those it reads. Wiped on drop.
#[derive(ZeroizeOnDrop)]
pub struct Agreed {
    pub outgoing: Keys,
    pub incoming: Keys,
}

/// A refusal in the clear, which either side may send during the
/// handshake; whether it could be written does not matter, as the
/// handshake ends either way.
fn refuse(stream: &mut impl Write, reason: &str) {
    let answer = Answer::Refuse {
        code: RefuseCode::Auth,
        reason: reason.into(),
    };
    let _ = proto::write_frame(stream, kind::ANSWER, &answer.encode());
}

/// Reads a frame; any failure is the connection's, as it was before
/// (a frame over the size limit included).
fn read_frame(stream: &mut impl Read) -> Result<proto::Frame, Error> {
    proto::read_frame(stream).map_err(|e| Error::Lost {
        error: e
            .downcast::<io::Error>()
            .unwrap_or_else(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:#}"))),
        reading: true,
    })
}

/// The next handshake frame, or the peer's refusal as an error.
fn next(stream: &mut impl Read, what: &str) -> Result<proto::Frame, Error> {
    let frame = read_frame(stream)?;
    if frame.kind != kind::ANSWER {
        return Ok(frame);
    }
    match Answer::decode(&frame.body) {
        Ok(Answer::Refuse { reason, code }) => Err(Error::Refused { code, reason }),
        _ => Err(Error::Unexpected(format!("expected {what}, got an answer"))),
    }
}

fn written(error: io::Error) -> Error {
    Error::Lost {
        error,
        reading: false,
    }
}

/// The sender's half. It writes the preamble and its HELLO, checks the
/// receiver's confirmation, and confirms in turn; the caller seals the
/// connection with what it returns. `listening`: this side accepted the
/// connection (reverse mode), so a wrong confirmation counts against the
/// secret.
pub fn as_sender(
    stream: &mut (impl Read + Write),
    secret: &Secret,
    listening: bool,
) -> Result<Agreed, Error> {
    let mut hello = proto::preamble(VERSION_SEALED).to_vec();
    // listening, this side counts the receiver's guess from here on
    let attempt = match listening.then(|| secret.attempts.begin()) {
        Some(Err(why)) => {
            // said in place of a HELLO: the receiver reads it where it expects one
            refuse(&mut hello, &why);
            let _ = stream.write_all(&hello);
            return Err(Error::Refusing {
                why,
                malformed: false,
            });
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
    proto::write_frame(&mut hello, kind::HELLO, &body).map_err(written)?;
    stream.write_all(&hello).map_err(written)?;
    let frame = next(stream, "the receiver's hello")?;
    if frame.kind != kind::HELLO {
        let kind = frame.kind;
        return Err(Error::Unexpected(format!(
            "expected the receiver's hello, got frame {kind:#x}"
        )));
    }
    let theirs = Hello::decode(&frame.body).map_err(|e| Error::Unexpected(format!("{e:#}")))?;
    let shared = pake
        .finish(&theirs.pake)
        .map(Zeroizing::new)
        .map_err(|e| Error::Unexpected(format!("a malformed key exchange ({e:?})")))?;
    let s = Schedule::new(&shared, transcript(&body, &theirs.pake));
    let confirmed = theirs
        .confirm
        .is_some_and(|c| s.check(&s.confirm_receiver, &c));
    if !confirmed {
        let counted = attempt.map(|a| a.failed());
        refuse(stream, &format!("wrong {}", secret.noun()));
        return Err(Error::Unproven {
            how: Unproven::WrongProof,
            counted,
        });
    }
    if let Some(attempt) = attempt {
        attempt.proven();
    }
    proto::write_frame(stream, kind::CONFIRM, &s.confirm(&s.confirm_sender)).map_err(written)?;
    Ok(Agreed {
        outgoing: s.to_receiver.clone(),
        incoming: s.to_sender.clone(),
    })
}

/// The receiver's half, once the sender's HELLO is read: answers with its
/// own HELLO and confirmation, then checks the sender's; the caller seals
/// the connection with what it returns. A refusal is written here.
pub fn as_receiver(
    stream: &mut (impl Read + Write),
    secret: &Secret,
    body: &[u8],
    listening: bool,
) -> Result<Agreed, Error> {
    let refusing = |stream: &mut _, why: String, malformed| {
        refuse(stream, &why);
        Error::Refusing { why, malformed }
    };
    let hello = match Hello::decode_sender(body) {
        Ok(hello) => hello,
        // no attempt, and not a sender: a one-shot receiver goes on
        Err(e) => return Err(refusing(stream, format!("a malformed hello: {e:#}"), true)),
    };
    if let Some(kind) = hello.secret.filter(|k| *k != secret.kind()) {
        let why = format!(
            "the sender uses a {}, this receiver a {}",
            super::noun(kind),
            secret.noun()
        );
        return Err(refusing(stream, why, false));
    }
    // listening, this side counts the sender's guess from here on
    let attempt = match listening.then(|| secret.attempts.begin()) {
        Some(Err(why)) => return Err(refusing(stream, why, false)),
        Some(Ok(attempt)) => Some(attempt),
        None => None,
    };
    let (id_a, id_b) = identities();
    let (pake, ours) = Spake2::<Ed25519Group>::start_b(&password(secret), &id_a, &id_b);
    let shared = match pake.finish(&hello.pake) {
        Ok(shared) => Zeroizing::new(shared),
        Err(e) => {
            let why = format!("a malformed key exchange ({e:?})");
            return Err(refusing(stream, why, false));
        }
    };
    let s = Schedule::new(&shared, transcript(body, &ours));
    let reply = Hello {
        secret: None,
        confirm: Some(s.confirm(&s.confirm_receiver)),
        pake: ours,
    };
    proto::write_frame(stream, kind::HELLO, &reply.encode()).map_err(written)?;
    // From here the peer could test one guess against our confirmation:
    // whatever stops it confirming in turn counts as a failed attempt.
    let unproven = match next(stream, "the sender's confirmation") {
        Ok(f) if f.kind == kind::CONFIRM && s.check(&s.confirm_sender, &f.body) => None,
        Ok(_) => Some(Unproven::WrongProof),
        Err(Error::Refused { .. }) => Some(Unproven::RefusedOurs),
        Err(_) => Some(Unproven::HungUp),
    };
    if let Some(how) = unproven {
        return Err(Error::Unproven {
            how,
            counted: attempt.map(|a| a.failed()),
        });
    }
    if let Some(attempt) = attempt {
        attempt.proven();
    }
    Ok(Agreed {
        outgoing: s.to_sender.clone(),
        incoming: s.to_receiver.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    type Shaken = Result<Agreed, Error>;

    /// Both halves over loopback (plain sockets: the handshake needs only
    /// `Read + Write`); what each returned.
    fn shake(sender: &str, receiver: &str) -> (Shaken, Shaken) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let theirs = Secret::code(receiver);
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let version = proto::read_preamble(&mut stream).unwrap();
            assert_eq!(version, VERSION_SEALED);
            let frame = proto::read_frame(&mut stream).unwrap();
            assert_eq!(frame.kind, kind::HELLO);
            let got = as_receiver(&mut stream, &theirs, &frame.body, true);
            (got, theirs.attempts.admit())
        });
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let got = as_sender(&mut stream, &Secret::code(sender), false);
        let (theirs, admit) = server.join().unwrap();
        assert_eq!(admit.is_ok(), theirs.is_ok(), "burnt only by a failure");
        (got, theirs)
    }

    #[test]
    fn the_same_code_makes_the_same_keys_each_way() {
        let (a, b) = shake("7-plaza-quartz-ember", "7-plaza-quartz-ember");
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.outgoing.key, b.incoming.key);
        assert_eq!(a.outgoing.iv, b.incoming.iv);
        assert_eq!(a.incoming.key, b.outgoing.key);
        assert_eq!(a.incoming.iv, b.outgoing.iv);
        assert_ne!(a.outgoing.key, a.incoming.key);
    }

    #[test]
    fn a_wrong_code_is_refused_on_both_sides_and_burns_it() {
        let (a, b) = shake("7-plaza-quartz-ember", "8-plaza-quartz-ember");
        let (a, b) = (a.err().unwrap(), b.err().unwrap());
        assert!(
            matches!(
                a,
                Error::Unproven {
                    how: Unproven::WrongProof,
                    counted: None
                }
            ),
            "{a:?}"
        );
        match b {
            Error::Unproven {
                how: Unproven::RefusedOurs,
                counted: Some(counted),
            } => assert!(counted.contains("burnt"), "{counted}"),
            b => panic!("{b:?}"),
        }
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
        wiped_on_drop::<Agreed>();
    }
}

/// docs/test-vectors.json, checked against this module's own steps.
#[cfg(test)]
mod vectors;
