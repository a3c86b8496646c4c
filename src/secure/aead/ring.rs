//! AES-256-GCM by ring (x86_64 Linux).

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM};

use super::{Failed, KEY, NONCE, TAG};

/// Whether [`Cipher::open_within`] opens into the bytes before the
/// ciphertext in its one pass (else it moves the plaintext after).
pub const OPENS_WITHIN_IN_ONE_PASS: bool = true;

pub struct Cipher(LessSafeKey);

impl Cipher {
    pub fn new(key: &[u8; KEY]) -> Self {
        let key = UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key");
        Cipher(LessSafeKey::new(key))
    }

    /// Encrypts `data` in place; returns its tag.
    pub fn seal(
        &self,
        nonce: [u8; NONCE],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; TAG], Failed> {
        let nonce = Nonce::assume_unique_for_key(nonce);
        let tag = self
            .0
            .seal_in_place_separate_tag(nonce, Aad::from(aad), data);
        let tag = tag.map_err(|_| Failed)?;
        Ok(tag.as_ref().try_into().expect("a 16-byte tag"))
    }

    /// Decrypts `input` into `out` (of its length) if they and `aad` match
    /// `tag`: copied, then opened in place (ring has no separate output).
    pub fn open_into(
        &self,
        nonce: [u8; NONCE],
        aad: &[u8],
        input: &[u8],
        out: &mut [u8],
        tag: &[u8; TAG],
    ) -> Result<(), Failed> {
        out.copy_from_slice(input);
        self.open_within(nonce, aad, out, 0, tag)
    }

    /// Decrypts `buf[from..]` into `buf[..buf.len() - from]` if it and
    /// `aad` match `tag`, in its one pass (the assembly takes an input and
    /// an output pointer); if not, ring zeroes where the plaintext went.
    pub fn open_within(
        &self,
        nonce: [u8; NONCE],
        aad: &[u8],
        buf: &mut [u8],
        from: usize,
        tag: &[u8; TAG],
    ) -> Result<(), Failed> {
        let nonce = Nonce::assume_unique_for_key(nonce);
        let tag = Tag::from(*tag);
        let opened = self
            .0
            .open_in_place_separate_tag(nonce, Aad::from(aad), tag, buf, from..);
        opened.map(|_| ()).map_err(|_| Failed)
    }
}
