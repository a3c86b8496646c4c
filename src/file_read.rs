//! Reading a byte range of a file at absolute offsets, through a buffer:
//! what sending and hashing both do, so neither owns it.

use std::fs::File;
use std::io;

use crate::interrupt;

/// The one buffer size of every range read and of each side's copy loop.
pub const BUF_SIZE: usize = 1 << 20;

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
