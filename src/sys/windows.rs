//! Windows (and any other target that is not a unix, though the README's
//! Platforms names none): std covers the files and sockets zc uses there,
//! so these are the answers of a platform without the unix calls.

use std::fs::File;
use std::io;
use std::path::Path;

pub fn free_space(_path: &Path) -> io::Result<u64> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// No advisory lock to take: every open gets the file.
pub fn try_lock(_file: &File) -> io::Result<bool> {
    Ok(true)
}

/// No soft limit on open handles to raise: a fixed count to size batches by.
pub fn raise_open_files() -> u64 {
    8192
}

/// Windows has no umask.
pub fn note_umask() {}

pub fn umask() -> Option<u32> {
    None
}

/// Windows names the machine in COMPUTERNAME.
pub fn hostname() -> Option<String> {
    std::env::var("COMPUTERNAME").ok().filter(|n| !n.is_empty())
}
