//! Encrypted sessions: a one-time code or a long-lived key turned into
//! strong session keys by SPAKE2, confirmed both ways before anything else
//! is said, then every byte of the session in TLS 1.3-shaped AES-256-GCM
//! records (docs/PROTOCOL.md, "Encrypted sessions"; SECURITY.md).

pub mod aead;
pub mod attempts;
pub mod channel;
pub mod code;
pub mod handshake;
pub mod record;
mod words;

use std::sync::Arc;

use zeroize::ZeroizeOnDrop;

pub use crate::protocol::hello::SecretKind;
use attempts::Attempts;

/// What both ends of an encrypted session hold: a code or a key, and the
/// failed attempts this side has seen against it while listening. The
/// text is wiped when the last copy is dropped.
#[derive(Clone, ZeroizeOnDrop)]
pub struct Secret {
    #[zeroize(skip)]
    kind: SecretKind,
    text: Vec<u8>,
    #[zeroize(skip)]
    pub attempts: Arc<Attempts>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({:?}, ..)", self.kind)
    }
}

impl Secret {
    /// A one-time code, in its canonical form ([`code::parse`]).
    pub fn code(canonical: &str) -> Secret {
        Secret {
            kind: SecretKind::Code,
            text: canonical.as_bytes().to_vec(),
            attempts: Arc::new(Attempts::once()),
        }
    }

    /// A key (`--key`, `ZC_KEY`), as given.
    pub fn key(text: &str) -> Secret {
        Secret {
            kind: SecretKind::Key,
            text: text.as_bytes().to_vec(),
            attempts: Arc::new(Attempts::per_minute(attempts::KEY_FAILURES)),
        }
    }

    /// A code's nameplate, its leading number: public by design (a
    /// listener announces it on the LAN), it only tells which listener
    /// holds the code.
    pub fn nameplate(&self) -> Option<u32> {
        match self.kind {
            SecretKind::Code => std::str::from_utf8(&self.text)
                .ok()?
                .split('-')
                .next()?
                .parse()
                .ok(),
            SecretKind::Key => None,
        }
    }

    pub fn kind(&self) -> SecretKind {
        self.kind
    }

    /// "code" or "key", for what the user is told.
    pub fn noun(&self) -> &'static str {
        noun(self.kind)
    }
}

pub fn noun(kind: SecretKind) -> &'static str {
    match kind {
        SecretKind::Code => "code",
        SecretKind::Key => "key",
    }
}
