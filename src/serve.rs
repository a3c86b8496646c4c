//! `-k` on either side: accept connections until Ctrl-C, each on a thread
//! of its own, at most `--max-conns` at once.

use std::net::{TcpListener, TcpStream};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use anyhow::Result;

use crate::admission::{Admission, Unproven, HANDSHAKES_MOST};
use crate::exit::{self, ExitCode};
use crate::net;
use crate::progress::Reporter;

/// How long `-k` waits after a failed accept (no descriptors left) or
/// spawn before it tries again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(200);

/// Runs `handle` on every connection, on a thread of its own, until Ctrl-C;
/// then waits for the sessions under way (each sees Ctrl-C and stops
/// cleanly) and returns the interruption. While `max` sessions run, no
/// connection is accepted: later ones wait in the kernel's listen backlog,
/// where they hold no descriptor of ours, and are served as sessions end.
/// A connection comes with its place among those in their handshake
/// ([`Admission`]), which `handle` gives up once the peer proved itself; a
/// peer that has not cannot hold a session's place against a new one.
pub fn serve(
    listener: &TcpListener,
    max: usize,
    reporter: &Reporter,
    handle: impl Fn(TcpStream, Unproven) + Sync,
) -> Result<()> {
    let slots = Slots::new(max);
    let admission = Admission::default();
    let handle = &handle;
    thread::scope(|scope| loop {
        slots.wait_room(&admission)?;
        let stream = match net::accept(listener, None) {
            Ok(stream) => stream.expect("no deadline, so a connection"),
            Err(e) if exit::code_of(&e) == ExitCode::Interrupted => return Err(e),
            // Out of descriptors (or another passing fault): the connections
            // already open will end and free some; a server that anyone can
            // stop by opening enough sockets is no server.
            Err(e) => {
                reporter.warn(&exit::message_of(&e));
                // a stranger that has had its time frees its descriptors
                admission.give_way();
                thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
        // wait_room let this one in because the oldest stranger had had its
        // time; if that one proved itself meanwhile, this one waits for room
        slots.make_room(&admission)?;
        let unproven = admission.enter(&stream);
        let slot = slots.take();
        let spawned = thread::Builder::new()
            .name("zc-transfer".into())
            .spawn_scoped(scope, move || {
                let _slot = slot;
                handle(stream, unproven);
            });
        // a thread that did not start dropped its slot with its closure
        if let Err(e) = spawned {
            reporter.warn(&format!("cannot start a transfer thread: {e}"));
            thread::sleep(ACCEPT_BACKOFF);
        }
    })
}

/// Counts the sessions under way against `--max-conns`.
struct Slots {
    busy: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

/// One session's place; given back when it ends, however it ends.
struct Slot<'a>(&'a Slots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.lock() -= 1;
        self.0.freed.notify_one();
    }
}

impl Slots {
    fn new(max: usize) -> Slots {
        Slots {
            busy: Mutex::new(0),
            freed: Condvar::new(),
            max: max.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        // a count is valid whatever thread panicked holding it
        self.busy.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a new connection fits: a session's place free, and room
    /// among the connections in their handshake.
    fn has_room(&self, admission: &Admission) -> bool {
        let most = HANDSHAKES_MOST.min(self.max);
        *self.lock() < self.max && admission.count() < most
    }

    /// Returns once a connection may be accepted: there is room, or the
    /// oldest connection in its handshake has had its time and will give
    /// way. Ctrl-C ends the wait.
    fn wait_room(&self, admission: &Admission) -> Result<()> {
        loop {
            if self.has_room(admission) || admission.can_give_way() {
                return Ok(());
            }
            if crate::interrupt::requested() {
                return Err(exit::interrupted(
                    "interrupted while waiting for a connection",
                ));
            }
            let busy = self.lock();
            // woken by a session's end; a handshake's end is seen at a tick
            drop(
                self.freed
                    .wait_timeout(busy, crate::conn::TICK)
                    .unwrap_or_else(|e| e.into_inner()),
            );
        }
    }

    /// Returns once a connection already accepted fits: there is room,
    /// or a stranger that had its time was cut for it.
    fn make_room(&self, admission: &Admission) -> Result<()> {
        while !self.has_room(admission) && !admission.give_way() {
            self.wait_room(admission)?;
        }
        Ok(())
    }

    fn take(&self) -> Slot<'_> {
        *self.lock() += 1;
        Slot(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_and_free() {
        let slots = Slots::new(2);
        let a = slots.take();
        let _b = slots.take();
        assert_eq!(*slots.lock(), 2);
        let admission = Admission::default();
        assert!(!slots.has_room(&admission));
        drop(a);
        slots.wait_room(&admission).unwrap();
        assert_eq!(*slots.lock(), 1);
    }
}
