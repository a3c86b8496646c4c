//! The receiver's side of a tree session as a state machine without I/O:
//! what the sender may send in each phase, which entry ids and how many,
//! which BEGIN, DATA and FILE END are legal (through each file's
//! [`Arrival`]), what settles an entry, the two ledgers and the verdict,
//! and the frames this side answers with, queued in an outbox.
//!
//! The driver (`recv::tree`, `recv::tree_files`) reads frames, hands each
//! to [`Session::handle`] and acts on the [`Event`] it gets: it looks at the
//! disk for a `Decide`, opens a part for an `Open`, writes a `Write`'s bytes,
//! verifies an `Ended` file and says how it went. Everything it says back
//! ([`Session::decided`], [`Session::go`], [`Session::digest`], ...)
//! queues frames in the outbox, which it writes as it sees fit.

use super::ledger::{Fate, Ledger};
use super::tree::{lossy, EntryKind, TreeOffer};
use super::{Keyed, ToReceiver};

mod arrival;
mod data;
mod ending;
mod manifest;
mod refusal;
mod said;
mod there;
pub use arrival::{Admitted, Arrival, Asked, BadData, BadEnd};
pub use ending::{Conclusion, Later};
pub use manifest::{admit_offer, blocks, Ask, ShowBytes};
pub use refusal::{Refusal, BUSY_TOLD, EXISTS_TOLD, UNWRITABLE_TOLD};
pub use said::{Ended, Event, Fits, Settled, Shown, Stop, Then, Unwritable, Violation};
pub use there::{FileOver, LinkOver, There};

/// A SHA-256 digest.
pub type Sha = [u8; 32];

#[cfg(test)]
mod tests;

/// A file the receiver asked for, as the driver keeps it (compactly: a
/// million may wait through a manifest), seen by the machine when its data
/// begins.
pub trait Wanted {
    fn id(&self) -> u64;
    fn path(&self) -> &[u8];
    /// What its data may be: (size, range offered, held, stream, whole).
    fn shape(&self) -> (u64, (u64, u64), crate::protocol::Ranges, bool, bool);
}

/// The session's settings, from the OFFER and the receiver's limits.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    pub offer: TreeOffer,
    pub max_files: u64,
    /// Bounds a stream without a cap.
    pub max_size: Option<u64>,
    /// The data must come in order (the one file goes to a stream).
    pub ordered: bool,
    /// The one file lands under another name (`-o FILE`): its BEGIN may
    /// name the sender's path.
    pub renamed: bool,
    /// The sender proved the key (a sealed connection, or keyed digests):
    /// it may hear all of a reason.
    pub keyed: bool,
    /// A file or link in the way is replaced (--force).
    pub force: bool,
    /// Digests are checked (the sender's offer and this side's --no-verify).
    pub verify: bool,
}

/// Where the session stands, as the sender's messages and this side's
/// answers move it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Phase {
    /// Entries come, then MANIFEST.
    #[default]
    Manifest,
    /// MANIFEST came: this side checks the space, then says GO or refuses.
    Deciding,
    /// Each wanted file's BEGIN, DATA and FILE END, then END.
    Data,
    /// END or STOP came, or the session was refused: nothing follows.
    Ended,
}

/// The file whose data is arriving.
struct Current {
    arrival: Arrival,
    path: Vec<u8>,
    /// It cannot be written here (see [`Session::unwritable`]).
    dropped: Option<Unwritable>,
}

/// A file that ended, its outcome not yet given.
struct Closing {
    id: u64,
    path: Vec<u8>,
    size: u64,
    whole: bool,
    /// What its part holds, once all that was offered came.
    have: crate::protocol::Ranges,
    /// The sender's digest; this side's, once they match.
    sha256: Option<Sha>,
}

/// The receiver's session.
pub struct Session {
    setup: Setup,
    key: Option<Box<dyn Keyed>>,
    phase: Phase,
    next_id: u64,
    unread: u64,
    ledger: Ledger,
    /// The same fates as the sender hears them, for its RESULT: without
    /// the key, a reason that tells of what is in OUT is replaced by less.
    told: Ledger,
    /// A session of one file: its fate, once known.
    single: Option<Fate>,
    cur: Option<Current>,
    closing: Option<Closing>,
    out: Vec<u8>,
    settled: Vec<Settled>,
    tally: manifest::Tally,
    /// Where the part under way was kept when the session ended early.
    part_at: Option<String>,
    /// Data bytes written in this session, and the files that landed whole
    /// (verified, or streamed).
    received: (u64, u64),
    /// Links and directories to make at the end.
    later: Vec<ending::Later>,
}

impl Session {
    pub fn new(setup: Setup, key: Option<Box<dyn Keyed>>) -> Session {
        Session {
            single: setup.offer.single.then_some(Fate::Landed),
            setup,
            key,
            phase: Phase::Manifest,
            next_id: 0,
            unread: 0,
            ledger: Ledger::default(),
            told: Ledger::default(),
            cur: None,
            closing: None,
            out: Vec::new(),
            settled: Vec::new(),
            tally: Default::default(),
            part_at: None,
            received: (0, 0),
            later: Vec::new(),
        }
    }

    /// Takes one message from the sender. `asked` holds the files this side
    /// asked for, oldest first (a BEGIN takes its own, an END the rest).
    pub fn handle<T: Wanted>(
        &mut self,
        msg: ToReceiver,
        asked: &mut impl Asked<T>,
    ) -> Result<Event<T>, Violation> {
        let went = self.phase == Phase::Data;
        self.take(&msg)?;
        Ok(match msg {
            ToReceiver::Entry(entry) => self.entry(entry)?,
            ToReceiver::Manifest(m) => {
                if m.entries != self.next_id {
                    let (said, came) = (m.entries, self.next_id);
                    return Err(Violation::ManifestCount { said, came });
                }
                self.unread = m.failed;
                Event::Manifest { unread: m.failed }
            }
            ToReceiver::Begin(begin) => Event::Open(self.begin(begin.id, &begin.path, asked)?),
            ToReceiver::Data { offset, len } => Event::Write(self.data(offset, len)?),
            ToReceiver::FileEnd(end) => Event::Ended(self.file_end(&end)?),
            ToReceiver::End(_) => {
                if self.cur.is_some() {
                    return Err(Violation::EndInFile);
                }
                while let Some(w) = asked.pop_front() {
                    self.not_sent(&w);
                }
                Event::Finished
            }
            ToReceiver::Stop if went => Event::Stopped(Stop::Sending(self.name().map(Into::into))),
            ToReceiver::Stop => Event::Stopped(Stop::BeforeData),
            ToReceiver::Keepalive | ToReceiver::Proof(_) => Event::Nothing,
        })
    }

    /// Moves the phase on, or says why the message does not belong here.
    fn take(&mut self, msg: &ToReceiver) -> Result<(), Violation> {
        use Phase as P;
        use ToReceiver as M;
        let unexpected = |why: String| Err(Violation::Unexpected(why));
        self.phase = match (self.phase, msg) {
            (P::Ended, m) => return unexpected(format!("{} after the session ended", m.name())),
            (_, M::Keepalive) => self.phase,
            (_, M::Stop) => P::Ended,
            (P::Manifest, M::Entry(_)) => P::Manifest,
            (P::Manifest, M::Manifest(_)) => P::Deciding,
            (P::Deciding, _) => return Err(Violation::DataBeforeGo),
            (P::Data, M::Begin(_) | M::Data { .. } | M::FileEnd(_)) => P::Data,
            (P::Data, M::End(_)) => P::Ended,
            (P::Manifest, m) => return unexpected(format!("{} in the manifest", m.name())),
            (P::Data, m) => return unexpected(format!("{} during the data", m.name())),
        };
        Ok(())
    }

    fn not_sent(&mut self, w: &impl Wanted) {
        let fate = Fate::Failed("the sender did not send it".into());
        self.settle(&lossy(w.path()), Shown::Kind(EntryKind::File), fate);
    }

    /// Records an entry's fate, as the sender hears it too.
    pub fn settle(&mut self, path: &str, kind: Shown, fate: Fate) {
        self.record(path, &fate, &fate);
        self.show(path.to_string(), kind, 0, None, fate);
    }

    /// Records a fate whose reason tells of what is in OUT: this side's
    /// user reads all of it, a sender without the key only `told`.
    pub fn settle_hiding(&mut self, path: &str, kind: Shown, fate: Fate, told: &str) {
        let heard = match (&fate, self.setup.keyed) {
            (Fate::Refused(_), false) => Fate::Refused(told.into()),
            (Fate::Failed(_), false) => Fate::Failed(told.into()),
            _ => fate.clone(),
        };
        self.record(path, &fate, &heard);
        self.show(path.to_string(), kind, 0, None, fate);
    }

    fn record(&mut self, path: &str, fate: &Fate, heard: &Fate) {
        self.told.record(path, heard);
        self.ledger.record(path, fate);
        if let Some(one) = self.single.as_mut() {
            *one = fate.clone();
        }
    }

    fn show(&mut self, path: String, kind: Shown, bytes: u64, sha256: Option<String>, fate: Fate) {
        self.settled.push(Settled {
            path,
            kind,
            bytes,
            sha256,
            fate,
        });
    }

    /// The entries settled since the last call, for the driver to show.
    pub fn settled(&mut self) -> std::vec::Drain<'_, Settled> {
        self.settled.drain(..)
    }

    /// The frames waiting to be written, whole.
    pub fn take_outbox(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Bytes waiting in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.out.len()
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Entries the manifest held.
    pub fn entries(&self) -> u64 {
        self.next_id
    }

    /// A session of one file: that file's fate (landed until told otherwise).
    pub fn single(&self) -> Option<&Fate> {
        self.single.as_ref()
    }

    /// Digests are checked.
    pub fn verifies(&self) -> bool {
        self.setup.verify
    }

    /// Data bytes written in this session, and the files that landed whole.
    pub fn received(&self) -> (u64, u64) {
        self.received
    }

    /// A session of one file.
    pub fn alone(&self) -> bool {
        self.setup.offer.single
    }

    /// The sender may hear all of a reason.
    pub fn keyed(&self) -> bool {
        self.setup.keyed
    }
}
