//! One file as an HTTP response: validators, a single range, the name
//! for saving it, its digest when already known, and the body by
//! sendfile(2).

use std::fs::{File, Metadata};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use super::request::Request;
use super::response::{base64, http_date, Head};
use super::target::encode;
use crate::hash::Sha;

/// What the response to a file request is, before any byte is written.
pub struct Reply {
    pub head: Head,
    /// The bytes `[start, end)` of the file to send after the head.
    pub body: Option<(u64, u64)>,
    /// The range asked for, as sent (for the access line).
    pub range: Option<String>,
}

/// The answer to GET or HEAD of `file`, as it is now. `digest`: the whole
/// file's SHA-256, if known already.
pub fn reply(
    req: &Request,
    file: &File,
    name: &[u8],
    digest: Option<Sha>,
) -> std::io::Result<Reply> {
    let meta = file.metadata()?;
    let size = meta.len();
    let etag = etag(&meta);
    let modified = meta.modified().map(http_date).ok();
    let range = req.header("range").map(str::to_string);
    let mut head;
    let mut body = None;
    if not_modified(req, &etag) {
        head = Head::new(304);
    } else {
        let wanted = match &range {
            Some(value) if req.method == "GET" && if_range(req, &etag, modified.as_deref()) => {
                ranged(value, size)
            }
            _ => Ask::Whole,
        };
        match wanted {
            Ask::Whole => {
                head = Head::new(200);
                head.set("Content-Length", size);
                body = Some((0, size));
            }
            Ask::Part(start, end) => {
                head = Head::new(206);
                head.set("Content-Length", end - start)
                    .set("Content-Range", format!("bytes {start}-{}/{size}", end - 1));
                body = Some((start, end));
            }
            Ask::Beyond => {
                head = Head::new(416);
                head.set("Content-Length", 0)
                    .set("Content-Range", format!("bytes */{size}"));
            }
        }
        head.set("Content-Type", "application/octet-stream")
            .set("Content-Disposition", disposition(name))
            .set("X-Content-Type-Options", "nosniff");
        if let Some(sha) = digest {
            head.set("Repr-Digest", format!("sha-256=:{}:", base64(&sha)));
        }
    }
    head.set("Accept-Ranges", "bytes").set("ETag", &etag);
    if let Some(modified) = &modified {
        head.set("Last-Modified", modified);
    }
    if req.method == "HEAD" || head.status == 304 || body.is_some_and(|(s, e)| s == e) {
        body = None;
    }
    Ok(Reply { head, body, range })
}

/// A strong validator from what identifies this content: the file (device,
/// inode) and its size and modification time; hashed, so that the inode
/// numbers are not told.
pub fn etag(meta: &Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let mut hasher = Sha256::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        hasher.update(meta.dev().to_le_bytes());
        hasher.update(meta.ino().to_le_bytes());
    }
    hasher.update(meta.len().to_le_bytes());
    hasher.update(mtime.to_le_bytes());
    let sum = hasher.finalize();
    let hex: String = sum[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

fn not_modified(req: &Request, etag: &str) -> bool {
    req.header("if-none-match").is_some_and(|tags| {
        tags.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == etag)
    })
}

/// Whether a range may be served (RFC 9110, 13.1.5): no If-Range, or one
/// naming this very file: its strong ETag, or its exact Last-Modified.
fn if_range(req: &Request, etag: &str, modified: Option<&str>) -> bool {
    match req.header("if-range") {
        None => true,
        Some(v) if v.starts_with('"') => v == etag,
        Some(v) => Some(v) == modified,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Ask {
    Whole,
    Part(u64, u64),
    /// No byte of the file is in the range: 416.
    Beyond,
}

/// One `bytes=` range of a `size`-byte file. What is not one well-formed
/// byte range (several, another unit, garbage) is ignored, as RFC 9110
/// allows: the whole file is sent.
fn ranged(value: &str, size: u64) -> Ask {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ask::Whole;
    };
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ask::Whole;
    };
    let number = |s: &str| match !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        true => s.parse::<u64>().ok(),
        false => None,
    };
    match (first, last) {
        ("", suffix) => match number(suffix) {
            None => Ask::Whole,
            Some(0) => Ask::Beyond,
            Some(_) if size == 0 => Ask::Beyond,
            Some(n) => Ask::Part(size - n.min(size), size),
        },
        (first, last) => match (number(first), last) {
            (None, _) => Ask::Whole,
            (Some(start), _) if start >= size => Ask::Beyond,
            (Some(start), "") => Ask::Part(start, size),
            (Some(start), last) => match number(last) {
                Some(end) if end >= start => Ask::Part(start, end.min(size - 1) + 1),
                _ => Ask::Whole,
            },
        },
    }
}

/// `Content-Disposition` (RFC 6266): an ASCII `filename` every client
/// reads, and for any other name `filename*` in UTF-8 (RFC 8187).
pub fn disposition(name: &[u8]) -> String {
    let text = String::from_utf8_lossy(name);
    let ascii: String = text
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' && c != '%' => c,
            _ => '_',
        })
        .collect();
    if ascii == text {
        return format!("attachment; filename=\"{ascii}\"");
    }
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        encode(text.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_single_ranges() {
        assert_eq!(ranged("bytes=0-99", 1000), Ask::Part(0, 100));
        assert_eq!(ranged("bytes=900-", 1000), Ask::Part(900, 1000));
        assert_eq!(ranged("bytes=-100", 1000), Ask::Part(900, 1000));
        assert_eq!(ranged("bytes=-5000", 1000), Ask::Part(0, 1000));
        assert_eq!(ranged("bytes=990-5000", 1000), Ask::Part(990, 1000));
        assert_eq!(ranged("bytes=1000-", 1000), Ask::Beyond);
        assert_eq!(ranged("bytes=-0", 1000), Ask::Beyond);
        assert_eq!(ranged("bytes=0-", 0), Ask::Beyond);
        assert_eq!(ranged("bytes=5-1", 1000), Ask::Whole);
        assert_eq!(ranged("bytes=0-1,5-6", 1000), Ask::Whole);
        assert_eq!(ranged("lines=0-1", 1000), Ask::Whole);
        assert_eq!(ranged("bytes=+1-2", 1000), Ask::Whole);
    }

    #[test]
    fn http_disposition_encodes_names() {
        assert_eq!(disposition(b"a.iso"), "attachment; filename=\"a.iso\"");
        assert_eq!(
            disposition("résumé \"1\".pdf".as_bytes()),
            "attachment; filename=\"r_sum_ _1_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%221%22.pdf"
        );
    }
}
