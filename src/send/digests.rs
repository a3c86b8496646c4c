//! Whole-file SHA-256 digests shared by a sender's sessions, keyed by file identity: a file served to many receivers (`-k`) is hashed once.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::hash::Sha;

/// A file that changed less than this long before it was hashed could
/// change again without its identity showing it (timestamps are coarse:
/// 2 s on FAT), so its digest serves the sessions of that moment only and
/// is not kept for later ones.
const SETTLE: Duration = Duration::from_secs(2);
/// At most this many digests are kept (a large tree served with `-k`);
/// past it, further files are hashed by each session, as without a cache.
const MAX_KEPT: usize = 1 << 16;

/// What says a file is still the one that was hashed: any write changes
/// its ctime (which, unlike the mtime, no user can set back); a file
/// replaced by a rename has another inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

impl FileId {
    #[cfg(unix)]
    pub(crate) fn of(meta: &Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The same identity from a raw `stat` (what fstatat reads beneath a
    /// directory's handle), field for field as [`FileId::of`] reads it.
    // the field types differ between platforms (i32 dev on macOS)
    #[cfg(unix)]
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    pub(crate) fn of_stat(st: &libc::stat) -> FileId {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        FileId {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            size: st.st_size as u64,
            mtime_ns: ns(st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime_ns: ns(st.st_ctime as i64, st.st_ctime_nsec as i64),
        }
    }

    /// The modification time, ns since the epoch (0 if before it).
    pub(crate) fn mtime_ns(&self) -> u64 {
        self.mtime_ns.max(0) as u64
    }

    /// The (device, inode) pair: what a directory is, for loop checks.
    #[cfg(unix)]
    pub(crate) fn dev_ino(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// Elsewhere only size and mtime: weaker, and the receiver's check
    /// still catches what it misses.
    #[cfg(not(unix))]
    pub(crate) fn of(meta: &Metadata) -> FileId {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64);
        FileId {
            dev: 0,
            ino: 0,
            size: meta.len(),
            mtime_ns,
            ctime_ns: mtime_ns,
        }
    }

    pub(super) fn size(&self) -> u64 {
        self.size
    }

    pub(super) fn of_file(file: &File) -> Option<FileId> {
        file.metadata().ok().map(|m| FileId::of(&m))
    }

    /// Whether the last change is far enough behind `now` that a later one
    /// must show in the identity.
    fn settled(&self, now: SystemTime) -> bool {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let last = self.ctime_ns.max(self.mtime_ns);
        now.saturating_sub(last) > SETTLE.as_nanos() as i64
    }
}

/// One file's digest while it is computed: `None` until the hashing
/// session is done; then the digest, or `None` inside when it gave up.
#[derive(Default)]
struct Pending {
    state: Mutex<Option<Option<Sha>>>,
    ready: Condvar,
}

impl Pending {
    fn settle(&self, digest: Option<Sha>) {
        *lock(&self.state) = Some(digest);
        self.ready.notify_all();
    }
}

enum Slot {
    Hashing(Arc<Pending>),
    Known(Sha),
}

/// The digests one sender knows, shared by all its sessions.
#[derive(Default)]
pub(crate) struct Digests {
    slots: Mutex<HashMap<FileId, Slot>>,
}

/// What a session does about a whole file's digest.
pub(super) enum Lookup {
    /// Known: nothing to hash.
    Known(Sha),
    /// Another session is hashing this very file: send the data, then wait.
    Wait(Wait),
    /// Nobody has it: hash it, and [`Claim::fill`] it for the others.
    Hash(Claim),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // a session that panicked holding it left a map that is still valid
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Digests {
    /// Looks `file` up as it is now. Concurrent sessions that miss at once
    /// do not all hash it: the first claims it, the others wait for it.
    pub(super) fn lookup(self: &Arc<Self>, file: &File) -> Lookup {
        let now = SystemTime::now();
        let Some(id) = FileId::of_file(file) else {
            return Lookup::Hash(Claim::detached());
        };
        let mut slots = lock(&self.slots);
        match slots.get(&id) {
            Some(Slot::Known(sha)) => Lookup::Known(*sha),
            Some(Slot::Hashing(pending)) => Lookup::Wait(Wait(pending.clone())),
            None if slots.len() >= MAX_KEPT => Lookup::Hash(Claim::detached()),
            None => {
                let pending = Arc::new(Pending::default());
                slots.insert(id, Slot::Hashing(pending.clone()));
                Lookup::Hash(Claim {
                    owner: Some((self.clone(), id, now)),
                    pending,
                })
            }
        }
    }

    /// The digest of `file` as it is now, if a session already has it:
    /// never waits and never claims, for a reply that must not be held
    /// back while a file is hashed (`zc send --http`).
    pub(crate) fn known(&self, file: &File) -> Option<Sha> {
        let id = FileId::of_file(file)?;
        match lock(&self.slots).get(&id) {
            Some(Slot::Known(sha)) => Some(*sha),
            _ => None,
        }
    }

    /// The whole digest of `file`, from the cache, from a session hashing
    /// it now, or hashed here (and kept for the others): a listing of
    /// digests (`zc send --http`'s SHA256SUMS).
    pub(crate) fn digest(self: &Arc<Self>, file: &File) -> std::io::Result<Sha> {
        let claim = match self.lookup(file) {
            Lookup::Known(sha) => return Ok(sha),
            Lookup::Wait(wait) => match wait.wait() {
                Some(sha) => return Ok(sha),
                None => Claim::detached(),
            },
            Lookup::Hash(claim) => claim,
        };
        let size = file.metadata()?.len();
        let sha = crate::hash::hash_range(file, 0, size)?;
        claim.fill(file, sha);
        Ok(sha)
    }

    /// Drops a digest a receiver did not match: whatever the cause, the
    /// next session hashes the file again rather than trust it.
    pub(super) fn forget(&self, id: &FileId) {
        let mut slots = lock(&self.slots);
        if matches!(slots.get(id), Some(Slot::Known(_))) {
            slots.remove(id);
        }
    }

    /// Ends a claim: keeps the digest, or clears the slot so that the next
    /// lookup hashes again.
    fn end(&self, id: FileId, pending: &Arc<Pending>, keep: Option<Sha>) {
        let mut slots = lock(&self.slots);
        let ours = matches!(slots.get(&id), Some(Slot::Hashing(p)) if Arc::ptr_eq(p, pending));
        if ours {
            match keep {
                Some(sha) => slots.insert(id, Slot::Known(sha)),
                None => slots.remove(&id),
            };
        }
    }
}

/// The right, and the duty, to hash a file for the others; a claim dropped
/// unfilled (the session failed) lets the waiters hash it themselves.
pub(super) struct Claim {
    owner: Option<(Arc<Digests>, FileId, SystemTime)>,
    pending: Arc<Pending>,
}

impl Claim {
    /// A claim nobody waits on (no identity, or the cache is full).
    fn detached() -> Claim {
        Claim {
            owner: None,
            pending: Arc::default(),
        }
    }

    /// The digest of `file` as read since the lookup: kept when the file is
    /// still the one looked up and had settled by then.
    pub(super) fn fill(mut self, file: &File, sha: Sha) {
        let Some((digests, id, looked)) = self.owner.take() else {
            return;
        };
        let same = FileId::of_file(file) == Some(id) && id.settled(looked);
        let keep = same.then_some(sha);
        digests.end(id, &self.pending, keep);
        self.pending.settle(keep);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some((digests, id, _)) = self.owner.take() {
            digests.end(id, &self.pending, None);
            self.pending.settle(None);
        }
    }
}

/// A digest another session is computing.
pub(super) struct Wait(Arc<Pending>);

impl Wait {
    /// The digest, once the hashing session has it; `None` when it gave up
    /// (or Ctrl-C came): then the caller hashes the file itself.
    pub(super) fn wait(&self) -> Option<Sha> {
        let mut state = lock(&self.0.state);
        loop {
            if let Some(done) = *state {
                return done;
            }
            if crate::interrupt::requested() {
                return None;
            }
            state = self
                .0
                .ready
                .wait_timeout(state, crate::conn::TICK)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// How one session came by its files' digests, for its summary.
#[derive(Default)]
pub(super) struct Hashing {
    /// Digests this session computed (read the file for them).
    pub(super) computed: u64,
    /// Whole-file digests it took from the cache or from another session.
    pub(super) cached: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn old_file(bytes: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        File::create(&path).unwrap().write_all(bytes).unwrap();
        (dir, File::open(&path).unwrap())
    }

    #[test]
    fn a_settled_file_is_hashed_once() {
        let (_dir, file) = old_file(b"abc");
        let id = FileId::of_file(&file).unwrap();
        let digests = Arc::new(Digests::default());
        // as if the file had been written long ago
        let later = SystemTime::now() + Duration::from_secs(10);
        let Lookup::Hash(mut claim) = digests.lookup(&file) else {
            panic!("a first lookup hashes");
        };
        let Lookup::Wait(wait) = digests.lookup(&file) else {
            panic!("a second lookup waits for the first");
        };
        claim.owner.as_mut().expect("a claim on the map").2 = later;
        claim.fill(&file, [7; 32]);
        assert_eq!(wait.wait(), Some([7; 32]));
        assert!(matches!(digests.lookup(&file), Lookup::Known(s) if s == [7; 32]));
        digests.forget(&id);
        assert!(matches!(digests.lookup(&file), Lookup::Hash(_)));
    }

    #[test]
    fn a_fresh_file_is_not_kept_and_a_dropped_claim_frees_the_waiters() {
        let (_dir, file) = old_file(b"abc");
        let digests = Arc::new(Digests::default());
        let Lookup::Hash(claim) = digests.lookup(&file) else {
            panic!("a first lookup hashes");
        };
        let Lookup::Wait(wait) = digests.lookup(&file) else {
            panic!("a second lookup waits");
        };
        // written a moment ago: it could change within its timestamps' grain
        claim.fill(&file, [1; 32]);
        assert_eq!(wait.wait(), None);
        let Lookup::Hash(claim) = digests.lookup(&file) else {
            panic!("nothing was kept");
        };
        let Lookup::Wait(wait) = digests.lookup(&file) else {
            panic!("a second lookup waits");
        };
        drop(claim);
        assert_eq!(wait.wait(), None);
        assert!(matches!(digests.lookup(&file), Lookup::Hash(_)));
    }
}
