//! macOS and FreeBSD: their own sendfile(2) out, the buffered copy in.

use std::fs::File;
use std::io;

pub use super::sendfile::send_file;
use super::{Received, RecvError};
use crate::conn::Conn;

pub const AVAILABLE: bool = true;
/// splice(2) is Linux only.
pub const SPLICE: bool = false;

pub fn write_head(conn: &mut Conn, head: &[u8]) -> io::Result<()> {
    io::Write::write_all(conn, head)
}

pub fn recv_file(
    _conn: &mut Conn,
    _out: &File,
    _len: Option<u64>,
    _chunks: &mut dyn super::Chunks,
) -> Result<Received, RecvError> {
    unreachable!("callers check SPLICE first")
}
