//! The offering half of the sender's machine: the OFFER that opens a
//! session, each entry as the walk finds it, and whether a file is still
//! the one offered when it is read.

use super::{Offered, Sending, Session, Settled};
use crate::protocol::ledger::Fate;
use crate::protocol::tree::{Entry, EntryKind, Manifest, TreeOffer};
use crate::protocol::{Keyed, ToReceiver};

impl Session {
    /// The OFFER that opens the session, for `totals` (entries, bytes)
    /// counted before it (a file alone's; a tree is counted as it is sent)
    /// and `nonce`, the key handshake's.
    pub fn tree_offer(
        &self,
        totals: (u64, u64),
        verify: bool,
        nonce: Option<[u8; 32]>,
    ) -> TreeOffer {
        let forced = self.one.as_ref().is_some_and(|(alone, _)| alone.forced);
        TreeOffer {
            entries: totals.0,
            bytes: totals.1,
            verify,
            resume: self.resuming && !forced,
            fresh: !self.resuming,
            nonce,
            single: self.one.is_some(),
            streamed: self.one.is_none(),
        }
    }

    /// The key the handshake agreed on, which the receiver's answers
    /// must carry from here on.
    pub fn set_key(&mut self, key: Option<Box<dyn Keyed + Send>>) {
        self.key = key;
    }

    /// Offers an entry (its id is its place in the manifest, which this
    /// sets); returns the id.
    pub fn offer(&mut self, mut entry: Entry) -> u64 {
        let id = self.entries.len() as u64;
        entry.id = id;
        // a file alone goes as the range asked for
        entry.range = entry.range.or(self.one.as_ref().and_then(|(a, _)| a.range));
        let msg = ToReceiver::Entry(entry);
        msg.append_to(&mut self.outbox);
        let ToReceiver::Entry(mut entry) = msg else {
            unreachable!("made above")
        };
        // a link's target goes once, on the wire
        entry.target = Vec::new();
        self.entries.push(Offered {
            entry,
            state: Sending::Offered,
            whole: true,
        });
        id
    }

    /// Offers the one stream (stdin, a pipe) of a session alone, whose size
    /// is unknown; `mtime_ns`: now.
    pub fn offer_stream(&mut self, mtime_ns: u64) -> u64 {
        let name = self.one.as_ref().map_or("", |(a, _)| &a.name);
        self.offer(stream_entry(name, mtime_ns))
    }

    /// A source the walk could not read: settled, not offered.
    pub fn walk_failed(&mut self, path: &str, why: &str) -> Settled {
        self.walk_failed += 1;
        let fate = Fate::Failed(why.into());
        self.record(path, &fate);
        let (path, kind) = (path.into(), EntryKind::File);
        Settled::new(None, (path, kind), fate, 0, None)
    }

    /// Every entry is offered: MANIFEST.
    pub fn manifest_done(&mut self) {
        ToReceiver::Manifest(Manifest {
            entries: self.entries.len() as u64,
            failed: self.walk_failed,
        })
        .append_to(&mut self.outbox);
    }

    /// Whether the source of entry `id`, as it is opened (`size` bytes,
    /// modified at `mtime_ns`), is still the file that was offered.
    pub fn unchanged(&self, id: u64, size: u64, mtime_ns: u64) -> Result<(), String> {
        let offered = self.entry(id).map_or((0, 0), |e| (e.size, e.mtime_ns));
        match offered == (size, mtime_ns) {
            true => Ok(()),
            false => Err(changed(offered.0, size)),
        }
    }
}

/// Why a file is not sent: it changed since it was offered, from `then`
/// bytes to `now`.
pub fn changed(then: u64, now: u64) -> String {
    match then == now {
        true => {
            "changed while it was being sent (rewritten, replaced or its metadata changed)".into()
        }
        false => format!("changed while it was being sent ({then} bytes then, {now} now)"),
    }
}

/// The one entry of a session of one stream (stdin, a pipe), whose size is
/// unknown; `mtime_ns`: now.
pub fn stream_entry(name: &str, mtime_ns: u64) -> Entry {
    Entry {
        id: 0,
        path: name.as_bytes().to_vec(),
        kind: EntryKind::File,
        size: 0,
        mode: 0o644,
        mtime_ns,
        target: Vec::new(),
        range: None,
        stream: true,
    }
}
