//! [`Root`] on Unix: each operation opens its directory beneath the output
//! directory's descriptor, refusing a link at every component, then acts on
//! one plain name relative to that directory, so nothing a peer or another
//! local process plants can redirect a write. The last few directories
//! opened are kept open (see [`DirCache`]), so a tree's files, which arrive
//! directory by directory, do not each reopen their parent.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, ErrorKind, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use super::{ignore_missing, Made, RelPath, There, UNFINISHED};
use crate::held::{self, RECORD_SUFFIX};
use crate::output::PART_SUFFIX;
use crate::sys;
use made_dirs::{DirId, Holder};

/// Directories are opened for reading (fsync and fchmod need a real
/// descriptor, not O_PATH), never through a link.
const DIR_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
/// Directories kept open: a tree arrives depth first, so a handful covers a
/// directory's files, its parents' and the batch of renames that follows.
const CACHED_DIRS: usize = 8;

mod made_dirs;
/// S_ISGID (whose type differs between platforms).
const SETGID: u32 = 0o2000;

/// The output directory, open; every operation resolves beneath it and
/// follows no link.
pub struct Root {
    fd: File,
    path: PathBuf,
    dirs: DirCache,
    /// The directories this session made and holds until it ends.
    holder: Holder,
    /// openat2 is still worth trying: cleared once the kernel (or a seccomp
    /// filter) refuses it, after which directories are walked one by one.
    #[cfg(target_os = "linux")]
    beneath: AtomicBool,
}

/// The last [`CACHED_DIRS`] directories opened beneath the root, most
/// recently used first, each under the path it was opened by.
///
/// Why a kept descriptor is as safe as opening the path again: it was
/// opened beneath the root with no link followed, so it is a real directory
/// that was at that path inside the output directory, and a descriptor
/// stays bound to that directory whatever later happens to the path. What
/// could make the path name another directory, or a link, afterwards?
/// - Not the peer: the receiver only ever creates inside directories it
///   made or accepted in this session, `mkdir` never replaces anything,
///   a part is renamed only over a file or a link (never a directory:
///   rename refuses that), unlinks remove files only, and links are made
///   with `symlinkat`, which never replaces.
/// - Only a local user who can write into the output directory, and those
///   are trusted (SECURITY.md, "Who is trusted"). Even then, the same
///   user could already move a directory between our opening it and our
///   using it, or right after we wrote into it: writes land in the
///   directory that was opened, wherever it now is, exactly as before; a
///   link planted at its old path is never followed, since nothing is
///   resolved through the path again.
///
/// A directory removed since it was cached (rmdir) fails what is made in it
/// with `NotFound`; that entry is then dropped and the operation retried
/// once on the directory opened afresh, as it would have been uncached.
struct DirCache(Mutex<VecDeque<(RelPath, Arc<File>)>>);

impl DirCache {
    fn new() -> DirCache {
        DirCache(Mutex::new(VecDeque::with_capacity(CACHED_DIRS)))
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, VecDeque<(RelPath, Arc<File>)>> {
        // a panic elsewhere cannot leave the list half-changed
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, rel: &RelPath) -> Option<Arc<File>> {
        let mut dirs = self.entries();
        let at = dirs.iter().position(|(p, _)| p == rel)?;
        let entry = dirs.remove(at)?;
        let dir = entry.1.clone();
        dirs.push_front(entry);
        Some(dir)
    }

    fn put(&self, rel: &RelPath, dir: Arc<File>) {
        let mut dirs = self.entries();
        dirs.retain(|(p, _)| p != rel);
        dirs.push_front((rel.clone(), dir));
        dirs.truncate(CACHED_DIRS);
    }

    fn forget(&self, rel: &RelPath) {
        self.entries().retain(|(p, _)| p != rel);
    }
}

fn suffixed(name: &[u8], suffix: &str) -> Vec<u8> {
    [name, suffix.as_bytes()].concat()
}

fn held_name(name: &[u8]) -> Vec<u8> {
    suffixed(name, RECORD_SUFFIX)
}

impl Root {
    /// The directory itself is the user's choice, so a link to it is fine.
    pub fn open(dir: &Path) -> io::Result<Root> {
        Root::open_with(dir, true)
    }

    /// `beneath: false` skips openat2 (tests of the walking fallback).
    fn open_with(dir: &Path, beneath: bool) -> io::Result<Root> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(dir)?;
        #[cfg(not(target_os = "linux"))]
        let _ = beneath;
        Ok(Root {
            fd: file,
            path: dir.to_path_buf(),
            dirs: DirCache::new(),
            holder: Holder::new(),
            #[cfg(target_os = "linux")]
            beneath: AtomicBool::new(beneath),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the directory `rel` beneath the root, afresh.
    fn open_dir(&self, rel: &RelPath) -> io::Result<File> {
        #[cfg(target_os = "linux")]
        if self.beneath.load(Ordering::Relaxed) {
            match sys::openat2_beneath(self.fd.as_fd(), rel.bytes(), DIR_FLAGS, 0) {
                // old kernel, or a seccomp filter: walk instead, as safely
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ENOSYS | libc::EPERM | libc::EINVAL)
                    ) =>
                {
                    self.beneath.store(false, Ordering::Relaxed)
                }
                other => return other.map(File::from),
            }
        }
        let mut fd = None;
        for name in rel.components() {
            let at = fd.as_ref().map_or(self.fd.as_fd(), |fd: &File| fd.as_fd());
            fd = Some(File::from(sys::openat(at, name, DIR_FLAGS, 0)?));
        }
        fd.ok_or_else(|| io::Error::from(ErrorKind::InvalidInput))
    }

    /// Runs `op` on the directory `rel` (the root for `None`): a kept
    /// descriptor when there is one, else the directory opened beneath the
    /// root, then kept. `NotFound` through a kept descriptor may mean the
    /// directory was removed since, so `op` runs once more on it afresh.
    fn in_dir<T>(
        &self,
        rel: Option<&RelPath>,
        op: impl Fn(&File) -> io::Result<T>,
    ) -> io::Result<T> {
        let Some(rel) = rel else {
            return op(&self.fd);
        };
        if let Some(dir) = self.dirs.get(rel) {
            match op(&dir) {
                Err(e) if e.kind() == ErrorKind::NotFound => self.dirs.forget(rel),
                other => return other,
            }
        }
        let dir = Arc::new(self.open_dir(rel)?);
        self.dirs.put(rel, Arc::clone(&dir));
        op(&dir)
    }

    /// [`Root::in_dir`] on the directory holding `rel`.
    fn in_parent<T>(&self, rel: &RelPath, op: impl Fn(&File) -> io::Result<T>) -> io::Result<T> {
        self.in_dir(rel.parent().as_ref(), op)
    }

    /// lstat beneath; a missing parent is `Missing`, a parent that is a
    /// link or not a directory an error.
    pub fn stat(&self, rel: &RelPath) -> io::Result<There> {
        let lstat = |dir: &File| match sys::lstatat(dir.as_fd(), rel.name()) {
            Ok(stat) => Ok(found(&stat)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(There::Missing),
            Err(e) => Err(e),
        };
        match self.in_parent(rel, lstat) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(There::Missing),
            other => other,
        }
    }

    /// Made in mode [`UNFINISHED`], so zc can fill it even when its final
    /// mode is read-only (and no one else can look in meanwhile). A
    /// directory in that mode is taken for unfinished only when no other
    /// live session of this process holds it (see `made_dirs`).
    pub fn mkdir(&self, rel: &RelPath) -> io::Result<Made> {
        let made = self.in_parent(rel, |dir| {
            match sys::mkdirat(dir.as_fd(), rel.name(), UNFINISHED) {
                Ok(()) => {
                    let stat = sys::lstatat(dir.as_fd(), rel.name())?;
                    self.holder.made(dir_id(&stat));
                    Ok(Made::New)
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let stat = sys::lstatat(dir.as_fd(), rel.name())?;
                    match found(&stat) {
                        There::Dir if unfinished(&stat) && self.holder.take(dir_id(&stat)) => {
                            Ok(Made::Unfinished)
                        }
                        There::Dir => Ok(Made::Existing),
                        _ => Err(io::Error::new(
                            ErrorKind::AlreadyExists,
                            "exists and is not a directory",
                        )),
                    }
                }
                Err(e) => Err(e),
            }
        })?;
        // Linux keeps the sticky bit mkdir(2) is given; other systems may not
        #[cfg(not(target_os = "linux"))]
        if made == Made::New {
            self.in_dir(Some(rel), |d| {
                d.set_permissions(Permissions::from_mode(UNFINISHED))
            })?;
        }
        Ok(made)
    }

    /// Opens `NAME.zcpart` (creating it, never through a link) and locks
    /// it; `WouldBlock` when another writer holds the lock. `fresh`: the
    /// part is to be written from nothing, so what it holds is dropped.
    ///
    /// Not with O_TRUNC: that would cut another writer's part short before
    /// the lock tells us it is another's. The length is read once the lock
    /// is held (no writer can grow the part then), in the fstat the
    /// regular-file check needs anyway, and a part just created (empty)
    /// costs no truncate at all.
    pub fn open_part(&self, rel: &RelPath, fresh: bool) -> io::Result<File> {
        let name = suffixed(rel.name(), PART_SUFFIX);
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let fd = self.in_parent(rel, |dir| sys::openat(dir.as_fd(), &name, flags, 0o600))?;
        let file = File::from(fd);
        // a FIFO or a device planted under the part's name is not ours to
        // fill (flock takes any kind of file, so this may follow it)
        let locked = sys::try_lock(&file)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        if !locked {
            return Err(io::Error::from(ErrorKind::WouldBlock));
        }
        if fresh && meta.len() > 0 {
            file.set_len(0)?;
        }
        Ok(file)
    }

    /// How many bytes `NAME.zcpart` holds (0: none, or not a regular
    /// file), looked at without opening, creating or locking it, so a look
    /// never gets in the way of the transfer that holds the part.
    pub fn part_len(&self, rel: &RelPath) -> io::Result<u64> {
        let name = suffixed(rel.name(), PART_SUFFIX);
        let look = |dir: &File| match sys::lstatat(dir.as_fd(), &name) {
            Ok(st) => Ok(match found(&st) {
                There::File { size, .. } => size,
                _ => 0,
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        };
        match self.in_parent(rel, look) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
            other => other,
        }
    }

    /// Creates `NAME.zcpart` anew (O_EXCL: never an existing file, never
    /// through a link) with `mode`, and locks it; `None` when the name is
    /// taken (then [`Root::open_part`] decides). What O_EXCL made is an
    /// empty regular file, so this costs no fstat: for a directory of small
    /// files this session made, one syscall less per file.
    pub fn create_part(&self, rel: &RelPath, mode: u32) -> io::Result<Option<File>> {
        let name = suffixed(rel.name(), PART_SUFFIX);
        let flags =
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let file = match self.in_parent(rel, |dir| sys::openat(dir.as_fd(), &name, flags, mode)) {
            Ok(fd) => File::from(fd),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(e),
        };
        // another session may have opened the new name and locked it first
        match sys::try_lock(&file)? {
            true => Ok(Some(file)),
            false => Err(io::Error::from(ErrorKind::WouldBlock)),
        }
    }

    /// A part with no name in the directory holding `rel` (O_TMPFILE, on
    /// Linux), with `mode`: nothing to lock, since no one else can open
    /// it, and nothing left behind if it is dropped before
    /// [`Root::publish_unnamed`]. `None` where the file system or the
    /// platform has no such files.
    pub fn create_unnamed(&self, rel: &RelPath, mode: u32) -> io::Result<Option<File>> {
        #[cfg(target_os = "linux")]
        match self.in_parent(rel, |dir| sys::open_unnamed(dir.as_fd(), mode)) {
            Ok(fd) => return Ok(Some(File::from(fd))),
            // a file system without them; EISDIR: a kernel before 3.11
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
                ) => {}
            Err(e) => return Err(e),
        }
        let _ = (rel, mode);
        Ok(None)
    }

    /// Names an unnamed part `NAME`. Where that name was taken meanwhile,
    /// the part is named `NAME.zcpart`, locked first, and renamed over it,
    /// replacing a file or a link as [`Root::publish`] does. Where it
    /// cannot be linked at all, its bytes are copied into a part that is
    /// renamed: a verified file is never dropped for want of a link.
    pub fn publish_unnamed(&self, rel: &RelPath, file: &File) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            let name = rel.name();
            let link = |dir: &File, to: &[u8]| sys::link_unnamed(file.as_fd(), dir.as_fd(), to);
            match self.in_parent(rel, |dir| link(dir, name)) {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return self.publish_copy(rel, file).map_err(|_| e),
                linked => return linked,
            }
            if !sys::try_lock(file)? {
                return Err(io::Error::from(ErrorKind::WouldBlock));
            }
            let part = suffixed(name, PART_SUFFIX);
            self.in_parent(rel, |dir| {
                link(dir, &part).and_then(|()| sys::renameat(dir.as_fd(), &part, name))
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (rel, file);
            Err(io::Error::from(ErrorKind::Unsupported))
        }
    }

    /// An unnamed part that could not be linked, copied into a new
    /// `NAME.zcpart` with its mode and time, made durable, and renamed.
    #[cfg(target_os = "linux")]
    fn publish_copy(&self, rel: &RelPath, file: &File) -> io::Result<()> {
        use std::io::{Seek, SeekFrom};
        let meta = file.metadata()?;
        let mut part = self
            .create_part(rel, 0o600)?
            .ok_or_else(|| io::Error::from(ErrorKind::AlreadyExists))?;
        let mut from = file;
        from.seek(SeekFrom::Start(0))?;
        io::copy(&mut from, &mut part)?;
        part.set_permissions(meta.permissions())?;
        part.set_modified(meta.modified()?)?;
        part.sync_all()?;
        self.publish(rel)
    }

    /// `NAME.zcpart` becomes `NAME`, replacing a file or a link (never
    /// following it).
    pub fn publish(&self, rel: &RelPath) -> io::Result<()> {
        let name = rel.name();
        let part = suffixed(name, PART_SUFFIX);
        self.in_parent(rel, |dir| sys::renameat(dir.as_fd(), &part, name))
    }

    /// Removes `NAME.zcpart` and its held record, if present.
    pub fn discard_part(&self, rel: &RelPath) -> io::Result<()> {
        let name = rel.name();
        let (part, held) = (suffixed(name, PART_SUFFIX), held_name(name));
        let unlink = |dir: &File| {
            ignore_missing(sys::unlinkat(dir.as_fd(), &part, 0))?;
            ignore_missing(sys::unlinkat(dir.as_fd(), &held, 0))
        };
        ignore_missing(self.in_parent(rel, unlink))
    }

    /// The target of the link at `rel`, verbatim.
    pub fn read_link(&self, rel: &RelPath) -> io::Result<Vec<u8>> {
        self.in_parent(rel, |dir| sys::readlinkat(dir.as_fd(), rel.name()))
    }

    /// Removes the link at `rel` (`--force` replacing it); anything that
    /// is not a link is left alone and is an error.
    pub fn discard_link(&self, rel: &RelPath) -> io::Result<()> {
        self.in_parent(rel, |dir| {
            let stat = sys::lstatat(dir.as_fd(), rel.name())?;
            if found(&stat) != There::Link {
                return Err(io::Error::other("not a link"));
            }
            sys::unlinkat(dir.as_fd(), rel.name(), 0)
        })
    }

    /// Removes the directory `NAME` if it is empty (never through a link).
    pub fn remove_empty_dir(&self, rel: &RelPath) -> io::Result<()> {
        self.in_parent(rel, |dir| {
            sys::unlinkat(dir.as_fd(), rel.name(), libc::AT_REMOVEDIR)
        })
    }

    /// Makes `NAME` a link holding `target` verbatim.
    pub fn symlink(&self, rel: &RelPath, target: &[u8]) -> io::Result<()> {
        self.in_parent(rel, |dir| sys::symlinkat(target, dir.as_fd(), rel.name()))
    }

    /// Sets a directory's permission bits and mtime, through a descriptor
    /// opened beneath the root.
    pub fn finish_dir(&self, rel: &RelPath, mode: u32, mtime_ns: u64) -> io::Result<()> {
        self.in_dir(Some(rel), |dir| {
            dir.set_modified(UNIX_EPOCH + Duration::from_nanos(mtime_ns))?;
            // a setgid bit the kernel gave it (its parent's) stays, or files
            // made in it later lose the parent's group; the sender's never
            let inherited = dir.metadata()?.permissions().mode() & SETGID;
            dir.set_permissions(Permissions::from_mode(mode & 0o777 | inherited))
        })
    }

    /// The held record beside `rel`'s part; `None` when missing, not a
    /// regular file, too large or unreadable (then nothing is trusted).
    pub fn read_record(&self, rel: &RelPath) -> Option<String> {
        let name = held_name(rel.name());
        self.in_parent(rel, |dir| Ok(read_capped(dir, &name)))
            .ok()
            .flatten()
    }

    /// Writes the held record atomically: a fresh temporary (O_EXCL, so a
    /// planted link is never followed), fsync, rename over the record.
    pub fn write_record(&self, rel: &RelPath, text: &str) -> io::Result<()> {
        let record = held_name(rel.name());
        let tmp = suffixed(&record, ".tmp");
        self.in_parent(rel, |dir| {
            ignore_missing(sys::unlinkat(dir.as_fd(), &tmp, 0))?;
            let flags =
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
            let mut file = File::from(sys::openat(dir.as_fd(), &tmp, flags, 0o600)?);
            let written = file
                .write_all(text.as_bytes())
                .and_then(|()| file.sync_all())
                .and_then(|()| sys::renameat(dir.as_fd(), &tmp, &record));
            if written.is_err() {
                // a full disk must not leave the temporary behind
                let _ = sys::unlinkat(dir.as_fd(), &tmp, 0);
            }
            written
        })
    }

    /// Makes everything written on the output file system durable at once;
    /// `Unsupported` where there is no syncfs (then fsync file by file).
    pub fn sync_all(&self) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        return sys::syncfs(self.fd.as_fd());
        #[cfg(not(target_os = "linux"))]
        Err(io::Error::from(ErrorKind::Unsupported))
    }

    /// fsyncs the directory holding `rel`, so renames in it are durable.
    pub fn sync_parent(&self, rel: &RelPath) -> io::Result<()> {
        self.in_parent(rel, |dir| dir.sync_all())
    }

    pub fn free_space(&self) -> io::Result<u64> {
        sys::free_space(&self.path)
    }
}

/// `name` in `dir`, read whole if it is a regular file and not too large
/// for a record ([`held::read_capped`]).
fn read_capped(dir: &File, name: &[u8]) -> Option<String> {
    // O_NONBLOCK: a FIFO planted here must not hang the receiver
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
    let file = File::from(sys::openat(dir.as_fd(), name, flags, 0).ok()?);
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    held::read_capped(file)
}

/// A directory in mode [`UNFINISHED`], this user's: one a session of zc
/// made and did not finish. The setgid bit is not looked at: mkdir inside
/// a setgid directory gives it to the new one (Linux), so a directory zc
/// made there is in 3700.
#[allow(clippy::unnecessary_cast)] // mode_t is u16 on macOS
fn unfinished(stat: &libc::stat) -> bool {
    let mode = stat.st_mode as u32 & 0o7777 & !SETGID;
    mode == UNFINISHED && stat.st_uid == sys::euid()
}

/// The field types differ between platforms (dev_t).
#[allow(clippy::unnecessary_cast)]
fn dir_id(stat: &libc::stat) -> DirId {
    (stat.st_dev as u64, stat.st_ino as u64)
}

/// The field types differ between platforms (time_t, off_t, mode_t).
#[allow(clippy::unnecessary_cast)]
fn found(stat: &libc::stat) -> There {
    match stat.st_mode & libc::S_IFMT {
        libc::S_IFREG => There::File {
            size: stat.st_size.max(0) as u64,
            mtime_ns: (stat.st_mtime.max(0) as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(stat.st_mtime_nsec.max(0) as u64),
        },
        libc::S_IFDIR => There::Dir,
        libc::S_IFLNK => There::Link,
        _ => There::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::super::check_path;
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt};

    fn rel(p: &str) -> RelPath {
        check_path(p.as_bytes()).unwrap()
    }

    /// Every test runs with openat2 (where the kernel has it) and with the
    /// component-by-component walk.
    fn both(test: impl Fn(&Path, &Root)) {
        for beneath in [true, false] {
            let tmp = tempfile::tempdir().unwrap();
            let out = tmp.path().join("out");
            std::fs::create_dir(&out).unwrap();
            let root = Root::open_with(&out, beneath).unwrap();
            test(&out, &root);
            #[cfg(target_os = "linux")]
            if beneath {
                // the openat2 pass really used openat2, unless the kernel has none
                let probe = sys::openat2_beneath(root.fd.as_fd(), b".", DIR_FLAGS, 0);
                let missing = probe.is_err_and(|e| e.raw_os_error() == Some(libc::ENOSYS));
                assert!(root.beneath.load(Ordering::Relaxed) || missing);
            }
        }
    }

    #[test]
    fn linked_parent_is_never_entered() {
        both(|out, root| {
            let elsewhere = out.parent().unwrap().join("elsewhere");
            std::fs::create_dir(&elsewhere).unwrap();
            symlink(&elsewhere, out.join("top")).unwrap();
            assert!(root.stat(&rel("top/f")).is_err());
            assert!(root.mkdir(&rel("top/d")).is_err());
            assert!(root.open_part(&rel("top/f"), false).is_err());
            assert!(root.publish(&rel("top/f")).is_err());
            assert!(root.finish_dir(&rel("top"), 0o777, 0).is_err());
            assert!(root.finish_dir(&rel("top/d"), 0o777, 0).is_err());
            assert!(root.symlink(&rel("top/l"), b"x").is_err());
            assert!(root.write_record(&rel("top/f"), "x").is_err());
            assert_eq!(root.read_record(&rel("top/f")), None);
            assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
            // deeper: a real dir, then the link
            std::fs::create_dir(out.join("real")).unwrap();
            symlink(&elsewhere, out.join("real/sub")).unwrap();
            assert!(root.open_part(&rel("real/sub/f"), true).is_err());
            assert!(root.mkdir(&rel("real/sub/d")).is_err());
            assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
            // a link that stays beneath the root is not followed either
            // (inside the path, not only as its last component)
            std::fs::create_dir(out.join("real/d")).unwrap();
            symlink("real", out.join("inner")).unwrap();
            assert!(root.open_part(&rel("inner/d/f"), true).is_err());
            assert!(root.mkdir(&rel("inner/d/e")).is_err());
            assert!(root.finish_dir(&rel("inner/d"), 0o700, 0).is_err());
            assert!(root.finish_dir(&rel("inner"), 0o700, 0).is_err());
            assert_eq!(std::fs::read_dir(out.join("real/d")).unwrap().count(), 0);
            assert_eq!(root.stat(&rel("top")).unwrap(), There::Link);
            assert_eq!(root.stat(&rel("nothing/f")).unwrap(), There::Missing);
        });
    }

    #[test]
    fn planted_part_link_is_refused() {
        both(|out, root| {
            let victim = out.parent().unwrap().join("victim");
            std::fs::write(&victim, b"keep").unwrap();
            symlink(&victim, out.join("f.zcpart")).unwrap();
            assert!(root.open_part(&rel("f"), true).is_err());
            assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
            // a dangling link too: O_CREAT must not create its target
            let dangling = out.parent().unwrap().join("dangling");
            symlink(&dangling, out.join("g.zcpart")).unwrap();
            assert!(root.open_part(&rel("g"), false).is_err());
            assert!(!dangling.exists());
        });
    }

    #[test]
    fn part_is_created_locked_and_published_over_a_link() {
        both(|out, root| {
            let victim = out.parent().unwrap().join("victim");
            std::fs::write(&victim, b"keep").unwrap();
            assert_eq!(root.mkdir(&rel("top")).unwrap(), Made::New);
            symlink(&victim, out.join("top/f")).unwrap();
            let mut part = root.open_part(&rel("top/f"), false).unwrap();
            assert_eq!(part.metadata().unwrap().mode() & 0o777, 0o600);
            let again = root.open_part(&rel("top/f"), false).unwrap_err();
            assert_eq!(again.kind(), ErrorKind::WouldBlock);
            part.write_all(b"new").unwrap();
            root.publish(&rel("top/f")).unwrap();
            assert_eq!(std::fs::read(out.join("top/f")).unwrap(), b"new");
            assert!(!std::fs::symlink_metadata(out.join("top/f"))
                .unwrap()
                .is_symlink());
            assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
            let size = match root.stat(&rel("top/f")).unwrap() {
                There::File { size, .. } => size,
                other => panic!("{other:?}"),
            };
            assert_eq!(size, 3);
        });
    }

    /// An unnamed part is seen by no one until it is published, leaves
    /// nothing if dropped, and, where its name was taken meanwhile,
    /// replaces that file or link (never following it).
    #[cfg(target_os = "linux")]
    #[test]
    fn unnamed_part_shows_only_once_published() {
        both(|out, root| {
            let victim = out.parent().unwrap().join("victim");
            std::fs::write(&victim, b"keep").unwrap();
            assert_eq!(root.mkdir(&rel("top")).unwrap(), Made::New);
            let listed = || std::fs::read_dir(out.join("top")).unwrap().count();
            let Some(dropped) = root.create_unnamed(&rel("top/gone"), 0o640).unwrap() else {
                println!("SKIP: no O_TMPFILE where the tests' temporary files go");
                return;
            };
            drop(dropped);
            for (name, taken) in [("new", None), ("file", Some(false)), ("link", Some(true))] {
                let path = out.join("top").join(name);
                match taken {
                    Some(true) => symlink(&victim, &path).unwrap(),
                    Some(false) => std::fs::write(&path, b"old").unwrap(),
                    None => {}
                }
                let before = listed();
                let mut part = root.create_unnamed(&rel(&format!("top/{name}")), 0o640);
                let part = part.as_mut().unwrap().as_mut().unwrap();
                part.write_all(name.as_bytes()).unwrap();
                assert_eq!(listed(), before);
                root.publish_unnamed(&rel(&format!("top/{name}")), part)
                    .unwrap();
                assert_eq!(std::fs::read(&path).unwrap(), name.as_bytes());
                let meta = std::fs::symlink_metadata(&path).unwrap();
                assert!(meta.is_file(), "{name}");
            }
            assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
            assert_eq!(listed(), 3, "no part and nothing dropped is left");
        });
    }

    /// Where an unnamed part cannot be linked, its bytes, mode and time go
    /// through a new part renamed into place.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_unnamed_part_that_cannot_be_linked_is_copied_into_place() {
        both(|out, root| {
            assert_eq!(root.mkdir(&rel("top")).unwrap(), Made::New);
            let Some(mut part) = root.create_unnamed(&rel("top/f"), 0o600).unwrap() else {
                println!("SKIP: no O_TMPFILE where the tests' temporary files go");
                return;
            };
            part.write_all(b"copied whole").unwrap();
            part.set_permissions(Permissions::from_mode(0o604)).unwrap();
            let when = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
            part.set_modified(when).unwrap();
            root.publish_copy(&rel("top/f"), &part).unwrap();
            let meta = std::fs::symlink_metadata(out.join("top/f")).unwrap();
            assert_eq!(std::fs::read(out.join("top/f")).unwrap(), b"copied whole");
            assert_eq!(
                (meta.mode() & 0o777, meta.modified().unwrap()),
                (0o604, when)
            );
            assert_eq!(std::fs::read_dir(out.join("top")).unwrap().count(), 1);
        });
    }

    #[test]
    fn mkdir_symlink_and_finish_dir() {
        both(|out, root| {
            assert_eq!(root.mkdir(&rel("d")).unwrap(), Made::New);
            let made = std::fs::metadata(out.join("d")).unwrap();
            assert_eq!(made.mode() & 0o7777, UNFINISHED, "owner only, marked");
            // not finished yet: a later session may finish it
            assert_eq!(root.mkdir(&rel("d")).unwrap(), Made::Unfinished);
            assert_eq!(root.stat(&rel("d")).unwrap(), There::Dir);
            // a directory in any other mode was not made by zc
            for mode in [0o700, 0o1777, 0o755, 0o2755] {
                std::fs::create_dir(out.join("mine")).unwrap();
                std::fs::set_permissions(out.join("mine"), Permissions::from_mode(mode)).unwrap();
                assert_eq!(root.mkdir(&rel("mine")).unwrap(), Made::Existing);
                std::fs::remove_dir(out.join("mine")).unwrap();
            }
            std::fs::write(out.join("f"), b"").unwrap();
            assert!(root.mkdir(&rel("f")).is_err());
            symlink(out.join("d"), out.join("l")).unwrap();
            assert!(
                root.mkdir(&rel("l")).is_err(),
                "a link to a dir is not a dir"
            );

            let target = b"../x/\n odd";
            root.symlink(&rel("d/l"), target).unwrap();
            let read = std::fs::read_link(out.join("d/l")).unwrap();
            assert_eq!(read.as_os_str().as_encoded_bytes(), target);
            assert!(root.symlink(&rel("d/l"), b"y").is_err(), "never replaced");

            let mtime = 1_700_000_000_123_456_789;
            root.finish_dir(&rel("d"), 0o40751, mtime).unwrap();
            let meta = std::fs::metadata(out.join("d")).unwrap();
            assert_eq!(meta.mode() & 0o7777, 0o751);
            let got = meta.modified().unwrap().duration_since(UNIX_EPOCH).unwrap();
            assert_eq!(got.as_nanos(), u128::from(mtime));
            assert_eq!(root.mkdir(&rel("d")).unwrap(), Made::Existing);
            // never a setgid bit the sender asks for
            assert_eq!(root.mkdir(&rel("e")).unwrap(), Made::New);
            root.finish_dir(&rel("e"), 0o2755, mtime).unwrap();
            let meta = std::fs::metadata(out.join("e")).unwrap();
            assert_eq!(meta.mode() & 0o7777, 0o755);
        });
    }

    /// A directory a live session made (in 1700, being filled) is not
    /// another session's to finish: only once the first has ended, as an
    /// interrupted session's, is it taken over.
    #[test]
    fn an_unfinished_directory_a_live_session_holds_is_existing_for_another() {
        let tmp = tempfile::tempdir().unwrap();
        let first = Root::open(tmp.path()).unwrap();
        assert_eq!(first.mkdir(&rel("d")).unwrap(), Made::New);
        let second = Root::open(tmp.path()).unwrap();
        assert_eq!(second.mkdir(&rel("d")).unwrap(), Made::Existing);
        drop(first);
        assert_eq!(second.mkdir(&rel("d")).unwrap(), Made::Unfinished);
        let third = Root::open(tmp.path()).unwrap();
        assert_eq!(third.mkdir(&rel("d")).unwrap(), Made::Existing);
    }

    /// mkdir inside a setgid directory gives the new one the bit (Linux):
    /// made there, it is still zc's unfinished directory, and finishing it
    /// keeps the bit (files made in it keep the group), in the sender's mode.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_directory_made_in_a_setgid_directory_is_finished_and_keeps_the_bit() {
        both(|out, root| {
            std::fs::create_dir(out.join("g")).unwrap();
            std::fs::set_permissions(out.join("g"), Permissions::from_mode(0o2755)).unwrap();
            assert_eq!(root.mkdir(&rel("g/d")).unwrap(), Made::New);
            let made = std::fs::metadata(out.join("g/d")).unwrap();
            assert_eq!(made.mode() & 0o7777, UNFINISHED | 0o2000, "inherited");
            assert_eq!(root.mkdir(&rel("g/d")).unwrap(), Made::Unfinished);
            root.finish_dir(&rel("g/d"), 0o751, 1_700_000_000_000_000_000)
                .unwrap();
            let meta = std::fs::metadata(out.join("g/d")).unwrap();
            assert_eq!(meta.mode() & 0o7777, 0o2751);
            assert_eq!(root.mkdir(&rel("g/d")).unwrap(), Made::Existing);
        });
    }

    #[test]
    fn records_and_discard() {
        both(|out, root| {
            let f = rel("f");
            assert_eq!(root.read_record(&f), None);
            // a stale temporary that is a link must not be followed
            let victim = out.parent().unwrap().join("victim");
            std::fs::write(&victim, b"keep").unwrap();
            symlink(&victim, out.join("f.zcpart.held.tmp")).unwrap();
            root.write_record(&f, "zc-held 1\n").unwrap();
            assert_eq!(root.read_record(&f).as_deref(), Some("zc-held 1\n"));
            assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
            drop(root.open_part(&f, true).unwrap());
            root.discard_part(&f).unwrap();
            assert!(!out.join("f.zcpart").exists());
            assert!(!out.join("f.zcpart.held").exists());
            root.discard_part(&f).unwrap();
            root.discard_part(&rel("no/such")).unwrap();

            root.sync_parent(&f).unwrap();
            root.mkdir(&rel("d")).unwrap();
            root.sync_parent(&rel("d/x")).unwrap();
            assert!(root.free_space().unwrap() > 0);
            #[cfg(target_os = "linux")]
            root.sync_all().unwrap();
        });
    }

    fn cached(root: &Root, p: &str) -> bool {
        root.dirs.entries().iter().any(|(r, _)| r == &rel(p))
    }

    #[test]
    fn root_is_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<Root>();
    }

    #[test]
    fn created_part_is_new_locked_and_has_its_mode() {
        both(|_, root| {
            let f = rel("f");
            let part = root.create_part(&f, 0o640).unwrap().expect("a new part");
            let mode = part.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & !0o022, 0o640 & !0o022);
            // once it exists, create leaves it to open_part, which finds
            // it locked until it is let go
            assert!(root.create_part(&f, 0o600).unwrap().is_none());
            let busy = root.open_part(&f, false).unwrap_err();
            assert_eq!(busy.kind(), ErrorKind::WouldBlock);
            drop(part);
            assert!(root.open_part(&f, false).is_ok());
        });
    }

    #[test]
    fn fresh_part_is_truncated_once_locked() {
        both(|out, root| {
            let f = rel("f");
            let mut part = root.open_part(&f, true).unwrap();
            part.write_all(b"data").unwrap();
            // another writer holds it: a fresh open neither locks nor truncates
            let busy = root.open_part(&f, true).unwrap_err();
            assert_eq!(busy.kind(), ErrorKind::WouldBlock);
            assert_eq!(std::fs::read(out.join("f.zcpart")).unwrap(), b"data");
            drop(part);
            let part = root.open_part(&f, false).unwrap();
            assert_eq!(part.metadata().unwrap().len(), 4, "resumed: kept");
            drop(part);
            let part = root.open_part(&f, true).unwrap();
            assert_eq!(part.metadata().unwrap().len(), 0, "fresh: emptied");
            assert_eq!(std::fs::read(out.join("f.zcpart")).unwrap(), b"");
        });
    }

    #[test]
    fn cache_stays_bounded() {
        both(|_, root| {
            for i in 0..3 * CACHED_DIRS {
                let dir = format!("d{i}");
                assert_eq!(root.mkdir(&rel(&dir)).unwrap(), Made::New);
                let inside = rel(&format!("{dir}/x"));
                assert_eq!(root.stat(&inside).unwrap(), There::Missing);
                assert!(cached(root, &dir));
            }
            assert_eq!(root.dirs.entries().len(), CACHED_DIRS);
            assert!(!cached(root, "d0"));
            // a hit moves to the front, so the oldest other entry goes next
            let oldest = format!("d{}", 2 * CACHED_DIRS);
            root.sync_parent(&rel(&format!("{oldest}/x"))).unwrap();
            root.mkdir(&rel("last")).unwrap();
            root.stat(&rel("last/x")).unwrap();
            assert!(cached(root, &oldest));
            assert!(!cached(root, &format!("d{}", 2 * CACHED_DIRS + 1)));
        });
    }

    #[test]
    fn cached_parent_never_leads_outside() {
        both(|out, root| {
            let elsewhere = out.parent().unwrap().join("elsewhere");
            std::fs::create_dir(&elsewhere).unwrap();
            assert_eq!(root.mkdir(&rel("top")).unwrap(), Made::New);
            assert_eq!(root.mkdir(&rel("top/a")).unwrap(), Made::New);
            assert_eq!(root.stat(&rel("top/a/x")).unwrap(), There::Missing);
            assert!(cached(root, "top/a"));
            // the real directory moves away (inside OUT) and a link to
            // outside takes its name: what follows lands in the directory
            // that was opened, never at the link's target
            std::fs::rename(out.join("top/a"), out.join("top/moved")).unwrap();
            symlink(&elsewhere, out.join("top/a")).unwrap();
            let x = rel("top/a/x");
            assert_eq!(root.stat(&x).unwrap(), There::Missing);
            let mut part = root.open_part(&x, true).unwrap();
            part.write_all(b"data").unwrap();
            drop(part);
            root.write_record(&x, "zc-held 1\n").unwrap();
            assert_eq!(root.read_record(&x).as_deref(), Some("zc-held 1\n"));
            root.publish(&x).unwrap();
            assert_eq!(root.mkdir(&rel("top/a/d")).unwrap(), Made::New);
            root.symlink(&rel("top/a/l"), b"x").unwrap();
            root.sync_parent(&x).unwrap();
            root.finish_dir(&rel("top/a"), 0o700, 0).unwrap();
            assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
            assert_ne!(std::fs::metadata(&elsewhere).unwrap().mtime(), 0);
            let moved = out.join("top/moved");
            assert_eq!(std::fs::read(moved.join("x")).unwrap(), b"data");
            assert!(moved.join("x.zcpart.held").is_file());
            assert!(moved.join("d").is_dir());
            assert!(std::fs::symlink_metadata(moved.join("l"))
                .unwrap()
                .is_symlink());
            assert_eq!(std::fs::metadata(&moved).unwrap().mtime(), 0);
            // an uncached path still refuses the link
            assert!(root.mkdir(&rel("top/a/d/e")).is_err());
            assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        });
    }

    #[test]
    fn removed_cached_parent_is_opened_afresh() {
        both(|out, root| {
            let elsewhere = out.parent().unwrap().join("elsewhere");
            std::fs::create_dir(&elsewhere).unwrap();
            assert_eq!(root.mkdir(&rel("top")).unwrap(), Made::New);
            assert_eq!(root.mkdir(&rel("top/a")).unwrap(), Made::New);
            let x = rel("top/a/x");
            assert_eq!(root.stat(&x).unwrap(), There::Missing);
            assert!(cached(root, "top/a"));
            // removed and made again: the kept descriptor is of a dead
            // directory, so the part is made in the new one
            std::fs::remove_dir(out.join("top/a")).unwrap();
            std::fs::create_dir(out.join("top/a")).unwrap();
            drop(root.open_part(&x, true).unwrap());
            assert!(out.join("top/a/x.zcpart").is_file());
            assert!(cached(root, "top/a"));
            // removed and replaced by a link: opened afresh, it is refused
            root.discard_part(&x).unwrap();
            std::fs::remove_dir(out.join("top/a")).unwrap();
            symlink(&elsewhere, out.join("top/a")).unwrap();
            assert!(root.open_part(&x, true).is_err());
            assert!(!cached(root, "top/a"));
            assert!(root.write_record(&x, "x").is_err());
            assert!(root.mkdir(&rel("top/a/d")).is_err());
            assert!(root.symlink(&rel("top/a/l"), b"x").is_err());
            assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        });
    }
}
