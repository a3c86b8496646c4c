//! docs/test-vectors.json: an encrypted session's handshake and first
//! records with fixed randomness, computed here by the handshake's own
//! steps and compared with the file whole, so the numbers docs/PROTOCOL.md
//! points to cannot drift from the code. The SPAKE2 arithmetic is also
//! redone by hand from the spec's words (group, M and N, password to
//! scalar, key hash) and must give the crate's messages and key, and each
//! record is sealed again from the documented nonce and header.

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use hkdf::Hkdf;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Spake2};

use super::{identities, password, transcript, Schedule};
use crate::protocol::hello::Hello;
use crate::protocol::tree::TreeOffer;
use crate::protocol::{self as proto, hex, kind};
use crate::secure::record::{Keys, Sealer};
use crate::secure::Secret;

const FILE: &str = include_str!("../../../docs/test-vectors.json");
const CODE: &str = "7-plaza-quartz-ember";
/// Each side's randomness: SPAKE2 draws 64 bytes for its scalar.
const SENDER_RANDOM: u8 = 0x11;
const RECEIVER_RANDOM: u8 = 0x22;
/// spake2 0.4's Ed25519 M and N, compressed Edwards points.
const M: &str = "15cfd18e385952982b6a8f8c7854963b58e34388c8e6dae891db756481a02312";
const N: &str = "f04f2e7eb734b2a8f8b472eaf9c3c632576ac64aea650b496a8a20ff00e583c3";

/// A "random" source that gives the same byte forever.
struct Repeat(u8);

impl rand_core::RngCore for Repeat {
    fn next_u32(&mut self) -> u32 {
        u32::from_ne_bytes([self.0; 4])
    }
    fn next_u64(&mut self) -> u64 {
        u64::from_ne_bytes([self.0; 8])
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(self.0);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        dest.fill(self.0);
        Ok(())
    }
}

impl rand_core::CryptoRng for Repeat {}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn point(text: &str) -> EdwardsPoint {
    let bytes: [u8; 32] = unhex(text).try_into().expect("32 bytes");
    CompressedEdwardsY(bytes).decompress().expect("a point")
}

/// SPAKE2's password scalar as the spec words it: HKDF-SHA256 (empty
/// salt, info `SPAKE2 pw`) to 48 bytes, read big-endian, reduced mod l.
fn password_scalar(password: &[u8]) -> Scalar {
    let mut okm = [0u8; 48];
    Hkdf::<Sha256>::new(Some(b""), password)
        .expand(b"SPAKE2 pw", &mut okm)
        .expect("48 bytes");
    let mut wide = [0u8; 64];
    for (i, b) in okm.iter().enumerate() {
        wide[47 - i] = *b;
    }
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// One record sealed again from the spec's words: nonce = IV XOR the
/// sequence (big-endian, last 8 bytes), additional data = the header.
fn seal_by_hand(keys: &Keys, seq: u64, plain: &[u8]) -> ([u8; 12], Vec<u8>) {
    let mut nonce = keys.iv;
    for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
        *n ^= s;
    }
    let len = (plain.len() + 1 + 16) as u16;
    let header = [23, 3, 3, (len >> 8) as u8, len as u8];
    let mut body = plain.to_vec();
    body.push(23);
    let cipher = Aes256Gcm::new_from_slice(&keys.key).expect("32 bytes");
    let tag = cipher
        .encrypt_inout_detached(&Nonce::from(nonce), &header, (&mut body[..]).into())
        .expect("sealing");
    let mut record = header.to_vec();
    record.extend_from_slice(&body);
    record.extend_from_slice(&tag);
    (nonce, record)
}

/// The whole file's content, computed.
fn computed() -> Value {
    let secret = Secret::code(CODE);
    let pw = password(&secret);
    let (id_a, id_b) = identities();
    let start_a = Spake2::<Ed25519Group>::start_a_with_rng;
    let (a, sender_msg) = start_a(&pw, &id_a, &id_b, Repeat(SENDER_RANDOM));
    let start_b = Spake2::<Ed25519Group>::start_b_with_rng;
    let (b, receiver_msg) = start_b(&pw, &id_a, &id_b, Repeat(RECEIVER_RANDOM));
    let shared = a.finish(&receiver_msg).expect("the sender's key");
    assert_eq!(b.finish(&sender_msg).expect("the receiver's key"), shared);

    // the same by hand: X = x*B + w*M, Y = y*B + w*N, K = x*(Y - w*N)
    let w = password_scalar(&pw);
    let x = Scalar::from_bytes_mod_order_wide(&[SENDER_RANDOM; 64]);
    let y = Scalar::from_bytes_mod_order_wide(&[RECEIVER_RANDOM; 64]);
    let big_x = ED25519_BASEPOINT_POINT * x + point(M) * w;
    let big_y = ED25519_BASEPOINT_POINT * y + point(N) * w;
    assert_eq!(&sender_msg[1..], big_x.compress().as_bytes());
    assert_eq!(&receiver_msg[1..], big_y.compress().as_bytes());
    let k = ((big_y - point(N) * w) * x).compress();
    assert_eq!(k, ((big_x - point(M) * w) * y).compress());
    let mut h = Sha256::new();
    for part in [&pw[..], &id_a[..], &id_b[..]] {
        h.update(Sha256::digest(part));
    }
    h.update(&sender_msg[1..]);
    h.update(&receiver_msg[1..]);
    h.update(k.as_bytes());
    assert_eq!(
        h.finalize().to_vec(),
        shared,
        "SPAKE2's key as the spec says"
    );

    // the handshake, as as_sender and as_receiver do it
    let sender_hello = Hello {
        secret: Some(secret.kind()),
        pake: sender_msg.clone(),
        confirm: None,
    }
    .encode();
    let s = Schedule::new(&shared, transcript(&sender_hello, &receiver_msg));
    let receiver_hello = Hello {
        secret: None,
        pake: receiver_msg.clone(),
        confirm: Some(s.confirm(&s.confirm_receiver)),
    }
    .encode();

    // the sender's first two records: the OFFER, then a KEEPALIVE
    let offer = TreeOffer {
        entries: 1,
        bytes: 5,
        verify: true,
        resume: true,
        single: true,
        ..TreeOffer::default()
    };
    let mut offer_frame = Vec::new();
    proto::write_frame(&mut offer_frame, kind::OFFER, &offer.encode()).unwrap();
    let mut keepalive = Vec::new();
    proto::write_frame(&mut keepalive, kind::KEEPALIVE, &[]).unwrap();
    let mut sealer = Sealer::new(&s.to_receiver);
    let records: Vec<Value> = [offer_frame, keepalive]
        .iter()
        .enumerate()
        .map(|(seq, plain)| {
            let mut sealed = Vec::new();
            sealer.seal(plain, &mut sealed).unwrap();
            let (nonce, by_hand) = seal_by_hand(&s.to_receiver, seq as u64, plain);
            assert_eq!(sealed, by_hand, "record {seq} as the spec says");
            json!({
                "direction": "sender to receiver",
                "sequence": seq,
                "plaintext": hex(plain),
                "nonce": hex(&nonce),
                "record": hex(&sealed),
            })
        })
        .collect();

    json!({
        "inputs": {
            "code": CODE,
            "sender_random": format!("64 bytes of 0x{SENDER_RANDOM:02x}"),
            "receiver_random": format!("64 bytes of 0x{RECEIVER_RANDOM:02x}"),
        },
        "spake2": {
            "M": M,
            "N": N,
            "identity_a": String::from_utf8_lossy(&id_a),
            "identity_b": String::from_utf8_lossy(&id_b),
            "password": hex(&pw),
            "password_scalar": hex(w.as_bytes()),
            "sender_scalar": hex(x.as_bytes()),
            "receiver_scalar": hex(y.as_bytes()),
            "sender_message": hex(&sender_msg),
            "receiver_message": hex(&receiver_msg),
            "shared_point": hex(k.as_bytes()),
            "key": hex(&shared),
        },
        "handshake": {
            "preamble": hex(&proto::preamble(proto::VERSION_SEALED)),
            "sender_hello_body": hex(&sender_hello),
            "receiver_hello_body": hex(&receiver_hello),
            "transcript": hex(&s.transcript),
            "confirm_receiver_key": hex(&s.confirm_receiver),
            "confirm_sender_key": hex(&s.confirm_sender),
            "receiver_confirmation": hex(&s.confirm(&s.confirm_receiver)),
            "sender_confirmation": hex(&s.confirm(&s.confirm_sender)),
            "sender_to_receiver_key": hex(&s.to_receiver.key),
            "sender_to_receiver_iv": hex(&s.to_receiver.iv),
            "receiver_to_sender_key": hex(&s.to_sender.key),
            "receiver_to_sender_iv": hex(&s.to_sender.iv),
        },
        "records": records,
    })
}

#[test]
fn the_documented_vectors_are_what_the_code_computes() {
    let mut file: Value = serde_json::from_str(FILE).expect("docs/test-vectors.json is JSON");
    // the file's own words for a reader, not numbers
    if let Some(map) = file.as_object_mut() {
        map.remove("about");
    }
    let ours = computed();
    assert!(
        file == ours,
        "docs/test-vectors.json differs from what the code computes:\n{}",
        serde_json::to_string_pretty(&ours).unwrap()
    );
}
