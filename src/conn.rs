//! A TCP stream whose every wait notices Ctrl-C and the idle timeout.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::admission::Unproven;
use crate::interrupt;
use crate::rate::Pacer;

mod sealed;
use crate::secure::channel::{Inbound, Outbound};
use crate::secure::record::Keys;

/// How long one blocking socket call may wait before zc looks at Ctrl-C and
/// the idle clock again.
pub const TICK: Duration = Duration::from_millis(200);

/// A bulk read (the rest of a DATA frame) asks the kernel to wake it only
/// once this much is queued (SO_RCVLOWAT). On a VM every wakeup of the
/// reader costs the writer's CPU an interrupt: at loopback speed, waking per
/// packet took half of the sender's CPU time.
const LOW_WATER: usize = 256 << 10;

/// Below this, a bulk read is an ordinary read: setting the mark would cost
/// more than the wakeups it saves.
const BULK_MIN: usize = 64 << 10;

/// Whether a low-water mark helps here: Linux from 4.18 wakes a reader by
/// its mark and grows the receive buffer to hold it; an older kernel would
/// close the window short of a large mark and wake the reader only at ticks.
fn marks_work() -> bool {
    #[cfg(target_os = "linux")]
    return crate::sys::kernel_at_least(4, 18);
    #[cfg(not(target_os = "linux"))]
    return false;
}

/// Wraps a stream so that `read`/`write` wait in ticks: a plain blocking
/// call could sit forever on a silent peer and would not see Ctrl-C.
pub struct Conn {
    pub stream: TcpStream,
    pub peer: String,
    idle: Duration,
    last_move: Instant,
    /// Shared with another handle on the same socket (a tree sender reads
    /// replies on a thread of its own): a byte either one moved shows the
    /// peer is alive, so a writer blocked behind a busy peer that still
    /// talks does not time out.
    heard: Option<std::sync::Arc<std::sync::Mutex<Instant>>>,
    /// While set, Ctrl-C does not cut a wait short: a DATA frame's payload
    /// is finished so that a STOP frame can follow it. Set while a
    /// [`Finishing`] guard lives, or for good by [`Conn::ignore_ctrl_c`].
    finishing: bool,
    /// Ctrl-C ends the next read even while data keeps coming (a raw
    /// stream has no frames to stop between; a framed receiver stops
    /// between frames and keeps what its socket already holds).
    pub stop_on_read: bool,
    /// What this side writes to show it is alive while it moves nothing: a
    /// framed session's KEEPALIVE frame, given by [`Conn::set_keepalive`].
    /// Empty (nothing is written) until then: a raw stream has no such thing.
    keepalive: &'static [u8],
    /// `--limit-rate`, when given.
    limit: Option<Limit>,
    /// An encrypted session: every byte each way travels in records. Set
    /// once, after the handshake; the zero-copy paths check it and step
    /// aside, since sendfile and splice would bypass the records.
    sealed: bool,
    /// The sending direction's records (with `sealed`).
    outbound: Option<Outbound>,
    /// The receiving direction's records, unless handed to another handle
    /// that reads on a thread of its own.
    inbound: Option<Inbound>,
    /// The socket's SO_RCVLOWAT as last set: 1 but during a bulk read.
    low_water: usize,
    /// A listener's connection that has not yet proven itself.
    handshake: Option<Handshake>,
    /// While set, what [`Conn::write_sealed_from`] reads from a file is
    /// hashed here before it is sealed: the sender's digest without a
    /// second read of the file.
    read_digest: Option<sha2::Sha256>,
}

/// The whole of a handshake is bounded, not each wait in it: a peer that
/// trickles a byte now and then must not hold a listener's place.
struct Handshake {
    deadline: Instant,
    within: Duration,
    /// The connection's place on a `-k` listener, which may cut it.
    unproven: Option<Unproven>,
}

/// Which bytes of a connection `--limit-rate` paces: a sender its writes,
/// a receiver its reads (TCP's flow control then slows the sender).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    Send,
    Recv,
}

struct Limit {
    way: Way,
    pacer: Pacer,
    /// A framed receiver that holds back keeps its sender posted: having
    /// handed everything to its socket, the sender may be waiting for the
    /// result while this side still reads what the buffers hold.
    keepalive: Option<Keepalive>,
}

impl Conn {
    /// Whether the peer runs on this machine (a loopback address, or this
    /// host's own): its work then shares this side's cores.
    pub fn peer_here(&self) -> bool {
        match (self.stream.peer_addr(), self.stream.local_addr()) {
            (Ok(peer), Ok(local)) => peer.ip().is_loopback() || peer.ip() == local.ip(),
            _ => false,
        }
    }

    pub fn new(stream: TcpStream, idle: Duration) -> io::Result<Self> {
        // Frames are small and each is awaited by the peer: no Nagle delay.
        // DATA headers ride with their payload through MSG_MORE instead.
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(TICK))?;
        stream.set_write_timeout(Some(TICK))?;
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "peer".to_string(), |a: SocketAddr| a.to_string());
        Ok(Conn {
            stream,
            peer,
            idle,
            last_move: Instant::now(),
            heard: None,
            finishing: false,
            stop_on_read: false,
            keepalive: &[],
            limit: None,
            sealed: false,
            outbound: None,
            inbound: None,
            low_water: 1,
            handshake: None,
            read_digest: None,
        })
    }

    /// A listener's new connection: the peer must prove itself (a complete
    /// offer, and the secret's confirmation) within `within` from now, all
    /// told. `unproven` is its place on a `-k` listener.
    pub fn handshake(&mut self, within: Duration, unproven: Option<Unproven>) {
        self.handshake = Some(Handshake {
            deadline: Instant::now() + within,
            within,
            unproven,
        });
    }

    /// The peer proved itself: from now on only the idle timeout applies.
    /// A connection the listener cut a moment before stays cut: its next
    /// read or write says so.
    pub fn trusted(&mut self) {
        let proven = match self.handshake.as_mut().and_then(|h| h.unproven.as_mut()) {
            Some(unproven) => unproven.prove(),
            None => true,
        };
        if proven {
            self.handshake = None;
        }
    }

    /// An error once the handshake ran out of time or its place was taken.
    fn check_handshake(&self) -> io::Result<()> {
        let Some(h) = &self.handshake else {
            return Ok(());
        };
        if h.unproven.as_ref().is_some_and(Unproven::was_cut) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "cut to make room for newer connections: it had not finished its handshake",
            ));
        }
        if Instant::now() >= h.deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the handshake took longer than {} s",
                    h.within.as_secs_f64()
                ),
            ));
        }
        Ok(())
    }

    /// From now on every byte each way travels in records: `outgoing` seals
    /// what this side writes, `incoming` opens what it reads.
    pub fn seal(&mut self, outgoing: &Keys, incoming: &Keys) {
        self.outbound = Some(Outbound::new(outgoing));
        self.inbound = Some(Inbound::new(incoming));
        self.sealed = true;
    }

    /// True in an encrypted session: the bytes must go through `Read` and
    /// `Write`, never through sendfile(2) or splice(2) on the socket.
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// Hands the reading of this connection (the record sequence and what
    /// was read ahead) to `other`, a second handle on the same socket that
    /// reads on a thread of its own; this one then only writes.
    pub fn hand_reading_to(&mut self, other: &mut Conn) {
        if self.sealed {
            other.inbound = self.inbound.take();
            other.sealed = true;
        }
    }

    /// Sets what [`with_keepalive`], [`Keepalive::tick`] and a paced
    /// receiver write to keep the peer posted (the protocol's KEEPALIVE
    /// frame: the transport does not know frames).
    pub fn set_keepalive(&mut self, frame: &'static [u8]) {
        self.keepalive = frame;
    }

    /// Writes the keepalive, if there is one.
    fn say_alive(&mut self) -> io::Result<()> {
        match self.keepalive {
            [] => Ok(()),
            frame => self.write_all(frame),
        }
    }

    /// Whole frames or none: until the guard is dropped, Ctrl-C does not
    /// cut a wait short (the idle timeout still holds), so what is written
    /// through it goes out whole and a STOP can follow. The caller looks at
    /// Ctrl-C between frames.
    pub fn finishing(&mut self) -> Finishing<'_> {
        let was = std::mem::replace(&mut self.finishing, true);
        Finishing { conn: self, was }
    }

    /// From now on Ctrl-C cuts no wait short on this handle: one that only
    /// reads for a loop that looks at Ctrl-C itself, or a sender that has
    /// said STOP and waits for the answer.
    pub fn ignore_ctrl_c(&mut self) {
        self.finishing = true;
    }

    /// Paces the bytes moving `way` to `rate` bytes a second (`None`: no limit).
    pub fn limit(&mut self, way: Way, rate: Option<u64>) {
        self.limit = rate.map(|rate| Limit {
            way,
            pacer: Pacer::new(rate),
            keepalive: None,
        });
    }

    /// For a paced framed receiver: a KEEPALIVE every [`KEEPALIVE_EVERY`]
    /// while it holds back, which a zc sender skips wherever it reads.
    pub fn keepalives_while_paced(&mut self) {
        if let Some(limit) = &mut self.limit {
            limit.keepalive = Some(Keepalive::new());
        }
    }

    /// How many of `want` bytes may move `way` now: all of them without a
    /// limit; else, after waiting if need be, at least one. Report what
    /// moved with [`Conn::spent`].
    pub fn allow(&mut self, way: Way, want: usize) -> io::Result<usize> {
        // taken out while it waits, so that a keepalive can be written
        // through this same handle meanwhile
        let mut limit = match self.limit.take() {
            Some(limit) if limit.way == way => limit,
            other => {
                self.limit = other;
                return Ok(want);
            }
        };
        let Limit {
            pacer, keepalive, ..
        } = &mut limit;
        let granted = pacer.take(want, self.finishing, || match keepalive {
            Some(k) if k.due() => {
                k.sent();
                self.say_alive()
            }
            _ => Ok(()),
        });
        self.limit = Some(limit);
        granted
    }

    /// Counts `n` bytes that moved `way` against the limit (also bytes
    /// [`Conn::allow`] was not asked about first, such as a DATA header).
    pub fn spent(&mut self, way: Way, n: usize) {
        match &mut self.limit {
            Some(limit) if limit.way == way => limit.pacer.spent(n),
            _ => {}
        }
    }

    /// Called when a socket call timed out after a tick: an error if Ctrl-C
    /// was pressed or nothing has moved for the idle timeout.
    pub fn check_waiting(&self) -> io::Result<()> {
        if interrupt::requested() && !self.finishing {
            return Err(interrupt::stopped());
        }
        let shared = self
            .heard
            .as_ref()
            .map(|h| *h.lock().unwrap_or_else(|e| e.into_inner()));
        let last = shared.map_or(self.last_move, |h| h.max(self.last_move));
        if last.elapsed() >= self.idle {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "nothing moved for {} s (--timeout)",
                    self.idle.as_secs_f64()
                ),
            ));
        }
        self.check_handshake()
    }

    /// Records that bytes moved, restarting the idle clock.
    pub fn moved(&mut self) {
        self.last_move = Instant::now();
        if let Some(h) = &self.heard {
            *h.lock().unwrap_or_else(|e| e.into_inner()) = self.last_move;
        }
    }

    /// Makes this handle and `other` (on the same socket) share their
    /// record of when the peer was last heard.
    pub fn share_heard(&mut self, other: &mut Conn) {
        let h = std::sync::Arc::new(std::sync::Mutex::new(Instant::now()));
        self.heard = Some(h.clone());
        other.heard = Some(h);
    }

    /// Sets how long the peer may stay silent from now on.
    pub fn set_idle(&mut self, idle: Duration) {
        self.idle = idle;
        self.moved();
    }

    pub fn shutdown_write(&mut self) {
        // records already sealed belong before the end of the stream
        let _ = self.drain();
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Before reading part of `room` bytes that are sure to come (or the
    /// peer closes): the kernel wakes this side once up to [`LOW_WATER`] of
    /// them are queued. Any other read puts the mark back to 1 first, since
    /// a frame header that never fills the mark would wait for a tick.
    pub fn expect(&mut self, room: usize) {
        let water = match self.sealed || room < BULK_MIN || !marks_work() {
            true => 1,
            false => room.min(LOW_WATER),
        };
        if water != self.low_water {
            #[cfg(target_os = "linux")]
            crate::sys::set_recv_low_water(std::os::fd::AsFd::as_fd(&self.stream), water);
            self.low_water = water;
        }
    }

    /// Reads part of `buf.len()` bytes that are sure to come, waking once
    /// per [`LOW_WATER`] instead of per packet.
    pub fn read_bulk(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.sealed {
            return self.read_sealed(buf);
        }
        let n = self.allow(Way::Recv, buf.len())?;
        self.expect(n);
        // A blocking read would take what is queued and then wait for a
        // whole mark more, which the frame's tail may never bring (until a
        // tick): wait for the mark counting what is queued, then take it.
        #[cfg(target_os = "linux")]
        if self.low_water > 1 {
            return self.in_ticks(Way::Recv, |stream| {
                crate::sys::recv_when_ready(std::os::fd::AsFd::as_fd(&*stream), &mut buf[..n], TICK)
            });
        }
        self.in_ticks(Way::Recv, |stream| stream.read(&mut buf[..n]))
    }

    /// Repeats one socket call until it moves bytes or truly fails: after
    /// each tick it checks Ctrl-C and the idle clock, after EINTR it simply
    /// retries; what moved counts against the limit. The one loop behind
    /// both `read` and `write`.
    fn in_ticks(
        &mut self,
        way: Way,
        mut call: impl FnMut(&mut TcpStream) -> io::Result<usize>,
    ) -> io::Result<usize> {
        // a raw peer that never pauses must not make Ctrl-C wait for a tick
        if self.stop_on_read && interrupt::requested() && !self.finishing {
            return Err(interrupt::stopped());
        }
        loop {
            match call(&mut self.stream) {
                Ok(n) => {
                    // a peer that trickles never lets a call wait a tick
                    self.check_handshake()?;
                    self.moved();
                    self.spent(way, n);
                    return Ok(n);
                }
                Err(e) if is_tick(&e) => self.check_waiting()?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// A connection on which Ctrl-C cuts no wait short ([`Conn::finishing`]);
/// dropped, it puts back what was before, on every path out.
pub struct Finishing<'a> {
    conn: &'a mut Conn,
    was: bool,
}

impl std::ops::Deref for Finishing<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
    }
}

impl std::ops::DerefMut for Finishing<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn
    }
}

impl Drop for Finishing<'_> {
    fn drop(&mut self) {
        self.conn.finishing = self.was;
    }
}

pub fn is_tick(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.sealed {
            return self.read_sealed(buf);
        }
        let n = self.allow(Way::Recv, buf.len())?;
        self.expect(0);
        self.in_ticks(Way::Recv, |stream| stream.read(&mut buf[..n]))
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.sealed {
            return self.write_sealed(buf);
        }
        let n = self.allow(Way::Send, buf.len())?;
        self.in_ticks(Way::Send, |stream| stream.write(&buf[..n]))
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.sealed {
            true => self.drain(),
            false => Ok(()),
        }
    }
}

/// While one side works without sending (fsync, hashing from disk), the
/// other hears a KEEPALIVE this often, so its idle timeout measures a
/// silent peer, not a slow disk.
pub const KEEPALIVE_EVERY: Duration = Duration::from_secs(2);

/// Runs `work` on another thread while sending keepalives.
pub fn with_keepalive<T: Send>(conn: &mut Conn, work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let handle = scope.spawn(move || {
            let out = work();
            let _ = done_tx.send(());
            out
        });
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            done_rx.recv_timeout(KEEPALIVE_EVERY)
        {
            let _ = conn.say_alive();
        }
        handle.join().expect("the worker thread does not panic")
    })
}

/// For loops that work between frames: sends a keepalive when it is due.
pub struct Keepalive(Instant);

impl Keepalive {
    pub fn new() -> Self {
        Keepalive(Instant::now())
    }

    /// True when a frame should go out now (the caller's own, or a keepalive).
    pub fn due(&self) -> bool {
        self.0.elapsed() >= KEEPALIVE_EVERY
    }

    /// Notes that a frame just went out.
    pub fn sent(&mut self) {
        self.0 = Instant::now();
    }

    /// Sends a keepalive if one is due.
    pub fn tick(&mut self, conn: &mut Conn) -> io::Result<()> {
        if self.due() {
            conn.say_alive()?;
            self.sent();
        }
        Ok(())
    }
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Conn {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        Conn::new(stream, Duration::from_secs(5)).unwrap()
    }

    /// Writes "under" a guard and fails through `?`, as a frame's
    /// header write may.
    fn fails_while_finishing(conn: &mut Conn) -> io::Result<()> {
        let mut whole = conn.finishing();
        assert!(whole.finishing);
        {
            let inner = whole.finishing();
            assert!(inner.finishing);
        }
        assert!(whole.finishing, "an inner guard puts back the outer one's");
        Err(io::Error::other("a write failed"))?;
        unreachable!()
    }

    #[test]
    fn finishing_is_put_back_on_every_path_out() {
        let mut conn = conn();
        assert!(fails_while_finishing(&mut conn).is_err());
        assert!(!conn.finishing, "left set by an early return");
        conn.ignore_ctrl_c();
        drop(conn.finishing());
        assert!(conn.finishing, "ignoring Ctrl-C for good outlives a guard");
    }
}
