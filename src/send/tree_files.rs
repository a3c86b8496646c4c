//! The data of a tree session on the sending side: each wanted file
//! through the same sendfile path as a single file, small ones read once
//! and packed with their frames, every one with its SHA-256; and the
//! receiver's hashes of what it holds checked against the source.

use std::fs::File;
use std::io;

use anyhow::{anyhow, Context, Result};
use sha2::{Digest as _, Sha256};

use super::digests::{Claim, FileId, Lookup, Wait};
use super::peer::lost;
use super::tree::{Run, HASH_INLINE, PACK_MAX, PACK_WRITE};
use super::{send_file_ranges, Framing};
use crate::conn::with_keepalive;
use crate::copy::{self, Sent};
use crate::exit;
use crate::file_read;
use crate::hash::{self, Sha};
use crate::progress::{Role, Start};
use crate::protocol::sender::{changed, ToSend};
use crate::protocol::tree::lossy;
use crate::protocol::{self as proto, BlockHash};

impl Run<'_> {
    /// Sends one file: BEGIN, its missing ranges, FILE END with its digest;
    /// or, when its source fails, says so and goes on with the next.
    pub(super) fn send_one(&mut self, job: ToSend) -> Result<()> {
        let (id, entry) = (job.id, &job.entry);
        let packed = self.sources.walked[id as usize]
            .filter(|_| entry.size <= PACK_MAX && !job.resumed && entry.range.is_none());
        if !entry.stream {
            self.show_start(&job);
            let files = self.session.files_landed();
            self.progress.update(self.sent, files, &job.name());
        }
        let sent = match packed {
            _ if entry.stream => self.send_stream(&job),
            Some(walked) => self.pack_one(&job, walked),
            None => self.send_file(&job),
        };
        match sent {
            Ok((bytes, digest)) => self.session.file_end(id, bytes, digest),
            Err(Lost::Source(bytes, why)) => {
                let settled = self.session.give_up(id, bytes, &why);
                self.show(&settled);
            }
            Err(Lost::Session(e)) => return Err(e),
        }
        // FILE END waits in the pack for the next write
        self.session.move_outbox_to(&mut self.pack);
        match self.pack.len() >= PACK_WRITE {
            true => self.flush(),
            false => Ok(()),
        }
    }

    /// A file through sendfile: opened as the walk saw it, and still the
    /// one opened once its data went out.
    fn send_file(&mut self, job: &ToSend) -> Result<(u64, Option<Sha>), Lost> {
        let opened = self.open_unchanged(job.id, &job.entry.path);
        let (file, identity) = opened.map_err(|why| Lost::Source(0, why))?;
        self.session.begin(job.id);
        self.flush().map_err(Lost::Session)?;
        let (bytes, digest) = self.digest_and_send(&file, job)?;
        // the identity, ctime included: a rewrite that put the mtime back
        // still shows, and a cached digest is only as good as it
        same_file(&file, identity).map_err(|why| Lost::Source(bytes, why))?;
        Ok((bytes, digest))
    }

    /// How one file's transfer begins, for a display of one file: a
    /// stream's size is not known, and it counts only up to its cap.
    fn show_start(&mut self, job: &ToSend) {
        let stream = job.entry.stream;
        self.progress.file(&Start {
            role: Role::Send,
            name: Default::default(),
            peer: self.conn.peer.clone(),
            size: (!stream).then_some(job.entry.size),
            offset: job.offered().0,
            count: match stream {
                true => job.entry.range.map(|(_, end)| end),
                false => Some(job.count()),
            },
            resumed_from: job.resumed_from(),
        });
    }

    /// A stream (stdin, a pipe): read once, framed as it comes, hashed on
    /// the way; its size is known only at its end.
    fn send_stream(&mut self, job: &ToSend) -> Result<(u64, Option<Sha>), Lost> {
        // only the first session of a stream reads it
        let stream = self
            .plan
            .stream
            .as_ref()
            .and_then(|m| m.lock().ok()?.take());
        let Some(mut reader) = stream else {
            return Err(Lost::Source(0, "the stream was read already".into()));
        };
        let (cap, name) = (job.entry.range.map(|(_, end)| end), job.name());
        self.session.begin(job.id);
        self.flush().map_err(Lost::Session)?;
        self.show_start(job);
        let mut hasher = self.cfg.common.verify.then(Sha256::new);
        let progress = &mut self.progress;
        let mut update = |n: u64| progress.update(n, 0, &name);
        let moved = copy::send_stream(
            &mut reader,
            &mut self.conn.finishing(),
            proto::data_header,
            cap,
            hasher.as_mut(),
            &mut update,
        );
        self.zero_copy = false;
        // Ctrl-C too: the session's failure looks at it first
        let bytes = moved.map_err(|e| Lost::Session(lost(self.conn, e)))?;
        self.sent += bytes;
        self.hashing.computed += u64::from(hasher.is_some());
        Ok((bytes, hasher.map(|h| h.finalize().into())))
    }

    /// A small file: read once, hashed from that buffer, and packed with
    /// its frames into the next large write. One fstat, after the read,
    /// shows it is still the file the walk saw (its ctime included).
    fn pack_one(&mut self, job: &ToSend, walked: FileId) -> Result<(u64, Option<Sha>), Lost> {
        let size = job.entry.size;
        let opened = self.sources.open(&job.entry.path, self.cfg.dereference);
        let file = opened.map_err(|why| Lost::Source(0, why))?;
        // its bytes read straight in behind their DATA header (taken back
        // out if the read fails or the file changed), its BEGIN put in
        // front of them once they are good
        self.session.move_outbox_to(&mut self.pack);
        let mark = self.pack.len();
        if size > 0 {
            self.pack.extend_from_slice(&proto::data_header(0, size));
        }
        let start = self.pack.len();
        self.pack.resize(start + size as usize, 0);
        let read = file_read::read_exact_at(&file, &mut self.pack[start..], 0);
        let checked = read.map_err(|e| e.to_string());
        if let Err(why) = checked.and_then(|()| same_file(&file, walked)) {
            self.pack.truncate(mark);
            if crate::interrupt::requested() {
                return Err(Lost::Session(exit::interrupted("interrupted")));
            }
            return Err(Lost::Source(0, why));
        }
        // read anyway to be sent: hashing the buffer costs less than a lookup saves
        let digest = (self.cfg.common.verify).then(|| Sha256::digest(&self.pack[start..]).into());
        self.session.begin(job.id);
        self.pack.splice(mark..mark, self.session.take_outbox());
        self.hashing.computed += u64::from(digest.is_some());
        self.sent += size;
        Ok((size, digest))
    }

    /// Sends `ranges` of the file and comes by its SHA-256 (when
    /// verifying): a whole file's from the digests other sessions share, or
    /// computed inline for small files, on a thread beside sendfile for
    /// large ones, so the bytes sendfile sends never enter user space here.
    fn digest_and_send(&mut self, file: &File, job: &ToSend) -> Result<(u64, Option<Sha>), Lost> {
        let (id, size, whole) = (job.id, job.entry.size, job.whole);
        let inline = size <= HASH_INLINE && !job.resumed;
        let digest = match (self.cfg.common.verify, whole) {
            (false, _) => None,
            // a range that leaves the file unfinished: the digest of what
            // is sent, in order, this session's own
            (true, false) => Some(hash_thread(file, job.ranges.clone(), None)?),
            (true, true) => Some(match self.plan.digests.lookup(file) {
                Lookup::Known(sha) => Digest::Ready(sha, true),
                Lookup::Wait(wait) => Digest::Await(wait),
                Lookup::Hash(claim) if inline => {
                    let sha = hash::hash_range(file, 0, size).map_err(source(0))?;
                    claim.fill(file, sha);
                    Digest::Ready(sha, false)
                }
                // encrypted, the bytes pass through here anyway: hashed as
                // they are sealed where a second reader would only take
                // turns with the peer on the same cores
                Lookup::Hash(claim) if self.reads_hashed(job) => {
                    self.conn.digest_reads();
                    Digest::Reads(claim)
                }
                Lookup::Hash(claim) => hash_thread(file, vec![(0, size)], Some(claim))?,
            }),
        };
        let sent = self.send_ranges(file, job);
        let reads = self.conn.take_read_digest();
        let bytes = sent?;
        let Some(digest) = digest else {
            return Ok((bytes, None));
        };
        let (sha, cached) = match digest {
            Digest::Ready(sha, cached) => (sha, cached),
            Digest::Reads(claim) => {
                let sha: Sha = reads.expect("hashed as read").finalize().into();
                claim.fill(file, sha);
                (sha, false)
            }
            Digest::Thread(handle) => {
                let hashed = with_keepalive(self.conn, || handle.join())
                    .map_err(|_| Lost::Session(anyhow!("the hashing thread failed")))?;
                (hashed.map_err(source(bytes))?, false)
            }
            Digest::Await(wait) => match with_keepalive(self.conn, || wait.wait()) {
                Some(sha) => (sha, true),
                // the session hashing it for the others gave up, or Ctrl-C
                // came (then the read stops at once): hash it here after all
                None => {
                    let hashed = with_keepalive(self.conn, || hash::hash_range(file, 0, size));
                    (hashed.map_err(source(bytes))?, false)
                }
            },
        };
        match cached.then(|| FileId::of_file(file)) {
            Some(identity) => {
                self.hashing.cached += 1;
                self.cached.extend(identity.map(|identity| (id, identity)));
            }
            None => self.hashing.computed += 1,
        }
        Ok((bytes, Some(sha)))
    }

    /// Whether a whole file's digest is taken from what the encrypted send
    /// reads, on this thread (`Conn::digest_reads`): the send reads every
    /// byte, in order, and a hashing thread beside it would only take
    /// turns with a peer on the same cores (`hash::thread_pays`). 1 GiB
    /// `--key` over loopback on 2 cores, 7 rounds, page reporting held:
    /// into a tmpfs file 0.51 -> 0.59 GiB/s (the receiver's one thread no
    /// longer shares its core with the sender's second), to /dev/null
    /// 0.66 -> 0.68 GiB/s, the sender 1.51 -> 1.45 CPU-s/GiB.
    fn reads_hashed(&self, job: &ToSend) -> bool {
        self.conn.is_sealed()
            && job.ranges == [(0, job.entry.size)]
            && !hash::thread_pays(self.conn.peer_here())
    }

    /// Sends `ranges` of the file, with progress; the bytes that went out.
    fn send_ranges(&mut self, file: &File, job: &ToSend) -> Result<u64, Lost> {
        let base = self.sent;
        // send_file_ranges sets it from the start
        let mut sent = Sent::default();
        let files = self.session.files_landed();
        let (progress, name) = (&mut self.progress, job.name());
        let mut update = |n: u64| progress.update(base + n, files, &name);
        let moved = send_file_ranges(
            file,
            self.conn,
            &job.ranges,
            self.cfg.sendfile,
            Framing::Padded,
            &mut update,
            &mut sent,
        );
        self.sent += sent.bytes;
        self.zero_copy &= sent.zero_copy || sent.bytes == 0;
        match moved {
            Ok(()) => Ok(sent.bytes),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(Lost::Source(sent.bytes, e.to_string()))
            }
            Err(e) => Err(Lost::Session(lost(self.conn, e))),
        }
    }

    /// Checks the receiver's hashes of a held part against the source (the
    /// session checked that they are for held bytes, each once).
    pub(super) fn check_blocks(&mut self, id: u64, blocks: &[BlockHash], last: bool) -> Result<()> {
        let path = (self.session.entry(id).expect("checked by the session").path).clone();
        if self.session.is_single() && self.verifying.is_none() {
            let held = self.session.held(id).map_or(0, |h| h.total());
            self.verifying = Some(self.reporter.verifier(Role::Send, &lossy(&path), held));
        }
        let source = self.sources.of(&path);
        let Ok(file) = self.sources.open(&path, self.cfg.dereference) else {
            return Ok(()); // found out again, and reported, when it is sent
        };
        let mut buf = crate::copy::Buf::new(crate::copy::BUF_SIZE);
        for b in blocks {
            let (from, to) = (b.offset, b.offset + b.len as u64);
            // the receiver waits for entries while this hashes
            self.keepalive
                .tick(self.conn)
                .map_err(|e| lost(self.conn, e))?;
            let ours = hash::block(&file, from, to - from, &mut buf)
                .with_context(|| source.display().to_string())?;
            if let Some(bar) = self.verifying.as_mut() {
                bar.update(to);
            }
            if let Some(warning) = self.session.checked(id, b, &ours) {
                self.reporter.warn(&warning);
            }
        }
        if let Some(mut bar) = self.verifying.take_if(|_| last) {
            bar.finish_verify(self.session.good(id), self.session.bad_blocks());
        }
        if let Some(warning) = self.session.unwarned(id).filter(|_| last) {
            self.reporter.warn(&warning);
        }
        Ok(())
    }

    /// Opens entry `id`'s file, refusing one that changed since the walk;
    /// its identity then, to check it against once it is sent.
    fn open_unchanged(&self, id: u64, path: &[u8]) -> Result<(File, FileId), String> {
        let file = self.sources.open(path, self.cfg.dereference)?;
        let meta = file.metadata().map_err(|e| e.to_string())?;
        if !meta.is_file() {
            return Err("no longer a regular file".into());
        }
        let identity = FileId::of(&meta);
        self.session
            .unchanged(id, meta.len(), identity.mtime_ns())?;
        Ok((file, identity))
    }
}

/// Where a file's digest will come from.
enum Digest {
    /// Hashed already, inline, or from the cache (`true`: not read at all).
    Ready(Sha, bool),
    /// Being hashed on a thread beside sendfile.
    Thread(std::thread::JoinHandle<io::Result<Sha>>),
    /// Being hashed by another session.
    Await(Wait),
    /// Being hashed as the encrypted send reads it (`Conn::digest_reads`).
    Reads(Claim),
}

/// Hashes `ranges` of the file on a thread of its own, which hands the
/// digest to the sessions waiting on `claim` as soon as it has it: they
/// wait for the disk, not for this session's receiver.
fn hash_thread(file: &File, ranges: Vec<(u64, u64)>, claim: Option<Claim>) -> Result<Digest, Lost> {
    let file = file.try_clone().map_err(source(0))?;
    let handle = hash::spawn_ranges_then(file, ranges, move |file, hashed| {
        if let (Some(claim), Ok(sha)) = (claim, hashed) {
            claim.fill(file, *sha);
        }
    });
    Ok(Digest::Thread(handle))
}

/// The source failed after `bytes` went out; or Ctrl-C cut its read (a
/// hash of the file under way): then the session stops, so the receiver
/// hears STOP and keeps the part, not a file that failed.
fn source(bytes: u64) -> impl Fn(io::Error) -> Lost {
    move |e| match crate::interrupt::requested() {
        true => Lost::Session(exit::interrupted("interrupted")),
        false => Lost::Source(bytes, e.to_string()),
    }
}

/// Why one file's data could not all go out.
enum Lost {
    /// The source: the session goes on without this file.
    Source(u64, String),
    /// The connection: the session ends.
    Session(anyhow::Error),
}

/// Whether the file is still the one opened: same identity, ctime included.
fn same_file(file: &File, opened: FileId) -> Result<(), String> {
    let meta = file.metadata().map_err(|e| e.to_string())?;
    match FileId::of(&meta) == opened {
        true => Ok(()),
        false => Err(changed(opened.size(), meta.len())),
    }
}
