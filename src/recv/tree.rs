//! A tree session on the receiving side: check the offer, answer every
//! entry of the manifest as it arrives (directories made, files up to date
//! or wanted), check the free space for the whole tree, then hand the data
//! phase to `tree_files` and finish: flush, links, directories, RESULT.

use std::io::{BufReader, Write};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};

use super::peer::{authenticate, refuse};
use super::session::{lossy, Dest, Tree};
use super::sink::{self, Root, Seen};
use super::tree_files::Files;

pub(super) mod decide;
use crate::config::{Output, RecvConfig};
use crate::conn::{with_keepalive, Conn};
use crate::exit;
use crate::output::Stream;
use crate::progress::tree::{TreeStart, TreeSummary};
use crate::progress::{Reporter, Role};
use crate::protocol::ledger::{Fate, Ledger, Verdict};
use crate::protocol::tree::{Action, Entry, EntryKind, Manifest, Reply, TreeOffer};
use crate::protocol::{self as proto, Message, RefuseCode, Status};
use crate::units::human_bytes;

/// The unit of file times here: Windows keeps 100 ns ticks, so a file that
/// landed there with its time cut down is still the same file.
const TICK_NS: u64 = if cfg!(windows) { 100 } else { 1 };
/// Replies are gathered into writes of about this size.
const BATCH: usize = 64 << 10;
/// Block hashes sent in one FILE HASHES frame (the sender checks each frame
/// while the next blocks are hashed here).
const HASHES_PER_FRAME: usize = 16;

pub(super) fn receive(
    cfg: &RecvConfig,
    conn: &mut Conn,
    body: &[u8],
    reporter: &Reporter,
) -> Result<()> {
    let offer = match TreeOffer::decode(body) {
        Ok(offer) => offer,
        Err(e) => {
            let err = refuse(conn, RefuseCode::BadOffer, format!("bad offer: {e:#}"));
            return Err(super::hello::before_an_offer(conn, err));
        }
    };
    let key = match authenticate(cfg, conn, offer.nonce, body) {
        Ok(key) => key,
        Err(reason) => return Err(refuse(conn, RefuseCode::Auth, reason)),
    };
    // a sender now: its OFFER decoded and, with a key, its PROOF checked
    // (until then the handshake deadline held, see hello::receive)
    conn.trusted();
    let (root, dest) = match admit_offer(cfg, &offer) {
        Ok(admitted) => admitted,
        Err((code, reason)) => return Err(refuse(conn, code, reason)),
    };
    let accept = proto::Answer::Accept {
        held: Vec::new(),
        hashes: false,
    };
    proto::write_frame(conn, proto::kind::ANSWER, &accept.encode())
        .with_context(|| format!("{}: connection lost", conn.peer))?;
    let began = Instant::now();
    let start = TreeStart {
        role: Role::Recv,
        name: format!("tree from {}", conn.peer).into(),
        peer: conn.peer.clone(),
        entries: offer.entries,
        bytes: offer.bytes,
        counted: !offer.streamed,
    };
    let progress = match offer.single {
        // named once its entry comes
        true => reporter.one_file(&start, None),
        false => reporter.tree(&start),
    };
    let offer_single = offer.single;
    // a key (sealed, or --no-encrypt's keyed digests) authenticated the sender
    let keyed = key.is_some() || conn.is_sealed();
    let mut tree = Tree {
        cfg,
        root: std::sync::Arc::new(root),
        key,
        offer,
        ledger: Ledger::default(),
        told: Ledger::default(),
        keyed,
        progress,
        wants: Default::default(),
        kept: 0,
        budget: cfg.max_memory.share(),
        seen: Seen::new(cfg!(any(windows, target_os = "macos"))),
        dirs: Vec::new(),
        fresh: Default::default(),
        links: Vec::new(),
        next_id: 0,
        unread: 0,
        needed: 0,
        offered: 0,
        out: Vec::new(),
        single: offer_single.then_some(Fate::Landed),
        dest,
        name: None,
        reporter,
        phase: Default::default(),
    };
    if let Err(e) = tree.manifest(conn) {
        tree.discard_unstarted();
        tree.progress.abandon();
        return Err(tree.manifest_failed(conn, e));
    }
    let mut files = Files::new(&mut tree);
    let data = files.run(conn);
    let (bytes, zero_copy, landed) = (files.bytes, files.spliced, files.files);
    match data {
        Ok(()) => tree.finish(conn, began, (bytes, landed), zero_copy),
        Err(e) => {
            // the directories made stay unfinished (see sink::UNFINISHED),
            // owner only, for the session that resumes the tree to finish
            tree.progress.abandon();
            Err(e)
        }
    }
}

/// What a session of one file that did not land exits with: the code and
/// the words of a single transfer (a refusal is 4, not "partial").
fn single_error(peer: &str, fate: &Fate, line: &str) -> anyhow::Error {
    match fate {
        Fate::Refused(why) => exit::refused(format!("refused the file from {peer}: {why}")),
        Fate::Mismatch => exit::integrity(format!(
            "SHA-256 mismatch for the file from {peer}; it was not renamed into place"
        )),
        Fate::Failed(why) => anyhow!("{peer}: {why}"),
        Fate::Landed | Fate::UpToDate | Fate::Held(_) => anyhow!("{line}"),
    }
}

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

/// The session-wide checks, before anything is written: where it goes,
/// how many entries, how many bytes.
fn admit_offer(cfg: &RecvConfig, offer: &TreeOffer) -> Result<(Root, Dest), (RefuseCode, String)> {
    let one = offer.single && offer.entries == 1;
    let (dir, dest) = match &cfg.output {
        Output::Dir(dir) => (dir.clone(), Dest::Dir),
        Output::File(file) if one => {
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
            let rel = name.as_deref().map(|n| sink::check_path(n.as_bytes()));
            let Some(Ok(rel)) = rel else {
                return Err((
                    RefuseCode::BadName,
                    format!("{}: not a file name", file.display()),
                ));
            };
            (crate::output::dir_of(file), Dest::Named(rel))
        }
        Output::Stdout if one => (".".into(), Dest::Stream(Stream::stdout(), "-".into())),
        Output::Stream(path) if one => {
            let out = Stream::open(path)
                .map_err(|e| (RefuseCode::Other, format!("{}: {e}", path.display())))?;
            // the directory is never written: a stream takes the one file
            (".".into(), Dest::Stream(out, path.display().to_string()))
        }
        _ => {
            let why = "a tree (a directory or several files) needs 'zc recv -o DIR'; this receiver writes one file or a stream";
            return Err((RefuseCode::BadOffer, why.into()));
        }
    };
    if offer.entries > cfg.max_files {
        let why = format!(
            "the tree has {} entries, over --max-files {}",
            offer.entries, cfg.max_files
        );
        return Err((RefuseCode::TooLarge, why));
    }
    if let Some(max) = cfg.max_size.filter(|max| offer.bytes > *max) {
        let what = match offer.single {
            true => "the file",
            false => "the tree",
        };
        let why = format!(
            "{what} is {}, over --max-size {}",
            human_bytes(offer.bytes),
            human_bytes(max)
        );
        return Err((RefuseCode::TooLarge, why));
    }
    let root =
        Root::open(&dir).map_err(|e| (RefuseCode::Other, format!("{}: {e}", dir.display())))?;
    Ok((root, dest))
}

impl Tree<'_> {
    /// Reads the manifest and answers each entry, then checks the space
    /// for everything wanted and says GO, before any data byte is written.
    fn manifest(&mut self, conn: &mut Conn) -> Result<()> {
        let peer = conn.peer.clone();
        let mut reader = BufReader::with_capacity(BATCH, &mut *conn);
        let manifest = loop {
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
            let msg = Message::decode(&frame).with_context(|| peer.clone())?;
            self.phase
                .take(&msg)
                .map_err(|why| anyhow!("{peer}: unexpected {why}"))?;
            match msg {
                Message::Entry(entry) => self.admit(entry, reader.get_mut())?,
                Message::Manifest(m) => break m,
                Message::Stop => {
                    return Err(exit::interrupted(format!(
                        "{peer} stopped before sending any data"
                    )))
                }
                _ => {} // a keepalive (the phase took no other)
            }
            if self.out.len() >= BATCH {
                let out = std::mem::take(&mut self.out);
                reader
                    .get_mut()
                    .write_all(&out)
                    .context("connection lost")?;
            }
        };
        // The sender waits for GO: what it sent behind the MANIFEST can only
        // be a KEEPALIVE (it checks held blocks) or a STOP (Ctrl-C meanwhile)
        while !reader.buffer().is_empty() {
            match proto::read_frame(&mut reader)?.kind {
                proto::kind::KEEPALIVE => {}
                proto::kind::STOP => {
                    return Err(exit::interrupted(format!(
                        "{peer} stopped before sending any data"
                    )))
                }
                _ => {
                    // the replies (a refusal's reason) still go out, then the session ends
                    let out = std::mem::take(&mut self.out);
                    let _ = reader.get_mut().write_all(&out);
                    bail!("{peer}: data before GO");
                }
            }
        }
        drop(reader);
        self.check_manifest(&manifest, &peer)?;
        self.unread = manifest.failed;
        if self.offer.streamed {
            self.progress.totals(self.next_id, self.offered);
        }
        match self.space_refusal() {
            Some(why) => {
                let answer = proto::Answer::Refuse {
                    code: RefuseCode::NoSpace,
                    reason: why.as_str().into(),
                };
                Message::Answer(answer).append_to(&mut self.out);
                self.flush(conn)?;
                Err(exit::refused(format!("refused what {peer} offered: {why}")))
            }
            None => {
                Message::Go.append_to(&mut self.out);
                self.flush(conn)
            }
        }
    }

    /// A manifest this side could not take (a bad entry, a disk that
    /// failed): the sender hears why in a failed RESULT, as it would in the
    /// data. A stop, a refusal (already said) and a lost connection are
    /// left as they are.
    fn manifest_failed(&mut self, conn: &mut Conn, err: anyhow::Error) -> anyhow::Error {
        let said = matches!(
            exit::code_of(&err),
            exit::ExitCode::Interrupted | exit::ExitCode::Refused
        );
        if !said && exit::tag_of(&err).is_none() && !crate::interrupt::requested() {
            let _ = self.answer(conn, Status::Failed, &exit::message_of(&err));
            super::peer::linger(conn);
        }
        err
    }

    /// A file alone opens its part when its entry comes: one that never got
    /// data, new and empty, goes again when the session ends before GO.
    fn discard_unstarted(&mut self) {
        while let Some(mut want) = self.wants.pop_front() {
            if want.part.take().is_some() && want.held.total() == 0 && !want.recorded {
                let _ = self.root.discard_part(&want.rel);
            }
        }
    }

    /// Refuses the whole session in the middle of its manifest: the
    /// answers so far, then the refusal, which the sender reads as it
    /// writes the next entries.
    fn refuse_session(&mut self, conn: &mut Conn, code: RefuseCode, why: String) -> anyhow::Error {
        // nothing of a refused tree stays: the directories it made are
        // still empty (data comes only after GO); gone, deepest first,
        // before the sender hears of it
        let mut made: Vec<_> = self.fresh.drain().collect();
        made.sort_by_key(|rel| std::cmp::Reverse(rel.bytes().len()));
        for rel in made {
            let _ = self.root.remove_empty_dir(&rel);
        }
        let answer = proto::Answer::Refuse {
            code,
            reason: why.as_str().into(),
        };
        Message::Answer(answer).append_to(&mut self.out);
        let _ = self.flush(conn);
        super::peer::linger(conn);
        exit::refused(format!("refused what {} offered: {why}", conn.peer))
    }

    /// What the session holds for its entries until it ends, in bytes:
    /// the files asked for, the directories and links kept for the end,
    /// and every path seen (against duplicates).
    fn memory(&self) -> u64 {
        self.wants.memory() + self.seen.memory() + self.kept
    }

    fn check_manifest(&self, manifest: &Manifest, peer: &str) -> Result<()> {
        if manifest.entries != self.next_id {
            bail!(
                "{peer}: the manifest says {} entries, {} came",
                manifest.entries,
                self.next_id
            );
        }
        Ok(())
    }

    fn space_refusal(&self) -> Option<String> {
        let free = self.root.free_space().ok()?;
        let what = match (&self.name, &self.single) {
            (Some(name), Some(_)) => crate::peer_text::escape(name.as_bytes()),
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

    /// Checks one entry and answers it.
    fn admit(&mut self, entry: Entry, conn: &mut Conn) -> Result<()> {
        if entry.id != self.next_id {
            bail!("entry {} arrived where {} was due", entry.id, self.next_id);
        }
        if !self.offer.streamed && self.next_id >= self.offer.entries {
            bail!("more entries than the {} announced", self.offer.entries);
        }
        if self.offer.streamed && self.next_id >= self.cfg.max_files {
            let why = format!(
                "the tree has over {} entries (--max-files)",
                self.cfg.max_files
            );
            return Err(self.refuse_session(conn, RefuseCode::TooLarge, why));
        }
        self.next_id += 1;
        let id = entry.id;
        let shown = lossy(&entry.path);
        self.kept += kept_for(&entry);
        let action = match self.decide(entry) {
            Ok(action) => action,
            // a tree counted as it comes is refused whole when it grows
            // past --max-size, as one counted first would have been
            Err(r) if r.code == RefuseCode::TooLarge && self.offer.streamed => {
                return Err(self.refuse_session(conn, RefuseCode::TooLarge, r.why));
            }
            Err(r) => {
                let reason = r.to_peer(self.keyed).to_string();
                self.settle_hiding(&shown, "entry", Fate::Refused(r.why.into()), &reason);
                Action::Refuse {
                    code: r.code,
                    reason: reason.into(),
                }
            }
        };
        if action == Action::Skip {
            self.settle(&shown, "file", Fate::UpToDate);
        }
        Message::Reply(Reply { id, action }).append_to(&mut self.out);
        let memory = self.memory();
        if !self.budget.resize(memory) {
            let (limit, n) = (human_bytes(self.cfg.max_memory.limit()), self.next_id);
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

    /// After END: links, directories' modes and times, one last flush, and
    /// the RESULT that lets the sender exit 0.
    fn finish(
        mut self,
        conn: &mut Conn,
        began: Instant,
        (bytes, files): (u64, u64),
        zero_copy: bool,
    ) -> Result<()> {
        for (rel, shown, target) in std::mem::take(&mut self.links) {
            let fate = match self.root.symlink(&rel, &target) {
                Ok(()) => Fate::Landed,
                Err(e) => Fate::Failed(format!("cannot make the link: {e}").into()),
            };
            self.settle(&shown, "link", fate);
        }
        self.finish_dirs();
        let root = &self.root;
        let synced = with_keepalive(conn, || root.sync_all());
        if let Err(e) = synced.or_else(|e| match e.kind() {
            std::io::ErrorKind::Unsupported => Ok(()),
            _ => Err(e),
        }) {
            let why = format!("flushing the output: {e}");
            self.answer(conn, Status::Failed, &why)?;
            return Err(anyhow!(why));
        }
        if self.unread > 0 {
            // not landed either, though never offered: both sides say 5
            let why = format!("{} entries the sender could not read", self.unread);
            let fate = Fate::Failed(why.into());
            self.ledger.record("(sender)", &fate);
            self.told.record("(sender)", &fate);
        }
        let verdict = self.ledger.verdict();
        // the sender reads the fates as it was told them
        let (status, message) = match self.told.verdict() {
            Verdict::Complete => (Status::Ok, String::new()),
            Verdict::Partial(line) | Verdict::Integrity(line) => (Status::Failed, line),
        };
        self.answer(conn, status, &message)?;
        if let (Some(fate), Verdict::Partial(line)) = (&self.single, &verdict) {
            self.progress.abandon();
            return Err(single_error(&conn.peer, fate, line));
        }
        if let (Some(_), Verdict::Integrity(line)) = (&self.single, &verdict) {
            self.progress.abandon();
            return Err(exit::integrity(line.clone()));
        }
        self.progress.finish(&TreeSummary {
            role: Role::Recv,
            name: format!("tree from {}", conn.peer),
            path: self.cfg_dir(),
            entries: self.next_id,
            files,
            up_to_date: self.ledger.up_to_date,
            not_landed: self.ledger.not_landed,
            bytes,
            elapsed: began.elapsed(),
            reconnects: 0,
            sent_before: 0,
            zero_copy,
            encrypted: conn.is_sealed(),
            verified: self.offer.verify && self.cfg.common.verify,
            digests: (0, 0),
        });
        match verdict {
            Verdict::Complete => Ok(()),
            Verdict::Partial(line) => Err(exit::partial(line)),
            Verdict::Integrity(line) => Err(exit::integrity(line)),
        }
    }

    /// Gives each directory the session made its mode and time, deepest
    /// first, so a read-only parent is closed after its children.
    fn finish_dirs(&mut self) {
        for (rel, shown, mode, mtime) in std::mem::take(&mut self.dirs).into_iter().rev() {
            let fate = match self.root.finish_dir(&rel, mode, mtime) {
                Ok(()) => Fate::Landed,
                Err(e) => Fate::Failed(format!("cannot set its mode and time: {e}").into()),
            };
            self.settle(&shown, "dir", fate);
        }
    }

    fn cfg_path(&self) -> String {
        match &self.cfg.output {
            Output::File(file) => file.display().to_string(),
            _ => String::new(),
        }
    }

    fn cfg_dir(&self) -> Option<String> {
        match &self.cfg.output {
            Output::Dir(dir) => Some(dir.display().to_string()),
            _ => None,
        }
    }
}
