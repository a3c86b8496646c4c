//! A `multipart/form-data` body (what the upload page's form posts with
//! scripts off), read as a stream in a bounded buffer: each part's head,
//! then its bytes up to the next delimiter.

use std::io::{self, Read};

/// A part's head (its header lines) may take this many bytes.
const PART_HEAD_MOST: usize = 16 << 10;
/// Read this much at a time.
const CHUNK: usize = 64 << 10;

/// The boundary of a `Content-Type: multipart/form-data; boundary=B`.
pub fn boundary(content_type: &str) -> Option<Vec<u8>> {
    let mut params = content_type.split(';');
    let kind = params.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let value = params.find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then_some(v.trim())
    })?;
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    (!value.is_empty() && value.len() <= 70).then(|| value.as_bytes().to_vec())
}

pub struct Parts<R> {
    body: R,
    /// `\r\n--BOUNDARY`
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    /// Within a part (or the preamble) whose bytes were not all read.
    within: bool,
    done: bool,
}

impl<R: Read> Parts<R> {
    pub fn new(body: R, boundary: &[u8]) -> Self {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary);
        // the first delimiter has no line break before it: one is lent
        Parts {
            body,
            delimiter,
            buf: b"\r\n".to_vec(),
            within: true,
            done: false,
        }
    }

    /// More bytes into the buffer; false at the end of the body.
    fn fill(&mut self) -> io::Result<bool> {
        let at = self.buf.len();
        self.buf.resize(at + CHUNK, 0);
        let n = self.body.read(&mut self.buf[at..])?;
        self.buf.truncate(at + n);
        Ok(n > 0)
    }

    /// The next part's file name (`None` for a field that is no file),
    /// or the end of the body. The bytes of the part before are dropped.
    pub fn next_part(&mut self) -> io::Result<Option<Option<Vec<u8>>>> {
        if self.done {
            return Ok(None);
        }
        if self.within {
            self.data(&mut |_| Ok(()))?;
        }
        // after a delimiter: `--` ends the body, a line break starts a head
        while self.buf.len() < 2 {
            if !self.fill()? {
                return Err(truncated());
            }
        }
        if self.buf.starts_with(b"--") {
            self.done = true;
            return Ok(None);
        }
        let head = loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = self.buf[..end].to_vec();
                self.buf.drain(..end + 4);
                self.within = true;
                break head;
            }
            if self.buf.len() > PART_HEAD_MOST {
                return Err(bad("a part's head is larger than 16 KiB"));
            }
            if !self.fill()? {
                return Err(truncated());
            }
        };
        Ok(Some(file_name(&head)))
    }

    /// The body this reads from (to ask how much of it is left).
    pub fn body(&self) -> &R {
        &self.body
    }

    /// The current part's bytes, to `out`, up to the next delimiter
    /// (which is consumed).
    pub fn data(&mut self, out: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        loop {
            if let Some(at) = find(&self.buf, &self.delimiter) {
                out(&self.buf[..at])?;
                self.buf.drain(..at + self.delimiter.len());
                self.within = false;
                return Ok(());
            }
            // all but a tail that could be the start of the delimiter
            let keep = self.delimiter.len() - 1;
            if self.buf.len() > keep {
                let cut = self.buf.len() - keep;
                out(&self.buf[..cut])?;
                self.buf.drain(..cut);
            }
            if !self.fill()? {
                return Err(truncated());
            }
        }
    }
}

/// `filename="..."` of a part's `Content-Disposition` (browsers escape `"`
/// as `%22` and keep every other byte).
fn file_name(head: &[u8]) -> Option<Vec<u8>> {
    let line = head
        .split(|&b| b == b'\n')
        .find(|l| l.len() > 20 && l[..20].eq_ignore_ascii_case(b"content-disposition:"))?;
    let key = b"filename=\"";
    let at = find(line, key)? + key.len();
    let rest = &line[at..];
    let end = rest.iter().position(|&b| b == b'"')?;
    Some(rest[..end].to_vec())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn truncated() -> io::Error {
    bad("the form data ended before its last boundary")
}

fn bad(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_multipart_parts_stream_across_reads() {
        let body = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--X\r\n--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d/b.bin\"\r\n\r\n\r\n--XyZ--\r\n";
        assert_eq!(
            boundary("multipart/form-data; boundary=\"XyZ\""),
            Some(b"XyZ".to_vec())
        );
        assert_eq!(boundary("text/plain; boundary=XyZ"), None);
        // one byte a read: every delimiter straddles reads
        struct Slow<'a>(&'a [u8]);
        impl Read for Slow<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(out.len()).min(1);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut parts = Parts::new(Slow(body), b"XyZ");
        let mut got = Vec::new();
        while let Some(name) = parts.next_part().unwrap() {
            let mut data = Vec::new();
            parts
                .data(&mut |b| {
                    data.extend_from_slice(b);
                    Ok(())
                })
                .unwrap();
            got.push((name, data));
        }
        assert_eq!(
            got,
            vec![
                (Some(b"a.txt".to_vec()), b"hello\r\n--X".to_vec()),
                (None, b"hi".to_vec()),
                (Some(b"d/b.bin".to_vec()), b"".to_vec()),
            ]
        );
        let cut = &body[..body.len() - 12];
        let mut parts = Parts::new(cut, b"XyZ");
        let mut all = || -> io::Result<()> {
            while parts.next_part()?.is_some() {}
            Ok(())
        };
        assert!(all().is_err());
    }
}
