//! Finding zc peers on the LAN: what a listening zc announces (DNS-SD over
//! mDNS, `_zc._tcp.local.`), and which announced peer a sender or a
//! receiver picks. The rules live here, without I/O; `mdns` speaks.

mod mdns;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

pub use mdns::{announce, browse, Announcement, Browser, Change};

/// The DNS-SD service type every zc announces.
pub const SERVICE: &str = "_zc._tcp.local.";

/// An announced name is a DNS label: at most 63 bytes. A longer one from
/// the LAN is cut (and shown cut); a longer `--announce` is refused.
pub const NAME_MOST: usize = 63;

/// How long a browse goes on, at least, once an answer fits: every
/// responder answers a query within 120 ms of hearing it (RFC 6762, 6.),
/// so others that claim the same name or nameplate have been heard by
/// then, with room for the network on the way.
pub const SETTLE: Duration = Duration::from_millis(200);

/// And at least this long after the answer that settled it: responders
/// delay an answer by 20 to 120 ms (RFC 6762, 6.), so two that answer one
/// query late (each held back by its once-a-second limit since the last
/// query) still arrive within this of each other.
pub const AFTER_FIRST: Duration = Duration::from_millis(150);

/// Looking for "the one receiver" (no name, no code), a browse waits this
/// long from its query: a responder multicasts a record at most once a
/// second, so one that answered another query just before answers this
/// one up to a second later.
pub const SETTLE_ANY: Duration = Duration::from_millis(1250);

/// At most this many peers are kept from one browse, this many machines
/// per name and this many addresses per peer: what a LAN holds, and a
/// flood of announcements cannot grow past it.
pub const MOST_PEERS: usize = 256;
pub const MOST_HOSTS: usize = 8;
pub const MOST_ADDRS: usize = 16;

/// What a listening zc is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `zc recv`: takes files.
    Receiver,
    /// `zc send --listen`: serves files.
    Sender,
}

/// How a listening zc authenticates its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Plain,
    Key,
    Code,
}

/// The TXT record: nothing a guess of a code or key can be tested
/// against. A code's nameplate (its leading number) is public by design,
/// as magic-wormhole's: it only tells which of several listeners to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txt {
    pub role: Role,
    pub mode: Mode,
    pub plate: Option<u32>,
    /// The protocol versions the peer speaks, as announced ("1,2").
    pub proto: String,
}

impl Txt {
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let role = match self.role {
            Role::Receiver => "recv",
            Role::Sender => "send",
        };
        let mode = match self.mode {
            Mode::Plain => "plain",
            Mode::Key => "key",
            Mode::Code => "code",
        };
        let mut p = vec![
            ("proto", self.proto.clone()),
            ("role", role.into()),
            ("mode", mode.into()),
        ];
        if let Some(plate) = self.plate {
            p.push(("plate", plate.to_string()));
        }
        p
    }

    /// A TXT record from the LAN: `None` unless it is a zc one.
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Option<Txt> {
        let role = match get("role")? {
            "recv" => Role::Receiver,
            "send" => Role::Sender,
            _ => return None,
        };
        let mode = match get("mode")? {
            "plain" => Mode::Plain,
            "key" => Mode::Key,
            "code" => Mode::Code,
            _ => return None,
        };
        let plate = match (mode, get("plate")) {
            (Mode::Code, Some(p)) => Some(p.parse().ok()?),
            _ => None,
        };
        let proto: String = get("proto")?.chars().take(16).collect();
        Some(Txt {
            role,
            mode,
            plate,
            proto,
        })
    }
}

/// A zc announced on the LAN.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Found {
    /// As announced (untrusted: show it through [`shown`]), cut to
    /// [`NAME_MOST`] bytes.
    pub name: String,
    /// Every (host, port) that answered for the name: more than one means
    /// two machines claim it.
    #[serde(skip)]
    pub hosts: BTreeSet<(String, u16)>,
    pub addrs: Vec<SocketAddr>,
    pub role: Role,
    pub mode: Mode,
    pub plate: Option<u32>,
    pub proto: String,
}

impl Found {
    /// Two machines (or ports) answer for this one name.
    pub fn is_claimed_twice(&self) -> bool {
        self.hosts.len() > 1
    }
}

/// Whom a sender (or a receiver, in reverse mode) looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    /// `@NAME`, or `None` for the one there is.
    pub name: Option<String>,
    pub role: Role,
    /// With a code: its nameplate.
    pub plate: Option<u32>,
}

/// What the LAN answered, for one [`Want`].
#[derive(Debug, PartialEq, Eq)]
pub enum Choice {
    One(Found),
    None,
    /// Several fit (or one name is claimed twice): the user must name one.
    Several(Vec<Found>),
}

impl Want {
    pub fn fits(&self, f: &Found) -> bool {
        f.role == self.role
            && self.name.as_ref().is_none_or(|n| *n == f.name)
            && self.plate.is_none_or(|p| f.plate == Some(p))
    }

    /// Picks from what answered; never one of several silently.
    pub fn choose(&self, found: &[Found]) -> Choice {
        let fits: Vec<Found> = found.iter().filter(|f| self.fits(f)).cloned().collect();
        match fits.as_slice() {
            [] => Choice::None,
            [one] if !one.is_claimed_twice() => Choice::One(one.clone()),
            _ => Choice::Several(fits),
        }
    }

    /// How long after its query a browse must go on, now that `found`
    /// was heard (`None`: until its timeout). Two that fit make the answer
    /// "several", and one that fits a name or a nameplate makes it that
    /// one: either settles it after [`SETTLE`], when another that claims
    /// the same, and the other address family's answers, have come. One that fits "the one receiver" waits
    /// [`SETTLE_ANY`], time for a responder that answered another query
    /// within the last second, and may multicast only once a second
    /// (RFC 6762, 6.), to be heard too.
    pub fn settles_after(&self, found: &[Found]) -> Option<Duration> {
        match found.iter().filter(|f| self.fits(f)).count() {
            0 => None,
            1 if self.name.is_none() && self.plate.is_none() => Some(SETTLE_ANY),
            _ => Some(SETTLE),
        }
    }
}

/// Looks on the LAN for the one peer `want` names (within `timeout`):
/// none is exit 1 with how to give HOST:PORT instead; several are exit 2
/// with the list, never one of them picked silently.
pub fn find(want: &Want, timeout: Duration) -> anyhow::Result<Found> {
    let found = browse(timeout, |f| want.settles_after(f))?;
    let what = match (want.role, &want.name, want.plate) {
        (Role::Receiver, _, _) => "receiver",
        (Role::Sender, _, _) => "serving sender",
    };
    match want.choose(&found) {
        Choice::One(one) => Ok(one),
        Choice::None => {
            let named = match (&want.name, want.plate) {
                (Some(name), _) => format!(" announced as {}", shown(name)),
                (None, Some(plate)) => format!(" with code {plate}-..."),
                (None, None) => String::new(),
            };
            Err(anyhow::anyhow!(
                "no zc {what}{named} answered on the LAN within {} s (--find-timeout); \
                 give its address instead (HOST:PORT, as it prints it)",
                timeout.as_secs_f64()
            ))
        }
        Choice::Several(all) => Err(crate::exit::usage(several(want, what, &all))),
    }
}

/// Why several that fit are refused, and what to do instead.
fn several(want: &Want, what: &str, all: &[Found]) -> String {
    let list: Vec<String> = all.iter().map(line).collect();
    let list = list.join("\n  ");
    let command = match want.role {
        Role::Receiver => "send SOURCE...",
        Role::Sender => "recv",
    };
    match &want.name {
        // one name, and more than one machine answers for it
        Some(name) => format!(
            "{} is claimed by more than one machine on the LAN:\n  {list}\n\
             give the address of the one you mean: zc {command} HOST:PORT",
            shown(name)
        ),
        None => format!(
            "{} zc {what}s answer on the LAN:\n  {list}\nname one: zc {command} @NAME",
            all.len()
        ),
    }
}

/// Announces a listener as `name`, unless it listens on loopback only
/// (`Ok(None)`): no one else on the LAN could reach it.
pub fn announce_listener(
    name: &str,
    listener: &std::net::TcpListener,
    v6_only: bool,
    txt: &Txt,
) -> anyhow::Result<Option<Announcement>> {
    let addr = listener.local_addr()?;
    if addr.ip().is_loopback() {
        return Ok(None);
    }
    announce(name, addr.ip(), addr.port(), v6_only, txt).map(Some)
}

/// An address of this host that another machine on the LAN can reach: one
/// on the interface of the default route first (not a container bridge or
/// a tunnel that merely comes first), IPv4 before IPv6, never loopback or
/// link-local (which needs an interface to be of use).
pub fn reachable_ip() -> Option<std::net::IpAddr> {
    let addrs = if_addrs::get_if_addrs().ok()?;
    let usable = |ip: &std::net::IpAddr| match ip {
        std::net::IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local(),
        std::net::IpAddr::V6(v6) => !v6.is_loopback() && (v6.segments()[0] & 0xffc0) != 0xfe80,
    };
    let routed = default_route_interface();
    let rank = |i: &if_addrs::Interface| {
        let off_route = routed.as_deref().is_some_and(|r| r != i.name);
        (off_route, !i.ip().is_ipv4())
    };
    let mut ips: Vec<&if_addrs::Interface> = addrs.iter().filter(|i| usable(&i.ip())).collect();
    ips.sort_by_key(|i| rank(i));
    ips.first().map(|i| i.ip())
}

/// The interface of the IPv4 default route, from /proc/net/route (Linux).
fn default_route_interface() -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.get(1) == Some(&"00000000")).then(|| cols[0].to_string())
    })
}

/// One peer as `zc peers` lists it: name, addresses, role, mode.
pub fn line(f: &Found) -> String {
    let role = match f.role {
        Role::Receiver => "receiver",
        Role::Sender => "serving sender",
    };
    let mode = match (f.mode, f.plate) {
        (Mode::Code, Some(p)) => format!("code {p}-..."),
        (Mode::Code, None) => "code".into(),
        (Mode::Key, _) => "key".into(),
        (Mode::Plain, _) => "plain".into(),
    };
    let twice = match f.is_claimed_twice() {
        true => "  (claimed by several hosts)",
        false => "",
    };
    format!(
        "{}  {}  {role}  {mode}  protocol {}{twice}",
        shown(&f.name),
        addrs_shown(&f.addrs),
        shown(&f.proto)
    )
}

/// An announced name cut to [`NAME_MOST`] bytes at a character boundary.
pub fn bounded(name: &str) -> String {
    let mut end = name.len().min(NAME_MOST);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

/// A name from the LAN as it may reach a terminal: the one escape every
/// peer's text goes through.
pub fn shown(name: &str) -> String {
    crate::peer_text::escape(name.as_bytes())
}

/// The address list for a message: `198.18.0.2:9000, [fd00::2]:9000`.
pub fn addrs_shown(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The default announced name: this host's short name.
pub fn host_name() -> String {
    let full = crate::sys::hostname().unwrap_or_else(|| "zc".into());
    let short = full.split('.').next().unwrap_or("zc");
    match short.is_empty() {
        true => "zc".into(),
        false => bounded(short),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(name: &str, role: Role, plate: Option<u32>, host: &str) -> Found {
        Found {
            name: name.into(),
            hosts: [(host.to_string(), 9000)].into(),
            addrs: vec!["198.18.0.2:9000".parse().unwrap()],
            role,
            mode: if plate.is_some() {
                Mode::Code
            } else {
                Mode::Plain
            },
            plate,
            proto: "1,2".into(),
        }
    }

    fn want(name: Option<&str>, plate: Option<u32>) -> Want {
        Want {
            name: name.map(Into::into),
            role: Role::Receiver,
            plate,
        }
    }

    #[test]
    fn the_one_receiver_is_chosen_and_a_serving_sender_is_not_one() {
        let lan = [
            found("laptop", Role::Receiver, None, "laptop.local."),
            found("nas", Role::Sender, None, "nas.local."),
        ];
        assert_eq!(want(None, None).choose(&lan), Choice::One(lan[0].clone()));
        assert_eq!(want(Some("nas"), None).choose(&lan), Choice::None);
    }

    #[test]
    fn two_receivers_are_never_chosen_between_silently() {
        let lan = [
            found("laptop", Role::Receiver, None, "laptop.local."),
            found("desktop", Role::Receiver, None, "desktop.local."),
        ];
        assert!(matches!(want(None, None).choose(&lan), Choice::Several(v) if v.len() == 2));
        assert_eq!(
            want(Some("desktop"), None).choose(&lan),
            Choice::One(lan[1].clone())
        );
    }

    #[test]
    fn a_name_claimed_by_two_hosts_is_ambiguous() {
        let mut twice = found("laptop", Role::Receiver, None, "laptop.local.");
        twice.hosts.insert(("impostor.local.".into(), 9000));
        let lan = [twice];
        assert!(matches!(
            want(Some("laptop"), None).choose(&lan),
            Choice::Several(_)
        ));
    }

    #[test]
    fn a_code_picks_its_nameplate_only() {
        let lan = [
            found("a", Role::Receiver, Some(7), "a.local."),
            found("b", Role::Receiver, Some(8), "b.local."),
            found("c", Role::Receiver, None, "c.local."),
        ];
        let w = want(None, Some(7));
        assert_eq!(w.choose(&lan), Choice::One(lan[0].clone()));
        assert_eq!(w.settles_after(&lan), Some(SETTLE));
        assert_eq!(want(None, None).settles_after(&lan[2..]), Some(SETTLE_ANY));
        assert_eq!(want(None, None).settles_after(&lan), Some(SETTLE));
        assert_eq!(want(Some("z"), None).settles_after(&lan), None);
    }

    #[test]
    fn txt_round_trips_and_refuses_what_is_not_zc() {
        let t = Txt {
            role: Role::Receiver,
            mode: Mode::Code,
            plate: Some(7),
            proto: "1,2".into(),
        };
        let p = t.properties();
        let get = |k: &str| p.iter().find(|(key, _)| *key == k).map(|(_, v)| v.as_str());
        assert_eq!(Txt::parse(get), Some(t));
        assert_eq!(Txt::parse(|k| (k == "role").then_some("printer")), None);
        let no_words = p.iter().all(|(_, v)| !v.contains('-'));
        assert!(no_words, "only the nameplate of a code is announced");
    }

    #[test]
    fn names_from_the_lan_are_bounded_and_escaped() {
        let long = "é".repeat(100);
        assert!(bounded(&long).len() <= NAME_MOST);
        let hostile = "a\x1b]0;pwned\x07\u{9b}2J\u{202e}b";
        let s = shown(hostile);
        assert!(!s.chars().any(|c| c.is_control() || c == '\u{202e}'), "{s}");
        assert!(s.starts_with('a') && s.ends_with('b'));
    }
}
