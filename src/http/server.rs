//! `zc send --http`: the listener, the token, one connection's requests
//! (kept alive), and the routing of each to a file or a refusal.

use std::fs::File;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::request::{Next, Reader, Refusal, Request};
use super::response::{self, Head};
use super::site::{Found, Site, Top};
use super::target;
use crate::admission::Unproven;
use crate::config::{Http, Peer, SendConfig};
use crate::conn::{Conn, Way};
use crate::exit;
use crate::net;
use crate::progress::{Access, Reporter, Urls};
use crate::send::digests::Digests;

/// A request head must arrive whole within this long (a client that
/// trickles it, slowloris, is cut), and a kept-alive connection may wait
/// this long for its next request.
const HEAD_WITHIN: Duration = Duration::from_secs(10);

/// What every connection of one server shares.
struct Server<'a> {
    cfg: &'a SendConfig,
    site: Site,
    /// The first path name of every URL, unless `--open`.
    token: Option<String>,
    digests: Arc<Digests>,
    reporter: &'a Reporter,
}

/// Serves the sources over HTTP until Ctrl-C, through the machinery of
/// `-k` (`--max-conns`, the handshake admission, one thread a connection).
pub fn serve(cfg: &SendConfig, http: Http, reporter: &Reporter) -> Result<()> {
    let Peer::Listen(addr) = cfg.peer else {
        unreachable!("the config gives --http a listening address")
    };
    let site = Site::new(cfg)?;
    let token = match http.open {
        true => None,
        false => Some(fresh_token().context("the operating system's random numbers")?),
    };
    let listener = net::listen(addr, cfg.common.family)?;
    let local = listener.local_addr().context("the listening socket")?;
    let server = Server {
        cfg,
        site,
        token,
        digests: Arc::new(Digests::default()),
        reporter,
    };
    reporter.http_listening(local, &server.urls(local));
    crate::serve::serve(&listener, cfg.max_conns, reporter, |stream, unproven| {
        let client = stream
            .peer_addr()
            .map_or_else(|_| "a client".to_string(), |a| a.to_string());
        if let Err(e) = server.connection(stream, unproven, &client) {
            reporter.warn(&format!("{client}: {}", exit::message_of(&e)));
        }
    })
}

/// 128 bits from the operating system, in hex.
pub(super) fn fresh_token() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(io::Error::other)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Equal, in a time that depends on the lengths only: a wrong token must
/// not tell how much of it was right.
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl Server<'_> {
    fn urls(&self, local: SocketAddr) -> Urls {
        let base = base_url(local, self.token.as_deref());
        match self.site.single_file() {
            Some(top) => {
                let url = format!("{base}{}", target::encode(&top.name));
                Urls {
                    curl: format!("curl -fLO {url}"),
                    wget: format!("wget -c {url}"),
                    browse: url,
                }
            }
            None => Urls {
                curl: format!("curl -fLO {base}SHA256SUMS"),
                wget: format!(
                    "wget -r -np -nH --cut-dirs={} -R 'index.html*' {base}",
                    usize::from(self.token.is_some())
                ),
                browse: base,
            },
        }
    }

    /// One client's requests, until it closes, a response says close, or
    /// it is too slow with a head.
    fn connection(&self, stream: TcpStream, unproven: Unproven, client: &str) -> Result<()> {
        let mut conn =
            Conn::new(stream, self.cfg.common.idle_timeout).context("a new connection")?;
        conn.limit(Way::Send, self.cfg.common.limit_rate);
        conn.handshake(HEAD_WITHIN, Some(unproven));
        let mut reader = Reader::default();
        loop {
            let next = reader.next(&mut conn).context("reading a request")?;
            let began = Instant::now();
            let (access, close) = match next {
                Next::Closed => return Ok(()),
                Next::Bad(refusal) => (self.refuse(&mut conn, refusal, "?", b"?"), true),
                Next::Request(req) => {
                    conn.trusted();
                    self.respond(&mut conn, &req)
                }
            };
            let (mut access, outcome) = access;
            access.client = client.to_string();
            access.seconds = began.elapsed().as_secs_f64();
            self.reporter.http_access(&access);
            outcome.context("sending a response")?;
            if close {
                return Ok(());
            }
            conn.handshake(HEAD_WITHIN, None);
        }
    }

    /// Answers a refused request, which ends its connection.
    fn refuse(
        &self,
        conn: &mut Conn,
        refusal: Refusal,
        method: &str,
        path: &[u8],
    ) -> (Access, io::Result<()>) {
        let (head, body) = response::text(refusal.status, refusal.why);
        let mut bytes = head.bytes(true);
        if method != "HEAD" {
            bytes.extend_from_slice(&body);
        }
        let outcome = conn.write_all(&bytes);
        let access = access(method, path, refusal.status);
        (access, outcome)
    }

    /// Answers one parsed request; true when the connection ends after it.
    fn respond(&self, conn: &mut Conn, req: &Request) -> ((Access, io::Result<()>), bool) {
        let logged = self.logged_path(&req.target);
        let refused = |status, why| Refusal { status, why };
        if req.chunked || req.content_length.unwrap_or(0) > 0 {
            let refusal = refused(400, "a body on a request that takes none");
            return (self.refuse(conn, refusal, &req.method, &logged), true);
        }
        if req.method != "GET" && req.method != "HEAD" {
            let refusal = refused(405, "this server only serves downloads: GET and HEAD");
            return (self.refuse(conn, refusal, &req.method, &logged), true);
        }
        let Some(names) = target::names(&req.target) else {
            let refusal = refused(
                400,
                "not a plain path: '..', '%2f', NUL and the like are refused",
            );
            return (self.refuse(conn, refusal, &req.method, &logged), true);
        };
        let Some(rest) = self.strip_token(&names.names) else {
            return (self.small(conn, req, &logged, not_found()), req.close);
        };
        match self.site.find(rest) {
            Some(Found::File(file, name)) => {
                return (self.file(conn, req, &file, &name, &logged), req.close)
            }
            Some(Found::Tar(top)) => return (self.tar(conn, req, &top, &logged), req.close),
            _ => {}
        }
        let page = self.page(rest, names.dir, &req.target);
        (self.small(conn, req, &logged, page), req.close)
    }

    /// Anything but a file: a listing, SHA256SUMS, a redirect to a
    /// directory's `/`, or 404.
    fn page(&self, rest: &[Vec<u8>], dir: bool, target: &str) -> (Head, Vec<u8>) {
        let sums = rest.len() == 1
            && rest[0] == b"SHA256SUMS"
            && !self.site.tops.iter().any(|t| t.name == b"SHA256SUMS");
        let made = match self.site.find(rest) {
            _ if sums => super::index::sums(&self.site, &self.digests),
            Some(Found::Root | Found::Dir(_)) if !dir => return redirect(target),
            Some(Found::Root) => super::index::page(&self.site, None, b"zc"),
            Some(Found::Dir(path)) => {
                let title = rest.last().map_or(&b"zc"[..], Vec::as_slice);
                super::index::page(&self.site, Some(&path), title)
            }
            Some(Found::File(..) | Found::Tar(_)) | None => return not_found(),
        };
        made.unwrap_or_else(|e| response::text(500, &format!("cannot list: {e}")))
    }

    fn strip_token<'n>(&self, names: &'n [Vec<u8>]) -> Option<&'n [Vec<u8>]> {
        let Some(token) = &self.token else {
            return Some(names);
        };
        let (first, rest) = names.split_first()?;
        same(first, token.as_bytes()).then_some(rest)
    }

    fn logged_path(&self, target: &str) -> Vec<u8> {
        logged_path(self.token.as_deref(), target)
    }

    /// A small response (a head and a body in memory), kept alive.
    fn small(
        &self,
        conn: &mut Conn,
        req: &Request,
        logged: &[u8],
        (head, body): (Head, Vec<u8>),
    ) -> (Access, io::Result<()>) {
        let mut bytes = head.bytes(req.close);
        let mut access = access(&req.method, logged, head.status);
        if req.method != "HEAD" {
            bytes.extend_from_slice(&body);
            access.bytes = body.len() as u64;
        }
        (access, conn.write_all(&bytes))
    }

    fn file(
        &self,
        conn: &mut Conn,
        req: &Request,
        file: &File,
        name: &[u8],
        logged: &[u8],
    ) -> (Access, io::Result<()>) {
        let mut access = access(&req.method, logged, 500);
        let reply = match super::file::reply(req, file, name, self.digests.known(file)) {
            Ok(reply) => reply,
            Err(e) => return (access, Err(e)),
        };
        access.status = reply.head.status;
        access.range = reply.range;
        let head = reply.head.bytes(req.close);
        let Some((start, end)) = reply.body else {
            return (access, conn.write_all(&head));
        };
        let mut sent = 0;
        let outcome = crate::copy::send_file(
            file,
            conn,
            &head,
            start,
            end - start,
            self.cfg.sendfile,
            &mut |n| sent = n,
        );
        access.bytes = sent;
        (access, outcome.map(|_| ()))
    }
}

impl Server<'_> {
    /// A directory source whole as a tar stream; a stream cut short is an
    /// error, which ends the connection.
    fn tar(
        &self,
        conn: &mut Conn,
        req: &Request,
        top: &Top,
        logged: &[u8],
    ) -> (Access, io::Result<()>) {
        let plan = match super::tar::plan(top) {
            Ok(plan) => plan,
            Err(why) => {
                let why = format!("cannot read all of the directory: {why}");
                return self.small(conn, req, logged, response::text(500, &why));
            }
        };
        let head = super::tar::head(top, &plan).bytes(req.close);
        let mut access = access(&req.method, logged, 200);
        if req.method == "HEAD" {
            return (access, conn.write_all(&head));
        }
        let zero_copy = self.cfg.sendfile;
        let outcome = super::tar::send(&plan, conn, head, zero_copy, &mut access.bytes);
        (access, outcome)
    }
}

/// `http://HOST:PORT/TOKEN/`: the host one a client on the LAN can reach.
pub(super) fn base_url(local: SocketAddr, token: Option<&str>) -> String {
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
pub(super) fn logged_path(token: Option<&str>, target: &str) -> Vec<u8> {
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

/// A directory asked for without its `/`: its links are relative to it.
fn redirect(target: &str) -> (Head, Vec<u8>) {
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let (mut head, body) = response::text(301, "a directory: see its '/'");
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
