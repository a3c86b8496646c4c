//! Systems without a zero-copy path wired in yet: always the buffered path.

use std::fs::File;
use std::io;

use super::ZeroCopyError;
use crate::conn::Conn;

pub const AVAILABLE: bool = false;

pub fn send_file(
    _file: &File,
    _conn: &mut Conn,
    _offset: u64,
    _count: u64,
    _progress: &mut dyn FnMut(u64),
) -> Result<u64, ZeroCopyError> {
    Err(ZeroCopyError::Unsupported(io::Error::from(
        io::ErrorKind::Unsupported,
    )))
}
