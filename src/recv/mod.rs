//! The receiving role: listen, accept, and hand each connection to the framed
//! or the raw receiver.

mod framed;
mod raw;

use std::net::{TcpListener, TcpStream};
use std::thread;

use anyhow::{Context, Result};

use crate::config::{Output, RecvConfig};
use crate::conn::TICK;
use crate::exit::{self, ExitCode};
use crate::progress::Reporter;
use crate::{interrupt, net};

pub fn run(cfg: &RecvConfig, reporter: &Reporter) -> Result<()> {
    check_output(cfg)?;
    if cfg.keep_open && !matches!(cfg.output, Output::Dir(_)) {
        return Err(exit::usage(
            "-k writes several files: -o must be a directory",
        ));
    }
    if cfg.keep_open && cfg.common.raw {
        return Err(exit::usage(
            "-k needs framed transfers (they carry names), not --raw",
        ));
    }
    if cfg.common.raw {
        // Fail on the output before anyone connects.
        let mut sink = raw::Sink::open(cfg)?;
        let listener = net::listen(cfg.listen, cfg.common.family)?;
        reporter.listening(listener.local_addr()?);
        let stream = accept(&listener)?;
        return raw::receive(cfg, &mut sink, stream, reporter);
    }
    let listener = net::listen(cfg.listen, cfg.common.family)?;
    reporter.listening(listener.local_addr()?);
    if cfg.keep_open {
        return serve_many(cfg, &listener, reporter);
    }
    loop {
        let stream = accept(&listener)?;
        match framed::receive(cfg, stream, reporter) {
            // A port scan or a stray nc must not end a receiver that waits
            // for a real sender.
            Err(e) if framed::is_not_a_sender(&e) => {
                reporter.warn(&exit::message_of(&e));
            }
            other => return other,
        }
    }
}

/// `-k`: every connection on its own thread, until Ctrl-C.
fn serve_many(cfg: &RecvConfig, listener: &TcpListener, reporter: &Reporter) -> Result<()> {
    thread::scope(|scope| loop {
        let stream = match accept(listener) {
            Ok(s) => s,
            Err(e) => return Err(e),
        };
        scope.spawn(move || {
            if let Err(e) = framed::receive(cfg, stream, reporter) {
                let code = exit::code_of(&e);
                if code != ExitCode::Interrupted {
                    reporter.error(&exit::message_of(&e), code);
                }
            }
        });
    })
}

/// Waits for a connection, noticing Ctrl-C between ticks.
fn accept(listener: &TcpListener) -> Result<TcpStream> {
    loop {
        if interrupt::requested() {
            return Err(exit::interrupted("interrupted while waiting for a sender"));
        }
        if !ready(listener)? {
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                stream
                    .set_nonblocking(false)
                    .context("accepting a connection")?;
                return Ok(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(anyhow::Error::new(e).context("accepting a connection")),
        }
    }
}

#[cfg(unix)]
fn ready(listener: &TcpListener) -> Result<bool> {
    use std::os::fd::AsFd;
    crate::sys::wait_readable(listener.as_fd(), TICK).context("waiting for a connection")
}

#[cfg(not(unix))]
fn ready(listener: &TcpListener) -> Result<bool> {
    listener.set_nonblocking(true).context("listening")?;
    std::thread::sleep(std::time::Duration::from_millis(20).min(TICK));
    Ok(true)
}

/// Refuses an output that cannot work before anybody connects.
fn check_output(cfg: &RecvConfig) -> Result<()> {
    match &cfg.output {
        Output::Dir(dir) if !dir.is_dir() => {
            Err(exit::usage(format!("{}: no such directory", dir.display())))
        }
        Output::File(file) => {
            let dir = crate::output::dir_of(file);
            if !dir.is_dir() {
                return Err(exit::usage(format!(
                    "{}: no such directory {}",
                    file.display(),
                    dir.display()
                )));
            }
            if file.is_dir() {
                return Err(exit::usage(format!("{}: is a directory", file.display())));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
