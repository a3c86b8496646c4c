//! `zc recv --http`: uploads from curl (`PUT`) and from a browser (the
//! upload page, its script's `PUT`s or its form's `POST`), landing by
//! the receiver's rules through its sink.

mod land;
mod multipart;
mod page;
mod put;

use std::io::{self, Write};

use anyhow::{Context, Result};

use super::door::{self, not_found, small, strip_token, Door, Handled, Handler};
use super::request::{Reader, Request};
use super::response::{self, Head};
use super::target;
use crate::config::{Http, Output, Peer, RecvConfig};
use crate::conn::{Conn, Way};
use crate::progress::{ClientLine, Reporter, Urls};
use crate::recv::sink::Root;
use land::{refused, Lander, Refused};

struct Server {
    lander: Lander,
    token: Option<String>,
}

/// Takes uploads into the `-o` directory until Ctrl-C.
pub fn take_uploads(cfg: &RecvConfig, http: Http, reporter: &Reporter) -> Result<()> {
    let (Peer::Listen(addr), Output::Dir(dir)) = (&cfg.peer, &cfg.output) else {
        unreachable!("the config gives --http a listening address and a directory")
    };
    let root = Root::open(dir).with_context(|| format!("{}", dir.display()))?;
    let limits = (Way::Recv, cfg.max_conns);
    let door = Door::open(*addr, http, &cfg.common, limits, reporter)?;
    let base = door.base_url();
    let urls = Urls {
        curl: format!("curl -T FILE {base}"),
        wget: format!("wget -O- --method=PUT --body-file=FILE {base}FILE"),
        browse: base,
    };
    let server = Server {
        lander: Lander {
            root,
            force: cfg.force,
            max_size: cfg.max_size,
        },
        token: door.token.clone(),
    };
    door.serve(&urls, &server)
}

/// An answer: its head and body, and whether the connection ends.
struct Answer {
    head: Head,
    body: Vec<u8>,
    close: bool,
    received: u64,
    /// The request's body was read (a PUT's, a form's), and `close` says
    /// whether any of it was left.
    body_read: bool,
}

fn answer((head, body): (Head, Vec<u8>)) -> Answer {
    Answer {
        head,
        body,
        close: false,
        received: 0,
        body_read: false,
    }
}

fn refusal(r: &Refused) -> Answer {
    answer(response::text(r.status, &r.why))
}

impl Handler for Server {
    fn handle(
        &self,
        conn: &mut Conn,
        reader: &mut Reader,
        req: &Request,
        logged: &[u8],
        line: &mut ClientLine,
    ) -> Handled {
        let mut ans = self.respond(conn, reader, req, line);
        ans.close |= req.close;
        let mut handled = small(conn, &req.method, logged, ans.close, (ans.head, ans.body));
        handled.access.bytes = ans.received;
        handled
    }
}

impl Server {
    fn respond(
        &self,
        conn: &mut Conn,
        reader: &mut Reader,
        req: &Request,
        line: &mut ClientLine,
    ) -> Answer {
        let body = req.chunked || req.content_length.unwrap_or(0) > 0;
        let mut ans = match (req.method.as_str(), body) {
            // as `send --http` does: a body there would be the next request
            ("GET" | "HEAD", true) => refusal(&refused(400, "a body on a request that takes none")),
            _ => self.route(conn, reader, req, line),
        };
        // a body left unread ends the connection, whatever the status: read
        // as the next request it would be one the client never sent
        ans.close |= body && !ans.body_read;
        ans
    }

    fn route(
        &self,
        conn: &mut Conn,
        reader: &mut Reader,
        req: &Request,
        line: &mut ClientLine,
    ) -> Answer {
        let Some(names) = target::names(&req.target) else {
            let why = "not a plain path: '..', '%2f', NUL and the like are refused";
            return refusal(&refused(400, why));
        };
        let Some(rest) = strip_token(self.token.as_deref(), &names.names) else {
            return answer(not_found());
        };
        let rest: Vec<&[u8]> = rest.iter().map(Vec::as_slice).collect();
        match (req.method.as_str(), rest.is_empty()) {
            ("GET" | "HEAD", true) if !names.dir => {
                answer(door::redirect(&req.target, "the upload page is at its '/'"))
            }
            ("GET" | "HEAD", true) => answer(html(200, page::upload_page())),
            ("POST", true) => self.post(conn, reader, req, line),
            ("PUT", true) => refusal(&refused(
                400,
                "name the file in the URL: PUT /TOKEN/NAME (curl -T FILE URL/ does)",
            )),
            ("PUT", false) => self.put(conn, reader, req, &rest, line),
            ("HEAD" | "GET", false) => self.held(&rest),
            _ => {
                let (mut head, body) = response::text(405, "uploads: PUT a file, or POST the form");
                head.set("Allow", "GET, HEAD, PUT, POST");
                answer((head, body))
            }
        }
    }

    /// How much of an upload a kept part holds, for a client to resume
    /// with `Content-Range` (`curl -C N -T FILE URL`).
    fn held(&self, names: &[&[u8]]) -> Answer {
        let rel = match Lander::rel_of(names) {
            Ok(rel) => rel,
            Err(r) => return refusal(&r),
        };
        let held = self.lander.held(&rel);
        if held == 0 {
            return answer(not_found());
        }
        let (mut head, body) = response::text(204, "");
        head.set("Upload-Offset", held)
            .set("Range", format!("bytes=0-{}", held - 1));
        answer((head, body))
    }

    fn put(
        &self,
        conn: &mut Conn,
        reader: &mut Reader,
        req: &Request,
        names: &[&[u8]],
        line: &mut ClientLine,
    ) -> Answer {
        let plan = Lander::rel_of(names)
            .and_then(|rel| put::plan(&self.lander, req, rel))
            .and_then(|plan| self.lander.parents(&plan.rel).map(|_| plan));
        let plan = match plan {
            Ok(plan) => plan,
            Err(r) => return refusal(&r),
        };
        if let Err(e) = continue_if_asked(conn, req) {
            return refusal(&refused(400, e.to_string()));
        }
        let mut got = 0;
        line.show(plan.span.len);
        let mut body = line.meter(reader.body(conn, plan.span.len));
        let landed = put::land(&self.lander, &plan, &mut body, &mut got);
        let unread = body.inner.left() > 0;
        let mut ans = match landed {
            Ok(put::Landed::Published) => {
                let shown = plan.rel.display();
                let (mut head, body) = response::text(201, &format!("received '{shown}'"));
                head.set("Location", format!("./{}", encode_path(names)));
                answer((head, body))
            }
            Ok(put::Landed::Held(end)) => {
                let (mut head, body) = response::text(204, "");
                head.set("Upload-Offset", end)
                    .set("Range", format!("bytes=0-{}", end - 1));
                answer((head, body))
            }
            Err(r) => refusal(&r),
        };
        ans.received = got;
        ans.close |= unread;
        ans.body_read = true;
        ans
    }

    /// The form's POST: every file part through the same checks as a PUT.
    fn post(
        &self,
        conn: &mut Conn,
        reader: &mut Reader,
        req: &Request,
        line: &mut ClientLine,
    ) -> Answer {
        let Some(len) = req.content_length.filter(|_| !req.chunked) else {
            return refusal(&refused(411, "a form POST needs a Content-Length"));
        };
        let Some(boundary) = req.header("content-type").and_then(multipart::boundary) else {
            return refusal(&refused(415, "a POST takes multipart/form-data"));
        };
        if let Err(r) = self.lander.check_room(0, len) {
            return refusal(&r);
        }
        if continue_if_asked(conn, req).is_err() {
            return refusal(&refused(400, "the connection failed"));
        }
        line.show(len);
        let mut parts = multipart::Parts::new(line.meter(reader.body(conn, len)), &boundary);
        let mut lines = Vec::new();
        let mut status = 201;
        loop {
            let name = match parts.next_part() {
                Ok(Some(Some(name))) if !name.is_empty() => name,
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(e) => {
                    lines.push((b"(form)".to_vec(), Err(e.to_string())));
                    status = 400;
                    break;
                }
            };
            let outcome = self.form_file(&mut parts, &name);
            if let Err(r) = &outcome {
                status = if status == 201 { r.status } else { status };
            }
            // a broken form, or a full disk: the parts after it cannot land
            let failed = outcome.as_ref().is_err_and(|r| {
                r.status == 507 || (r.status == 400 && r.why.starts_with("the form"))
            });
            lines.push((name, outcome.map_err(|r| r.why)));
            if failed {
                break;
            }
        }
        let mut ans = answer(html(status, page::results(&lines)));
        ans.received = len;
        // a form that broke off, or bytes after its last boundary that the
        // Content-Length counts: what is left is no next request
        ans.close = parts.body().inner.left() > 0;
        ans.body_read = true;
        ans
    }

    /// One file of a form: checked, written to its part, published.
    fn form_file<R: io::Read>(
        &self,
        parts: &mut multipart::Parts<R>,
        name: &[u8],
    ) -> Result<u64, Refused> {
        let names: Vec<&[u8]> = name.split(|&b| b == b'/').collect();
        let checked = Lander::rel_of(&names).and_then(|rel| {
            self.lander.check_free(&rel)?;
            self.lander.parents(&rel)?;
            Ok(rel)
        });
        let rel = match checked {
            Ok(rel) => rel,
            Err(r) => {
                parts
                    .data(&mut |_| Ok(()))
                    .map_err(|e| refused(400, format!("the form: {e}")))?;
                return Err(r);
            }
        };
        let mut file = self.lander.open_part(&rel, 0)?;
        let mut size = 0u64;
        let most = self.lander.max_size;
        let written = parts.data(&mut |bytes| {
            size += bytes.len() as u64;
            if most.is_some_and(|m| size > m) {
                return Err(io::Error::other("over --max-size"));
            }
            file.write_all(bytes)
        });
        if let Err(e) = written {
            let _ = self.lander.root.discard_part(&rel);
            let status = match e.kind() {
                io::ErrorKind::Other => 413,
                io::ErrorKind::StorageFull => 507,
                _ => 400,
            };
            return Err(refused(
                status,
                format!("the form: '{}': {e}", rel.display()),
            ));
        }
        if let Err(r) = self.lander.publish(&rel, &file) {
            // a form has no resume: a part that cannot land is not kept
            let _ = self.lander.root.discard_part(&rel);
            return Err(r);
        }
        Ok(size)
    }
}

/// `Expect: 100-continue` is answered once the checks passed, so a
/// refused upload costs the client no body.
fn continue_if_asked(conn: &mut Conn, req: &Request) -> io::Result<()> {
    match req.header("expect") {
        Some(e) if e.eq_ignore_ascii_case("100-continue") => {
            conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
        }
        _ => Ok(()),
    }
}

fn html(status: u16, body: Vec<u8>) -> (Head, Vec<u8>) {
    let mut head = Head::new(status);
    head.set("Content-Type", "text/html; charset=utf-8")
        .set("Content-Length", body.len())
        .set("X-Content-Type-Options", "nosniff")
        .set(
            "Content-Security-Policy",
            "default-src 'self' 'unsafe-inline'",
        );
    (head, body)
}

fn encode_path(names: &[&[u8]]) -> String {
    let encoded: Vec<String> = names.iter().map(|n| target::encode(n)).collect();
    encoded.join("/")
}
