//! What the receiver answers each entry of the manifest: where it goes,
//! whether it is made, up to date, refused or wanted, and what of it is
//! already held (with the block hashes the sender checks).

use std::fs::File;

use anyhow::{Context, Result};

use crate::conn::Conn;
use crate::hash;
use crate::held::{Ranges, Record};
use crate::protocol::receiver::{self, Ask, FileOver, Later, LinkOver, Refusal, There};
use crate::protocol::tree::{Action, Entry, EntryKind};
use crate::protocol::RefuseCode;
use crate::recv::session::{identity, lossy, Tree, Want};
use crate::recv::sink::{self, Made, RelPath};
use crate::units::human_bytes;

impl Tree<'_> {
    /// What to do with one entry, or why not.
    pub(super) fn decide(&mut self, entry: Entry) -> Result<Action, Refusal> {
        let shown = lossy(&entry.path);
        let bad = |why: String| (RefuseCode::BadName, why);
        let mut rel = sink::check_path(&entry.path).map_err(bad)?;
        (self.session).admits(&entry, rel.depth(), human_bytes)?;
        if self.offer.single {
            crate::output::check_wire_name(&entry.path).map_err(bad)?;
            let (alone, path) = self.alone(rel);
            rel = alone;
            self.progress.named(&shown, &path);
            if self.dest.stream().is_some() {
                let ask = self.session.ask(&entry, Ranges::new(), 0);
                return Ok(self.want(entry, rel, ask, (false, None)));
            }
        }
        let is_dir = entry.kind == EntryKind::Dir;
        if let Err(why) = self.seen.admit(&rel, is_dir) {
            if is_dir {
                self.seen.reject_dir(&rel);
            }
            return Err(bad(why).into());
        }
        match entry.kind {
            EntryKind::Dir => {
                let made = self.root.mkdir(&rel).map_err(|e| {
                    self.seen.reject_dir(&rel);
                    let exists = e.kind() == std::io::ErrorKind::AlreadyExists;
                    Refusal::no_dir(e, exists)
                })?;
                let mode = self.landed_mode(entry.mode);
                (self.session).dir_made(entry, mode, made == Made::Existing);
                if made == Made::New {
                    self.fresh.insert(rel);
                }
                Ok(Action::Done)
            }
            EntryKind::Link => self.decide_link(rel, entry.target),
            EntryKind::File => self.decide_file(rel, entry),
        }
    }

    fn decide_link(&mut self, rel: RelPath, target: Vec<u8>) -> Result<Action, Refusal> {
        sink::check_link_target(&rel, &target).map_err(|why| (RefuseCode::BadName, why))?;
        let there = self.there(&rel);
        let same = there == Ok(There::Link) && self.root.read_link(&rel).is_ok_and(|t| t == target);
        match self.session.link_over(there, same)? {
            LinkOver::Same => return Ok(Action::Skip),
            // the old one goes now; the new one is made at the end, after all data
            LinkOver::Replace => (self.root.discard_link(&rel))
                .map_err(|e| Refusal::unwritable(RefuseCode::Other, e.to_string()))?,
            LinkOver::Make => {}
        }
        let path = rel.bytes().to_vec();
        self.session.later(Later::Link { path, target });
        Ok(Action::Done)
    }

    fn decide_file(&mut self, rel: RelPath, entry: Entry) -> Result<Action, Refusal> {
        if self.session.file_over(&entry, self.there(&rel)?)? == FileOver::UpToDate {
            return Ok(Action::Skip);
        }
        let record = match self.in_fresh(&rel) || entry.stream {
            true => None,
            false => self.root.read_record(&rel),
        };
        let recorded = record.is_some();
        let (held, on_disk) = self.held_for(&rel, &entry, record);
        let ask = self.session.ask(&entry, held, on_disk);
        // a file alone learns now, before any data, that it cannot be
        // written, and holds its part (locked) from here on
        let part = match self.offer.single {
            true => Some(self.open_alone(&rel, ask.held.total() == 0)?),
            false => None,
        };
        Ok(self.want(entry, rel, ask, (recorded, part)))
    }

    /// The part of a file alone, opened (and so locked) before GO.
    fn open_alone(&self, rel: &RelPath, fresh: bool) -> Result<File, Refusal> {
        let at = rel.display_in(self.root.path());
        self.root.open_part(rel, fresh).map_err(|e| {
            use std::io::ErrorKind::*;
            match e.kind() {
                WouldBlock => Refusal::busy_part(&at),
                // the receiver's state, not what is at the name
                ReadOnlyFilesystem | PermissionDenied | StorageFull | QuotaExceeded => {
                    Refusal::unopened_part(&at, e, true)
                }
                _ => Refusal::unopened_part(&at, e, false),
            }
        })
    }

    /// Asks for a file's data, offering what is held (and, when resuming,
    /// its block hashes for the sender to check); `recorded`: a held record
    /// lies beside its part, which a file alone holds open (`part`).
    fn want(&mut self, entry: Entry, rel: RelPath, ask: Ask, part: (bool, Option<File>)) -> Action {
        let (recorded, part) = part;
        let fresh = self.in_fresh(&rel);
        self.wants.push_back(Want {
            id: entry.id,
            rel,
            size: entry.size,
            mode: self.landed_mode(entry.mode),
            mtime_ns: entry.mtime_ns,
            held: ask.held.clone(),
            hashes: ask.hashes,
            recorded,
            range: ask.range,
            stream: entry.stream,
            whole: ask.whole,
            part,
            fresh,
            moded: false,
            unnamed: false,
        });
        ask.action()
    }

    /// The permission bits an entry lands with (see [`sink::landed_mode`]).
    fn landed_mode(&self, sent: u32) -> u32 {
        sink::landed_mode(sent, crate::sys::umask(), self.cfg.preserve_modes)
    }

    /// What is at a path; nothing, without asking, inside a directory this
    /// session made. A path that cannot be looked at (a component that is
    /// a link or a file, no permission) is refused: the sender hears only
    /// that it cannot be written.
    fn there(&self, rel: &RelPath) -> Result<There, Refusal> {
        if self.in_fresh(rel) {
            return Ok(There::Missing);
        }
        (self.root.stat(rel)).map_err(|e| Refusal::unwritable(RefuseCode::BadName, e.to_string()))
    }

    fn in_fresh(&self, rel: &RelPath) -> bool {
        rel.parent().is_some_and(|p| self.fresh.contains(&p))
    }

    /// What a `.zcpart` of this very source already holds, per its record,
    /// and how long the part is (see [`receiver::Session::ask`]).
    fn held_for(&self, rel: &RelPath, entry: &Entry, record: Option<String>) -> (Ranges, u64) {
        let nothing = (Ranges::new(), 0);
        // without resume (`--offset`), what is held is kept, not checked
        if self.offer.fresh {
            return nothing;
        }
        let Some(record) = record.and_then(|t| Record::decode(&t)) else {
            return nothing;
        };
        let source = identity(rel, entry.size, entry.mtime_ns);
        if record.source != source {
            self.reporter.warn(&format!(
                "{}.zcpart is of another version of the file; starting over",
                rel.display_in(self.root.path())
            ));
            return nothing;
        }
        let Ok(part) = self.root.open_part(rel, false) else {
            return nothing;
        };
        (record.held, part.metadata().map_or(0, |m| m.len()))
    }

    /// When the entry just answered (`id`) was asked for with the hashes
    /// of its part's held blocks, hashes them for the sender to check.
    pub(super) fn block_hashes(&mut self, id: u64, conn: &mut Conn) -> Result<()> {
        let Some(want) = self.wants.back().filter(|w| w.id == id && w.hashes) else {
            return Ok(());
        };
        // a file alone holds its part open (and locked) already
        let part = match &want.part {
            Some(part) => part.try_clone(),
            None => self.root.open_part(&want.rel, false),
        }
        .context("reopening a held part")?;
        let (held, mut buf) = (
            want.held.clone(),
            crate::copy::Buf::new(crate::copy::BUF_SIZE),
        );
        for (from, to) in receiver::blocks(&held) {
            let sha256 = hash::block(&part, from, to - from, &mut buf)?;
            if self.session.block_hashed(id, (from, to), sha256) {
                self.flush(conn)?;
            }
        }
        Ok(())
    }
}
