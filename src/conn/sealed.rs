//! An encrypted connection's reads and writes: records opened and sealed
//! under the same ticks, idle clock and pacing as plain bytes.

use std::io::{self, IoSliceMut, Read, Write};

use super::{Conn, Way};
use crate::secure::channel::{Inbound, SEAL_BATCH};

/// The records of an encrypted session, under the same ticks, idle clock
/// and pacing as plain bytes (the pacing counts what crosses the wire).
impl Conn {
    pub(super) fn read_sealed(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // out of `self` while the socket is read, so that a paced receiver
        // can still write its keepalives through this handle
        let mut inbound = self
            .inbound
            .take()
            .ok_or_else(|| io::Error::other("this handle's reading went to another thread"))?;
        let got = self.open_into(&mut inbound, buf);
        self.inbound = Some(inbound);
        got
    }

    fn open_into(&mut self, inbound: &mut Inbound, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = inbound.take(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if let Some(lent) = inbound.lend(buf) {
                let at = lent.start;
                let room = self.allow(Way::Recv, lent.len())?;
                let read = &mut buf[at..at + room];
                let n = self.in_ticks(Way::Recv, |stream| stream.read(read))?;
                if n == 0 {
                    return Self::closed(inbound);
                }
                match inbound.open_lent(buf, at + n)? {
                    0 => continue,
                    data => return Ok(data),
                }
            }
            let space = inbound.space();
            let room = self.allow(Way::Recv, space.len())?;
            let n = self.in_ticks(Way::Recv, |stream| stream.read(&mut space[..room]))?;
            if n == 0 {
                return Self::closed(inbound);
            }
            inbound.filled(n);
        }
    }

    /// The peer closed: the end of the stream at a record boundary, else
    /// an error.
    fn closed(inbound: &Inbound) -> io::Result<usize> {
        match inbound.at_boundary() {
            true => Ok(0),
            false => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection closed in the middle of a record",
            )),
        }
    }

    /// Seals up to [`SEAL_BATCH`] bytes of `buf` and sends them, after any
    /// records still pending. An error after sealing leaves the rest
    /// pending: it goes out first on the next write, so the peer never
    /// sees a gap in the record sequence.
    pub(super) fn write_sealed(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.drain()?;
        let n = self.allow(Way::Send, buf.len().min(SEAL_BATCH))?;
        self.outbound
            .as_mut()
            .ok_or_else(|| io::Error::other("this handle does not write"))?
            .seal(&buf[..n])?;
        self.drain()?;
        Ok(n)
    }

    /// Seals and sends up to `len` bytes (at most a batch) that `fill`
    /// puts straight into the places of the records that carry them (the
    /// bytes at `offset` of a file, which the places are aligned to), after
    /// any records still pending: no copy between a read buffer and the
    /// records. Returns what `fill` put there.
    pub fn write_sealed_from(
        &mut self,
        len: usize,
        offset: u64,
        fill: impl FnOnce(&mut [IoSliceMut<'_>]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.drain()?;
        let n = self.allow(Way::Send, len.min(SEAL_BATCH))?;
        let digest = &mut self.read_digest;
        let filled = self
            .outbound
            .as_mut()
            .ok_or_else(|| io::Error::other("this handle does not write"))?
            .seal_read(n, offset, |places| {
                let got = fill(places)?;
                if let Some(hasher) = digest {
                    let mut left = got;
                    for place in places.iter() {
                        let now = left.min(place.len());
                        sha2::Digest::update(hasher, &place[..now]);
                        left -= now;
                    }
                }
                Ok(got)
            })?;
        self.drain()?;
        Ok(filled)
    }

    /// From now on, hashes what [`Conn::write_sealed_from`] reads (see
    /// `read_digest`), until [`Conn::take_read_digest`].
    pub fn digest_reads(&mut self) {
        self.read_digest = Some(sha2::Sha256::default());
    }

    /// What was hashed since [`Conn::digest_reads`]; hashing stops.
    pub fn take_read_digest(&mut self) -> Option<sha2::Sha256> {
        self.read_digest.take()
    }

    /// Sends every record sealed and not yet taken by the socket.
    pub(super) fn drain(&mut self) -> io::Result<()> {
        let Some(mut out) = self.outbound.take() else {
            return Ok(());
        };
        let mut result = Ok(());
        while !out.pending().is_empty() {
            match self.in_ticks(Way::Send, |stream| stream.write(out.pending())) {
                Ok(0) => result = Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => out.advance(n),
                Err(e) => result = Err(e),
            }
            if result.is_err() {
                break;
            }
        }
        self.outbound = Some(out);
        result
    }
}
