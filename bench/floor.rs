//! The floor under a verified or an encrypted transfer: the work one cannot
//! skip, done the cheapest way this machine offers and nothing else (no
//! frames, no progress, no resume), so that `bench.py` can show how far
//! each side of zc sits above it. Linux only; run by `bench.py`:
//!
//!   floor send FILE HOST:PORT sha|aes
//!   floor recv OUT sha|aes     listen on 127.0.0.1 (a free port, said on
//!                              stderr as "listening on 127.0.0.1:PORT"),
//!                              take one connection, write it to OUT
//!
//! sha: the sender sendfile(2)s the file while a thread reads it once more
//! and hashes it; the receiver reads the socket, hashes and writes.
//! aes: the sender reads the file once, each MiB straight into the places
//! of its records (one preadv), hashes the plaintext, seals each record in
//! place and hands them to the socket in one writev; the receiver opens
//! each record in place, into one run of plaintext, hashes it and writes.
//! Buffers are placed as zc places its own (`zc::copy::Buf`). Records are
//! zc's size, 16 KiB, without its content-type byte, and a MiB is read at a
//! time where zc seals 256 KiB a call: neither changes the cost per GiB.
//! Each side prints the SHA-256 it computed; the receiver also "received
//! N bytes".
#![deny(unsafe_code)]

use std::process::ExitCode;

#[cfg(target_os = "linux")]
fn main() -> ExitCode {
    use linux::{recv, send};
    let args: Vec<String> = std::env::args().skip(1).collect();
    let done = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["send", file, to, mode @ ("sha" | "aes")] => send(file, to, mode == "aes"),
        ["recv", out, mode @ ("sha" | "aes")] => recv(out, mode == "aes"),
        _ => Err(std::io::Error::other(
            "usage: floor send FILE HOST:PORT sha|aes | floor recv OUT sha|aes",
        )),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn main() -> ExitCode {
    eprintln!("floor: Linux only");
    ExitCode::FAILURE
}

#[cfg(target_os = "linux")]
mod linux {

    use std::fs::File;
    use std::io::{self, IoSlice, IoSliceMut, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    use sha2::{Digest, Sha256};
    use zc::copy::Buf;
    use zc::secure::aead::{Cipher, KEY, NONCE, TAG};

    /// Plaintext per record, and records per read: a MiB at a time.
    const PLAIN: usize = 16 << 10;
    const RECORDS: usize = 64;
    const HEADER: usize = 5;
    /// Where records start apart in the sender's buffer: more than a record, so
    /// that each plaintext lies 32 or more bytes off its file page's offset
    /// (closer, this CPU copies at a quarter of its speed: see `Buf`).
    const STRIDE: usize = PLAIN + 64;
    const READ: usize = 1 << 20;
    /// The receiver wakes once this much has come (zc's bulk reads do too).
    const LOW_WATER: usize = 256 << 10;
    const BENCH_KEY: [u8; KEY] = [7; KEY];

    pub fn send(path: &str, to: &str, aes: bool) -> io::Result<()> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut sock = TcpStream::connect(to)?;
        let sha = match aes {
            true => send_sealed(&file, len, &mut sock)?,
            false => std::thread::scope(|s| {
                let hashed = s.spawn(|| zc::hash::hash_range(&file, 0, len));
                let mut at = 0;
                while at < len {
                    let left = (len - at).min(1 << 30) as usize;
                    if zc::sys::sendfile(sock.as_fd(), file.as_fd(), &mut at, left)? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                hashed.join().expect("the hash thread does not panic")
            })?,
        };
        sock.shutdown(std::net::Shutdown::Write)?;
        eprintln!("sent {len} bytes, sha256 {}", hex(&sha));
        Ok(())
    }

    fn nonce(n: u64) -> [u8; NONCE] {
        let mut bytes = [0; NONCE];
        bytes[4..].copy_from_slice(&n.to_be_bytes());
        bytes
    }

    fn send_sealed(file: &File, len: u64, sock: &mut TcpStream) -> io::Result<[u8; 32]> {
        let cipher = Cipher::new(&BENCH_KEY);
        let mut hasher = Sha256::new();
        let mut buf = Buf::new(RECORDS * STRIDE);
        let (mut at, mut sealed) = (0u64, 0u64);
        while at < len {
            buf.place(at);
            let first = STRIDE - PLAIN - TAG;
            let mut places: Vec<IoSliceMut> = buf
                .chunks_mut(STRIDE)
                .map(|r| IoSliceMut::new(&mut r[first..first + PLAIN]))
                .collect();
            let n = zc::sys::read_at_vectored(file, &mut places, at)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let mut records = Vec::with_capacity(RECORDS);
            for (i, record) in buf.chunks_mut(STRIDE).enumerate() {
                let plain = (n - (i * PLAIN).min(n)).min(PLAIN);
                if plain == 0 {
                    break;
                }
                let (head, body) = record[first - HEADER..].split_at_mut(HEADER);
                head.copy_from_slice(&record_header(plain + TAG));
                hasher.update(&body[..plain]);
                let tag = cipher
                    .seal(nonce(sealed), head, &mut body[..plain])
                    .map_err(|_| io::Error::other("seal"))?;
                body[plain..plain + TAG].copy_from_slice(&tag);
                sealed += 1;
                records.push(&record[first - HEADER..first + plain + TAG]);
            }
            write_all_vectored(sock, &records)?;
            at += n as u64;
        }
        Ok(hasher.finalize().into())
    }

    fn record_header(body: usize) -> [u8; HEADER] {
        let len = (body as u16).to_be_bytes();
        [23, 3, 3, len[0], len[1]]
    }

    fn write_all_vectored(sock: &mut TcpStream, parts: &[&[u8]]) -> io::Result<()> {
        let mut slices: Vec<IoSlice> = parts.iter().map(|p| IoSlice::new(p)).collect();
        let mut left = &mut slices[..];
        while !left.is_empty() {
            let n = sock.write_vectored(left)?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut left, n);
        }
        Ok(())
    }

    pub fn recv(out: &str, aes: bool) -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        eprintln!("listening on {}", listener.local_addr()?);
        let (mut sock, _) = listener.accept()?;
        zc::sys::set_recv_low_water(sock.as_fd(), LOW_WATER);
        let mut out = File::create(out)?;
        let (got, sha) = match aes {
            true => recv_sealed(&mut sock, &mut out)?,
            false => {
                let mut hasher = Sha256::new();
                let mut buf = Buf::new(READ);
                let mut got = 0u64;
                loop {
                    let n = sock.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    out.write_all(&buf[..n])?;
                    got += n as u64;
                }
                (got, hasher.finalize().into())
            }
        };
        out.sync_all()
            .or_else(|e| match out.metadata()?.is_file() {
                true => Err(e),
                false => Ok(()),
            })?;
        eprintln!("received {got} bytes, sha256 {}", hex(&sha));
        Ok(())
    }

    /// Reads records back to back; opens each into the run of plaintext at
    /// the buffer's start (ring's one pass), hashes it there, and writes the
    /// run once per read. A record cut by the end of a read moves to the
    /// front and the next read completes it.
    fn recv_sealed(sock: &mut TcpStream, out: &mut File) -> io::Result<(u64, [u8; 32])> {
        let cipher = Cipher::new(&BENCH_KEY);
        let mut hasher = Sha256::new();
        let mut buf = Buf::new(READ + STRIDE);
        let (mut got, mut opened, mut held) = (0u64, 0u64, 0usize);
        let mut tail = vec![0u8; STRIDE];
        loop {
            let n = sock.read(&mut buf[held..])?;
            if n == 0 {
                return match held {
                    0 => Ok((got, hasher.finalize().into())),
                    _ => Err(io::ErrorKind::UnexpectedEof.into()),
                };
            }
            let (mut at, end, mut plain) = (0, held + n, 0);
            while end - at >= HEADER {
                let head: [u8; HEADER] = buf[at..at + HEADER].try_into().expect("5 bytes");
                let body = u16::from_be_bytes([head[3], head[4]]) as usize;
                if !(TAG..=PLAIN + TAG).contains(&body) {
                    return Err(io::Error::other("a record of an impossible length"));
                }
                if end - at < HEADER + body {
                    break;
                }
                let len = body - TAG;
                let tag: [u8; TAG] = buf[at + HEADER + len..at + HEADER + body]
                    .try_into()
                    .expect("16 bytes");
                let from = at + HEADER - plain;
                cipher
                    .open_within(
                        nonce(opened),
                        &head,
                        &mut buf[plain..at + HEADER + len],
                        from,
                        &tag,
                    )
                    .map_err(|_| io::Error::other("a record that does not open"))?;
                hasher.update(&buf[plain..plain + len]);
                opened += 1;
                plain += len;
                at += HEADER + body;
            }
            out.write_all(&buf[..plain])?;
            got += plain as u64;
            held = end - at;
            tail[..held].copy_from_slice(&buf[at..end]);
            buf.place(got);
            buf[..held].copy_from_slice(&tail[..held]);
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
