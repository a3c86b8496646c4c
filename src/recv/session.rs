//! The state of a tree session on the receiving side, shared by its two
//! phases (the manifest in `tree`, the data in `tree_files`), and what both
//! do with it: record an entry's fate, write frames, answer the sender.

use std::io::Write;

use anyhow::{Context, Result};

use super::sink::{RelPath, Root, Seen};
use crate::auth::Session;
use crate::config::RecvConfig;
use crate::conn::Conn;
use crate::held::{Identity, Ranges};
use crate::progress::tree::{self as tree_progress, TreeProgress};
use crate::protocol::ledger::{Fate, Ledger};
use crate::protocol::tree::{Entry, TreeOffer};
use crate::protocol::{Outcome, Status, ToSender};

/// A file the receiver asked for, kept until its data comes.
pub(super) struct Want {
    pub id: u64,
    pub rel: RelPath,
    pub size: u64,
    pub mode: u32,
    pub mtime_ns: u64,
    /// Ranges of the part already held (kept; with `hashes`, offered to the
    /// sender for checking, else, with `--offset`, kept unchecked).
    pub held: Ranges,
    pub hashes: bool,
    /// A held record lies beside the part (to remove once it lands).
    pub recorded: bool,
    /// The bytes offered: the range asked for, or the whole file.
    pub range: (u64, u64),
    /// A stream: its size is known at its end; its data comes in order.
    pub stream: bool,
    /// The file is whole once the range lands (see `protocol::whole`).
    pub whole: bool,
    /// A file alone: its part, opened when its entry was admitted.
    pub part: Option<std::fs::File>,
    /// In a directory this session made: nothing was there, and it is on
    /// the output's own file system.
    pub fresh: bool,
    /// Its part was created with its final mode (no chmod needed).
    pub moded: bool,
}

impl Want {
    /// The entry's wire path.
    pub fn path(&self) -> &[u8] {
        self.rel.bytes()
    }
}

/// What the whole session knows and has decided.
pub(super) struct Tree<'a> {
    pub cfg: &'a RecvConfig,
    pub root: std::sync::Arc<Root>,
    pub key: Option<Session>,
    pub offer: TreeOffer,
    pub ledger: Ledger,
    /// The same fates as the sender hears them, for its RESULT: without
    /// the key, a reason that tells of what is in OUT is replaced by less
    /// (see "What a receiver without a key tells" in SECURITY.md).
    pub told: Ledger,
    /// The sender proved the key (a sealed connection, or --no-encrypt's
    /// keyed digests): it may hear all of a reason.
    pub keyed: bool,
    pub progress: Box<dyn TreeProgress>,
    pub wants: super::wants::Wants,
    /// Bytes the directories and links kept for the end hold (see `memory`).
    pub kept: u64,
    /// What this session holds of the receiver's --max-memory, given back
    /// when it ends.
    pub budget: crate::budget::Share,
    pub seen: Seen,
    /// Directories to finish at the end (made now, or left unfinished by
    /// an earlier session): path, name shown, mode as it lands, mtime.
    pub dirs: Vec<(RelPath, String, u32, u64)>,
    /// Directories this session made: empty when made, so nothing in them
    /// needs looking up (one entry per directory, not per file).
    pub fresh: std::collections::HashSet<RelPath>,
    pub links: Vec<(RelPath, String, Vec<u8>)>,
    pub next_id: u64,
    /// Entries the sender's walk could not read (its MANIFEST says how many).
    pub unread: u64,
    /// Bytes the wanted files still need.
    pub needed: u64,
    /// Bytes the file entries come to (each its declared size, or the end
    /// of what it offers when further), against `--max-size`: the OFFER's
    /// count is only the sender's word.
    pub offered: u64,
    /// Frames to the sender, written in batches.
    pub out: Vec<u8>,
    /// Where a session of one file goes, when not into the directory.
    pub dest: Dest,
    /// A session of one file: its fate, once known, decides the exit code.
    pub single: Option<Fate>,
    /// A session of one file: the file's name, once its entry came.
    pub name: Option<String>,
    /// Notes along the way (a part started over).
    pub reporter: &'a crate::progress::Reporter,
    /// Where the session stands, as the sender's messages move it.
    pub phase: crate::protocol::session::ReceiverPhase,
}

/// Where the entries go.
pub(super) enum Dest {
    /// Beneath the output directory, by their own paths.
    Dir,
    /// The one file of the session, under this name in the directory of
    /// `-o FILE`.
    Named(RelPath),
    /// The one file of the session, in order, to stdout or a device (with
    /// its label).
    Stream(crate::output::Stream, String),
}

impl Tree<'_> {
    pub(super) fn flush(&mut self, conn: &mut Conn) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        // what is here stays: the sender may come back and resume
        conn.write_all(&out)
            .with_context(|| format!("{}: connection lost", conn.peer))
            .map_err(|e| crate::exit::tag(e, crate::exit::Tag::Resumable))
    }

    pub(super) fn settle(&mut self, path: &str, kind: &'static str, fate: Fate) {
        self.settle_file(path, kind, 0, None, fate);
    }

    /// Records an entry's fate and shows it.
    pub(super) fn settle_file(
        &mut self,
        path: &str,
        kind: &'static str,
        bytes: u64,
        sha256: Option<String>,
        fate: Fate,
    ) {
        self.told.record(path, &fate);
        self.settle_here(path, kind, bytes, sha256, fate);
    }

    /// Records a fate whose reason tells of what is in OUT: this side's
    /// user reads all of it, a sender without the key only `told`.
    pub(super) fn settle_hiding(&mut self, path: &str, kind: &'static str, fate: Fate, told: &str) {
        let heard = match (&fate, self.keyed) {
            (Fate::Refused(_), false) => Fate::Refused(told.into()),
            (Fate::Failed(_), false) => Fate::Failed(told.into()),
            _ => fate.clone(),
        };
        self.told.record(path, &heard);
        self.settle_here(path, kind, 0, None, fate);
    }

    fn settle_here(
        &mut self,
        path: &str,
        kind: &'static str,
        bytes: u64,
        sha256: Option<String>,
        fate: Fate,
    ) {
        let progress = self.progress.as_mut();
        tree_progress::settle(
            &mut self.ledger,
            progress,
            (path, kind),
            bytes,
            sha256,
            &fate,
        );
        if let Some(one) = self.single.as_mut() {
            *one = fate;
        }
    }

    /// The session's RESULT (MAC'd with a key): `held` counts the entries
    /// in place, which the sender checks against its own count.
    pub(super) fn answer(&mut self, conn: &mut Conn, status: Status, message: &str) -> Result<()> {
        let held = self.ledger.accounted();
        self.answer_held(conn, status, message, held)
    }

    /// The session's RESULT with another count in `held` (the bytes a file
    /// alone holds, when it stops).
    pub(super) fn answer_held(
        &mut self,
        conn: &mut Conn,
        status: Status,
        message: &str,
        held: u64,
    ) -> Result<()> {
        let outcome = Outcome {
            status,
            sha256: None,
            held,
            message: message.into(),
            mac: self.key.as_ref().map(|k| k.result_mac(status as u8, held)),
        };
        ToSender::Result(outcome).append_to(&mut self.out);
        self.flush(conn)
    }
}

/// A part's record names its source by where it lands, size and mtime.
pub(super) fn identity(rel: &RelPath, entry: &Entry) -> Identity {
    Identity {
        name: lossy(rel.bytes()),
        size: entry.size,
        mtime_ns: Some(entry.mtime_ns),
    }
}

/// The identity a wanted file's record carries.
pub(super) fn identity_of(want: &Want) -> Identity {
    Identity {
        name: lossy(want.path()),
        size: want.size,
        mtime_ns: Some(want.mtime_ns),
    }
}

/// A wire path as text: lossy UTF-8 (escaped where it is printed).
pub(super) fn lossy(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}
