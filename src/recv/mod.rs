//! The receiving role: listen, accept, and hand each connection to the framed
//! or the raw receiver.

mod hello;
mod incoming;
mod peer;
mod raw;
mod session;
pub mod sink;
mod tree;
mod tree_files;
mod wants;

use std::net::TcpListener;
use std::time::Instant;

use anyhow::Result;

use crate::config::{Output, Peer, RecvConfig};
use crate::exit::{self, Tag};
use crate::lan::{Found, Role};
use crate::net;
use crate::progress::Reporter;

/// Readies the process for receiving; call it before any thread starts:
/// the descriptor table grows to hold a whole batch of open parts while
/// growing it is cheap, and the umask is read while reading it is safe.
pub fn prepare() {
    crate::sys::note_umask();
    crate::sys::reserve_descriptors(tree_files::batch_most() as u64 + 64);
}

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
    let listen = match &cfg.peer {
        Peer::Listen(addr) => *addr,
        Peer::Connect(sender) => return pull(cfg, sender, None, reporter),
        Peer::Find(want) => {
            let found = crate::lan::find(want, cfg.common.find_timeout)?;
            reporter.found(&found);
            return pull(cfg, &crate::lan::shown(&found.name), Some(&found), reporter);
        }
    };
    if cfg.common.raw {
        // Fail on the output before anyone connects.
        let mut sink = raw::Sink::open(cfg)?;
        let listener = net::listen(listen, cfg.common.family)?;
        reporter.listening(listener.local_addr()?, None);
        let stream = net::accept(&listener, None)?.expect("no deadline, so a connection");
        return raw::receive(cfg, &mut sink, stream, reporter);
    }
    let listener = net::listen(listen, cfg.common.family)?;
    // announced first, so that the command printed for the other side
    // leaves the address out only when the LAN can find this receiver
    let made = cfg.common.announce(&listener, Role::Receiver);
    let found_by_code = matches!(made, Some(Ok(Some(_))));
    let code = cfg.common.fresh_code.as_deref();
    reporter.listening_on(&listener, code, false, found_by_code)?;
    let _announced = reporter.announced(cfg.common.announce.as_deref(), made);
    if cfg.keep_open {
        return serve_many(cfg, &listener, reporter);
    }
    // After a dropped connection, the receiver waits this long for the
    // sender to come back (and resume) before it gives up.
    let mut pending: Option<(anyhow::Error, Instant)> = None;
    loop {
        let deadline = pending.as_ref().map(|(_, d)| *d);
        let Some(stream) = net::accept(&listener, deadline)? else {
            let (err, _) = pending.expect("only a deadline ends an accept");
            return Err(err);
        };
        let Err(e) = hello::receive(cfg, stream, None, reporter) else {
            return Ok(());
        };
        match exit::tag_of(&e) {
            // A port scan or a stray nc must not end a receiver that waits
            // for a real sender.
            Some(Tag::NotASender) => reporter.warn(&exit::message_of(&e)),
            Some(Tag::Resumable) => {
                let wait = cfg.common.idle_timeout;
                reporter.warn(&format!(
                    "{}; waiting up to {} s for the sender to resume",
                    exit::message_of(&e),
                    wait.as_secs_f64()
                ));
                pending = Some((e, Instant::now() + wait));
            }
            Some(Tag::Retryable) | None => return Err(e),
        }
    }
}

/// Reverse mode: connect to a sender that listens, and receive one transfer.
fn pull(cfg: &RecvConfig, sender: &str, found: Option<&Found>, reporter: &Reporter) -> Result<()> {
    let mut sink = if cfg.common.raw {
        Some(raw::Sink::open(cfg)?)
    } else {
        None
    };
    let c = &cfg.common;
    let stream = match found {
        Some(found) => net::connect_any(&found.addrs, c.family, c.connect_timeout, sender)?,
        None => net::connect(sender, c.family, c.connect_timeout)?,
    };
    match &mut sink {
        Some(sink) => raw::receive(cfg, sink, stream, reporter),
        None => hello::receive(cfg, stream, None, reporter),
    }
}

/// `-k`: every connection on its own thread, until Ctrl-C; each
/// transfer's end is reported, and the receiver goes on.
fn serve_many(cfg: &RecvConfig, listener: &TcpListener, reporter: &Reporter) -> Result<()> {
    crate::serve::serve(listener, cfg.max_conns, reporter, |stream, unproven| {
        if let Err(e) = hello::receive(cfg, stream, Some(unproven), reporter) {
            reporter.error(&exit::message_of(&e), exit::code_of(&e));
        }
    })
}

/// Refuses an output that cannot work before anybody connects.
pub fn check_output(cfg: &RecvConfig) -> Result<()> {
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
