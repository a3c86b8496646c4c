//! What the receiver answers each entry of the manifest: where it goes,
//! whether it is made, up to date, refused or wanted, and what of it is
//! already held (with the block hashes the sender checks).

use anyhow::{Context, Result};

use super::{HASHES_PER_FRAME, TICK_NS};
use crate::conn::Conn;
use crate::hash;
use crate::held::{Ranges, Record};
use crate::protocol::tree::{Action, Entry, EntryKind};
use crate::protocol::{self as proto, BlockHash, Message, RefuseCode, BLOCK};
use crate::recv::session::{identity, lossy, Dest, Tree, Want};
use crate::recv::sink::{self, Found, RelPath};
use crate::units::human_bytes;

impl Tree<'_> {
    /// What to do with one entry, or why not.
    pub(super) fn decide(&mut self, entry: Entry) -> Result<Action, (RefuseCode, String)> {
        let shown = lossy(&entry.path);
        let bad = |why: String| (RefuseCode::BadName, why);
        let mut rel = sink::check_path(&entry.path).map_err(bad)?;
        if entry.kind == EntryKind::File {
            self.within_max_size(&entry)?;
        }
        if self.single.is_some() {
            if entry.kind != EntryKind::File || rel.depth() != 1 {
                return Err(bad("a session of one file carries one file".into()));
            }
            crate::output::check_wire_name(&entry.path).map_err(bad)?;
            let path = match &self.dest {
                Dest::Dir => self.root.path().join(rel.to_path()).display().to_string(),
                Dest::Named(name) => {
                    rel = name.clone();
                    self.cfg_path()
                }
                Dest::Stream(_, label) => label.clone(),
            };
            self.progress.named(&shown, &path);
            self.name = Some(shown.clone());
            if let Dest::Stream(..) = self.dest {
                return Ok(self.want(entry, rel, Ranges::new(), false));
            }
        }
        let is_dir = entry.kind == EntryKind::Dir;
        if let Err(why) = self.seen.admit(&rel, is_dir) {
            if is_dir {
                self.seen.reject_dir(&rel);
            }
            return Err(bad(why));
        }
        match entry.kind {
            EntryKind::Dir => match self.root.mkdir(&rel) {
                Ok(made) => {
                    if made {
                        self.fresh.insert(rel.clone());
                    } else {
                        // a read-only directory from an earlier run must
                        // take new files; its mode is set again at the end
                        let _ = self
                            .root
                            .finish_dir(&rel, entry.mode | 0o700, entry.mtime_ns);
                    }
                    self.dirs.push((rel, shown, entry.mode, entry.mtime_ns));
                    Ok(Action::Done)
                }
                Err(e) => {
                    self.seen.reject_dir(&rel);
                    Err((
                        RefuseCode::Exists,
                        format!("cannot make the directory: {e}"),
                    ))
                }
            },
            EntryKind::Link => self.decide_link(rel, shown, entry.target),
            // a stream's size is known only at its end: one alone, or none
            EntryKind::File if entry.stream && self.single.is_none() => Err((
                RefuseCode::BadOffer,
                "a stream in a tree (only a file alone may be a stream)".into(),
            )),
            EntryKind::File => self.decide_file(rel, entry),
        }
    }

    /// Counts a file's offered bytes (a stream's cap) against
    /// `--max-size`, whatever the OFFER announced.
    fn within_max_size(&mut self, entry: &Entry) -> Result<(), (RefuseCode, String)> {
        let (start, end) = entry.offered();
        let total = self.offered.saturating_add(end - start);
        if let Some(max) = self.cfg.max_size.filter(|max| total > *max) {
            let why = match self.offer.single {
                true => format!(
                    "the file is {}, over --max-size {}",
                    human_bytes(end - start),
                    human_bytes(max)
                ),
                false => format!(
                    "the tree's files come to {}, over --max-size {}",
                    human_bytes(total),
                    human_bytes(max)
                ),
            };
            return Err((RefuseCode::TooLarge, why));
        }
        self.offered = total;
        Ok(())
    }

    fn decide_link(
        &mut self,
        rel: RelPath,
        shown: String,
        target: Vec<u8>,
    ) -> Result<Action, (RefuseCode, String)> {
        sink::check_link_target(&rel, &target).map_err(|why| (RefuseCode::BadName, why))?;
        if cfg!(windows) {
            let why = "symbolic links are not made on Windows".to_string();
            return Err((RefuseCode::Other, why));
        }
        match self.stat(&rel) {
            Ok(Found::Missing) => {
                self.links.push((rel, shown, target));
                Ok(Action::Done)
            }
            // the same link, made by an earlier run of the same tree
            Ok(Found::Link) if self.root.read_link(&rel).is_ok_and(|t| t == target) => {
                Ok(Action::Skip)
            }
            Ok(Found::Link) if self.cfg.force => {
                // replaced at the end, after all data, like every link
                self.root
                    .discard_link(&rel)
                    .map_err(|e| (RefuseCode::Other, e.to_string()))?;
                self.links.push((rel, shown, target));
                Ok(Action::Done)
            }
            Ok(Found::Link) => Err((
                RefuseCode::Exists,
                "a link to another target exists (the receiver can replace it with --force)".into(),
            )),
            Ok(_) => Err((RefuseCode::Exists, "something else exists there".into())),
            Err(e) => Err((RefuseCode::BadName, e.to_string())),
        }
    }

    fn decide_file(&mut self, rel: RelPath, entry: Entry) -> Result<Action, (RefuseCode, String)> {
        let force = self.cfg.force;
        match self.stat(&rel) {
            Ok(Found::Missing) => {}
            Ok(Found::File { size, mtime_ns })
                if !entry.stream
                    && size == entry.size
                    && mtime_ns / TICK_NS == entry.mtime_ns / TICK_NS =>
            {
                return Ok(Action::Skip)
            }
            Ok(Found::File { .. } | Found::Link) if force => {}
            Ok(Found::File { size, .. }) => {
                let what = match (entry.stream, size == entry.size) {
                    (true, _) => String::new(),
                    (false, true) => " with another modification time".to_string(),
                    (false, false) => format!(" with {size} bytes, not {}", entry.size),
                };
                let why = format!("exists{what} (the receiver can replace it with --force)");
                return Err((RefuseCode::Exists, why));
            }
            Ok(Found::Link) => {
                let why = "exists as a link (the receiver can replace it with --force)";
                return Err((RefuseCode::Exists, why.into()));
            }
            Ok(Found::Dir | Found::Other) => {
                return Err((RefuseCode::Exists, "exists and is not a file".into()))
            }
            Err(e) => return Err((RefuseCode::BadName, e.to_string())),
        }
        let record = match self.in_fresh(&rel) || entry.stream {
            true => None,
            false => self.root.read_record(&rel),
        };
        let recorded = record.is_some();
        let held = self.held_for(&rel, &entry, record);
        // a file alone learns now, before any data, that it cannot be
        // written, and holds its part (locked) from here on
        let part = match self.single {
            Some(_) => Some(self.open_alone(&rel, held.total() == 0)?),
            None => None,
        };
        let (start, end) = entry.offered();
        let missing: u64 = held.missing(start, end).iter().map(|(a, b)| b - a).sum();
        self.needed = self.needed.saturating_add(missing);
        let action = self.want(entry, rel, held, recorded);
        if let Some(want) = self.wants.back_mut() {
            want.part = part;
        }
        Ok(action)
    }

    /// The part of a file alone, opened (and so locked) before GO.
    fn open_alone(
        &self,
        rel: &RelPath,
        fresh: bool,
    ) -> Result<std::fs::File, (RefuseCode, String)> {
        let at = rel.display_in(self.root.path());
        self.root.open_part(rel, fresh).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock => (
                RefuseCode::Busy,
                format!("{at} is being received by another transfer"),
            ),
            _ => (RefuseCode::Other, format!("{at}.zcpart: {e}")),
        })
    }

    /// Asks for a file's data, offering what is held (and, when resuming,
    /// its block hashes for the sender to check).
    fn want(&mut self, entry: Entry, rel: RelPath, held: Ranges, recorded: bool) -> Action {
        let range = entry.offered();
        let whole = entry.stream || proto::whole(&held, range, entry.size);
        let hashes = self.offer.resume && held.total() > 0;
        let fresh = self.in_fresh(&rel);
        self.wants.push_back(Want {
            id: entry.id,
            rel,
            size: entry.size,
            mode: entry.mode,
            mtime_ns: entry.mtime_ns,
            held: held.clone(),
            hashes,
            recorded,
            range,
            stream: entry.stream,
            whole,
            part: None,
            fresh,
            moded: false,
        });
        Action::Send {
            held: held.pairs().to_vec(),
            hashes,
        }
    }

    /// What is at a path; nothing, without asking, inside a directory this
    /// session made.
    fn stat(&self, rel: &RelPath) -> std::io::Result<Found> {
        match self.in_fresh(rel) {
            true => Ok(Found::Missing),
            false => self.root.stat(rel),
        }
    }

    fn in_fresh(&self, rel: &RelPath) -> bool {
        rel.parent().is_some_and(|p| self.fresh.contains(&p))
    }

    /// What a `.zcpart` of this very source already holds, per its record.
    fn held_for(&self, rel: &RelPath, entry: &Entry, record: Option<String>) -> Ranges {
        // without resume (`--offset`), what is held is kept, not checked
        if self.offer.fresh {
            return Ranges::new();
        }
        let Some(record) = record.and_then(|t| Record::decode(&t)) else {
            return Ranges::new();
        };
        if record.source != identity(rel, entry) {
            self.reporter.warn(&format!(
                "{}.zcpart is of another version of the file; starting over",
                rel.display_in(self.root.path())
            ));
            return Ranges::new();
        }
        let Ok(part) = self.root.open_part(rel, false) else {
            return Ranges::new();
        };
        let on_disk = part.metadata().map_or(0, |m| m.len());
        let mut held = record.held;
        held.clip(on_disk.min(entry.size));
        // only what a REPLY can carry is offered (and hashed); the rest is sent again
        Ranges::from_pairs(&held.pairs()[..held.pairs().len().min(proto::MAX_RANGES)])
    }

    /// Hashes the held blocks of a part for the sender to check.
    pub(super) fn block_hashes(
        &mut self,
        id: u64,
        rel: &RelPath,
        held: &Ranges,
        conn: &mut Conn,
    ) -> Result<()> {
        // a file alone holds its part open (and locked) already
        let part = match self.wants.back().and_then(|w| w.part.as_ref()) {
            Some(part) => part.try_clone(),
            None => self.root.open_part(rel, false),
        }
        .context("reopening a held part")?;
        let mut buf = vec![0u8; crate::copy::BUF_SIZE];
        let mut blocks = Vec::with_capacity(HASHES_PER_FRAME);
        let ranges: Vec<(u64, u64)> = held.pairs().to_vec();
        let cuts: Vec<(u64, u64)> = ranges
            .iter()
            .flat_map(|&(a, b)| {
                (a..b)
                    .step_by(BLOCK as usize)
                    .map(move |s| (s, (s + BLOCK).min(b)))
            })
            .collect();
        for (i, &(from, to)) in cuts.iter().enumerate() {
            let sha256 = hash::block(&part, from, to - from, None, &mut buf)?;
            blocks.push(BlockHash {
                offset: from,
                len: (to - from) as u32,
                sha256,
            });
            let last = i + 1 == cuts.len();
            if blocks.len() == HASHES_PER_FRAME || last {
                Message::FileHashes(id, std::mem::take(&mut blocks), last).append_to(&mut self.out);
                // out at once: the sender checks these while the next are hashed
                self.flush(conn)?;
            }
        }
        Ok(())
    }
}
