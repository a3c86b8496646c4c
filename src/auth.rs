//! Pre-shared keys: mutual HMAC-SHA256 challenge-response before any byte is
//! written, and keyed digests so data altered in transit is caught.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::ZeroizeOnDrop;

use crate::hash::Sha;

type HmacSha256 = Hmac<Sha256>;

/// Fresh random bytes from the operating system.
pub fn nonce() -> std::io::Result<[u8; 32]> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(std::io::Error::other)?;
    Ok(bytes)
}

/// The key both sides hold (`--key` or `ZC_KEY`), wiped on drop.
#[derive(Clone, ZeroizeOnDrop)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    pub fn new(text: &str) -> Key {
        Key(text.as_bytes().to_vec())
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

/// One connection's authenticated session: the key and both nonces, bound
/// to the offer they were exchanged for.
#[derive(Clone)]
pub struct Session {
    key: Key,
    sender_nonce: [u8; 32],
    receiver_nonce: [u8; 32],
    offer: Sha,
}

impl Session {
    /// `offer_body` is the encoded OFFER, so a proof cannot be replayed for
    /// another transfer.
    pub fn new(
        key: &Key,
        sender_nonce: [u8; 32],
        receiver_nonce: [u8; 32],
        offer_body: &[u8],
    ) -> Self {
        Session {
            key: key.clone(),
            sender_nonce,
            receiver_nonce,
            offer: Sha256::digest(offer_body).into(),
        }
    }

    fn tag(&self, label: &[u8], extra: &[u8]) -> HmacSha256 {
        let mut mac = self.key.mac();
        mac.update(b"zc1 ");
        mac.update(label);
        mac.update(&self.sender_nonce);
        mac.update(&self.receiver_nonce);
        mac.update(&self.offer);
        mac.update(extra);
        mac
    }

    /// The receiver's proof that it holds the key.
    pub fn receiver_proof(&self) -> Sha {
        self.tag(b"recv", &[]).finalize().into_bytes().into()
    }

    /// The sender's proof that it holds the key.
    pub fn sender_proof(&self) -> Sha {
        self.tag(b"send", &[]).finalize().into_bytes().into()
    }

    /// Constant-time check of a proof made by `receiver_proof`.
    pub fn check_receiver(&self, proof: &[u8]) -> bool {
        self.tag(b"recv", &[]).verify_slice(proof).is_ok()
    }

    /// Constant-time check of a proof made by `sender_proof`.
    pub fn check_sender(&self, proof: &[u8]) -> bool {
        self.tag(b"send", &[]).verify_slice(proof).is_ok()
    }

    /// A digest as it goes on the wire when a key is set.
    pub fn keyed_digest(&self, digest: &Sha) -> Sha {
        self.tag(b"digest", digest).finalize().into_bytes().into()
    }

    /// The MAC over a receiver's final answer (status and bytes held).
    pub fn result_mac(&self, status: u8, held: u64) -> Sha {
        let mut extra = vec![status];
        extra.extend_from_slice(&held.to_be_bytes());
        self.tag(b"result", &extra).finalize().into_bytes().into()
    }

    /// The MAC over one entry's result in a tree session: its id too, so
    /// a result cannot be moved to another entry.
    pub fn file_result_mac(&self, id: u64, status: u8, held: u64) -> Sha {
        let mut extra = id.to_be_bytes().to_vec();
        extra.push(status);
        extra.extend_from_slice(&held.to_be_bytes());
        self.tag(b"file result", &extra)
            .finalize()
            .into_bytes()
            .into()
    }

    pub fn check_file_result(&self, id: u64, status: u8, held: u64, mac: &[u8]) -> bool {
        let mut extra = id.to_be_bytes().to_vec();
        extra.push(status);
        extra.extend_from_slice(&held.to_be_bytes());
        self.tag(b"file result", &extra).verify_slice(mac).is_ok()
    }

    pub fn check_result(&self, status: u8, held: u64, mac: &[u8]) -> bool {
        let mut extra = vec![status];
        extra.extend_from_slice(&held.to_be_bytes());
        self.tag(b"result", &extra).verify_slice(mac).is_ok()
    }
}

/// The session machines take a key through this trait, so protocol/ needs
/// no crypto of its own.
impl crate::protocol::Keyed for Session {
    fn keyed_digest(&self, digest: &Sha) -> Sha {
        Session::keyed_digest(self, digest)
    }
    fn result_mac(&self, status: u8, held: u64) -> Sha {
        Session::result_mac(self, status, held)
    }
    fn file_result_mac(&self, id: u64, status: u8, held: u64) -> Sha {
        Session::file_result_mac(self, id, status, held)
    }
    fn check_result(&self, status: u8, held: u64, mac: &[u8]) -> bool {
        Session::check_result(self, status, held, mac)
    }
    fn check_file_result(&self, id: u64, status: u8, held: u64, mac: &[u8]) -> bool {
        Session::check_file_result(self, id, status, held, mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_need_the_same_key_nonces_and_offer() {
        let (k, other) = (Key::new("secret"), Key::new("Secret"));
        let (ns, nr) = (nonce().unwrap(), nonce().unwrap());
        assert_ne!(ns, nr);
        let a = Session::new(&k, ns, nr, b"offer");
        assert!(a.check_receiver(&a.receiver_proof()));
        assert!(!a.check_sender(&a.receiver_proof()), "roles are distinct");
        assert!(!Session::new(&other, ns, nr, b"offer").check_sender(&a.sender_proof()));
        assert!(!Session::new(&k, ns, nr, b"offe2").check_sender(&a.sender_proof()));
        assert!(!Session::new(&k, nr, ns, b"offer").check_sender(&a.sender_proof()));
        assert_ne!(a.keyed_digest(&[1; 32]), a.keyed_digest(&[2; 32]));
        assert!(a.check_result(0, 5, &a.result_mac(0, 5)));
        assert!(!a.check_result(1, 5, &a.result_mac(0, 5)));
    }

    /// Checked when the tests build: a key, and so a session's copy of it,
    /// is wiped when dropped (issue 22).
    #[test]
    fn the_key_is_wiped_on_drop() {
        fn wiped_on_drop<T: ZeroizeOnDrop>() {}
        wiped_on_drop::<Key>();
    }
}
