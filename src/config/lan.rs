//! The LAN side of the settings: where a positional that names a peer
//! points (`@NAME`, HOST:PORT, or the one peer there is), what a listener
//! announces, and `zc peers`'s settings.

use std::path::PathBuf;

use anyhow::Result;

use super::{seconds, Common, Family, Peer};
use crate::exit;
use crate::lan::{Role, Want};
use crate::net;
use crate::secure::Secret;

impl Common {
    /// What a listener with these settings announces on the LAN.
    pub fn lan_txt(&self, role: crate::lan::Role) -> crate::lan::Txt {
        use crate::lan::Mode;
        let plate = self.secret.as_ref().and_then(Secret::nameplate);
        let mode = match (&self.secret, &self.key, plate) {
            (_, _, Some(_)) => Mode::Code,
            (Some(_), _, None) | (None, Some(_), None) => Mode::Key,
            (None, None, None) => Mode::Plain,
        };
        crate::lan::Txt {
            role,
            mode,
            plate,
            proto: format!(
                "{},{}",
                crate::protocol::VERSION,
                crate::protocol::VERSION_SEALED
            ),
        }
    }

    /// Announces `listener` on the LAN unless `--no-announce` (`None`),
    /// raw, or on loopback (`Some(Ok(None))`).
    pub fn announce(
        &self,
        listener: &std::net::TcpListener,
        role: crate::lan::Role,
    ) -> Option<Result<Option<crate::lan::Announcement>>> {
        let name = self.announce.as_ref()?;
        let v6_only = self.family == Family::V6;
        Some(crate::lan::announce_listener(
            name,
            listener,
            v6_only,
            &self.lan_txt(role),
        ))
    }
}

/// Where to connect, from the last positional: `@NAME` (a peer of `role`
/// announced on the LAN), HOST:PORT, or neither (the one peer of `role` on
/// the LAN, or the one with the code's nameplate). The address, when
/// there is one, is taken off `paths`; one positional is always a source.
pub(super) fn destination(paths: &mut Vec<PathBuf>, common: &Common, role: Role) -> Result<Peer> {
    let plate = common.secret.as_ref().and_then(|s| s.nameplate());
    let last = paths.last().map(|p| p.to_string_lossy().into_owned());
    let want = |name: Option<String>| Peer::Find(Want { name, role, plate });
    match last {
        Some(text) if text.starts_with('@') => {
            paths.pop();
            let name = &text[1..];
            if name.is_empty() {
                return Err(exit::usage("@ needs a NAME: @laptop (see zc peers)"));
            }
            Ok(want(Some(name.to_string())))
        }
        Some(text) if paths.len() >= 2 && net::split_host_port(&text).is_ok() => {
            paths.pop();
            Ok(Peer::Connect(text))
        }
        // neither an address nor anything to send: a mistyped address
        Some(text) if paths.len() >= 2 && std::fs::symlink_metadata(&text).is_err() => {
            Err(exit::usage(format!(
                "{text}: neither a file to send nor HOST:PORT (a receiver on the LAN is @NAME)"
            )))
        }
        _ => Ok(want(None)),
    }
}

/// A peer on the LAN is found by what it announces, and a raw listener
/// announces nothing: `--raw` takes HOST:PORT.
pub(super) fn check_found(peer: &Peer, common: &Common) -> Result<()> {
    match (peer, common.raw) {
        (Peer::Find(_), true) => Err(exit::usage(
            "--raw needs HOST:PORT: a raw peer is not announced on the LAN",
        )),
        _ => Ok(()),
    }
}

/// `--announce NAME`: one DNS label's worth of plain text.
pub(super) fn announced_name(name: &str) -> Result<String> {
    let plain = !name.is_empty()
        && name.len() <= crate::lan::NAME_MOST
        && !name.chars().any(char::is_control);
    match plain {
        true => Ok(name.to_string()),
        false => Err(exit::usage(format!(
            "--announce '{}': a name of 1 to {} bytes, no control characters",
            name.escape_debug(),
            crate::lan::NAME_MOST
        ))),
    }
}

/// `zc peers`'s settings.
pub fn listing(args: &crate::cli::PeersArgs) -> Result<crate::peers::Listing> {
    Ok(crate::peers::Listing {
        json: args.json,
        watch: args.watch,
        timeout: seconds(args.find_timeout, "--find-timeout")?,
    })
}
