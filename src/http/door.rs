//! What both `--http` sides share: the listener and its token, and one
//! connection's requests (kept alive, each head due within [`HEAD_WITHIN`],
//! an access line each). What answers a request is a [`Handler`]: the
//! sources (`send --http`) or the upload directory (`recv --http`).

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::request::{Next, Reader, Request};
use super::response::{self, Head};
use crate::admission::Unproven;
use crate::config::{Common, Http};
use crate::conn::{Conn, Way};
use crate::exit;
use crate::net;
use crate::progress::{Access, ClientLine, Reporter, Urls};

/// A request head must arrive whole within this long (a client that
/// trickles it, slowloris, is cut), and a kept-alive connection may wait
/// this long for its next request.
const HEAD_WITHIN: Duration = Duration::from_secs(10);
/// After an answer that ends a connection whose client may still be
/// sending (a refused body, a broken head), this much is read and dropped
/// so that the client sees the answer rather than a reset.
const DRAIN_MOST: u64 = 4 << 20;

/// Answers the requests of one `--http` side.
pub(super) trait Handler: Sync {
    /// Answers `req` on `conn` (its body, if any, read through `reader`);
    /// `logged` is its path as the access line shows it, and `line` the
    /// client's bar, shown and moved along with the body that goes out or
    /// comes in. A request that asks to close (`Connection: close`,
    /// HTTP/1.0) is answered with a close.
    fn handle(
        &self,
        conn: &mut Conn,
        reader: &mut Reader,
        req: &Request,
        logged: &[u8],
        line: &mut ClientLine,
    ) -> Handled;
}

/// A request answered: its access line (client and time are the loop's),
/// whether the answer went out, and whether the connection ends.
pub(super) struct Handled {
    pub access: Access,
    pub written: io::Result<()>,
    pub close: bool,
}

/// A listening `--http` side: its socket, its token, and how its
/// connections are limited.
pub(super) struct Door<'a> {
    listener: TcpListener,
    pub local: SocketAddr,
    /// The first path name of every URL, unless `--open`.
    pub token: Option<String>,
    common: &'a Common,
    /// The direction `--limit-rate` paces: the body's.
    way: Way,
    max_conns: usize,
    reporter: &'a Reporter,
}

impl<'a> Door<'a> {
    pub fn open(
        addr: SocketAddr,
        http: Http,
        common: &'a Common,
        (way, max_conns): (Way, usize),
        reporter: &'a Reporter,
    ) -> Result<Self> {
        let token = match http.open {
            true => None,
            false => Some(fresh_token().context("the operating system's random numbers")?),
        };
        let listener = net::listen(addr, common.family)?;
        let local = listener.local_addr().context("the listening socket")?;
        Ok(Door {
            listener,
            local,
            token,
            common,
            way,
            max_conns,
            reporter,
        })
    }

    /// `http://HOST:PORT/TOKEN/`.
    pub fn base_url(&self) -> String {
        base_url(self.local, self.token.as_deref())
    }

    /// Says `urls`, then answers requests with `handler` until Ctrl-C,
    /// through the machinery of `-k` (`--max-conns`, the handshake
    /// admission, one thread a connection).
    pub fn serve(&self, urls: &Urls, handler: &impl Handler) -> Result<()> {
        self.reporter.http_listening(self.local, urls);
        let reporter = self.reporter;
        crate::serve::serve(
            &self.listener,
            self.max_conns,
            reporter,
            |stream, unproven| {
                let client = stream
                    .peer_addr()
                    .map_or_else(|_| "a client".to_string(), |a| a.to_string());
                if let Err(e) = self.connection(handler, stream, unproven, &client) {
                    reporter.warn(&format!("{client}: {}", exit::message_of(&e)));
                }
            },
        )
    }

    /// One client's requests, until it closes, an answer says close, or it
    /// is too slow with a head.
    fn connection(
        &self,
        handler: &impl Handler,
        stream: TcpStream,
        unproven: Unproven,
        client: &str,
    ) -> Result<()> {
        let mut conn = Conn::new(stream, self.common.idle_timeout).context("a new connection")?;
        conn.limit(self.way, self.common.limit_rate);
        conn.handshake(HEAD_WITHIN, Some(unproven));
        let mut reader = Reader::default();
        loop {
            let next = reader.next(&mut conn).context("reading a request")?;
            let began = Instant::now();
            let (handled, may_send_more) = match next {
                Next::Closed => return Ok(()),
                Next::Bad(refusal) => {
                    let answer = response::text(refusal.status, refusal.why);
                    (small(&mut conn, "?", b"?", true, answer), true)
                }
                Next::Request(req) => {
                    conn.trusted();
                    let logged = logged_path(self.token.as_deref(), &req.target);
                    // dropped, so cleared, before the access line is said
                    let mut line = self.reporter.http_client(client, &req.method, &logged);
                    let handled = handler.handle(&mut conn, &mut reader, &req, &logged, &mut line);
                    let body = req.chunked || req.content_length.unwrap_or(0) > 0;
                    (handled, body)
                }
            };
            let Handled {
                mut access,
                written,
                close,
            } = handled;
            access.client = client.to_string();
            access.seconds = began.elapsed().as_secs_f64();
            self.reporter.http_access(&access);
            written.context("sending a response")?;
            if close {
                if may_send_more {
                    drain(&mut conn, &mut reader);
                }
                return Ok(());
            }
            conn.handshake(HEAD_WITHIN, None);
        }
    }
}

/// A small answer (a head and a body in memory); a HEAD's body is left
/// out.
pub(super) fn small(
    conn: &mut Conn,
    method: &str,
    logged: &[u8],
    close: bool,
    (head, body): (Head, Vec<u8>),
) -> Handled {
    let mut bytes = head.bytes(close);
    let mut access = access(method, logged, head.status);
    if method != "HEAD" {
        bytes.extend_from_slice(&body);
        access.bytes = body.len() as u64;
    }
    Handled {
        access,
        written: conn.write_all(&bytes),
        close,
    }
}

/// Reads and drops what the client still sends, up to [`DRAIN_MOST`], so
/// that closing does not reset the answer away.
fn drain(conn: &mut Conn, reader: &mut Reader) {
    conn.shutdown_write();
    conn.handshake(Duration::from_secs(2), None);
    let _ = io::copy(&mut reader.body(conn, DRAIN_MOST), &mut io::sink());
}

/// The names after the token (all of them with `--open`), or `None` when
/// the first is not the token.
pub(super) fn strip_token<'n>(token: Option<&str>, names: &'n [Vec<u8>]) -> Option<&'n [Vec<u8>]> {
    let Some(token) = token else {
        return Some(names);
    };
    let (first, rest) = names.split_first()?;
    same(first, token.as_bytes()).then_some(rest)
}

/// 128 bits from the operating system, in hex.
fn fresh_token() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(io::Error::other)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Equal, in a time that depends on the lengths only: a wrong token must
/// not tell how much of it was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// `http://HOST:PORT/TOKEN/`: the host one a client on the LAN can reach.
fn base_url(local: SocketAddr, token: Option<&str>) -> String {
    let ip = match local.ip() {
        ip if ip.is_unspecified() => crate::lan::reachable_ip(),
        ip => Some(ip),
    };
    let host = match ip {
        Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
        Some(ip) => ip.to_string(),
        None => crate::sys::hostname().unwrap_or_else(|| "localhost".to_string()),
    };
    let mut base = format!("http://{host}:{}/", local.port());
    if let Some(token) = token {
        base.push_str(token);
        base.push('/');
    }
    base
}

/// The path for the access line: the token, when it is the first name,
/// replaced by `TOKEN` (logs are read by more people than URLs).
fn logged_path(token: Option<&str>, target: &str) -> Vec<u8> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    match token {
        Some(token) => match path.strip_prefix('/').and_then(|p| p.strip_prefix(token)) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                format!("/TOKEN{rest}").into_bytes()
            }
            _ => path.as_bytes().to_vec(),
        },
        None => path.as_bytes().to_vec(),
    }
}

pub(super) fn not_found() -> (Head, Vec<u8>) {
    response::text(404, "not found")
}

/// A path asked for without its `/` (a directory, the upload page): the
/// links in what is there are relative to it.
pub(super) fn redirect(target: &str, why: &str) -> (Head, Vec<u8>) {
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let (mut head, body) = response::text(301, why);
    // httparse lets no control character into a path
    head.set("Location", format!("{path}/"));
    (head, body)
}

pub(super) fn access(method: &str, path: &[u8], status: u16) -> Access {
    Access {
        client: String::new(),
        method: method.to_string(),
        path: path.to_vec(),
        status,
        range: None,
        bytes: 0,
        seconds: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_token_compare() {
        assert!(same(b"abcd", b"abcd"));
        assert!(!same(b"abcd", b"abce"));
        assert!(!same(b"abc", b"abcd"));
        let token = fresh_token().unwrap();
        assert_eq!(token.len(), 32);
        assert_ne!(token, fresh_token().unwrap());
    }
}
