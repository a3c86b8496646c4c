//! A listener's connections that have not yet proven themselves: how long
//! each may take, and which one gives way when too many wait.
//!
//! Until a connection has sent a complete offer (and, with a key or a code,
//! proven the secret), anyone on the network may hold it. Each is given a
//! deadline for the whole of that phase, not a wait per byte, and only a
//! few may be in it at once, as sshd's MaxStartups: when they are all
//! taken, the oldest of them, if it has had a fair time, is cut to make
//! room for the newest. A zc peer proves itself in milliseconds; a peer
//! that trickles its handshake byte by byte loses its place.

use std::collections::VecDeque;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a new connection may take, in all, to prove itself: the
/// preamble and offer, or the preamble, the key exchange, the confirmation
/// and the offer.
pub const HANDSHAKE_WITHIN: Duration = Duration::from_secs(10);

/// Connections a listener lets be in their handshake at once; more wait in
/// the kernel's backlog, where they hold nothing of ours.
pub const HANDSHAKES_MOST: usize = 16;

/// A connection in its handshake for this long gives way to a new one
/// when the listener has no room: a real peer is done long before.
pub const GIVE_WAY_AFTER: Duration = Duration::from_secs(1);

/// The connections of one listener still in their handshake.
#[derive(Clone, Default)]
pub struct Admission(Arc<Mutex<Waiting>>);

#[derive(Default)]
struct Waiting {
    next: u64,
    /// Oldest first.
    list: VecDeque<Entry>,
}

struct Entry {
    id: u64,
    since: Instant,
    /// A second handle on the socket, to cut it from the accepting thread.
    socket: Option<TcpStream>,
    cut: Arc<AtomicBool>,
}

/// One connection's place among those in their handshake, given up when
/// it is dropped (the connection proved itself, or ended).
pub struct Unproven {
    admission: Admission,
    id: u64,
    cut: Arc<AtomicBool>,
}

impl Admission {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        // a list stays valid whatever thread panicked holding it
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many connections are in their handshake.
    pub fn count(&self) -> usize {
        self.lock().list.len()
    }

    /// Whether the oldest connection in its handshake has had its fair time.
    pub fn can_give_way(&self) -> bool {
        Self::due(&self.lock())
    }

    fn due(waiting: &Waiting) -> bool {
        waiting
            .list
            .front()
            .is_some_and(|e| e.since.elapsed() >= GIVE_WAY_AFTER)
    }

    /// Cuts the oldest connection in its handshake if it has had its fair
    /// time: its reads and writes fail at once, and its thread ends.
    /// Returns whether one was cut. Under the lock a connection proves
    /// itself with ([`Unproven::prove`]), so one that has proven itself is
    /// never cut.
    pub fn give_way(&self) -> bool {
        let mut waiting = self.lock();
        if !Self::due(&waiting) {
            return false;
        }
        let oldest = waiting.list.pop_front().expect("due, so there is one");
        oldest.cut.store(true, Ordering::Relaxed);
        if let Some(socket) = oldest.socket {
            let _ = socket.shutdown(Shutdown::Both);
        }
        true
    }

    /// Counts `stream` as in its handshake until the returned place is dropped.
    pub fn enter(&self, stream: &TcpStream) -> Unproven {
        let cut = Arc::new(AtomicBool::new(false));
        let mut waiting = self.lock();
        let id = waiting.next;
        waiting.next += 1;
        waiting.list.push_back(Entry {
            id,
            since: Instant::now(),
            socket: stream.try_clone().ok(),
            cut: cut.clone(),
        });
        Unproven {
            admission: self.clone(),
            id,
            cut,
        }
    }
}

impl Unproven {
    /// Whether the listener cut this connection to make room for a newer one.
    pub fn was_cut(&self) -> bool {
        self.cut.load(Ordering::Relaxed)
    }

    /// The peer proved itself: it leaves the connections in their
    /// handshake, unless it was cut first (`false`).
    pub fn prove(&mut self) -> bool {
        let mut waiting = self.admission.lock();
        if self.was_cut() {
            return false;
        }
        if let Some(at) = waiting.list.iter().position(|e| e.id == self.id) {
            waiting.list.remove(at);
        }
        true
    }
}

impl Drop for Unproven {
    fn drop(&mut self) {
        let mut waiting = self.admission.lock();
        if let Some(at) = waiting.list.iter().position(|e| e.id == self.id) {
            waiting.list.remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (listener.accept().unwrap().0, client)
    }

    #[test]
    fn a_place_is_given_up_when_dropped() {
        let admission = Admission::default();
        let (a, _ca) = pair();
        let (b, _cb) = pair();
        let first = admission.enter(&a);
        let second = admission.enter(&b);
        assert_eq!(admission.count(), 2);
        drop(first);
        assert_eq!(admission.count(), 1);
        drop(second);
        assert_eq!(admission.count(), 0);
        assert!(!admission.give_way());
    }

    #[test]
    fn the_oldest_gives_way_and_its_socket_is_cut() {
        let admission = Admission::default();
        let (mut old, _old_client) = pair();
        let (new, _new_client) = pair();
        let old_place = admission.enter(&old);
        let new_place = admission.enter(&new);
        assert!(!admission.can_give_way(), "not before its fair time");
        assert!(!admission.give_way());
        admission.lock().list[0].since -= GIVE_WAY_AFTER;
        assert!(admission.can_give_way());
        assert!(admission.give_way());
        assert!(old_place.was_cut() && !new_place.was_cut());
        // the cut socket reads its end at once instead of waiting for a byte
        let mut byte = [0];
        assert_eq!(old.read(&mut byte).unwrap(), 0);
        assert_eq!(admission.count(), 1);
    }

    #[test]
    fn a_proven_connection_is_never_cut_and_a_cut_one_cannot_prove() {
        let admission = Admission::default();
        let (a, _ca) = pair();
        let (b, _cb) = pair();
        let mut first = admission.enter(&a);
        let mut second = admission.enter(&b);
        admission
            .lock()
            .list
            .iter_mut()
            .for_each(|e| e.since -= GIVE_WAY_AFTER);
        assert!(first.prove());
        assert!(admission.give_way(), "the second, the only one left");
        assert!(!first.was_cut());
        assert!(!second.prove(), "cut before it proved itself");
        assert!(!admission.give_way());
    }
}
