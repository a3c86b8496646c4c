//! The file whose data is arriving: where its bytes go (its part, the
//! session's stream, or nowhere), its running hash and checkpoint, and how
//! a DATA frame's bytes reach it (spliced when nothing needs to see them).

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

use anyhow::{anyhow, Result};
use sha2::Digest;

use super::{local, network};
use crate::conn::{with_keepalive, Conn};
use crate::copy::{self, Buf, Chunks, RecvError, BUF_SIZE};
use crate::hash::{self, Running, Sha};
use crate::held::Checkpointer;
use crate::output::Stream;
use crate::protocol::receiver::{Arrival, Fits};
use crate::recv::session::Want;

/// Files this large (and streams) are hashed on a thread beside the
/// receive loop where there are cores for it (`hash::thread_pays`):
/// reading the socket and hashing then overlap on two cores.
pub(super) const HASH_THREAD_MIN: u64 = 64 << 20;
/// A DATA frame this large has its range reserved (fallocate) before any of
/// it is written: the file system then takes its pages or blocks in one
/// call instead of a page at a time inside every write. 1 GiB over
/// loopback, --no-verify, CPU s/GiB of both sides together, interleaved
/// with the binary before: into tmpfs 0.83 -> 0.65 on an idle machine (the
/// same wall time) and receiver 0.70 -> 0.56 on a busy one; into ext4 on the
/// virtual disk, fsync included, 0.59 -> 0.50 and 1.15 -> 1.34 GiB/s. On
/// tmpfs the call holds the file's lock while it allocates (about 4 ms per
/// 16 MiB), so a thread reserving ahead of the writer only takes turns with
/// it. Files of a few MiB, a tree's, are left as they were. Nor is a file
/// in memory (tmpfs): no blocks to lay out, and the receive loop stopped
/// reading while the call took the pages ahead of the bytes (1 GiB,
/// --no-verify, 7 rounds interleaved: 0.55-0.63 s with it, 0.48-0.50
/// without, the same CPU).
pub(super) const RESERVE_MIN: u64 = 4 << 20;
/// At most this much of a frame is reserved: a zc sender's frames are no
/// larger, and a peer that announces a huge frame and then stalls must not
/// make this side take the space (on tmpfs, the memory) ahead of the bytes.
const RESERVE_MAX: u64 = 64 << 20;
/// The file whose data is arriving (the protocol's view of it, what fits
/// and what came, is the session's).
pub(in crate::recv) struct Current {
    pub(super) want: Want,
    /// Where its data goes; none: to the session's stream (stdout, a
    /// device), in order, or, when its part could not be opened, nowhere
    /// (read and dropped, and only this entry fails, see
    /// `Session::unwritable`).
    pub(super) part: Option<File>,
    /// SHA-256 of the data as it arrives: the file's while it comes in
    /// order from byte 0 (dropped when it does not, and the file hashed
    /// from disk), or that of the DATA payloads when the file will not be
    /// whole (see `protocol::whole`).
    pub(super) hasher: Option<Running>,
    /// Where the part's file position stands (a seek only when it differs).
    pub(super) pos: u64,
    /// Keeps the record of a large part current.
    pub(super) checkpoint: Option<Checkpointer>,
    /// Large frames have their range reserved first (see [`RESERVE_MIN`]).
    pub(super) reserve: bool,
}

impl Current {
    /// Readies the part for a frame's `len` bytes at `offset`: the range
    /// reserved first when the frame is large, the file position moved
    /// there only when it stands elsewhere.
    fn place(&mut self, offset: u64, len: u64, end: u64) -> io::Result<()> {
        if let Some(file) = &mut self.part {
            if self.reserve && len >= RESERVE_MIN {
                // only speed rides on it: a file system that cannot
                // reserve takes the writes all the same, and a full one
                // fails them with the error that says so
                let _ = crate::sys::preallocate(file, offset, len.min(RESERVE_MAX));
            }
            if self.pos != offset {
                file.seek(SeekFrom::Start(offset))?;
            }
        }
        self.pos = end;
        Ok(())
    }

    /// The file's SHA-256: as it came (`as_it_came`: that is the one to
    /// check), else read back from the part (resumed, or out of order);
    /// none when neither can be had.
    pub(super) fn digest(&mut self, conn: &mut Conn, as_it_came: bool) -> Result<Option<Sha>> {
        let size = self.want.size;
        Ok(match (self.hasher.take(), &self.part) {
            (Some(h), _) if as_it_came => Some(h.finish()),
            (_, Some(file)) => Some(
                with_keepalive(conn, || hash::hash_range(file, 0, size))
                    .map_err(|e| local(&self.want, e))?,
            ),
            _ => None,
        })
    }

    /// Writes what came with the frame's header (all of a small file's
    /// data) at its offset; where the rest of the frame then starts.
    pub(super) fn early(
        &mut self,
        fits: Fits,
        early: &[u8],
        stream: Option<&mut Stream>,
    ) -> Result<u64> {
        if !fits.in_order && self.want.whole {
            self.hasher = None; // out of order: hashed from disk at the end
        }
        let written = self.place(fits.offset, fits.len, fits.end).and_then(|()| {
            match (&mut self.part, stream) {
                (Some(file), _) => file.write_all(early),
                (None, Some(stream)) => stream.write_all(early),
                _ => Ok(()),
            }
        });
        written.map_err(|e| local(&self.want, e))?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(fits.offset, early);
        }
        let at = fits.offset + early.len() as u64;
        if let Some(cp) = &self.checkpoint {
            cp.add(fits.offset, at);
        }
        Ok(at)
    }

    /// Reads the rest of a frame, `len` bytes at `at`, from the socket into
    /// the file (`spare`: the buffer kept between frames): the bytes
    /// written, whether splice carried them, and how it ended.
    pub(super) fn rest(
        &mut self,
        conn: &mut Conn,
        (at, len): (u64, u64),
        stream: Option<&mut Stream>,
        spare: &mut Option<Buf>,
        show: &mut dyn FnMut(u64),
    ) -> (u64, bool, Result<()>) {
        let mut sink = io::sink();
        let (target, splice) = match (&mut self.part, stream) {
            (Some(file), _) => (copy::Sink::File(file), self.hasher.is_none()),
            (None, Some(stream)) => {
                let splice = self.hasher.is_none() && stream.is_char_device();
                (stream.sink(), splice)
            }
            _ => (copy::Sink::Writer(&mut sink), false),
        };
        let mut chunks = Fed {
            hasher: self.hasher.as_mut(),
            checkpoint: self.checkpoint.as_ref(),
            at,
            buf: spare.take(),
            done: 0,
            show,
        };
        let got = copy::recv(conn, target, Some(len), splice, &mut chunks);
        // kept for the next frame: a fresh zeroed MiB per small file cost
        // more than the file's own bytes
        *spare = chunks.buf.take();
        // what the summary calls zero-copy: bytes splice moved, not a wish
        match got {
            Ok(r) if r.cut => {
                let cut = anyhow!("connection closed in the middle of the data");
                (r.bytes, r.spliced > 0, Err(network(conn, cut)))
            }
            Ok(r) => (r.bytes, r.spliced > 0, Ok(())),
            Err(RecvError {
                bytes,
                local: true,
                error,
            }) => (bytes, false, Err(local(&self.want, error))),
            Err(RecvError { bytes, error, .. }) => (bytes, false, Err(network(conn, error.into()))),
        }
    }
}

/// One DATA frame's chunks: hashed in order, counted for progress.
struct Fed<'h, 's> {
    hasher: Option<&'h mut Running>,
    /// Told of every chunk once written, so a record is current mid-frame
    /// (a frame can carry 64 MiB).
    checkpoint: Option<&'h Checkpointer>,
    /// Where this frame's data starts in the file.
    at: u64,
    buf: Option<Buf>,
    done: u64,
    show: &'s mut dyn FnMut(u64),
}

impl Chunks for Fed<'_, '_> {
    fn take(&mut self) -> Buf {
        let mut buf = match self.hasher.as_deref() {
            Some(Running::Thread(pipe)) => pipe.buffer(),
            _ => self.buf.take().unwrap_or_else(|| Buf::new(BUF_SIZE)),
        };
        buf.place(self.at + self.done);
        buf
    }
    fn written(&mut self, buf: Buf, len: usize) {
        match self.hasher.as_deref_mut() {
            Some(Running::Thread(pipe)) => pipe.push(self.at + self.done, buf, len),
            Some(Running::Inline(h)) => {
                h.update(&buf[..len]);
                self.buf = Some(buf);
            }
            None => self.buf = Some(buf),
        }
        self.spliced(len as u64);
    }
    fn spliced(&mut self, n: u64) {
        self.done += n;
        if let Some(cp) = self.checkpoint {
            cp.add(self.at, self.at + self.done);
        }
        (self.show)(self.done);
    }
}

/// How one file's data begins, for a display of one file.
pub(super) fn file_start(arrival: &Arrival) -> crate::progress::Start {
    let (resumed_from, count) = arrival.resumed();
    crate::progress::Start {
        role: crate::progress::Role::Recv,
        name: Default::default(),
        peer: String::new(),
        size: (!arrival.stream).then_some(arrival.size),
        offset: arrival.range.0,
        count: (!arrival.stream).then_some(count),
        resumed_from,
    }
}
