//! SHA-256 over file ranges, on a thread of its own so that hashing overlaps
//! the transfer instead of following it.

use std::fs::File;
use std::io;
use std::thread::{self, JoinHandle};

use sha2::{Digest, Sha256};

use crate::conn;
use crate::copy::{self, read_at, BUF_SIZE};
use crate::interrupt;

pub type Sha = [u8; 32];

/// SHA-256 of bytes [offset, offset+count) of `file`, read with a fixed buffer.
pub fn hash_range(file: &File, offset: u64, count: u64) -> io::Result<Sha> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUF_SIZE.min(count.max(1) as usize)];
    let mut done = 0u64;
    while done < count {
        if interrupt::requested() {
            return Err(conn::stopped());
        }
        let want = (count - done).min(buf.len() as u64) as usize;
        match read_at(file, &mut buf[..want], offset + done) {
            Ok(0) => return Err(copy::shrank(offset + done)),
            Ok(n) => {
                hasher.update(&buf[..n]);
                done += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hasher.finalize().into())
}

/// Hashes the range on another thread; join the handle for the digest.
pub fn spawn_range(file: File, offset: u64, count: u64) -> JoinHandle<io::Result<Sha>> {
    thread::Builder::new()
        .name("zc-hash".into())
        .spawn(move || hash_range(&file, offset, count))
        .expect("spawning the hashing thread")
}
