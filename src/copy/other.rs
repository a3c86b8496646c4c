//! Systems without a zero-copy path wired in yet: always the buffered path.

use std::fs::File;
use std::io;

use super::{Received, RecvError, ZeroCopyError};
use crate::conn::Conn;

pub const AVAILABLE: bool = false;
/// splice(2) is Linux only.
pub const SPLICE: bool = false;

pub fn write_head(conn: &mut Conn, head: &[u8]) -> io::Result<()> {
    io::Write::write_all(conn, head)
}

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

pub fn recv_file(
    _conn: &mut Conn,
    _out: &File,
    _len: Option<u64>,
    _chunks: &mut dyn super::Chunks,
) -> Result<Received, RecvError> {
    unreachable!("callers check SPLICE first")
}
