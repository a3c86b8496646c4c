//! What the sender's driver may look at in its session machine.

use super::{Phase, Sending, Session};
use crate::protocol::ledger::{Fate, Ledger};
use crate::protocol::tree::Entry;
use crate::protocol::{Outcome, Ranges};

impl Session {
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Entries offered.
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// An offered entry, as it went on the wire (a link's target dropped).
    pub fn entry(&self, id: u64) -> Option<&Entry> {
        self.entries.get(id as usize).map(|o| &o.entry)
    }

    pub fn state(&self, id: u64) -> Option<&Sending> {
        self.entries.get(id as usize).map(|o| &o.state)
    }

    /// What the receiver holds of entry `id` and offered for checking.
    pub fn held(&self, id: u64) -> Option<&Ranges> {
        match self.state(id)? {
            Sending::Wanted(w) => Some(&w.held),
            _ => None,
        }
    }

    /// Held bytes of entry `id` whose hashes matched the source.
    pub fn good(&self, id: u64) -> u64 {
        match self.state(id) {
            Some(Sending::Wanted(w)) => w.good.total(),
            _ => 0,
        }
    }

    /// Held blocks that differed from the source, in the session.
    pub fn bad_blocks(&self) -> u64 {
        self.bad_blocks
    }

    /// A session of one file: that file's fate so far.
    pub fn one_fate(&self) -> Option<&Fate> {
        self.one.as_ref().map(|(_, fate)| fate)
    }

    pub fn is_single(&self) -> bool {
        self.one.is_some()
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Sources the walk could not read.
    pub fn walk_failures(&self) -> u64 {
        self.walk_failed
    }

    /// Files the receiver says landed in this session.
    pub fn files_landed(&self) -> u64 {
        self.files_landed
    }

    /// Some file landed without the receiver's digest (it runs --no-verify).
    pub fn unchecked(&self) -> bool {
        self.unchecked
    }

    /// The receiver's RESULT, once it came.
    pub fn result(&self) -> Option<&Outcome> {
        self.result.as_ref()
    }
}
