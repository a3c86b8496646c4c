//! A raw transfer on the receiving side: no header, bytes until the peer
//! closes, into stdout or a file (from `--offset` without truncating).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::config::{Output, RecvConfig};
use crate::conn::{Conn, Way};
use crate::copy::{self, RecvError};
use crate::exit::{self, ExitCode, Failure};
use crate::output;
use crate::progress::{Reporter, Role, Start, Summary};

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
    // no keepalives: a raw peer (nc, socat) would take them for data
    conn.limit(Way::Recv, cfg.common.limit_rate);
    let (label, start) = match sink {
        Sink::Stdout(_) => ("-".to_string(), 0),
        Sink::File { path, start, .. } => (path.display().to_string(), *start),
    };
    let mut bar = reporter.transfer(&Start {
        role: Role::Recv,
        name: label.clone(),
        peer: conn.peer.clone(),
        size: None,
        offset: start,
        count: None,
        resumed_from: start,
    });
    // Raw mode hashes nothing, so a device such as /dev/null takes splice(2).
    let (writer, splice) = match sink {
        Sink::Stdout(out) => {
            let splice = out.is_char_device();
            (out.sink(), splice)
        }
        Sink::File { file, .. } => (copy::Sink::File(file), false),
    };
    let mut chunks = copy::Counted::new(|total| bar.update(total));
    let got = copy::recv(&mut conn, writer, None, splice, &mut chunks);
    let synced = match sink {
        Sink::File { file, .. } => file.sync_all().with_context(|| label.clone()),
        Sink::Stdout(out) => out.flush().context("stdout"),
    };
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
    let note = match sink {
        Sink::File { .. } => Some(format!("{label} ends at byte {}", start + received)),
        Sink::Stdout(_) => None,
    };
    bar.finish(&Summary {
        role: Role::Recv,
        name: label.clone(),
        path: Some(label),
        bytes: received,
        elapsed: began.elapsed(),
        zero_copy: false,
        sha256: None,
        resumed_from: start,
        note,
    });
    Ok(())
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
        return anyhow::Error::new(Failure {
            code: ExitCode::Interrupted,
            message: format!("interrupted{hint}"),
        });
    }
    let what = if local {
        label.to_string()
    } else {
        format!("{peer}: connection lost")
    };
    err.context(format!("{what}{hint}"))
}
