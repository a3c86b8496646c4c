//! The buffers between a connection's plaintext and its records: what is
//! sealed but not yet on the socket, and what came off the socket but is
//! not yet opened or read. `Conn` drives the socket; these hold no socket.

use std::io;
use std::ops::Range;

use super::record::{self, Keys, Opener, Sealer, HEADER, MAX_BODY};

/// Plaintext sealed per write call: 16 records, so one syscall moves
/// 256 KiB. (On loopback a syscall per record measured the same within
/// the noise; fewer calls cost nothing and help where syscalls are dear.)
pub const SEAL_BATCH: usize = 16 * record::MAX_PLAIN;
/// Ciphertext read per syscall, at most.
const READ_BATCH: usize = 256 << 10;

/// The sending direction: records sealed and waiting for the socket.
pub struct Outbound {
    sealer: Sealer,
    buf: Vec<u8>,
    sent: usize,
}

impl Outbound {
    pub fn new(keys: &Keys) -> Self {
        Outbound {
            sealer: Sealer::new(keys),
            buf: Vec::new(),
            sent: 0,
        }
    }

    /// Sealed bytes the socket has not taken yet. They always go out before
    /// anything sealed later: a record once sealed has spent its sequence
    /// number, so it cannot be dropped without breaking every later one.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.sent..]
    }

    pub fn advance(&mut self, n: usize) {
        self.sent += n;
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
        }
    }

    /// Seals `plain` behind whatever is pending.
    pub fn seal(&mut self, plain: &[u8]) -> io::Result<()> {
        self.sealer.seal(plain, &mut self.buf)
    }
}

/// The receiving direction: ciphertext read ahead, and the plaintext of
/// the record being read.
pub struct Inbound {
    opener: Opener,
    buf: Vec<u8>,
    /// Ciphertext not yet opened: `buf[start..end]`.
    start: usize,
    end: usize,
    /// Plaintext of the last record opened, not yet handed out.
    plain: Range<usize>,
    /// Once a record fails, every later read fails the same way: the
    /// stream cannot be trusted past it.
    broken: bool,
}

impl Inbound {
    pub fn new(keys: &Keys) -> Self {
        Inbound {
            opener: Opener::new(keys),
            buf: vec![0; READ_BATCH + HEADER + MAX_BODY],
            start: 0,
            end: 0,
            plain: 0..0,
            broken: false,
        }
    }

    /// Copies plaintext into `out`, opening the records already buffered;
    /// 0 when `out` needs bytes the socket has not given yet.
    pub fn take(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.broken {
            return Err(record::broken("an earlier record failed"));
        }
        let mut done = 0;
        loop {
            let n = self.plain.len().min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.buf[self.plain.start..self.plain.start + n]);
            self.plain.start += n;
            done += n;
            if done == out.len() || self.end - self.start < HEADER {
                return Ok(done);
            }
            let opened = self.open_next();
            match opened {
                Ok(true) => {}
                Ok(false) => return Ok(done),
                Err(e) => {
                    self.broken = true;
                    return Err(e);
                }
            }
        }
    }

    /// Opens the next buffered record if it is whole.
    fn open_next(&mut self) -> io::Result<bool> {
        let len = Opener::body_len(&self.buf[self.start..self.start + HEADER])?;
        let whole = self.start + HEADER + len;
        if whole > self.end {
            return Ok(false);
        }
        let range = self.opener.open(&mut self.buf[self.start..whole])?;
        self.plain = self.start + range.start..self.start + range.end;
        self.start = whole;
        Ok(true)
    }

    /// Where the next ciphertext goes (called once [`Inbound::take`] gave
    /// 0, so no plaintext is waiting and the buffer can be compacted).
    pub fn space(&mut self) -> &mut [u8] {
        debug_assert!(self.plain.is_empty());
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.buf.len() - self.end < HEADER + MAX_BODY {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        self.plain = 0..0;
        let end = self.end;
        let stop = self.buf.len().min(end + READ_BATCH.max(HEADER + MAX_BODY));
        &mut self.buf[end..stop]
    }

    /// `n` bytes were read into [`Inbound::space`].
    pub fn filled(&mut self, n: usize) {
        self.end += n;
    }

    /// No part of a record is waiting: a close here ends the stream
    /// cleanly (the session's own frames tell a finished session from a
    /// cut one, as without encryption).
    pub fn at_boundary(&self) -> bool {
        self.start == self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_arriving_in_odd_pieces_come_out_whole() {
        let keys = Keys {
            key: [9; 32],
            iv: [1; 12],
        };
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut out = Outbound::new(&keys);
        for part in data.chunks(SEAL_BATCH - 3) {
            out.seal(part).unwrap();
        }
        let wire = out.pending().to_vec();
        out.advance(wire.len());
        assert!(out.pending().is_empty());
        let mut inb = Inbound::new(&keys);
        let mut got = Vec::new();
        let mut fed = 0;
        let mut piece = [0u8; 5000];
        while got.len() < data.len() {
            let n = inb.take(&mut piece).unwrap();
            if n > 0 {
                got.extend_from_slice(&piece[..n]);
                continue;
            }
            let space = inb.space();
            let step = (wire.len() - fed).min(space.len()).min(7777);
            space[..step].copy_from_slice(&wire[fed..fed + step]);
            inb.filled(step);
            fed += step;
        }
        assert_eq!(got, data);
        assert!(inb.at_boundary());
    }
}
