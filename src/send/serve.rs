//! `zc send --listen ADDR -k`: the sources go to every receiver that
//! connects, each session on a thread of its own with its own progress,
//! until Ctrl-C; the sessions share one cache of whole-file digests.

use std::net::TcpStream;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::digests::Digests;
use super::{tree, Input};
use crate::admission::Unproven;
use crate::config::{Payload, Peer, SendConfig};
use crate::conn::{Conn, Way};
use crate::exit;
use crate::net;
use crate::progress::Reporter;

pub(super) fn serve(cfg: &SendConfig, reporter: &Reporter) -> Result<()> {
    let Peer::Listen(addr) = cfg.peer else {
        unreachable!("the config gives -k only with --listen")
    };
    // what cannot be served is said (and a tree's caveats once) before
    // anyone connects
    plan(cfg, Some(reporter))?;
    let digests = Arc::new(Digests::default());
    let listener = net::listen(addr, cfg.common.family)?;
    reporter.listening(listener.local_addr().context("the listening socket")?, None);
    let made = cfg.common.announce(&listener, crate::lan::Role::Sender);
    let _announced = reporter.announced(cfg.common.announce.as_deref(), made);
    crate::serve::serve(&listener, cfg.max_conns, reporter, |stream, unproven| {
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "a receiver".to_string(), |a| a.to_string());
        // one receiver's failure is its own: said with its address, and
        // the others go on
        if let Err(e) = session(cfg, stream, unproven, reporter, &digests) {
            let message = exit::message_of(&e);
            let line = match message.contains(&peer) {
                true => message,
                false => format!("{peer}: {message}"),
            };
            reporter.error(&line, exit::code_of(&e));
        }
    })
}

/// One receiver's session, over the sources as they are when it connects.
fn session(
    cfg: &SendConfig,
    stream: TcpStream,
    unproven: Unproven,
    reporter: &Reporter,
    digests: &Arc<Digests>,
) -> Result<()> {
    let mut conn = Conn::new(stream, cfg.common.idle_timeout).context("a new connection")?;
    conn.set_keepalive(&crate::protocol::KEEPALIVE_FRAME);
    conn.handshake(super::handshake_within(cfg), Some(unproven));
    conn.limit(Way::Send, cfg.common.limit_rate);
    let plan = plan(cfg, None)?.sharing(digests.clone());
    tree::session(cfg, &plan, &mut conn, reporter, &super::Journey::new())
}

/// The sources, opened and checked now: a file rewritten, grown or
/// replaced since the last receiver is offered as it now is (its digest
/// follows its identity, not its name). With `reporter`, a tree's caveats
/// are said.
fn plan(cfg: &SendConfig, reporter: Option<&Reporter>) -> Result<tree::Outgoing> {
    match (&cfg.payload, reporter) {
        (Payload::Single(source), _) => {
            let opened = super::open(cfg, source)?;
            if let Input::Stream { .. } = opened.input {
                return Err(exit::usage(format!(
                    "{}: -k sends the source to every receiver, and a stream \
                     (a pipe, a device) can be read only once",
                    opened.label
                )));
            }
            Ok(tree::Outgoing::single(opened))
        }
        (Payload::Tree(sources), reporter) => tree::Outgoing::new(sources, reporter),
    }
}
