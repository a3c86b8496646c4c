//! A raw transfer on the receiving side: no header, bytes until the peer
//! closes, into stdout or a file (from `--offset` without truncating).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::config::{Output, RecvConfig};
use crate::conn::{Conn, Way};
use crate::copy::{self, Received, RecvError};
use crate::exit::{self, ExitCode};
use crate::hash::{Hashers, Pipe, Sha};
use crate::output;
use crate::progress::{Progress, Reporter, Role, Start, Summary};
use crate::protocol as proto;

/// The output of a raw receive, opened before listening so a bad path fails
/// before anyone connects.
pub enum Sink {
    Stdout(output::Stream),
    File {
        file: File,
        path: PathBuf,
        start: u64,
    },
}

impl Sink {
    pub fn open(cfg: &RecvConfig) -> Result<Sink> {
        let path = match &cfg.output {
            Output::File(path) => path.clone(),
            Output::Stream(path) => {
                let out = output::Stream::open(path).with_context(|| path.display().to_string())?;
                return Ok(Sink::Stdout(out));
            }
            _ => return Ok(Sink::Stdout(output::Stream::stdout())),
        };
        let start = cfg.raw_offset.unwrap_or(0);
        let resuming = cfg.raw_offset.is_some();
        if !resuming && !cfg.force && path.symlink_metadata().is_ok() {
            return Err(exit::refused(format!(
                "{} exists (use --force to overwrite, or --offset to continue it)",
                path.display()
            )));
        }
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(!resuming);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.custom_flags(libc::O_NOFOLLOW);
        }
        let mut file = opts
            .open(&path)
            .with_context(|| path.display().to_string())?;
        file.seek(SeekFrom::Start(start))
            .with_context(|| path.display().to_string())?;
        Ok(Sink::File { file, path, start })
    }
}

pub fn receive(
    cfg: &RecvConfig,
    sink: &mut Sink,
    stream: TcpStream,
    reporter: &Reporter,
) -> Result<()> {
    let began = Instant::now();
    let mut conn = Conn::new(stream, cfg.common.idle_timeout).context("accepting a connection")?;
    conn.stop_on_read = true;
    // no keepalives: a raw peer (nc, socat) would take them for data
    conn.limit(Way::Recv, cfg.common.limit_rate);
    let (label, start) = match sink {
        Sink::Stdout(_) => ("-".to_string(), 0),
        Sink::File { path, start, .. } => (path.display().to_string(), *start),
    };
    let mut bar = reporter.transfer(&Start {
        role: Role::Recv,
        name: label.as_str().into(),
        peer: conn.peer.clone(),
        size: None,
        offset: start,
        count: None,
        resumed_from: start,
    });
    let (got, digest) = pour(&mut conn, sink, cfg.common.verify, bar.as_mut());
    let synced = match sink {
        Sink::File { file, .. } => file.sync_all().with_context(|| label.clone()),
        Sink::Stdout(out) => out.flush().context("stdout"),
    };
    let zero_copy = got
        .as_ref()
        .is_ok_and(|g| g.bytes > 0 && g.spliced == g.bytes);
    let received = match got {
        Ok(got) => got.bytes,
        Err(RecvError {
            bytes,
            local,
            error,
        }) => {
            bar.abandon();
            return Err(stopped(cfg, &label, start, bytes, local, error, &conn.peer));
        }
    };
    synced?;
    // Raw mode cannot tell a finished stream from a cut one: the exact end
    // is what a manual resume (--offset on both sides) needs.
    let mut notes = Vec::new();
    if let Sink::File { .. } = sink {
        notes.push(format!("{label} ends at byte {}", start + received));
    }
    // Nor can it tell whether the digest covers all that was meant to come:
    // the exact count beside it lets a short transfer show. A file from byte
    // 0 already says it ("ends at byte N"); with --offset the file also holds
    // bytes this connection did not bring.
    let covers = match sink {
        Sink::File { .. } if start > 0 => Some(format!(", from byte {start}")),
        Sink::File { .. } => None,
        Sink::Stdout(_) => Some(String::new()),
    };
    if let (Some(_), Some(from)) = (&digest, covers) {
        notes.push(format!("sha256 of the {received} bytes received{from}"));
    }
    bar.finish(&Summary {
        encrypted: false,
        role: Role::Recv,
        name: label.as_str().into(),
        path: Some(label.into()),
        bytes: received,
        elapsed: began.elapsed(),
        zero_copy,
        sha256: digest.map(|d| proto::hex(&d)),
        resumed_from: start,
        reconnects: 0,
        sent_before: 0,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
        digest: None,
    });
    Ok(())
}

/// Receives until the peer closes, and with `verify` the SHA-256 of the
/// bytes in the order they came (only when all went well: a digest of
/// bytes before a failure would pass for the whole).
fn pour(
    conn: &mut Conn,
    sink: &mut Sink,
    verify: bool,
    bar: &mut dyn Progress,
) -> (Result<Received, RecvError>, Option<Sha>) {
    // A device such as /dev/null, or a file, takes splice(2) when nothing
    // needs the bytes (a file whose file system refuses it takes
    // read/write). A digest does need them, and reading them is the
    // cheaper way to get it: a device cannot be read back at all, so
    // hashing each buffer as it passes (on the pipe's thread, overlapping
    // the next read) costs no second read, where hashing the written range
    // afterwards would read it all again and add that time after the last
    // byte.
    let (writer, splice) = match sink {
        Sink::Stdout(out) => {
            let splice = !verify && out.is_char_device();
            (out.sink(), splice)
        }
        Sink::File { file, .. } => (copy::Sink::File(file), !verify),
    };
    let on_total = |total| bar.update(total);
    if !verify {
        let mut chunks = copy::Counted::new(on_total);
        return (copy::recv(conn, writer, None, splice, &mut chunks), None);
    }
    let pipe = Pipe::start(Hashers {
        sent: Some(Sha256::new()),
    });
    let mut chunks = Hashed {
        pipe: &pipe,
        total: 0,
        on_total,
    };
    let got = copy::recv(conn, writer, None, false, &mut chunks);
    if got.is_err() {
        return (got, None);
    }
    let digest = pipe.finish().sent.map(|h| h.finalize().into());
    (got, digest)
}

/// Chunks for a hashed receive: each, once written, goes to the hashing
/// thread, and the running total to the progress display.
struct Hashed<'a, F: FnMut(u64)> {
    pipe: &'a Pipe,
    total: u64,
    on_total: F,
}

impl<F: FnMut(u64)> copy::Chunks for Hashed<'_, F> {
    fn take(&mut self) -> copy::Buf {
        // placed where its bytes land in the file's page: a copy into a
        // page cache page at another in-page offset is slower on some CPUs
        let mut buf = self.pipe.buffer();
        buf.place(self.total);
        buf
    }

    fn written(&mut self, buf: copy::Buf, len: usize) {
        // An empty last buffer goes back too, so the pool never runs dry.
        self.pipe.push(self.total, buf, len);
        if len > 0 {
            self.total += len as u64;
            (self.on_total)(self.total);
        }
    }

    fn spliced(&mut self, n: u64) {
        unreachable!("a hashed receive never splices ({n} bytes)")
    }
}

/// The one line for a raw transfer that stopped early: how much is on disk
/// and how to go on from there.
fn stopped(
    cfg: &RecvConfig,
    label: &str,
    start: u64,
    bytes: u64,
    local: bool,
    error: std::io::Error,
    peer: &str,
) -> anyhow::Error {
    let at = start + bytes;
    let hint = match &cfg.output {
        Output::File(path) => format!(
            "; {label} holds {at} bytes; continue with 'zc recv --raw --offset {at} -o {}' and 'zc send --raw --offset {at} FILE HOST:PORT'",
            path.display()
        ),
        _ => format!("; {bytes} bytes were written to stdout"),
    };
    let err = anyhow::Error::new(error);
    if exit::code_of(&err) == ExitCode::Interrupted {
        return exit::interrupted(format!("interrupted{hint}"));
    }
    let what = if local {
        label.to_string()
    } else {
        format!("{peer}: connection lost")
    };
    err.context(format!("{what}{hint}"))
}
