//! Reading a byte range of a file at absolute offsets, through a buffer:
//! what sending and hashing both do, so neither owns it.

use std::fs::File;
use std::io;

use crate::interrupt;

/// The one buffer size of every range read and of each side's copy loop.
pub const BUF_SIZE: usize = 1 << 20;

/// The page size [`Buf`] places its bytes by.
pub const BUF_ALIGN: usize = 4096;

/// A buffer for the kernel to copy file pages and socket data into and out
/// of, whose bytes start where in a page the caller says: on an AMD EPYC
/// (Zen, FSRM) the kernel's `rep movsb` copy runs at a quarter of its speed
/// when the destination lies 1 to 31 bytes past the source within a page.
/// A large `Vec` from glibc's malloc starts 16 bytes into a page, and a
/// page-cache page's bytes at 0: pread of a cached file into such a buffer
/// cost 0.49 CPU-s/GiB, into a page-aligned one 0.13 (32 or more bytes in,
/// 0.13 to 0.14). So a buffer that file bytes at `offset` go through is
/// [`Buf::place`]d at `offset`: then it and the file's pages are alike
/// within a page, for a read, a write, and a receive of bytes a sender
/// sent from its page cache.
pub struct Buf {
    bytes: Vec<u8>,
    /// Where in `bytes` a page starts.
    page: usize,
    start: usize,
    len: usize,
}

/// Smaller buffers are not placed: their copies are short, and a small
/// file hashed or sent through one would pay for two zeroed pages more.
const PLACED_MIN: usize = 64 << 10;

impl Buf {
    /// `len` zero bytes; from [`PLACED_MIN`] on, starting on a page
    /// boundary (two pages more are allocated, to place them anywhere in
    /// one).
    pub fn new(len: usize) -> Buf {
        let slack = if len >= PLACED_MIN { 2 * BUF_ALIGN } else { 0 };
        let bytes = vec![0u8; len + slack];
        let page = match slack {
            0 => 0,
            _ => (BUF_ALIGN - bytes.as_ptr() as usize % BUF_ALIGN) % BUF_ALIGN,
        };
        Buf {
            bytes,
            page,
            start: page,
            len,
        }
    }

    /// Moves the bytes to start where `offset` of a file starts in its page
    /// (what they held before is not kept); a small buffer stays as it is.
    pub fn place(&mut self, offset: u64) {
        if self.bytes.len() > self.len {
            self.start = self.page + (offset % BUF_ALIGN as u64) as usize;
        }
    }
}

impl std::ops::Deref for Buf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.len]
    }
}

impl std::ops::DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.start + self.len]
    }
}

/// Reads at an absolute offset without moving a shared file position, so a
/// hashing thread and a sending thread can read the same file.
pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        std::os::windows::fs::FileExt::seek_read(file, buf, offset)
    }
}

/// Reads bytes [offset, offset+count) of `file` through `buf`, handing each
/// piece to `each` with the offset it starts at. The one loop every range
/// read goes through: EINTR is retried, a file that ends early is
/// [`shrank`], and with `interruptible` Ctrl-C ends it between reads with
/// [`interrupt::stopped`]. Not interruptible is for a range that must be
/// finished once begun: a DATA frame's payload, once its header went out.
pub fn read_range(
    file: &File,
    offset: u64,
    count: u64,
    buf: &mut [u8],
    interruptible: bool,
    mut each: impl FnMut(u64, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut done = 0u64;
    while done < count {
        if interruptible && interrupt::requested() {
            return Err(interrupt::stopped());
        }
        let want = (count - done).min(buf.len() as u64) as usize;
        match read_at(file, &mut buf[..want], offset + done) {
            Ok(0) => return Err(shrank(offset + done)),
            Ok(n) => {
                each(offset + done, &buf[..n])?;
                done += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Fills `buf` from `offset` of `file`, straight into it (no buffer of
/// its own): EINTR is retried, a file that ends early is [`shrank`].
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match read_at(file, &mut buf[done..], offset + done as u64) {
            Ok(0) => return Err(shrank(offset + done as u64)),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The error for a source that ended before the range did.
pub fn shrank(at: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("changed during the transfer (it ended at byte {at})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buf_starts_where_its_offset_does_in_a_page() {
        let mut small = Buf::new(100);
        small.place(16);
        assert_eq!(small.len(), 100);
        for len in [PLACED_MIN, BUF_SIZE] {
            let mut buf = Buf::new(len);
            assert_eq!(buf.as_ptr() as usize % BUF_ALIGN, 0);
            for offset in [0u64, 16, 4095, 4096, (1 << 30) + 17] {
                buf.place(offset);
                assert_eq!(buf.as_ptr() as usize % BUF_ALIGN, (offset % 4096) as usize);
                assert_eq!(buf.len(), len);
                buf[len - 1] = 1;
            }
        }
    }
}
