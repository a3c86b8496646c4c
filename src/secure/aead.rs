//! AES-256-GCM, the one AEAD of the record layer, behind the calls
//! [`super::record`] makes: seal in place; open into a buffer of its own,
//! or in place, or into the bytes just before the ciphertext (so that
//! records read back to back open into one run of plaintext: in one pass
//! where [`OPENS_WITHIN_IN_ONE_PASS`]).
//!
//! On x86_64 Linux it is ring's: one pass of assembly that does AES and
//! GHASH together (VAES and VPCLMULQDQ on 256-bit registers where the CPU
//! has them), 0.16 CPU-s/GiB per direction on this project's AMD EPYC
//! against 0.42-0.48 for RustCrypto's aes-gcm 0.11, which makes two passes
//! (CTR, then GHASH) and whose cpufeatures 0.3.1 hides VAES from CPUs
//! without AVX-512. ring's key schedule is not wiped when dropped
//! (SECURITY.md, "Not covered"). Elsewhere (other systems, aarch64: where
//! ring would need a C cross compiler to build) RustCrypto's aes-gcm, which
//! wipes its own. Both are checked against each other by
//! docs/test-vectors.json, whose records are sealed by hand with aes-gcm.

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod ring;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub use self::ring::{Cipher, OPENS_WITHIN_IN_ONE_PASS};

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod rustcrypto;
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub use self::rustcrypto::{Cipher, OPENS_WITHIN_IN_ONE_PASS};

pub const KEY: usize = 32;
pub const NONCE: usize = 12;
pub const TAG: usize = 16;

/// A seal or an open that failed: for an open, a record that does not
/// authenticate; its buffer then holds no plaintext.
#[derive(Debug)]
pub struct Failed;

impl Cipher {
    /// Decrypts `data` in place if it and `aad` match `tag`; if not, `data`
    /// holds no plaintext.
    pub fn open(
        &self,
        nonce: [u8; NONCE],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8; TAG],
    ) -> Result<(), Failed> {
        self.open_within(nonce, aad, data, 0, tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_buffer_opens_and_a_changed_one_does_not() {
        let cipher = Cipher::new(&[5; KEY]);
        let plain: Vec<u8> = (0..16_385u32).map(|i| (i * 31) as u8).collect();
        let mut data = plain.clone();
        let tag = cipher.seal([1; NONCE], b"head", &mut data).unwrap();
        assert_ne!(data, plain);
        let sealed = data.clone();
        cipher.open([1; NONCE], b"head", &mut data, &tag).unwrap();
        assert_eq!(data, plain);
        // opened into the bytes before it
        let mut shifted = vec![0xaa; 7];
        shifted.extend_from_slice(&sealed);
        cipher
            .open_within([1; NONCE], b"head", &mut shifted, 7, &tag)
            .unwrap();
        assert_eq!(shifted[..plain.len()], plain[..]);
        // into a buffer of its own
        let mut out = vec![0; sealed.len()];
        cipher
            .open_into([1; NONCE], b"head", &sealed, &mut out, &tag)
            .unwrap();
        assert_eq!(out, plain);
        // the other nonce, the other additional data, a changed byte, a
        // changed tag: none opens, and none leaves plaintext behind
        let mut bad_tag = tag;
        bad_tag[0] ^= 1;
        let mut flipped = sealed.clone();
        flipped[9_000] ^= 0x40;
        for (nonce, aad, mut data, tag) in [
            ([2; NONCE], &b"head"[..], sealed.clone(), tag),
            ([1; NONCE], &b"hea"[..], sealed.clone(), tag),
            ([1; NONCE], &b"head"[..], flipped, tag),
            ([1; NONCE], &b"head"[..], sealed.clone(), bad_tag),
        ] {
            assert!(cipher.open(nonce, aad, &mut data, &tag).is_err());
            assert!(data.iter().zip(&plain).filter(|(a, b)| a == b).count() < 200);
        }
    }
}
