//! AES-256-GCM by RustCrypto's aes-gcm (every target but x86_64 Linux).

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};

use super::{Failed, KEY, NONCE, TAG};

/// Whether [`Cipher::open_within`] opens into the bytes before the
/// ciphertext in its one pass (else it moves the plaintext after).
pub const OPENS_WITHIN_IN_ONE_PASS: bool = false;

/// Wipes its key schedule when dropped (aes-gcm's `zeroize` feature).
pub struct Cipher(Aes256Gcm);

impl Cipher {
    pub fn new(key: &[u8; KEY]) -> Self {
        Cipher(Aes256Gcm::new(key.into()))
    }

    /// Encrypts `data` in place; returns its tag.
    pub fn seal(
        &self,
        nonce: [u8; NONCE],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; TAG], Failed> {
        let tag = self
            .0
            .encrypt_inout_detached(&Nonce::from(nonce), aad, data.into());
        tag.map(Into::into).map_err(|_| Failed)
    }

    /// Decrypts `input` into `out` (of its length) if they and `aad` match
    /// `tag`, in one pass; if not, `out` is left as it was.
    pub fn open_into(
        &self,
        nonce: [u8; NONCE],
        aad: &[u8],
        input: &[u8],
        out: &mut [u8],
        tag: &[u8; TAG],
    ) -> Result<(), Failed> {
        let buf = InOutBuf::new(input, out).map_err(|_| Failed)?;
        let opened = self
            .0
            .decrypt_inout_detached(&Nonce::from(nonce), aad, buf, &Tag::from(*tag));
        opened.map_err(|_| Failed)
    }

    /// Decrypts `buf[from..]` into `buf[..buf.len() - from]` if it and
    /// `aad` match `tag`: in place, then moved down (aes-gcm takes no
    /// overlapping input and output); if not, `buf` is left as it was (the
    /// tag is checked before decrypting).
    pub fn open_within(
        &self,
        nonce: [u8; NONCE],
        aad: &[u8],
        buf: &mut [u8],
        from: usize,
        tag: &[u8; TAG],
    ) -> Result<(), Failed> {
        let tag = Tag::from(*tag);
        let data = &mut buf[from..];
        let opened = self
            .0
            .decrypt_inout_detached(&Nonce::from(nonce), aad, data.into(), &tag);
        opened.map_err(|_| Failed)?;
        buf.copy_within(from.., 0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// Checked when the tests build: aes-gcm wipes its key schedule.
    #[test]
    fn the_key_schedule_is_wiped_on_drop() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<aes_gcm::Aes256Gcm>();
    }
}
