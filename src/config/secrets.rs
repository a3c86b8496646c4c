//! The code or key of a command line, and what it does: encrypt (a code,
//! or a key), authenticate in the clear (a key with `--no-encrypt`), or
//! nothing; a code made here when this side listens.

use std::path::PathBuf;

use anyhow::Result;
use zeroize::Zeroizing;

use crate::cli::{CommonArgs, SendArgs};
use crate::exit;
use crate::secure::{code, Secret};

/// The key or code, and what it does: `(plaintext key, encrypting
/// secret, code made here)`. A code alone on the listening side is made
/// here; anywhere else it must be given.
pub(super) type Secrets = (Option<crate::auth::Key>, Option<Secret>, Option<String>);

pub(super) fn secrets(args: &CommonArgs, listening: bool, code: Option<&str>) -> Result<Secrets> {
    let key = match args.key.as_deref() {
        Some("") => return Err(exit::usage("--key (or ZC_KEY) is empty")),
        Some(_) if args.raw => {
            return Err(exit::usage(
                "--key needs framed mode: --raw has no handshake",
            ))
        }
        key => key,
    };
    let Some(given) = code else {
        return Ok(match key {
            Some(text) if args.no_encrypt => (Some(crate::auth::Key::new(text)), None, None),
            Some(text) => (None, Some(Secret::key(text)), None),
            None => (None, None, None),
        });
    };
    let clash = if key.is_some() {
        "--code and a key (--key, or ZC_KEY in the environment) are both given: use one"
    } else if args.raw {
        "--code needs framed mode: --raw has no handshake"
    } else if args.no_encrypt {
        "--no-encrypt goes with a key: a code always encrypts"
    } else {
        ""
    };
    if !clash.is_empty() {
        return Err(exit::usage(clash));
    }
    if !given.is_empty() {
        let canonical = code::parse(given)
            .map(Zeroizing::new)
            .map_err(|why| exit::usage(format!("--code {given}: {why}")))?;
        return Ok((None, Some(Secret::code(&canonical)), None));
    }
    if !listening {
        return Err(exit::usage(
            "--code without a code makes one, which only the listening side can hand out: \
             give the code the other side printed (--code 7-plaza-quartz-ember)",
        ));
    }
    let fresh = code::generate().map_err(|e| anyhow::anyhow!("no randomness for a code: {e}"))?;
    Ok((None, Some(Secret::code(&fresh)), Some(fresh)))
}

/// `--code`'s value on a listening sender: a code given, or none to make
/// one. `--code` takes an optional value, so in `zc send --listen 9000
/// --code big.iso` it took the file: what is not a code goes back to the
/// sources (the listening side never needs a code given).
pub(super) fn listening_code<'a>(args: &'a SendArgs, paths: &mut Vec<PathBuf>) -> Option<&'a str> {
    match args.common.code.as_deref() {
        Some(text) if args.listen.is_some() && !text.is_empty() && code::parse(text).is_err() => {
            paths.insert(0, PathBuf::from(text));
            Some("")
        }
        other => other,
    }
}
