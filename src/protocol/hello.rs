//! The frames of an encrypted session's handshake (protocol version 2),
//! sent in the clear after the preamble: HELLO each way, then the sender's
//! CONFIRM. Everything after them travels in records.

use anyhow::{bail, ensure, Result};

use super::tlv::{Decoded, Fields};

/// The SPAKE2 message: a side byte and an Edwards25519 point.
pub const PAKE_LEN: usize = 33;
/// A key confirmation: HMAC-SHA256.
pub const CONFIRM_LEN: usize = 32;

/// What the session's secret is; both sides must hold the same kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    Code = 0,
    Key = 1,
}

/// HELLO `H`: the sender's carries the kind of secret and its SPAKE2
/// message; the receiver's its SPAKE2 message and its key confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub secret: Option<SecretKind>,
    pub pake: Vec<u8>,
    pub confirm: Option<[u8; CONFIRM_LEN]>,
}

impl Hello {
    const SECRET: u8 = 0x81;
    const PAKE: u8 = 0x82;
    const CONFIRM: u8 = 0x83;

    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::default();
        if let Some(kind) = self.secret {
            f.put(Self::SECRET, &[kind as u8]);
        }
        f.put(Self::PAKE, &self.pake);
        if let Some(confirm) = &self.confirm {
            f.put(Self::CONFIRM, confirm);
        }
        f.0
    }

    pub fn decode(body: &[u8]) -> Result<Hello> {
        Decoded::read(body, |f| {
            Ok(Hello {
                secret: f.get(Self::SECRET, |_, value| match value {
                    [0] => Ok(SecretKind::Code),
                    [1] => Ok(SecretKind::Key),
                    _ => bail!("hello: unknown kind of secret"),
                })?,
                pake: f.need(Self::PAKE, as_pake, "hello: no key exchange")?,
                confirm: f.get(Self::CONFIRM, |_, value| {
                    value.try_into().map_err(|_| {
                        anyhow::anyhow!("hello: a confirmation of {} bytes", value.len())
                    })
                })?,
            })
        })
    }

    /// The sender's HELLO: its `secret` is required (the receiver checks
    /// the kind before any exchange), and a confirmation is the receiver's
    /// alone.
    pub fn decode_sender(body: &[u8]) -> Result<Hello> {
        let hello = Hello::decode(body)?;
        ensure!(
            hello.secret.is_some(),
            "hello: no kind of secret (field 0x81)"
        );
        ensure!(
            hello.confirm.is_none(),
            "hello: a confirmation from the sender"
        );
        Ok(hello)
    }
}

fn as_pake(_: u8, value: &[u8]) -> Result<Vec<u8>> {
    ensure!(
        value.len() == PAKE_LEN,
        "hello: a key exchange of {} bytes",
        value.len()
    );
    Ok(value.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hellos_round_trip_and_are_checked() {
        let sender = Hello {
            secret: Some(SecretKind::Code),
            pake: vec![0x41; PAKE_LEN],
            confirm: None,
        };
        assert_eq!(Hello::decode(&sender.encode()).unwrap(), sender);
        let receiver = Hello {
            secret: None,
            pake: vec![0x42; PAKE_LEN],
            confirm: Some([7; CONFIRM_LEN]),
        };
        assert_eq!(Hello::decode(&receiver.encode()).unwrap(), receiver);
        assert_eq!(Hello::decode_sender(&sender.encode()).unwrap(), sender);
        let err = Hello::decode_sender(&receiver.encode()).unwrap_err();
        assert!(err.to_string().contains("no kind of secret"), "{err:#}");
        let both = Hello {
            confirm: Some([7; CONFIRM_LEN]),
            ..sender.clone()
        };
        assert!(Hello::decode_sender(&both.encode()).is_err());
        let mut short = receiver.clone();
        short.pake.pop();
        assert!(Hello::decode(&short.encode()).is_err());
        assert!(Hello::decode(&[]).is_err());
        assert!(Hello::decode(&[0x81, 0, 1, 9]).is_err());
        assert!(
            Hello::decode(&[0x99, 0, 0]).is_err(),
            "unknown required field"
        );
    }
}
