//! One request head, read within a size bound (and, through the
//! connection's handshake deadline, a time bound), parsed by `httparse`,
//! with the framing a proxy in front could read differently refused.

use std::io::{self, Read};

/// The request line and all headers together may take this many bytes.
pub const HEAD_MOST: usize = 16 << 10;
/// And at most this many header lines.
pub const HEADERS_MOST: usize = 64;

/// A request head that parsed and passed the framing checks.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target as sent (origin form: starts with `/`).
    pub target: String,
    /// `HTTP/1.x`'s x.
    pub minor: u8,
    /// Names in lower case, in the order sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The one Content-Length, if sent.
    pub content_length: Option<u64>,
    /// Whether Transfer-Encoding was sent (alone: with Content-Length
    /// too the request is refused).
    pub chunked: bool,
    /// The client asked to close after this response (or is HTTP/1.0).
    pub close: bool,
}

impl Request {
    /// The value of header `name` (lower case), when sent once as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.headers.iter().filter(|(n, _)| n == name);
        let (_, value) = values.next()?;
        match values.next() {
            Some(_) => None,
            None => std::str::from_utf8(value).ok().map(str::trim),
        }
    }

    fn count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n == name).count()
    }
}

/// A request to answer with this status, and then close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub why: &'static str,
}

const fn refuse(status: u16, why: &'static str) -> Refusal {
    Refusal { status, why }
}

/// What came next on a connection.
#[derive(Debug)]
pub enum Next {
    Request(Request),
    /// The client closed between requests (or before a complete head).
    Closed,
    Bad(Refusal),
}

/// Reads request heads off one connection, keeping what follows a head
/// (the next pipelined request, or a body) for the next call.
#[derive(Default)]
pub struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    /// The next request head. A head past [`HEAD_MOST`] is refused
    /// without reading on; the caller bounds the time.
    pub fn next(&mut self, conn: &mut impl Read) -> io::Result<Next> {
        let mut chunk = [0u8; 4096];
        loop {
            if !self.buf.is_empty() {
                match parse(&self.buf) {
                    Parsed::Done(request, used) => {
                        self.buf.drain(..used);
                        return Ok(request.map_or_else(Next::Bad, Next::Request));
                    }
                    Parsed::Bad(refusal) => return Ok(Next::Bad(refusal)),
                    Parsed::Partial if self.buf.len() >= HEAD_MOST => {
                        return Ok(Next::Bad(too_long(&self.buf)))
                    }
                    Parsed::Partial => {}
                }
            }
            let room = (HEAD_MOST - self.buf.len()).min(chunk.len());
            let n = conn.read(&mut chunk[..room])?;
            if n == 0 {
                return Ok(Next::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Bytes read past the last head: the start of a body.
    pub fn buffered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// The next `len` bytes, the body of the head just read: what was read
    /// past the head first, then `conn`; what follows stays for the next
    /// head (a pipelined request).
    pub fn body<'a, R: Read>(&'a mut self, conn: &'a mut R, len: u64) -> Body<'a, R> {
        Body {
            reader: self,
            conn,
            left: len,
        }
    }
}

/// A body of a known length; reading past it gives end of file, and a
/// connection that ends before it an `UnexpectedEof`.
pub struct Body<'a, R> {
    reader: &'a mut Reader,
    conn: &'a mut R,
    left: u64,
}

impl<R> Body<'_, R> {
    /// Bytes of the body not read yet.
    pub fn left(&self) -> u64 {
        self.left
    }
}

impl<R: Read> Read for Body<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let room = out
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if room == 0 {
            return Ok(0);
        }
        let buf = &mut self.reader.buf;
        let n = match buf.is_empty() {
            false => {
                let n = room.min(buf.len());
                out[..n].copy_from_slice(&buf[..n]);
                buf.drain(..n);
                n
            }
            true => self.conn.read(&mut out[..room])?,
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the client closed before the end of the body",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// 414 while the request line itself has not ended, 431 after.
fn too_long(buf: &[u8]) -> Refusal {
    match buf.windows(2).any(|w| w == b"\r\n") {
        true => refuse(431, "the request head is larger than 16 KiB"),
        false => refuse(414, "the request line is longer than 16 KiB"),
    }
}

enum Parsed {
    Done(Result<Request, Refusal>, usize),
    Partial,
    Bad(Refusal),
}

fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MOST];
    let mut parsed = httparse::Request::new(&mut headers);
    let used = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Bad(refuse(431, "more than 64 header lines"))
        }
        Err(_) => return Parsed::Bad(refuse(400, "not an HTTP/1.1 request")),
    };
    let request = Request {
        method: parsed.method.unwrap_or_default().to_string(),
        target: parsed.path.unwrap_or_default().to_string(),
        minor: parsed.version.unwrap_or(1),
        headers: parsed
            .headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
            .collect(),
        content_length: None,
        chunked: false,
        close: false,
    };
    Parsed::Done(checked(request), used)
}

/// The framing checks: one way only to read where a request ends, and a
/// Host for HTTP/1.1 (RFC 9112, 6.3 and 3.2).
fn checked(mut request: Request) -> Result<Request, Refusal> {
    let lengths = request.count("content-length");
    request.chunked = request.count("transfer-encoding") > 0;
    if lengths > 1 {
        return Err(refuse(400, "more than one Content-Length"));
    }
    if lengths == 1 && request.chunked {
        return Err(refuse(400, "both Content-Length and Transfer-Encoding"));
    }
    if lengths == 1 {
        let text = request.header("content-length").unwrap_or("");
        let digits =
            !text.is_empty() && text.len() <= 19 && text.bytes().all(|b| b.is_ascii_digit());
        if !digits {
            return Err(refuse(400, "a Content-Length that is not a number"));
        }
        request.content_length = text.parse().ok();
    }
    if request.minor == 1 && request.count("host") != 1 {
        return Err(refuse(400, "HTTP/1.1 needs one Host header"));
    }
    if !request.target.starts_with('/') {
        return Err(refuse(400, "only origin-form request targets ('/path')"));
    }
    let connection = request
        .header("connection")
        .unwrap_or("")
        .to_ascii_lowercase();
    request.close = match request.minor {
        0 => !connection.split(',').any(|t| t.trim() == "keep-alive"),
        _ => connection.split(',').any(|t| t.trim() == "close"),
    };
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(bytes: &[u8]) -> Next {
        Reader::default().next(&mut &bytes[..]).unwrap()
    }

    fn status(bytes: &[u8]) -> u16 {
        match next(bytes) {
            Next::Bad(r) => r.status,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn http_reads_a_request_and_keeps_the_next() {
        let two = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        let mut reader = Reader::default();
        let mut input = &two[..];
        let Next::Request(a) = reader.next(&mut input).unwrap() else {
            panic!("a request")
        };
        assert_eq!(
            (a.method.as_str(), a.target.as_str(), a.close),
            ("GET", "/a", false)
        );
        let Next::Request(b) = reader.next(&mut input).unwrap() else {
            panic!("a request")
        };
        assert_eq!((b.target.as_str(), b.close), ("/b", true));
        assert!(matches!(reader.next(&mut input).unwrap(), Next::Closed));
    }

    #[test]
    fn http_refuses_smuggling_shapes_and_floods() {
        let two = b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(status(two), 400);
        let both =
            b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(status(both), 400);
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n"),
            400
        );
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        let mut long = b"GET /".to_vec();
        long.resize(HEAD_MOST + 10, b'a');
        assert_eq!(status(&long), 414);
        let mut flood = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for i in 0..100 {
            flood.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        flood.extend_from_slice(b"\r\n");
        assert_eq!(status(&flood), 431);
    }
}
