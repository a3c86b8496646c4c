//! The mDNS side of LAN discovery, through mdns-sd: announcing a listener
//! and browsing for others. No daemon is needed, and one that runs
//! (Avahi, Bonjour) is left alone: mDNS sockets share port 5353.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mdns_sd::{IfKind, ResolvedService, ScopedIp, ServiceDaemon, ServiceEvent, ServiceInfo};

use super::{bounded, Found, Txt, MOST_ADDRS, MOST_HOSTS, MOST_PEERS, SERVICE};

/// How long a goodbye may take on the way out.
const GOODBYE_WAIT: Duration = Duration::from_millis(500);

/// A listener's announcement, withdrawn (goodbye packets, TTL 0) when dropped.
pub struct Announcement {
    daemon: ServiceDaemon,
    fullname: String,
}

/// Which address families a listener takes.
fn limit_families(daemon: &ServiceDaemon, bound: IpAddr, v6_only: bool) -> Result<()> {
    let off = match bound {
        IpAddr::V4(_) => Some(IfKind::IPv6),
        IpAddr::V6(_) if v6_only => Some(IfKind::IPv4),
        IpAddr::V6(_) => None,
    };
    if let Some(kind) = off {
        daemon.disable_interface(kind).context("mDNS")?;
    }
    Ok(())
}

/// Announces a listener on `bound:port` as `name` on every interface that
/// is up and multicast-capable (or on `bound`'s alone, when it is one address).
pub fn announce(
    name: &str,
    bound: IpAddr,
    port: u16,
    v6_only: bool,
    txt: &Txt,
) -> Result<Announcement> {
    let daemon = ServiceDaemon::new().context("starting mDNS")?;
    limit_families(&daemon, bound, v6_only)?;
    // a host name of this announcement's own: two machines that claim one
    // instance name then still differ, and a system responder's name for
    // this host is never contradicted
    let tag = crate::auth::nonce()
        .map(|n| {
            n[..4]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        })
        .unwrap_or_else(|_| std::process::id().to_string());
    let host = format!("zc-{tag}.local.");
    let addrs: Vec<IpAddr> = match bound.is_unspecified() {
        true => Vec::new(),
        false => vec![bound],
    };
    let info = ServiceInfo::new(
        SERVICE,
        name,
        &host,
        &addrs[..],
        port,
        &txt.properties()[..],
    )
    .context("an mDNS announcement")?;
    let mut info = match bound.is_unspecified() {
        true => info.enable_addr_auto(),
        false => info,
    };
    // no probe: a probe that hears the name taken renames this one
    // "NAME (2)" behind the user's back, while zc says it announced NAME
    // and `@NAME` reaches the other host. Both keep NAME, and `@NAME`
    // is refused as claimed by two hosts, with the list.
    info.set_requires_probe(false);
    let fullname = info.get_fullname().to_string();
    daemon.register(info).context("announcing on the LAN")?;
    Ok(Announcement { daemon, fullname })
}

impl Drop for Announcement {
    fn drop(&mut self) {
        if let Ok(done) = self.daemon.unregister(&self.fullname) {
            let _ = done.recv_timeout(GOODBYE_WAIT);
        }
        if let Ok(done) = self.daemon.shutdown() {
            let _ = done.recv_timeout(GOODBYE_WAIT);
        }
    }
}

/// What changed on the LAN, as a browse hears it.
pub enum Change {
    Seen(Found),
    Gone(String),
}

/// A browse for zc listeners, until dropped.
pub struct Browser {
    daemon: ServiceDaemon,
    events: mdns_sd::Receiver<ServiceEvent>,
    /// Per instance, what answered for it so far.
    known: BTreeMap<String, Found>,
    closed: bool,
}

impl Browser {
    pub fn start() -> Result<Browser> {
        const INSTEAD: &str = "cannot look on the LAN: give the other side's address (HOST:PORT)";
        let daemon = ServiceDaemon::new()
            .context("starting mDNS")
            .context(INSTEAD)?;
        let events = daemon.browse(SERVICE).context(INSTEAD)?;
        Ok(Browser {
            daemon,
            events,
            known: BTreeMap::new(),
            closed: false,
        })
    }

    /// Whether mDNS stopped under this browse (its daemon ended).
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// The next change until `deadline`; `None` once it passed, on Ctrl-C,
    /// or once mDNS stopped ([`Browser::closed`]).
    pub fn next(&mut self, deadline: Instant) -> Option<Change> {
        loop {
            let wait = deadline.checked_duration_since(Instant::now())?;
            let event = match self.events.recv_timeout(wait.min(crate::conn::TICK)) {
                Ok(event) => event,
                Err(mdns_sd::RecvTimeoutError::Timeout) => {
                    if crate::interrupt::requested() {
                        return None;
                    }
                    continue;
                }
                Err(_) => {
                    self.closed = true;
                    return None;
                }
            };
            match event {
                ServiceEvent::ServiceResolved(info) => {
                    if let Some(found) = self.merge(&info) {
                        return Some(Change::Seen(found));
                    }
                }
                ServiceEvent::ServiceRemoved(_, fullname) => {
                    let name = instance_of(&fullname);
                    if self.known.remove(&name).is_some() {
                        return Some(Change::Gone(name));
                    }
                }
                _ => {}
            }
        }
    }

    /// Everything heard so far.
    pub fn known(&self) -> Vec<Found> {
        self.known.values().cloned().collect()
    }

    /// Adds what one answer says; `None` if it is no zc's.
    fn merge(&mut self, info: &ResolvedService) -> Option<Found> {
        let txt = Txt::parse(|k| info.get_property_val_str(k))?;
        let name = instance_of(info.get_fullname());
        let port = info.get_port();
        // a loopback address from the LAN would lead back to this machine
        let mut addrs: Vec<SocketAddr> = info
            .get_addresses()
            .iter()
            .filter(|ip| !is_here(&ip.to_ip_addr()))
            .map(|ip| socket_addr(ip, port))
            .collect();
        addrs.sort();
        if !self.known.contains_key(&name) && self.known.len() >= MOST_PEERS {
            return None;
        }
        let entry = self.known.entry(name.clone()).or_insert_with(|| Found {
            name,
            hosts: Default::default(),
            addrs: Vec::new(),
            role: txt.role,
            mode: txt.mode,
            plate: txt.plate,
            proto: txt.proto.clone(),
        });
        if entry.hosts.len() < MOST_HOSTS {
            entry.hosts.insert((info.get_hostname().to_string(), port));
        }
        for a in addrs {
            if !entry.addrs.contains(&a) && entry.addrs.len() < MOST_ADDRS {
                entry.addrs.push(a);
            }
        }
        (entry.role, entry.mode, entry.plate) = (txt.role, txt.mode, txt.plate);
        Some(entry.clone())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.daemon.stop_browse(SERVICE);
        if let Ok(done) = self.daemon.shutdown() {
            let _ = done.recv_timeout(GOODBYE_WAIT);
        }
    }
}

/// Browses until `timeout`, or, once `settles` says how long after the
/// query what was heard needs, until then (and [`super::AFTER_FIRST`]
/// after the last answer that changed it).
pub fn browse(
    timeout: Duration,
    settles: impl Fn(&[Found]) -> Option<Duration>,
) -> Result<Vec<Found>> {
    let mut browser = Browser::start()?;
    let start = Instant::now();
    let mut deadline = start + timeout;
    while browser.next(deadline).is_some() {
        if let Some(after) = settles(&browser.known()) {
            let settled = (start + after).max(Instant::now() + super::AFTER_FIRST);
            deadline = deadline.min(settled);
        }
    }
    if crate::interrupt::requested() {
        return Err(crate::exit::interrupted(
            "interrupted while looking on the LAN",
        ));
    }
    Ok(browser.known())
}

/// The instance name of `NAME._zc._tcp.local.`, bounded (mdns-sd hands
/// the label over as it came, unescaped).
fn instance_of(fullname: &str) -> String {
    let label = fullname
        .strip_suffix(&format!(".{SERVICE}"))
        .unwrap_or(fullname);
    bounded(label)
}

/// An address that leads back to this machine whoever announced it.
fn is_here(ip: &IpAddr) -> bool {
    let mapped = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        _ => None,
    };
    let ip = mapped.unwrap_or(*ip);
    ip.is_loopback() || ip.is_unspecified()
}

/// An address to connect to: a link-local IPv6 one keeps its interface.
fn socket_addr(ip: &ScopedIp, port: u16) -> SocketAddr {
    match ip {
        ScopedIp::V6(v6) => {
            let link_local = (v6.addr().segments()[0] & 0xffc0) == 0xfe80;
            let scope = if link_local { v6.scope_id().index } else { 0 };
            SocketAddr::V6(SocketAddrV6::new(*v6.addr(), port, 0, scope))
        }
        other => SocketAddr::new(other.to_ip_addr(), port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_name_is_its_label() {
        assert_eq!(instance_of("my.box._zc._tcp.local."), "my.box");
        assert_eq!(instance_of("a\\b._zc._tcp.local."), "a\\b");
    }
}
