//! What a listener and a look-up on the LAN say: where this side listens,
//! the code it made and the command for the other side, its announcement,
//! and the peer found.

use std::net::SocketAddr;

use super::event::Event;
use super::{Reporter, Style};

/// A one-time code this side made, and the command line that uses it on
/// the other side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub code: String,
    pub command: String,
}

impl Invite {
    /// `listener_sends`: this side is `zc send --listen`, so the other
    /// side receives.
    /// `announced`: the listener is announced on the LAN, where the code's
    /// nameplate finds it, so the command needs no address.
    pub fn new(code: &str, addr: SocketAddr, listener_sends: bool, announced: bool) -> Invite {
        // an address another machine can reach, not `::` or a bare host
        // name that most LANs do not resolve
        let ip = match addr.ip() {
            ip if ip.is_unspecified() => crate::lan::reachable_ip(),
            ip => Some(ip),
        };
        let host = match ip {
            Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
            Some(ip) => ip.to_string(),
            None => crate::sys::hostname().unwrap_or_else(|| "HOST".to_string()),
        };
        // a `zc recv` with no address listens: only a sender finds its
        // listener by the code
        let at = match announced && !listener_sends {
            true => String::new(),
            false => format!(" {host}:{}", addr.port()),
        };
        let command = match listener_sends {
            true => format!("zc recv{at} --code {code}"),
            false => format!("zc send FILE{at} --code {code}"),
        };
        Invite {
            code: code.to_string(),
            command,
        }
    }
}

impl Reporter {
    /// Where this side listens, and with a code it made, the code and the
    /// command for the other side: said first, so that whoever waits for
    /// the listening line has them (even with `-q`: without the code the
    /// other side cannot connect).
    /// Says where `listener` listens, with the code this side made and
    /// the other side's command line, if there is one.
    pub fn listening_on(
        &self,
        listener: &std::net::TcpListener,
        fresh_code: Option<&str>,
        listener_sends: bool,
        announced: bool,
    ) -> std::io::Result<()> {
        let addr = listener.local_addr()?;
        let invite = fresh_code.map(|c| Invite::new(c, addr, listener_sends, announced));
        self.listening(addr, invite.as_ref());
        Ok(())
    }

    pub fn listening(&self, addr: SocketAddr, invite: Option<&Invite>) {
        match (self.style, invite) {
            (Style::Json, _) => Event::Listening {
                addr: addr.to_string(),
                code: invite.map(|i| i.code.as_str()),
                command: invite.map(|i| i.command.as_str()),
            }
            .emit(),
            (_, Some(i)) => {
                self.say(&format!(
                    "zc: code {} (one try: a wrong code burns it)",
                    i.code
                ));
                self.say(&format!("zc: on the other side run: {}", i.command));
            }
            _ => {}
        }
        if !matches!(self.style, Style::Json | Style::Quiet) {
            self.say(&format!("zc: listening on {addr}"));
        }
    }

    /// A peer found on the LAN, about to be connected to.
    pub fn found(&self, found: &crate::lan::Found) {
        let name = crate::lan::shown(&found.name);
        let addrs = crate::lan::addrs_shown(&found.addrs);
        match self.style {
            Style::Json => Event::Found {
                name: &found.name,
                addrs: found.addrs.iter().map(ToString::to_string).collect(),
            }
            .emit(),
            Style::Quiet => {}
            _ => self.say(&format!("zc: found {name} on the LAN at {addrs}")),
        }
    }

    /// Says how announcing a listener as `name` went (`None`: it was not
    /// to be announced); a failure is a warning, and the listener goes on,
    /// reachable by its address.
    pub fn announced(
        &self,
        name: Option<&str>,
        made: Option<anyhow::Result<Option<crate::lan::Announcement>>>,
    ) -> Option<crate::lan::Announcement> {
        let (Some(name), Some(made)) = (name, made) else {
            return None;
        };
        match made {
            Ok(Some(announcement)) => {
                match self.style {
                    Style::Json => Event::Announced { name }.emit(),
                    Style::Quiet => {}
                    _ => self.say(&format!(
                        "zc: announced on the LAN as {}",
                        crate::lan::shown(name)
                    )),
                }
                Some(announcement)
            }
            Ok(None) => None,
            Err(e) => {
                self.warn(&format!(
                    "not announced on the LAN ({e:#}): give the other side this side's address"
                ));
                None
            }
        }
    }
}
