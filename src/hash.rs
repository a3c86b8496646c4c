//! SHA-256 over file ranges, on a thread of its own so that hashing overlaps
//! the transfer instead of following it.

use std::fs::File;
use std::io;
use std::thread::{self, JoinHandle};

use sha2::{Digest, Sha256};

use crate::file_read::{read_range, Buf, BUF_SIZE};

pub type Sha = [u8; 32];

/// SHA-256 of bytes [offset, offset+count) of `file`, read with a fixed buffer.
pub fn hash_range(file: &File, offset: u64, count: u64) -> io::Result<Sha> {
    let mut hasher = Sha256::new();
    hash_into(file, offset, count, &mut hasher)?;
    Ok(hasher.finalize().into())
}

/// Feeds bytes [offset, offset+count) of `file` into `hasher`.
pub fn hash_into(file: &File, offset: u64, count: u64, hasher: &mut Sha256) -> io::Result<()> {
    let mut buf = Buf::new(BUF_SIZE.min(count.max(1) as usize));
    buf.place(offset);
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

/// SHA-256 of one block of `file`, read into `buf`.
pub fn block(file: &File, offset: u64, len: u64, buf: &mut [u8]) -> io::Result<Sha> {
    let mut hasher = Sha256::new();
    read_range(file, offset, len, buf, true, |_, chunk| {
        hasher.update(chunk);
        Ok(())
    })?;
    Ok(hasher.finalize().into())
}

/// Buffers in flight between a receive loop and its hashing thread, and
/// their size: 2 MiB in all, so memory stays flat.
const PIPE_BUFS: usize = 4;
const PIPE_BUF: usize = 512 << 10;

/// What a receiver hashes: the payloads in order.
pub struct Hashers {
    pub sent: Option<Sha256>,
}

/// Hashing on its own thread, fed the buffers a receive loop has just
/// written, so reading the socket and hashing overlap instead of taking
/// turns on one core.
pub struct Pipe {
    work: Option<std::sync::mpsc::SyncSender<(u64, Buf, usize)>>,
    free: std::sync::mpsc::Receiver<Buf>,
    thread: Option<JoinHandle<Hashers>>,
}

impl Pipe {
    pub fn start(mut hashers: Hashers) -> Pipe {
        let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<(u64, Buf, usize)>(PIPE_BUFS);
        let (free_tx, free_rx) = std::sync::mpsc::channel();
        for _ in 0..PIPE_BUFS {
            let _ = free_tx.send(Buf::new(PIPE_BUF));
        }
        let thread = spawn(move || {
            for (_, buf, len) in work_rx {
                if let Some(h) = hashers.sent.as_mut() {
                    h.update(&buf[..len]);
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
    pub fn buffer(&self) -> Buf {
        self.free.recv().unwrap_or_else(|_| Buf::new(PIPE_BUF))
    }

    /// Hands `buf[..len]`, the bytes at `offset`, to the hashing thread.
    pub fn push(&self, offset: u64, buf: Buf, len: usize) {
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

/// Whether hashing on a thread beside the loop that moves the bytes pays:
/// the two then overlap, when there is a core for each. A peer on this
/// machine keeps the same cores busy, so with fewer than four the thread
/// only takes turns with it, and handing every buffer from one core to the
/// other costs more than it saves: 1 GiB over loopback on 2 cores, the
/// receiver 1.99 -> 1.71 CPU-s/GiB into a tmpfs file (2.02 -> 1.75
/// encrypted) at the same wall time. The encrypted sender asks it too.
pub fn thread_pays(peer_here: bool) -> bool {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    cores >= if peer_here { 4 } else { 2 }
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

    /// A receive loop reads into these buffers and writes them into a
    /// file's pages: they start on a page boundary (see `Buf` for why),
    /// not where malloc puts a large block (16 bytes in).
    #[test]
    fn the_pipes_buffers_start_on_a_page_boundary() {
        let pipe = Pipe::start(Hashers { sent: None });
        let bufs: Vec<_> = (0..PIPE_BUFS).map(|_| pipe.buffer()).collect();
        for buf in &bufs {
            assert_eq!(buf.as_ptr() as usize % 4096, 0);
            assert_eq!(buf.len(), PIPE_BUF);
        }
    }
}
