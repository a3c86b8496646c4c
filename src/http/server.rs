//! `zc send --http`: each request routed to a file, a page (an index,
//! SHA256SUMS) or a refusal; the connections are [`super::door`]'s.

use std::fs::File;
use std::io::Write;
use std::sync::Arc;

use anyhow::Result;

use super::door::{self, access, not_found, small, strip_token, Door, Handled, Handler};
use super::request::{Reader, Request};
use super::response::{self, Head};
use super::site::{Found, Site, Top};
use super::target;
use crate::config::{Http, Peer, SendConfig};
use crate::conn::{Conn, Way};
use crate::progress::{ClientLine, Reporter, Urls};
use crate::send::digests::Digests;

/// What every connection of one server shares.
struct Server<'a> {
    cfg: &'a SendConfig,
    site: Site,
    /// The first path name of every URL, unless `--open`.
    token: Option<String>,
    digests: Arc<Digests>,
}

/// Serves the sources over HTTP until Ctrl-C.
pub fn serve(cfg: &SendConfig, http: Http, reporter: &Reporter) -> Result<()> {
    let Peer::Listen(addr) = cfg.peer else {
        unreachable!("the config gives --http a listening address")
    };
    let site = Site::new(cfg)?;
    let limits = (Way::Send, cfg.max_conns);
    let door = Door::open(addr, http, &cfg.common, limits, reporter)?;
    let server = Server {
        cfg,
        site,
        token: door.token.clone(),
        digests: Arc::new(Digests::default()),
    };
    door.serve(&server.urls(&door), &server)
}

impl Handler for Server<'_> {
    fn handle(
        &self,
        conn: &mut Conn,
        _: &mut Reader,
        req: &Request,
        logged: &[u8],
        line: &mut ClientLine,
    ) -> Handled {
        let refuse = |conn: &mut Conn, status, why| {
            small(conn, &req.method, logged, true, response::text(status, why))
        };
        if req.chunked || req.content_length.unwrap_or(0) > 0 {
            return refuse(conn, 400, "a body on a request that takes none");
        }
        if req.method != "GET" && req.method != "HEAD" {
            return refuse(conn, 405, "this server only serves downloads: GET and HEAD");
        }
        let Some(names) = target::names(&req.target) else {
            let why = "not a plain path: '..', '%2f', NUL and the like are refused";
            return refuse(conn, 400, why);
        };
        let Some(rest) = strip_token(self.token.as_deref(), &names.names) else {
            return small(conn, &req.method, logged, req.close, not_found());
        };
        match self.site.find(rest) {
            Some(Found::File(file, name)) => {
                return self.file(conn, req, (&file, &name), logged, line)
            }
            Some(Found::Tar(top)) => return self.tar(conn, req, &top, logged, line),
            _ => {}
        }
        let page = self.page(rest, names.dir, &req.target);
        small(conn, &req.method, logged, req.close, page)
    }
}

impl Server<'_> {
    /// One directory comes whole as a tar stream; several sources have no
    /// one archive, so curl gets their SHA256SUMS (and wget mirrors them).
    fn curl_for_many(&self, base: &str) -> String {
        match self.site.tops.as_slice() {
            [top] if top.path.is_dir() => {
                let tar = [top.name.as_slice(), b".tar"].concat();
                format!("curl -fsS {base}{} | tar xf -", target::encode(&tar))
            }
            _ => format!("curl -fLO {base}SHA256SUMS"),
        }
    }

    fn urls(&self, door: &Door) -> Urls {
        let base = door.base_url();
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
                curl: self.curl_for_many(&base),
                wget: format!(
                    "wget -r -np -nH --cut-dirs={} -R 'index.html*' {base}",
                    usize::from(self.token.is_some())
                ),
                browse: base,
            },
        }
    }

    /// Anything but a file: a listing, SHA256SUMS, a redirect to a
    /// directory's `/`, or 404.
    fn page(&self, rest: &[Vec<u8>], dir: bool, target: &str) -> (Head, Vec<u8>) {
        let sums = rest.len() == 1
            && rest[0] == b"SHA256SUMS"
            && !self.site.tops.iter().any(|t| t.name == b"SHA256SUMS");
        let made = match self.site.find(rest) {
            _ if sums => super::index::sums(&self.site, &self.digests),
            Some(Found::Root | Found::Dir(_)) if !dir => {
                return door::redirect(target, "a directory: see its '/'")
            }
            Some(Found::Root) => super::index::page(&self.site, None, b"zc"),
            Some(Found::Dir(path)) => {
                let title = rest.last().map_or(&b"zc"[..], Vec::as_slice);
                super::index::page(&self.site, Some(&path), title)
            }
            Some(Found::File(..) | Found::Tar(_)) | None => return not_found(),
        };
        made.unwrap_or_else(|e| response::text(500, &format!("cannot list: {e}")))
    }

    fn file(
        &self,
        conn: &mut Conn,
        req: &Request,
        (file, name): (&File, &[u8]),
        logged: &[u8],
        line: &mut ClientLine,
    ) -> Handled {
        let mut access = access(&req.method, logged, 500);
        let close = req.close;
        let reply = match super::file::reply(req, file, name, self.digests.known(file)) {
            Ok(reply) => reply,
            Err(e) => {
                return Handled {
                    access,
                    written: Err(e),
                    close,
                }
            }
        };
        access.status = reply.head.status;
        access.range = reply.range;
        let head = reply.head.bytes(req.close);
        let Some((start, end)) = reply.body else {
            let written = conn.write_all(&head);
            return Handled {
                access,
                written,
                close,
            };
        };
        line.show(end - start);
        let mut sent = 0;
        let outcome = crate::copy::send_file(
            file,
            conn,
            &head,
            start,
            end - start,
            self.cfg.sendfile,
            &mut |n| {
                sent = n;
                line.update(n);
            },
        );
        access.bytes = sent;
        let written = outcome.map(|_| ());
        Handled {
            access,
            written,
            close,
        }
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
        line: &mut ClientLine,
    ) -> Handled {
        let close = req.close;
        let plan = match super::tar::plan(top) {
            Ok(plan) => plan,
            Err(why) => {
                let why = format!("cannot read all of the directory: {why}");
                return small(conn, &req.method, logged, close, response::text(500, &why));
            }
        };
        let head = super::tar::head(top, &plan).bytes(close);
        let mut access = access(&req.method, logged, 200);
        let written = if req.method == "HEAD" {
            conn.write_all(&head)
        } else {
            line.show(plan.length);
            let zero_copy = self.cfg.sendfile;
            let bytes = &mut access.bytes;
            super::tar::send(&plan, conn, head, zero_copy, bytes, &mut |n| line.update(n))
        };
        Handled {
            access,
            written,
            close,
        }
    }
}
