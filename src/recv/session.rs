//! The state of a tree session on the receiving side, shared by its two
//! phases (the manifest in `tree`, the data in `tree_files`), and what both
//! do with it: record an entry's fate, write frames, answer the sender.

use std::io::Write;

use anyhow::{Context, Result};

use std::sync::Arc;

use super::incoming::Incoming;
use super::sink::{RelPath, Root, Seen};
use super::tree_files::{Batch, Current};
use crate::config::RecvConfig;
use crate::conn::Conn;
use crate::exit::{self, ExitCode, Tag};
use crate::held::{Identity, Ranges};
use crate::progress::tree::{EntryEvent, Status as EntryStatus, TreeProgress};
use crate::protocol::receiver::{Session, Wanted};
pub(super) use crate::protocol::tree::lossy;
use crate::protocol::tree::TreeOffer;

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
    /// Its part has no name until it lands ([`Root::create_unnamed`]).
    pub unnamed: bool,
}

/// A tree session on the receiving side: the protocol's side (phase,
/// entries, ledgers, verdict, frames to the sender) and the progress its
/// settled entries show on; what the manifest phase keeps and decides (the
/// files asked for, the paths seen); where the data goes; and the file and
/// the batch the data phase has under way.
pub(super) struct Tree<'a> {
    pub cfg: &'a RecvConfig,
    pub offer: TreeOffer,
    pub session: Session,
    pub progress: Box<dyn TreeProgress>,
    pub root: Arc<Root>,
    pub dest: Dest,
    pub wants: super::wants::Wants,
    /// What this session holds of the receiver's --max-memory, given back
    /// when it ends.
    pub budget: crate::budget::Share,
    pub seen: Seen,
    /// Directories this session made: empty when made, so nothing in them
    /// needs looking up (one entry per directory, not per file).
    pub fresh: std::collections::HashSet<RelPath>,
    /// Notes along the way (a part started over).
    pub reporter: &'a crate::progress::Reporter,
    pub incoming: Incoming,
    pub cur: Option<Current>,
    pub batch: Batch,
    /// Some data went through splice(2).
    pub spliced: bool,
    /// The buffer DATA frames are read into, between frames.
    pub spare: Option<crate::copy::Buf>,
    /// Large files and streams are hashed on a thread of their own (see
    /// `hash::thread_pays`).
    pub hash_thread: bool,
}

impl<'a> Tree<'a> {
    /// The session's start: nothing asked for, seen, made or received yet.
    pub fn new(
        cfg: &'a RecvConfig,
        offer: TreeOffer,
        (session, progress): (Session, Box<dyn TreeProgress>),
        (root, dest): (Arc<Root>, Dest),
        reporter: &'a crate::progress::Reporter,
        hash_thread: bool,
    ) -> Tree<'a> {
        Tree {
            hash_thread,
            cfg,
            offer,
            session,
            progress,
            batch: Batch::new(&root),
            root,
            dest,
            wants: Default::default(),
            budget: cfg.max_memory.share(),
            seen: Seen::new(cfg!(any(windows, target_os = "macos"))),
            fresh: Default::default(),
            reporter,
            incoming: Incoming::new(),
            cur: None,
            spliced: false,
            spare: None,
        }
    }

    /// Where a file alone goes: its path beneath the root (another name
    /// with `-o FILE`), and the path the user knows it by.
    pub(super) fn alone(&self, rel: RelPath) -> (RelPath, String) {
        match &self.dest {
            Dest::Dir => {
                let at = self.root.path().join(rel.to_path()).display().to_string();
                (rel, at)
            }
            Dest::Named(name, shown) => (name.clone(), shown.clone()),
            Dest::Stream(_, label) => (rel, label.clone()),
        }
    }
}

/// Where the entries go.
pub(super) enum Dest {
    /// Beneath the output directory, by their own paths.
    Dir,
    /// The one file of the session, under this name in the directory of
    /// `-o FILE` (with that path as the user wrote it).
    Named(RelPath, String),
    /// The one file of the session, in order, to stdout or a device (with
    /// its label).
    Stream(crate::output::Stream, String),
}

impl Dest {
    /// The one file goes to a stream (stdout, a device), in order.
    pub(super) fn stream(&mut self) -> Option<&mut crate::output::Stream> {
        match self {
            Dest::Stream(stream, _) => Some(stream),
            _ => None,
        }
    }
}

impl Tree<'_> {
    /// Writes the frames the session queued.
    pub(super) fn flush(&mut self, conn: &mut Conn) -> Result<()> {
        self.show();
        if self.session.outbox_len() == 0 {
            return Ok(());
        }
        let out = self.session.take_outbox();
        // what is here stays: the sender may come back and resume
        conn.write_all(&out)
            .with_context(|| format!("{}: connection lost", conn.peer))
            .map_err(|e| exit::tag(e, Tag::Resumable))
    }

    /// Shows the entries the session settled since the last call.
    pub(super) fn show(&mut self) {
        for s in self.session.settled() {
            let kind = s.kind.name();
            let (status, message) = EntryStatus::of(&s.fate, kind);
            self.progress.entry(&EntryEvent {
                path: &s.path,
                kind,
                bytes: s.bytes,
                sha256: s.sha256,
                status,
                message: message.as_ref(),
            });
        }
    }

    /// A failure of this side (a bad entry or frame, a disk), told to the
    /// sender in a failed RESULT, with a moment for it to be read; whether
    /// it was. A stop, a refusal (already said), a lost connection and a
    /// Ctrl-C here are left as they are.
    pub(super) fn tell(&mut self, conn: &mut Conn, err: &anyhow::Error) -> bool {
        let said = matches!(
            exit::code_of(err),
            ExitCode::Interrupted | ExitCode::Refused
        );
        if said || exit::tag_of(err).is_some() || crate::interrupt::requested() {
            return false;
        }
        self.session.fail(&exit::message_of(err));
        let _ = self.flush(conn);
        super::peer::linger(conn);
        true
    }
}

impl Wanted for Want {
    fn id(&self) -> u64 {
        self.id
    }
    fn path(&self) -> &[u8] {
        self.rel.bytes()
    }
    fn shape(&self) -> (u64, (u64, u64), Ranges, bool, bool) {
        (
            self.size,
            self.range,
            self.held.clone(),
            self.stream,
            self.whole,
        )
    }
}

/// A connection lost (`what`: where): the sender may come back and
/// resume, unless it was a Ctrl-C, or an encrypted record that did not
/// open (tampering, not a cut: the session stops here, the sender told).
pub(super) fn lost(err: anyhow::Error, what: String) -> anyhow::Error {
    let err = err.context(what);
    match exit::code_of(&err) {
        ExitCode::Integrity | ExitCode::Interrupted => err,
        _ => exit::tag(err, Tag::Resumable),
    }
}

/// The identity a file's held record carries: the source's path, size
/// and time.
pub(super) fn identity(rel: &RelPath, size: u64, mtime_ns: u64) -> Identity {
    Identity {
        name: lossy(rel.bytes()),
        size,
        mtime_ns: Some(mtime_ns),
    }
}
