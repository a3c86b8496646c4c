//! Frames read through one buffer, so that a small file's BEGIN, DATA
//! header, payload and FILE END (and those of the next files) cost one read
//! between them instead of one or two each.

use std::io::{self, Read};

use anyhow::Result;

use crate::conn::Conn;
#[cfg(doc)]
use crate::protocol::MAX_FRAME;
use crate::protocol::{frame_head, Frame, HEAD};

/// Large enough for the largest control frame, and for many small files.
const CAPACITY: usize = 256 << 10;

pub(super) struct Incoming {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Incoming {
    pub(super) fn new() -> Self {
        Incoming {
            buf: vec![0; CAPACITY],
            start: 0,
            end: 0,
        }
    }

    /// Reads until at least `want` bytes are buffered (`want` fits the buffer).
    fn fill(&mut self, conn: &mut Conn, want: usize) -> io::Result<()> {
        if self.end - self.start >= want {
            return Ok(());
        }
        if self.start + want > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < want {
            match conn.read(&mut self.buf[self.end..])? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => self.end += n,
            }
        }
        Ok(())
    }

    /// The next frame; its body is never larger than [`MAX_FRAME`].
    pub(super) fn frame(&mut self, conn: &mut Conn) -> Result<Frame> {
        self.fill(conn, HEAD)?;
        let head = self.buf[self.start..self.start + HEAD].try_into();
        let (kind, len) = frame_head(head.expect("HEAD bytes"))?;
        let total = HEAD + len;
        self.fill(conn, total)?;
        let body = self.buf[self.start + HEAD..self.start + total].to_vec();
        self.start += total;
        Ok(Frame { kind, body })
    }

    /// Up to `len` bytes that already arrived, taken out of the buffer; the
    /// rest of a payload is read straight from the socket.
    pub(super) fn take(&mut self, len: u64) -> &[u8] {
        let n = (self.end - self.start).min(len.min(usize::MAX as u64) as usize);
        let taken = &self.buf[self.start..self.start + n];
        self.start += n;
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{data_header, write_frame};
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    #[test]
    fn frames_and_payloads_come_out_as_they_went_in() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let writer = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            let mut wire = Vec::new();
            for i in 0..300u32 {
                write_frame(&mut wire, b'B', &i.to_be_bytes()).unwrap();
                let payload = vec![i as u8; (i as usize * 37) % 5000];
                wire.extend_from_slice(&data_header(0, payload.len() as u64));
                wire.extend_from_slice(&payload);
            }
            // in odd pieces, so frames straddle reads
            for piece in wire.chunks(777) {
                s.write_all(piece).unwrap();
            }
        });
        let (stream, _) = listener.accept().unwrap();
        let mut conn = Conn::new(stream, Duration::from_secs(10)).unwrap();
        let mut inc = Incoming::new();
        for i in 0..300u32 {
            let f = inc.frame(&mut conn).unwrap();
            assert_eq!((f.kind, f.body), (b'B', i.to_be_bytes().to_vec()));
            let d = inc.frame(&mut conn).unwrap();
            let (_, len) = crate::protocol::parse_data(&d.body).unwrap();
            let mut got = inc.take(len).to_vec();
            let mut rest = vec![0u8; len as usize - got.len()];
            conn.read_exact(&mut rest).unwrap();
            got.extend_from_slice(&rest);
            assert_eq!(got, vec![i as u8; (i as usize * 37) % 5000], "payload {i}");
        }
        writer.join().unwrap();
    }
}
