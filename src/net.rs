//! Addresses as users write them, and the sockets behind them.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};

use crate::{exit, interrupt};

/// The port a receiver listens on when none is given.
pub const DEFAULT_PORT: u16 = 9000;

/// Which address families to use (`-4`, `-6`, or both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    #[default]
    Any,
    V4,
    V6,
}

impl Family {
    fn allows(self, addr: &SocketAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => addr.is_ipv4(),
            Family::V6 => addr.is_ipv6(),
        }
    }
}

/// Splits `host:port` or `[v6]:port` into its host and port; exit 2 when it is
/// neither.
pub fn split_host_port(text: &str) -> Result<(String, u16)> {
    let bad = || {
        exit::usage(format!(
            "'{text}' is not HOST:PORT (use [V6]:PORT for IPv6)"
        ))
    };
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, port) = rest.split_once("]:").ok_or_else(bad)?;
        (host, port)
    } else {
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        if host.contains(':') {
            return Err(bad());
        }
        (host, port)
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// Parses a listen address: `PORT`, `HOST:PORT` or `[V6]:PORT`. A missing host
/// means every interface (`[::]` dual-stack, or `0.0.0.0` with `-4`).
pub fn parse_listen(text: &str, family: Family) -> Result<SocketAddr> {
    let any = |port| match family {
        Family::V4 => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        _ => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
    };
    if let Ok(port) = text.parse::<u16>() {
        return Ok(any(port));
    }
    let (host, port) = split_host_port(text)?;
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| exit::usage(format!("{text}: {e}")))?
        .find(|a| family.allows(a))
        .ok_or_else(|| exit::usage(format!("{text}: no address of the requested family")))?;
    Ok(addr)
}

/// The default listen address for a family.
pub fn default_listen(family: Family) -> SocketAddr {
    parse_listen(&DEFAULT_PORT.to_string(), family).expect("a bare port always parses")
}

/// Binds a listener; `[::]` accepts IPv4 too unless `-6` was given.
pub fn listen(addr: SocketAddr, family: Family) -> Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .with_context(|| format!("{addr}: cannot create a socket"))?;
    if addr.is_ipv6() {
        // Dual-stack unless the user asked for IPv6 only; errors mean the
        // system decides (some have no dual-stack at all).
        let _ = socket.set_only_v6(family == Family::V6);
    }
    #[cfg(unix)]
    socket.set_reuse_address(true).ok();
    socket
        .bind(&addr.into())
        .with_context(|| format!("cannot listen on {addr}"))?;
    socket
        .listen(128)
        .with_context(|| format!("cannot listen on {addr}"))?;
    Ok(socket.into())
}

/// Resolves `HOST:PORT` and connects to the first address that answers within
/// `timeout`.
pub fn connect(target: &str, family: Family, timeout: Duration) -> Result<TcpStream> {
    let (host, port) = split_host_port(target)?;
    let addrs: Vec<SocketAddr> = (host.as_str(), port)
        .to_socket_addrs()
        .with_context(|| format!("{target}: cannot resolve the host name"))?
        .filter(|a| family.allows(a))
        .collect();
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        "no address of the requested family",
    );
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                last = io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no answer within {}s (--connect-timeout)",
                        timeout.as_secs_f64()
                    ),
                );
            }
            Err(e) => last = e,
        }
    }
    Err(anyhow::Error::new(last).context(target.to_string()))
}

/// RFC 8305's Connection Attempt Delay: the next address is tried when the
/// one before has not connected within this.
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Connects to the first of `addrs` that answers, as happy eyeballs do
/// (RFC 8305): IPv6 and IPv4 interleaved, a new attempt every
/// [`ATTEMPT_DELAY`] while the earlier ones go on, the first to complete
/// wins. `label` names the peer in errors.
pub fn connect_any(
    addrs: &[SocketAddr],
    family: Family,
    timeout: Duration,
    label: &str,
) -> Result<TcpStream> {
    let (v6, v4): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs
        .iter()
        .filter(|a| family.allows(a))
        .partition(|a| a.is_ipv6());
    let mut order = Vec::with_capacity(v6.len() + v4.len());
    for i in 0..v6.len().max(v4.len()) {
        order.extend(v6.get(i));
        order.extend(v4.get(i));
    }
    if order.is_empty() {
        return Err(anyhow::anyhow!(
            "{label}: no address of the requested family"
        ));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let attempt = |addr: SocketAddr| {
        let tx = tx.clone();
        // a loser that connects after the winner is closed by its thread
        std::thread::spawn(move || {
            let _ = tx.send(TcpStream::connect_timeout(&addr, timeout).map_err(|e| (addr, e)));
        });
    };
    let mut next = order.iter().copied();
    let (mut running, mut failed) = (0, Vec::new());
    loop {
        // a new attempt when the last has had its delay, or has failed
        if let Some(addr) = next.next() {
            attempt(addr);
            running += 1;
        } else if running == 0 {
            return Err(anyhow::anyhow!(
                "{label}: cannot connect ({})",
                failed.join("; ")
            ));
        }
        let wait = Instant::now() + ATTEMPT_DELAY;
        loop {
            if interrupt::requested() {
                return Err(exit::interrupted("interrupted while connecting"));
            }
            let left = wait.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(crate::conn::TICK)) {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err((addr, e))) => {
                    failed.push(format!("{addr}: {e}"));
                    running -= 1;
                    break;
                }
                Err(_) if Instant::now() >= wait => break,
                Err(_) => {}
            }
        }
    }
}

/// Waits for a connection (until `deadline`, if any), noticing Ctrl-C
/// between ticks.
pub fn accept(listener: &TcpListener, deadline: Option<Instant>) -> Result<Option<TcpStream>> {
    loop {
        if interrupt::requested() {
            return Err(exit::interrupted(
                "interrupted while waiting for a connection",
            ));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        if !ready(listener)? {
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                stream
                    .set_nonblocking(false)
                    .context("accepting a connection")?;
                return Ok(Some(stream));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(anyhow::Error::new(e).context("accepting a connection")),
        }
    }
}

#[cfg(unix)]
fn ready(listener: &TcpListener) -> Result<bool> {
    use std::os::fd::AsFd;
    crate::sys::wait_readable(listener.as_fd(), crate::conn::TICK)
        .context("waiting for a connection")
}

#[cfg(not(unix))]
fn ready(listener: &TcpListener) -> Result<bool> {
    listener.set_nonblocking(true).context("listening")?;
    std::thread::sleep(std::time::Duration::from_millis(20).min(crate::conn::TICK));
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("a.b:9").unwrap(), ("a.b".into(), 9));
        assert_eq!(split_host_port("[::1]:9000").unwrap(), ("::1".into(), 9000));
        assert!(split_host_port("::1:9000").is_err());
        assert!(split_host_port("host").is_err());
        assert!(split_host_port("host:99999").is_err());
        assert!(split_host_port(":80").is_err());
    }

    #[test]
    fn listen_forms() {
        assert_eq!(
            parse_listen("0", Family::Any).unwrap().to_string(),
            "[::]:0"
        );
        assert_eq!(
            parse_listen("7", Family::V4).unwrap().to_string(),
            "0.0.0.0:7"
        );
        assert_eq!(
            parse_listen("127.0.0.1:0", Family::Any)
                .unwrap()
                .to_string(),
            "127.0.0.1:0"
        );
        assert_eq!(
            parse_listen("[::1]:5", Family::Any).unwrap().to_string(),
            "[::1]:5"
        );
        assert!(parse_listen("127.0.0.1:0", Family::V6).is_err());
    }
}
