//! The manifest phase of a tree session on the receiving side: each ENTRY
//! checked and answered as it comes (against --max-files, --max-size and
//! the receiver's --max-memory), then the MANIFEST, the space check and GO;
//! or the whole session refused on the way.

use std::io::{BufReader, Write};

use anyhow::{Context, Result};

use crate::conn::Conn;
use crate::exit;
use crate::protocol::receiver::{Event, Phase, Violation, Violation::DataBeforeGo};
use crate::protocol::tree::Entry;
use crate::protocol::{self as proto, ToReceiver};
use crate::recv::session::{lossy, lost, Tree};
use crate::units::human_bytes;

/// Replies are gathered into writes of about this size.
const BATCH: usize = 64 << 10;

impl Tree<'_> {
    /// Reads the manifest and answers each entry, then checks the space
    /// for everything wanted and says GO, before any data byte is written.
    pub(super) fn manifest(&mut self, conn: &mut Conn) -> Result<()> {
        let peer = conn.peer.clone();
        let mut reader = BufReader::with_capacity(BATCH, &mut *conn);
        // Once the MANIFEST is in, the sender waits for GO: what it sent
        // behind it can only be a KEEPALIVE (it checks held blocks) or a
        // STOP (Ctrl-C meanwhile), and only what is already here is read
        while self.session.phase() == Phase::Manifest || !reader.buffer().is_empty() {
            if crate::interrupt::requested() {
                return Err(exit::interrupted("interrupted while reading the manifest"));
            }
            let deciding = self.session.phase() == Phase::Deciding;
            // the sender may come back: nothing is lost yet
            let frame = proto::read_frame(&mut reader).map_err(|e| match deciding {
                true => e,
                false => lost(e, format!("{peer}: connection lost in the manifest")),
            })?;
            let msg = match ToReceiver::decode(&frame) {
                Ok(msg) => msg,
                Err(_) if deciding => return Err(self.broken(reader.get_mut(), DataBeforeGo)),
                Err(e) => return Err(e.context(peer)),
            };
            match self.session.handle(msg, &mut self.wants) {
                Ok(Event::Decide(entry)) => self.admit(entry, reader.get_mut())?,
                Ok(Event::Stopped(stop)) => return Err(exit::interrupted(stop.line(&peer))),
                Ok(_) => {} // the MANIFEST, or a keepalive (the phase took no other)
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
        drop(reader);
        if self.offer.streamed {
            self.progress
                .totals(self.session.entries(), self.session.offered());
        }
        let free = self.root.free_space().ok();
        if let Err(why) = self.session.go_if_room(free, human_bytes) {
            self.unmake_dirs();
            self.flush(conn)?;
            return Err(exit::refused(format!("refused what {peer} offered: {why}")));
        }
        self.flush(conn)
    }

    /// Checks one entry and answers it.
    fn admit(&mut self, entry: Entry, conn: &mut Conn) -> Result<()> {
        let id = entry.id;
        let shown = lossy(&entry.path);
        let answer = self.decide(entry);
        if let Err(v) = self.session.decided(id, &shown, answer) {
            return Err(self.broken(conn, v));
        }
        self.show();
        // what the session holds for its entries until it ends: the files
        // asked for, the directories and links kept for the end, and every
        // path seen (against duplicates)
        let memory = self.wants.memory() + self.seen.memory() + self.session.kept();
        if !self.budget.resize(memory) {
            let limit = self.cfg.max_memory.limit();
            let v = self.session.over_memory(memory, limit, human_bytes);
            return Err(self.broken(conn, v));
        }
        self.block_hashes(id, conn)
    }

    /// Removes the directories this session made for a tree it refused:
    /// still empty, since data comes only after GO; deepest first.
    fn unmake_dirs(&mut self) {
        let mut made: Vec<_> = self.fresh.drain().collect();
        made.sort_by_key(|rel| std::cmp::Reverse(rel.bytes().len()));
        for rel in made {
            let _ = self.root.remove_empty_dir(&rel);
        }
    }

    /// A rule the sender broke in the manifest. A refusal of the session
    /// (its ANSWER queued) is said, and nothing of the tree stays.
    fn broken(&mut self, conn: &mut Conn, v: Violation) -> anyhow::Error {
        let Violation::Refused(_, why) = v else {
            return anyhow::anyhow!(v.line(&conn.peer));
        };
        // gone before the sender hears of it
        self.unmake_dirs();
        let _ = self.flush(conn);
        crate::recv::peer::linger(conn);
        exit::refused(format!("refused what {} offered: {why}", conn.peer))
    }
}
