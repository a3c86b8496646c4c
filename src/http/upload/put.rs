//! One PUT: the checks made before a byte is read (name, size, room,
//! what is there, where a resumed part continues), the body into the part,
//! the client's digests, and the rename.

use sha2::{Digest, Sha256};

use super::land::{hash_prefix, refused, write_body, Lander, Refused};
use crate::http::request::Request;
use crate::recv::sink::RelPath;

/// Where the body goes in the file, from `Content-Range` (or the whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub len: u64,
    pub total: u64,
}

/// What a PUT may start writing, once the checks passed.
pub struct Plan {
    pub rel: RelPath,
    pub span: Span,
    pub content: Option<[u8; 32]>,
    pub repr: Option<[u8; 32]>,
}

/// The checks of a PUT to `rel`, all made before a byte of the body.
pub fn plan(lander: &Lander, req: &Request, rel: RelPath) -> Result<Plan, Refused> {
    if req.chunked {
        return Err(refused(
            411,
            "send the body with a Content-Length (chunked uploads are not taken)",
        ));
    }
    let Some(len) = req.content_length else {
        return Err(refused(411, "a PUT needs a Content-Length"));
    };
    let span = match req.header("content-range") {
        None => Span {
            start: 0,
            len,
            total: len,
        },
        Some(text) => content_range(text, len)?,
    };
    let content = digest_of(req, "content-digest")?;
    let repr = digest_of(req, "repr-digest")?;
    lander.check_room(span.total, span.total - span.start)?;
    lander.check_free(&rel)?;
    Ok(Plan {
        rel,
        span,
        content,
        repr,
    })
}

/// What a finished PUT did: the file published, or a part kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landed {
    Published,
    Held(u64),
}

/// Writes the body into the part, checks the digests the client sent,
/// and publishes a complete file. A digest that does not match keeps the
/// part and publishes nothing.
pub fn land(
    lander: &Lander,
    plan: &Plan,
    body: &mut impl std::io::Read,
    got: &mut u64,
) -> Result<Landed, Refused> {
    let rel = &plan.rel;
    let mut file = lander.open_part(rel, plan.span.start)?;
    let mut whole = Sha256::new();
    if plan.repr.is_some() && plan.span.start > 0 {
        hash_prefix(&file, plan.span.start, &mut whole)
            .map_err(|e| refused(500, format!("reading the kept part: {e}")))?;
    }
    let mut content = Sha256::new();
    let mut tee = Tee {
        inner: body,
        whole: &mut whole,
        got,
    };
    write_body(&mut tee, &mut file, &mut content).map_err(|e| {
        let status = match e.kind() {
            std::io::ErrorKind::StorageFull => 507,
            _ => 400,
        };
        refused(status, format!("the upload stopped: {e}"))
    })?;
    let shown = rel.display();
    let wrong = |which: &str| {
        refused(
            400,
            format!("'{shown}': the {which} sha-256 does not match what arrived; the part is kept, the file is not published"),
        )
    };
    if plan
        .content
        .is_some_and(|d| d[..] != content.finalize()[..])
    {
        let _ = file.sync_all();
        return Err(wrong("Content-Digest"));
    }
    let end = plan.span.start + plan.span.len;
    if end < plan.span.total {
        file.sync_all()
            .map_err(|e| refused(500, format!("'{shown}': {e}")))?;
        return Ok(Landed::Held(end));
    }
    if plan.repr.is_some_and(|d| d[..] != whole.finalize()[..]) {
        let _ = file.sync_all();
        return Err(wrong("Repr-Digest"));
    }
    lander.publish(rel, &file)?;
    Ok(Landed::Published)
}

/// Feeds the whole file's digest and counts the bytes read.
struct Tee<'a, R> {
    inner: &'a mut R,
    whole: &'a mut Sha256,
    got: &'a mut u64,
}

impl<R: std::io::Read> std::io::Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.whole.update(&buf[..n]);
        *self.got += n as u64;
        Ok(n)
    }
}

/// `bytes START-END/TOTAL`, whose END - START + 1 is the body's length.
fn content_range(text: &str, len: u64) -> Result<Span, Refused> {
    let bad = || {
        refused(
            400,
            "Content-Range must be 'bytes START-END/TOTAL' and cover the body exactly",
        )
    };
    let spec = text.strip_prefix("bytes ").ok_or_else(bad)?;
    let (range, total) = spec.split_once('/').ok_or_else(bad)?;
    let (start, end) = range.split_once('-').ok_or_else(bad)?;
    let num = |s: &str| {
        let digits = !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit());
        digits
            .then(|| s.parse::<u64>().ok())
            .flatten()
            .ok_or_else(bad)
    };
    let (start, end, total) = (num(start)?, num(end)?, num(total)?);
    if start > end || end >= total || end - start + 1 != len {
        return Err(bad());
    }
    Ok(Span { start, len, total })
}

/// The sha-256 of a `Content-Digest` or `Repr-Digest` (RFC 9530): none
/// when the header is missing or names only other algorithms; refused
/// when its sha-256 is not 32 bytes of base64.
fn digest_of(req: &Request, name: &str) -> Result<Option<[u8; 32]>, Refused> {
    let Some(text) = req.header(name) else {
        return Ok(None);
    };
    for item in text.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case("sha-256") {
            continue;
        }
        let bytes = value
            .trim()
            .strip_prefix(':')
            .and_then(|v| v.strip_suffix(':'))
            .and_then(unbase64)
            .and_then(|b| <[u8; 32]>::try_from(b).ok());
        return match bytes {
            Some(digest) => Ok(Some(digest)),
            None => Err(refused(
                400,
                format!("{name}: sha-256 must be ':BASE64:' of 32 bytes"),
            )),
        };
    }
    Ok(None)
}

/// Standard base64 with padding; `None` on anything else.
fn unbase64(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, quad) in bytes.chunks(4).enumerate() {
        let last = i + 1 == bytes.len() / 4;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = n << 6 | u32::from(value(c)?);
        }
        n <<= 6 * pad as u32;
        let three = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&three[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response::base64;

    #[test]
    fn http_upload_content_range_and_base64() {
        let span = content_range("bytes 10-19/30", 10).unwrap();
        assert_eq!((span.start, span.len, span.total), (10, 10, 30));
        for bad in [
            "bytes 10-19/30 ",
            "bytes 10-19/19",
            "bytes 19-10/30",
            "bytes 10-20/30",
            "bytes=10-19/30",
            "bytes 10-19/*",
            "bytes -1-19/30",
        ] {
            assert!(content_range(bad, 10).is_err(), "{bad}");
        }
        for raw in [&b""[..], b"f", b"fo", b"foo", b"\xff\x00\x10\x80"] {
            assert_eq!(unbase64(&base64(raw)).as_deref(), Some(raw));
        }
        assert_eq!(unbase64("Zg="), None);
        assert_eq!(unbase64("Z==="), None);
        assert_eq!(unbase64("Zg==Zg=="), None);
    }
}
