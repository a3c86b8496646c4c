//! SHA-256 over file ranges, on a thread of its own so that hashing overlaps
//! the transfer instead of following it.

use std::fs::File;
use std::io;
use std::thread::{self, JoinHandle};

use sha2::{Digest, Sha256};

use crate::copy::{read_range, BUF_SIZE};

pub type Sha = [u8; 32];

/// SHA-256 of bytes [offset, offset+count) of `file`, read with a fixed buffer.
pub fn hash_range(file: &File, offset: u64, count: u64) -> io::Result<Sha> {
    let mut hasher = Sha256::new();
    hash_into(file, offset, count, &mut hasher)?;
    Ok(hasher.finalize().into())
}

/// Feeds bytes [offset, offset+count) of `file` into `hasher`.
pub fn hash_into(file: &File, offset: u64, count: u64, hasher: &mut Sha256) -> io::Result<()> {
    let mut buf = vec![0u8; BUF_SIZE.min(count.max(1) as usize)];
    read_range(file, offset, count, &mut buf, true, |_, chunk| {
        hasher.update(chunk);
        Ok(())
    })
}

fn spawn<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    thread::Builder::new()
        .name("zc-hash".into())
        .spawn(work)
        .expect("spawning the hashing thread")
}

/// Hashes the ranges, in order, as one stream, on another thread.
pub fn spawn_ranges(file: File, ranges: Vec<(u64, u64)>) -> JoinHandle<io::Result<Sha>> {
    spawn_ranges_then(file, ranges, |_, _| {})
}

/// [`spawn_ranges`], handing the result to `then` on that thread as soon
/// as it is known, before (and whether or not) anyone joins it.
pub fn spawn_ranges_then(
    file: File,
    ranges: Vec<(u64, u64)>,
    then: impl FnOnce(&File, &io::Result<Sha>) + Send + 'static,
) -> JoinHandle<io::Result<Sha>> {
    spawn(move || {
        let mut hasher = Sha256::new();
        let hashed = ranges
            .into_iter()
            .try_for_each(|(start, end)| hash_into(&file, start, end - start, &mut hasher))
            .map(|()| hasher.finalize().into());
        then(&file, &hashed);
        hashed
    })
}

/// SHA-256 of a whole file, fed in order from byte 0 by whoever has the
/// bytes at hand (a verify pass, the receive loop), and completed from disk.
pub struct Prefix {
    pos: u64,
    hasher: Sha256,
}

impl Default for Prefix {
    fn default() -> Self {
        Prefix {
            pos: 0,
            hasher: Sha256::new(),
        }
    }
}

impl Prefix {
    /// Takes bytes at `offset`: the next ones extend the digest; earlier ones
    /// mean bytes already hashed were replaced, so the digest starts over;
    /// later ones leave a gap that [`Prefix::finish`] reads from disk.
    pub fn feed(&mut self, offset: u64, data: &[u8]) {
        if offset == self.pos {
            self.hasher.update(data);
            self.pos += data.len() as u64;
        } else if offset < self.pos {
            *self = Prefix::default();
        }
    }

    /// The digest of bytes [0, size): what was fed, then the rest from `file`.
    pub fn finish(mut self, file: &File, size: u64) -> io::Result<Sha> {
        if self.pos < size {
            hash_into(file, self.pos, size - self.pos, &mut self.hasher)?;
        }
        Ok(self.hasher.finalize().into())
    }

    /// [`Prefix::finish`] on another thread.
    pub fn spawn_finish(self, file: File, size: u64) -> JoinHandle<io::Result<Sha>> {
        spawn(move || self.finish(&file, size))
    }
}

/// SHA-256 of one block of `file`, also fed to `prefix` when given, so a
/// verify pass over held data doubles as the start of the whole-file digest.
pub fn block(
    file: &File,
    offset: u64,
    len: u64,
    mut prefix: Option<&mut Prefix>,
    buf: &mut [u8],
) -> io::Result<Sha> {
    let mut hasher = Sha256::new();
    read_range(file, offset, len, buf, true, |at, chunk| {
        hasher.update(chunk);
        if let Some(p) = prefix.as_deref_mut() {
            p.feed(at, chunk);
        }
        Ok(())
    })?;
    Ok(hasher.finalize().into())
}

/// Buffers in flight between a receive loop and its hashing thread, and
/// their size: 2 MiB in all, so memory stays flat.
const PIPE_BUFS: usize = 4;
const PIPE_BUF: usize = 512 << 10;

/// What a receiver hashes: the payloads in order, and/or the whole file.
pub struct Hashers {
    pub sent: Option<Sha256>,
    pub prefix: Option<Prefix>,
}

/// Hashing on its own thread, fed the buffers a receive loop has just
/// written, so reading the socket and hashing overlap instead of taking
/// turns on one core.
pub struct Pipe {
    work: Option<std::sync::mpsc::SyncSender<(u64, Vec<u8>, usize)>>,
    free: std::sync::mpsc::Receiver<Vec<u8>>,
    thread: Option<JoinHandle<Hashers>>,
}

impl Pipe {
    pub fn start(mut hashers: Hashers) -> Pipe {
        let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<(u64, Vec<u8>, usize)>(PIPE_BUFS);
        let (free_tx, free_rx) = std::sync::mpsc::channel();
        for _ in 0..PIPE_BUFS {
            let _ = free_tx.send(vec![0u8; PIPE_BUF]);
        }
        let thread = spawn(move || {
            for (offset, buf, len) in work_rx {
                if let Some(h) = hashers.sent.as_mut() {
                    h.update(&buf[..len]);
                }
                if let Some(p) = hashers.prefix.as_mut() {
                    p.feed(offset, &buf[..len]);
                }
                // the loop may be gone (an error): then the buffer just drops
                let _ = free_tx.send(buf);
            }
            hashers
        });
        Pipe {
            work: Some(work_tx),
            free: free_rx,
            thread: Some(thread),
        }
    }

    /// A free buffer; waits while all are being hashed.
    pub fn buffer(&self) -> Vec<u8> {
        self.free.recv().unwrap_or_else(|_| vec![0u8; PIPE_BUF])
    }

    /// Hands `buf[..len]`, the bytes at `offset`, to the hashing thread.
    pub fn push(&self, offset: u64, buf: Vec<u8>, len: usize) {
        if let Some(work) = &self.work {
            let _ = work.send((offset, buf, len));
        }
    }

    /// Waits for the queue to drain and returns the hashers.
    pub fn finish(mut self) -> Hashers {
        self.work = None;
        self.thread
            .take()
            .expect("finish runs once")
            .join()
            .expect("the hashing thread does not panic")
    }
}

/// SHA-256 of data in the order it arrives: inline for small files, on a
/// thread beside the receive loop for large ones (where reading the socket
/// and hashing then overlap on two cores).
pub enum Running {
    Inline(Sha256),
    Thread(Pipe),
}

impl Running {
    pub fn new(threaded: bool) -> Running {
        match threaded {
            true => Running::Thread(Pipe::start(Hashers {
                sent: Some(Sha256::new()),
                prefix: None,
            })),
            false => Running::Inline(Sha256::new()),
        }
    }

    /// Hashes bytes that are not in one of the thread's buffers.
    pub fn update(&mut self, offset: u64, bytes: &[u8]) {
        match self {
            Running::Inline(h) => h.update(bytes),
            Running::Thread(pipe) => {
                for (i, chunk) in bytes.chunks(PIPE_BUF).enumerate() {
                    let mut buf = pipe.buffer();
                    buf[..chunk.len()].copy_from_slice(chunk);
                    let at = offset + (i * PIPE_BUF) as u64;
                    pipe.push(at, buf, chunk.len());
                }
            }
        }
    }

    pub fn finish(self) -> Sha {
        match self {
            Running::Inline(h) => h.finalize().into(),
            Running::Thread(pipe) => pipe
                .finish()
                .sent
                .map(|h| h.finalize().into())
                .unwrap_or_default(),
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        self.work = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn prefix_completes_from_disk_and_restarts_on_rewrites() {
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        file.write_all(&data).unwrap();
        let whole = hash_range(&file, 0, data.len() as u64).unwrap();
        let mut p = Prefix::default();
        p.feed(0, &data[..1000]);
        p.feed(5000, &data[5000..6000]);
        assert_eq!(p.finish(&file, data.len() as u64).unwrap(), whole);
        let mut p = Prefix::default();
        p.feed(0, b"wrong bytes");
        p.feed(3, b"rewritten");
        assert_eq!(p.finish(&file, data.len() as u64).unwrap(), whole);
    }
}
