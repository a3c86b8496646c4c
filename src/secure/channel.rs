//! The buffers between a connection's plaintext and its records: what is
//! sealed but not yet on the socket, and what came off the socket but is
//! not yet opened or read. `Conn` drives the socket; these hold no socket.

use std::io::{self, IoSliceMut};
use std::ops::Range;

use super::aead;
use super::record::{self, Keys, Opener, Sealer, HEADER, MAX_BODY};

/// Plaintext sealed per write call: 16 records, so one syscall moves
/// 256 KiB. (On loopback a syscall per record measured the same within
/// the noise; fewer calls cost nothing and help where syscalls are dear.)
pub const SEAL_BATCH: usize = 16 * record::MAX_PLAIN;
/// Ciphertext read per syscall, at most.
const READ_BATCH: usize = 256 << 10;
/// The least a socket read must have brought, and a reader's buffer must
/// hold, for the next read to go straight into that buffer
/// ([`Inbound::lend`]): below it the record cut at the end of each read,
/// carried over, would cost more than the copy it saves.
const LEND_MIN: usize = 64 << 10;

/// The sending direction: records sealed and waiting for the socket.
pub struct Outbound {
    sealer: Sealer,
    /// Records sealed, `buf[sent..end]` not yet taken by the socket; room
    /// for a batch's records from the start, so that it need not move.
    buf: Vec<u8>,
    sent: usize,
    end: usize,
}

/// Where a page starts and ends, for placing records (see [`Outbound::seal_read`]).
const PAGE: usize = 4096;
/// How far each record's data lies past where its bytes start in their
/// file page: 32 or more, or this CPU copies a page-cache page into it at
/// a quarter of its speed (see `crate::copy::Buf`). A batch's records
/// drift 22 bytes further each: the 16th lies 362 bytes past.
const PAST_PAGE_OFFSET: usize = 32;

impl Outbound {
    pub fn new(keys: &Keys) -> Self {
        Outbound {
            sealer: Sealer::new(keys),
            buf: vec![0; PAGE + record::sealed_len(SEAL_BATCH)],
            sent: 0,
            end: 0,
        }
    }

    /// Sealed bytes the socket has not taken yet. They always go out before
    /// anything sealed later: a record once sealed has spent its sequence
    /// number, so it cannot be dropped without breaking every later one.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.sent..self.end]
    }

    pub fn advance(&mut self, n: usize) {
        self.sent += n;
        if self.sent == self.end {
            self.sent = 0;
            self.end = 0;
        }
    }

    /// Seals `plain` behind whatever is pending.
    pub fn seal(&mut self, plain: &[u8]) -> io::Result<()> {
        let start = self.end;
        record::fill(self.room(start, plain.len()), plain);
        self.sealed(start, plain.len())
    }

    /// Seals up to `len` bytes that `read` puts straight into the places
    /// of the records that carry them (bytes of a file at `offset`),
    /// behind whatever is pending: read once, sealed where they lie.
    /// Returns what `read` read.
    pub fn seal_read(
        &mut self,
        len: usize,
        offset: u64,
        read: impl FnOnce(&mut [IoSliceMut<'_>]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let start = match self.end {
            0 => self.placed(offset),
            end => end,
        };
        let records = self.room(start, len);
        let mut places: Vec<IoSliceMut> =
            record::places(records, len).map(IoSliceMut::new).collect();
        let n = read(&mut places)?.min(len);
        self.sealed(start, n)?;
        Ok(n)
    }

    /// Where a batch starts so that its first record's data lies
    /// [`PAST_PAGE_OFFSET`] past where `offset` starts in its page.
    fn placed(&self, offset: u64) -> usize {
        let want = (offset as usize % PAGE + PAST_PAGE_OFFSET + PAGE - record::HEADER) % PAGE;
        (want + PAGE - self.buf.as_ptr() as usize % PAGE) % PAGE
    }

    /// The room for `plain` bytes' records at `start` (grown only if a
    /// caller seals more than a batch behind pending records).
    fn room(&mut self, start: usize, plain: usize) -> &mut [u8] {
        let end = start + record::sealed_len(plain);
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        &mut self.buf[start..end]
    }

    /// Seals the records of `plain` bytes placed at `start` and makes them
    /// pending.
    fn sealed(&mut self, start: usize, plain: usize) -> io::Result<()> {
        let n = self.sealer.seal_in_place(&mut self.buf[start..], plain)?;
        if n > 0 {
            if self.end == 0 {
                self.sent = start;
            }
            self.end = start + n;
        }
        Ok(())
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
    /// How many bytes the last socket read brought.
    last_read: usize,
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
            last_read: 0,
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
            match self.open_next(&mut out[done..]) {
                Ok(Some(n)) => done += n,
                Ok(None) => return Ok(done),
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    /// Opens the next buffered record if it is whole: straight into `out`
    /// when its plaintext fits there (the bulk of a transfer: no copy
    /// beside the decryption), else in place, to be copied out by pieces.
    /// Returns the bytes it put into `out`; `None` if the record is not
    /// whole yet.
    fn open_next(&mut self, out: &mut [u8]) -> io::Result<Option<usize>> {
        let header = &self.buf[self.start..self.start + HEADER];
        let inner = Opener::inner_len(header)?;
        let whole = self.start + HEADER + inner + record::TAG;
        if whole > self.end {
            return Ok(None);
        }
        let record = self.start..whole;
        self.start = whole;
        if inner <= out.len() {
            return self.opener.open_into(&self.buf[record], out).map(Some);
        }
        let range = self.opener.open(&mut self.buf[record.clone()])?;
        self.plain = record.start + range.start..record.start + range.end;
        Ok(Some(0))
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
        self.last_read = n;
    }

    /// Lends the reader's own buffer `out` to the socket (called once
    /// [`Inbound::take`] gave 0), when reads are large and `out` too: the
    /// part of a record already here is copied to its front, and the socket
    /// reads in after it, so that the records open straight into `out`
    /// ([`Inbound::open_lent`]) instead of being copied there. Returns where
    /// the socket's bytes go: all the rest of `out`, so that a read takes
    /// what a reader's buffer holds (a MiB for a file's data) and not only
    /// [`READ_BATCH`] (1 GiB encrypted over loopback, 7 rounds interleaved:
    /// the receiver 1.31 -> 1.16 CPU-s/GiB to /dev/null, 1.75 -> 1.64 into a
    /// tmpfs file; its peak 5.4 -> 6.1 MiB, as more of that buffer is
    /// touched); `None` to read into [`Inbound::space`].
    /// Nothing changes here until [`Inbound::open_lent`].
    pub fn lend(&mut self, out: &mut [u8]) -> Option<Range<usize>> {
        let part = self.end - self.start;
        // where an AEAD cannot open a record into the bytes before it in
        // its one pass, opening into `out` from this buffer costs less
        if !aead::OPENS_WITHIN_IN_ONE_PASS {
            return None;
        }
        if self.broken || self.last_read < LEND_MIN || out.len() < LEND_MIN + part {
            return None;
        }
        out[..part].copy_from_slice(&self.buf[self.start..self.end]);
        Some(part..out.len())
    }

    /// `filled` bytes of `out` are ciphertext ([`Inbound::lend`]'s part,
    /// then the socket's): opens its whole records, their data packed from
    /// `out[0]`, and keeps the record cut at the end for the next read.
    /// Returns how many bytes of `out` are data.
    pub fn open_lent(&mut self, out: &mut [u8], filled: usize) -> io::Result<usize> {
        self.last_read = filled - (self.end - self.start);
        let (mut data, mut at) = (0, 0);
        while filled - at >= HEADER {
            let whole = match Opener::inner_len(&out[at..at + HEADER]) {
                Ok(inner) => at + HEADER + inner + record::TAG,
                Err(e) => return Err(self.fail(e)),
            };
            if whole > filled {
                break;
            }
            match self.opener.open_down(&mut out[data..whole], at - data) {
                Ok(n) => data += n,
                Err(e) => return Err(self.fail(e)),
            }
            at = whole;
        }
        self.buf[..filled - at].copy_from_slice(&out[at..filled]);
        (self.start, self.end) = (0, filled - at);
        Ok(data)
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        self.broken = true;
        e
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

    fn keys() -> Keys {
        Keys {
            key: [9; 32],
            iv: [1; 12],
        }
    }

    /// `data` sealed in batches of a little less than [`SEAL_BATCH`].
    fn sealed(data: &[u8]) -> Vec<u8> {
        let mut out = Outbound::new(&keys());
        for part in data.chunks(SEAL_BATCH - 3) {
            out.seal(part).unwrap();
        }
        let wire = out.pending().to_vec();
        out.advance(wire.len());
        assert!(out.pending().is_empty());
        wire
    }

    /// Feeds `wire` to an [`Inbound`] `step` bytes at a time and takes
    /// plaintext into buffers of the sizes `sizes` gives in turn (smaller
    /// than a record: opened in place and copied out by pieces; at least a
    /// record: opened straight into the buffer; once steps are large and
    /// the buffer too, read into the buffer and opened there, as
    /// `Conn::open_into` does with [`Inbound::lend`]). Ends at the first
    /// error, or when the wire is used up and nothing more comes out.
    fn take_all(
        inb: &mut Inbound,
        wire: &[u8],
        sizes: &[usize],
        step: usize,
    ) -> io::Result<Vec<u8>> {
        let mut got = Vec::new();
        let mut fed = 0;
        for size in sizes.iter().cycle() {
            let mut piece = vec![0u8; *size];
            let n = inb.take(&mut piece)?;
            if n > 0 {
                got.extend_from_slice(&piece[..n]);
                continue;
            }
            if fed == wire.len() {
                return Ok(got);
            }
            if let Some(lent) = inb.lend(&mut piece) {
                let at = lent.start;
                let step = (wire.len() - fed).min(lent.len()).min(step);
                piece[at..at + step].copy_from_slice(&wire[fed..fed + step]);
                fed += step;
                let n = inb.open_lent(&mut piece, at + step)?;
                got.extend_from_slice(&piece[..n]);
                continue;
            }
            let space = inb.space();
            let step = (wire.len() - fed).min(space.len()).min(step);
            space[..step].copy_from_slice(&wire[fed..fed + step]);
            inb.filled(step);
            fed += step;
        }
        unreachable!("the sizes cycle forever")
    }

    /// Socket reads of odd sizes: small ones (each into the buffer here)
    /// and large ones (into the reader's own buffer once it is large).
    const STEPS: [usize; 2] = [7777, 100_003];

    /// Bytes read straight into their records make the same wire as the
    /// same bytes sealed from a buffer, a short read included (the file
    /// ended within a batch), and each record's data lies 32 bytes or more
    /// past where its file offset starts in a page.
    #[test]
    fn bytes_read_into_their_records_seal_as_bytes_copied_in_do() {
        let data: Vec<u8> = (0..SEAL_BATCH as u32 + 70_000)
            .map(|i| (i % 241) as u8)
            .collect();
        let mut copied = Outbound::new(&keys());
        let mut read = Outbound::new(&keys());
        let (mut at, mut offsets) = (0, Vec::new());
        // a batch, then one the "file" cuts short, then its rest
        for (len, has) in [
            (SEAL_BATCH, SEAL_BATCH),
            (SEAL_BATCH, 50_000),
            (20_000, 20_000),
        ] {
            let n = read
                .seal_read(len, at as u64 + 7, |places| {
                    let mut from = &data[at..at + has];
                    for place in places.iter_mut() {
                        offsets.push((place.as_ptr() as usize) % PAGE);
                        let now = place.len().min(from.len());
                        place[..now].copy_from_slice(&from[..now]);
                        from = &from[now..];
                    }
                    Ok(has)
                })
                .unwrap();
            assert_eq!(n, has);
            copied.seal(&data[at..at + has]).unwrap();
            assert_eq!(read.pending(), copied.pending());
            let (r, c) = (read.pending().len(), copied.pending().len());
            read.advance(r);
            copied.advance(c);
            at += has;
        }
        assert_eq!(at, data.len());
        let first = (offsets[0] + PAGE - 7) % PAGE;
        assert!((PAST_PAGE_OFFSET..PAGE - 400).contains(&first), "{first}");
        // a read that brings nothing seals nothing
        assert_eq!(read.seal_read(100, 0, |_| Ok(0)).unwrap(), 0);
        assert!(read.pending().is_empty());
    }

    #[test]
    fn records_arriving_in_odd_pieces_come_out_whole() {
        let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
        let wire = sealed(&data);
        // in place only; straight into the buffer only; both, mixed
        for sizes in [&[5000][..], &[1 << 20], &[5000, 16_385, 1, 70_000, 16_384]] {
            for step in STEPS {
                let mut inb = Inbound::new(&keys());
                let got = take_all(&mut inb, &wire, sizes, step).unwrap();
                assert_eq!(got, data, "taken by {sizes:?}, read by {step}");
                assert!(inb.at_boundary());
            }
        }
    }

    #[test]
    fn a_tampered_record_breaks_the_stream_for_good() {
        let data = vec![7u8; 600_000];
        let wire = sealed(&data);
        for (sizes, step) in [
            (&[5000][..], 7777),
            (&[1 << 20], 7777),
            (&[1 << 20], 100_003),
        ] {
            for at in [50_000, 500_000] {
                let mut bad = wire.clone();
                bad[at] ^= 0x80;
                let mut inb = Inbound::new(&keys());
                let err = take_all(&mut inb, &bad, sizes, step).unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::InvalidData);
                let again = inb.take(&mut [0u8; 1 << 20]).unwrap_err();
                assert_eq!(again.kind(), io::ErrorKind::InvalidData);
            }
        }
    }

    #[test]
    fn a_record_cut_short_is_not_a_boundary() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let wire = sealed(&data);
        for (sizes, step) in [
            (&[5000][..], 7777),
            (&[1 << 20], 7777),
            (&[1 << 20], 100_003),
        ] {
            let mut inb = Inbound::new(&keys());
            // the last record loses its tag's final byte: all but it come out
            let got = take_all(&mut inb, &wire[..wire.len() - 1], sizes, step).unwrap();
            assert_eq!(got, data[..got.len()]);
            let lost = data.len() - got.len();
            assert!(lost > 0 && lost <= record::MAX_PLAIN, "{lost} bytes lost");
            assert!(!inb.at_boundary());
        }
    }
}
