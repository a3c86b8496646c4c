//! The manifest phase of a tree session on the receiving side: each ENTRY
//! checked and answered as it comes (against --max-files, --max-size and
//! the receiver's --max-memory), then the MANIFEST, the space check and GO;
//! or the whole session refused on the way.

use std::io::{BufReader, Write};

use anyhow::{Context, Result};

use crate::conn::Conn;
use crate::exit;
use crate::protocol::receiver::{Event, Violation};
use crate::protocol::tree::{Entry, EntryKind};
use crate::protocol::{self as proto, RefuseCode, ToReceiver};
use crate::recv::session::{broke, lossy, Tree};
use crate::units::human_bytes;

/// Replies are gathered into writes of about this size.
const BATCH: usize = 64 << 10;

/// What the end of the session keeps of a directory (its path and name
/// shown, to set its mode and time; its path again, as made here) or a
/// link (its path, its name shown, its target), in bytes: an estimate,
/// charged even when the entry is then refused.
fn kept_for(entry: &Entry) -> u64 {
    const SLOT: u64 = 160;
    let path = entry.path.len() as u64;
    match entry.kind {
        EntryKind::Dir => SLOT + 3 * path,
        EntryKind::Link => SLOT + 2 * path + entry.target.len() as u64,
        EntryKind::File => 0,
    }
}

impl Tree<'_> {
    /// Reads the manifest and answers each entry, then checks the space
    /// for everything wanted and says GO, before any data byte is written.
    pub(super) fn manifest(&mut self, conn: &mut Conn) -> Result<()> {
        let peer = conn.peer.clone();
        let mut reader = BufReader::with_capacity(BATCH, &mut *conn);
        loop {
            if crate::interrupt::requested() {
                return Err(exit::interrupted("interrupted while reading the manifest"));
            }
            let frame = proto::read_frame(&mut reader).map_err(|e| {
                // the sender may come back: nothing is lost yet
                let e = e.context(format!("{peer}: connection lost in the manifest"));
                match exit::code_of(&e) {
                    // an encrypted record that does not open is no cut
                    exit::ExitCode::Interrupted | exit::ExitCode::Integrity => e,
                    _ => exit::tag(e, exit::Tag::Resumable),
                }
            })?;
            let msg = ToReceiver::decode(&frame).with_context(|| peer.clone())?;
            match self.session.handle(msg, &mut self.wants) {
                Ok(Event::Decide(entry)) => self.admit(entry, reader.get_mut())?,
                Ok(Event::Manifest { .. }) => break,
                Ok(Event::Stopped) => return Err(stopped_early(&peer)),
                Ok(_) => {} // a keepalive (the phase took no other)
                Err(v) => return Err(self.broken(reader.get_mut(), v)),
            }
            if self.session.outbox_len() >= BATCH {
                let out = self.session.take_outbox();
                reader
                    .get_mut()
                    .write_all(&out)
                    .context("connection lost")?;
            }
        }
        // The sender waits for GO: what it sent behind the MANIFEST can only
        // be a KEEPALIVE (it checks held blocks) or a STOP (Ctrl-C meanwhile)
        while !reader.buffer().is_empty() {
            let frame = proto::read_frame(&mut reader)?;
            let taken = ToReceiver::decode(&frame)
                .map_err(|_| Violation::DataBeforeGo)
                .and_then(|msg| self.session.handle(msg, &mut self.wants));
            match taken {
                Ok(Event::Stopped) => return Err(stopped_early(&peer)),
                Ok(_) => {}
                Err(v) => {
                    // the replies (a refusal's reason) still go out, then the session ends
                    let out = self.session.take_outbox();
                    let _ = reader.get_mut().write_all(&out);
                    return Err(broke(&peer, &v));
                }
            }
        }
        drop(reader);
        if self.offer.streamed {
            self.progress.totals(self.session.entries(), self.offered);
        }
        match self.space_refusal() {
            Some(why) => {
                let _ = self.session.refuse(RefuseCode::NoSpace, why.clone());
                self.flush(conn)?;
                Err(exit::refused(format!("refused what {peer} offered: {why}")))
            }
            None => {
                self.session.go();
                self.flush(conn)
            }
        }
    }

    /// Checks one entry and answers it.
    fn admit(&mut self, entry: Entry, conn: &mut Conn) -> Result<()> {
        let id = entry.id;
        let shown = lossy(&entry.path);
        self.kept += kept_for(&entry);
        let answer = match self.decide(entry) {
            // a tree counted as it comes is refused whole when it grows
            // past --max-size, as one counted first would have been
            Err(r) if r.code == RefuseCode::TooLarge && self.offer.streamed => {
                return Err(self.refuse_session(conn, RefuseCode::TooLarge, r.why));
            }
            answer => answer,
        };
        self.session.decided(id, &shown, answer);
        self.show();
        let memory = self.memory();
        if !self.budget.resize(memory) {
            let (limit, n) = (
                human_bytes(self.cfg.max_memory.limit()),
                self.session.entries(),
            );
            let why = match memory > self.cfg.max_memory.limit() {
                true => format!(
                    "the manifest needs more than --max-memory {limit} of the receiver's memory \
                     ({n} entries so far)"
                ),
                // the other sessions hold the rest
                false => format!(
                    "the manifest needs more than is left of --max-memory {limit}, the \
                     receiver's memory for the manifests of all its sessions at once \
                     ({n} entries so far)"
                ),
            };
            return Err(self.refuse_session(conn, RefuseCode::TooLarge, why));
        }
        if let Some(want) = self.wants.back().filter(|w| w.id == id && w.hashes) {
            let (rel, held) = (want.rel.clone(), want.held.clone());
            self.block_hashes(id, &rel, &held, conn)?;
        }
        Ok(())
    }

    /// A rule the sender broke in the manifest; a refusal of the session
    /// (its ANSWER queued) is said.
    fn broken(&mut self, conn: &mut Conn, v: Violation) -> anyhow::Error {
        match v {
            Violation::Refused(_, why) => self.refused(conn, why),
            v => broke(&conn.peer, &v),
        }
    }

    /// Refuses the whole session in the middle of its manifest: the
    /// answers so far, then the refusal, which the sender reads as it
    /// writes the next entries.
    fn refuse_session(&mut self, conn: &mut Conn, code: RefuseCode, why: String) -> anyhow::Error {
        let _ = self.session.refuse(code, why.clone());
        self.refused(conn, why)
    }

    /// The session refused, its ANSWER queued: nothing of the tree stays.
    fn refused(&mut self, conn: &mut Conn, why: String) -> anyhow::Error {
        // the directories it made are still empty (data comes only after
        // GO); gone, deepest first, before the sender hears of it
        let mut made: Vec<_> = self.fresh.drain().collect();
        made.sort_by_key(|rel| std::cmp::Reverse(rel.bytes().len()));
        for rel in made {
            let _ = self.root.remove_empty_dir(&rel);
        }
        let _ = self.flush(conn);
        crate::recv::peer::linger(conn);
        exit::refused(format!("refused what {} offered: {why}", conn.peer))
    }

    /// What the session holds for its entries until it ends, in bytes:
    /// the files asked for, the directories and links kept for the end,
    /// and every path seen (against duplicates).
    fn memory(&self) -> u64 {
        self.wants.memory() + self.seen.memory() + self.kept
    }

    fn space_refusal(&self) -> Option<String> {
        let free = self.root.free_space().ok()?;
        let what = match (&self.name, self.offer.single) {
            (Some(name), true) => crate::peer_text::escape(name.as_bytes()),
            _ => "the tree".into(),
        };
        (self.needed > free).then(|| {
            format!(
                "{what} needs {} more but the output file system has {} free",
                human_bytes(self.needed),
                human_bytes(free)
            )
        })
    }
}

/// The sender's STOP before GO.
fn stopped_early(peer: &str) -> anyhow::Error {
    exit::interrupted(format!("{peer} stopped before sending any data"))
}
