//! [`Root`] on Unix: each operation opens its directory beneath the output
//! directory's descriptor, refusing a link at every component, then acts on
//! one plain name relative to that directory, so nothing a peer or another
//! local process plants can redirect a write.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use super::{Found, RelPath};
use crate::output::PART_SUFFIX;
use crate::sys;

/// Directories are opened for reading (fsync and fchmod need a real
/// descriptor, not O_PATH), never through a link.
const DIR_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
/// Same bound as `held::Record::load`.
const MAX_RECORD: u64 = 256 * 1024;

/// The output directory, open; every operation resolves beneath it and
/// follows no link.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
    /// openat2 is still worth trying: cleared once the kernel (or a seccomp
    /// filter) refuses it, after which directories are walked one by one.
    #[cfg(target_os = "linux")]
    beneath: AtomicBool,
}

/// A directory beneath the root, or the root itself (borrowed, not dup'd).
enum Dir<'a> {
    Root(BorrowedFd<'a>),
    Sub(OwnedFd),
}

impl Dir<'_> {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Dir::Root(fd) => *fd,
            Dir::Sub(fd) => fd.as_fd(),
        }
    }

    fn into_file(self) -> io::Result<File> {
        match self {
            Dir::Root(fd) => Ok(File::from(fd.try_clone_to_owned()?)),
            Dir::Sub(fd) => Ok(File::from(fd)),
        }
    }
}

fn suffixed(name: &[u8], suffix: &str) -> Vec<u8> {
    [name, suffix.as_bytes()].concat()
}

fn held_name(name: &[u8]) -> Vec<u8> {
    suffixed(name, ".zcpart.held")
}

/// Ok for NotFound: removing what is not there is done.
fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    }
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
            fd: OwnedFd::from(file),
            path: dir.to_path_buf(),
            #[cfg(target_os = "linux")]
            beneath: AtomicBool::new(beneath),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the directory `rel` (the root for `None`) beneath the root.
    fn dir(&self, rel: Option<&RelPath>) -> io::Result<Dir<'_>> {
        let Some(rel) = rel else {
            return Ok(Dir::Root(self.fd.as_fd()));
        };
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
                other => return other.map(Dir::Sub),
            }
        }
        let mut fd: Option<OwnedFd> = None;
        for name in rel.components() {
            let at = fd.as_ref().map_or(self.fd.as_fd(), |fd| fd.as_fd());
            fd = Some(sys::openat(at, name, DIR_FLAGS, 0)?);
        }
        fd.map(Dir::Sub)
            .ok_or_else(|| io::Error::from(ErrorKind::InvalidInput))
    }

    fn parent(&self, rel: &RelPath) -> io::Result<Dir<'_>> {
        self.dir(rel.parent().as_ref())
    }

    /// lstat beneath; a missing parent is `Missing`, a parent that is a
    /// link or not a directory an error.
    pub fn stat(&self, rel: &RelPath) -> io::Result<Found> {
        let dir = match self.parent(rel) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Found::Missing),
            other => other?,
        };
        match sys::lstatat(dir.fd(), rel.name()) {
            Ok(stat) => Ok(found(&stat)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Found::Missing),
            Err(e) => Err(e),
        }
    }

    /// Mode 0o700 so zc can fill it even when its final mode is read-only;
    /// `Ok(false)` when a real directory is already there.
    pub fn mkdir(&self, rel: &RelPath) -> io::Result<bool> {
        let dir = self.parent(rel)?;
        match sys::mkdirat(dir.fd(), rel.name(), 0o700) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let stat = sys::lstatat(dir.fd(), rel.name())?;
                match found(&stat) {
                    Found::Dir => Ok(false),
                    _ => Err(io::Error::new(
                        ErrorKind::AlreadyExists,
                        "exists and is not a directory",
                    )),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Opens `NAME.zcpart` (creating it, never truncating, never through a
    /// link) and locks it; `WouldBlock` when another writer holds the lock.
    pub fn open_part(&self, rel: &RelPath) -> io::Result<File> {
        let dir = self.parent(rel)?;
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let fd = sys::openat(dir.fd(), &suffixed(rel.name(), PART_SUFFIX), flags, 0o600)?;
        let file = File::from(fd);
        // a FIFO or a device planted under the part's name is not ours to fill
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        if !sys::try_lock(&file)? {
            return Err(io::Error::from(ErrorKind::WouldBlock));
        }
        Ok(file)
    }

    /// `NAME.zcpart` becomes `NAME`, replacing a file or a link (never
    /// following it).
    pub fn publish(&self, rel: &RelPath) -> io::Result<()> {
        let dir = self.parent(rel)?;
        let name = rel.name();
        sys::renameat(dir.fd(), &suffixed(name, PART_SUFFIX), name)
    }

    /// Removes `NAME.zcpart` and its held record, if present.
    pub fn discard_part(&self, rel: &RelPath) -> io::Result<()> {
        let dir = match self.parent(rel) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            other => other?,
        };
        let name = rel.name();
        ignore_missing(sys::unlinkat(dir.fd(), &suffixed(name, PART_SUFFIX), 0))?;
        ignore_missing(sys::unlinkat(dir.fd(), &held_name(name), 0))
    }

    /// Makes `NAME` a link holding `target` verbatim.
    pub fn symlink(&self, rel: &RelPath, target: &[u8]) -> io::Result<()> {
        let dir = self.parent(rel)?;
        sys::symlinkat(target, dir.fd(), rel.name())
    }

    /// Sets a directory's permission bits and mtime, through a descriptor
    /// opened beneath the root.
    pub fn finish_dir(&self, rel: &RelPath, mode: u32, mtime_ns: u64) -> io::Result<()> {
        let dir = self.dir(Some(rel))?.into_file()?;
        dir.set_modified(UNIX_EPOCH + Duration::from_nanos(mtime_ns))?;
        dir.set_permissions(Permissions::from_mode(mode & 0o777))
    }

    /// The held record beside `rel`'s part; `None` when missing, not a
    /// regular file, too large or unreadable (then nothing is trusted).
    pub fn read_record(&self, rel: &RelPath) -> Option<String> {
        let dir = self.parent(rel).ok()?;
        // O_NONBLOCK: a FIFO planted here must not hang the receiver
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
        let file = File::from(sys::openat(dir.fd(), &held_name(rel.name()), flags, 0).ok()?);
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let mut text = String::new();
        file.take(MAX_RECORD + 1).read_to_string(&mut text).ok()?;
        (text.len() as u64 <= MAX_RECORD).then_some(text)
    }

    /// Writes the held record atomically: a fresh temporary (O_EXCL, so a
    /// planted link is never followed), fsync, rename over the record.
    pub fn write_record(&self, rel: &RelPath, text: &str) -> io::Result<()> {
        let dir = self.parent(rel)?;
        let record = held_name(rel.name());
        let tmp = suffixed(&record, ".tmp");
        ignore_missing(sys::unlinkat(dir.fd(), &tmp, 0))?;
        let flags =
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let mut file = File::from(sys::openat(dir.fd(), &tmp, flags, 0o600)?);
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        sys::renameat(dir.fd(), &tmp, &record)
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
        self.parent(rel)?.into_file()?.sync_all()
    }

    pub fn free_space(&self) -> io::Result<u64> {
        sys::free_space(&self.path)
    }
}

/// The field types differ between platforms (time_t, off_t, mode_t).
#[allow(clippy::unnecessary_cast)]
fn found(stat: &libc::stat) -> Found {
    match stat.st_mode & libc::S_IFMT {
        libc::S_IFREG => Found::File {
            size: stat.st_size.max(0) as u64,
            mtime_ns: (stat.st_mtime.max(0) as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(stat.st_mtime_nsec.max(0) as u64),
        },
        libc::S_IFDIR => Found::Dir,
        libc::S_IFLNK => Found::Link,
        _ => Found::Other,
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
            assert!(root.open_part(&rel("top/f")).is_err());
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
            assert!(root.open_part(&rel("real/sub/f")).is_err());
            assert!(root.mkdir(&rel("real/sub/d")).is_err());
            assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
            // a link that stays beneath the root is not followed either
            // (inside the path, not only as its last component)
            std::fs::create_dir(out.join("real/d")).unwrap();
            symlink("real", out.join("inner")).unwrap();
            assert!(root.open_part(&rel("inner/d/f")).is_err());
            assert!(root.mkdir(&rel("inner/d/e")).is_err());
            assert!(root.finish_dir(&rel("inner/d"), 0o700, 0).is_err());
            assert!(root.finish_dir(&rel("inner"), 0o700, 0).is_err());
            assert_eq!(std::fs::read_dir(out.join("real/d")).unwrap().count(), 0);
            assert_eq!(root.stat(&rel("top")).unwrap(), Found::Link);
            assert_eq!(root.stat(&rel("nothing/f")).unwrap(), Found::Missing);
        });
    }

    #[test]
    fn planted_part_link_is_refused() {
        both(|out, root| {
            let victim = out.parent().unwrap().join("victim");
            std::fs::write(&victim, b"keep").unwrap();
            symlink(&victim, out.join("f.zcpart")).unwrap();
            assert!(root.open_part(&rel("f")).is_err());
            assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
            // a dangling link too: O_CREAT must not create its target
            let dangling = out.parent().unwrap().join("dangling");
            symlink(&dangling, out.join("g.zcpart")).unwrap();
            assert!(root.open_part(&rel("g")).is_err());
            assert!(!dangling.exists());
        });
    }

    #[test]
    fn part_is_created_locked_and_published_over_a_link() {
        both(|out, root| {
            let victim = out.parent().unwrap().join("victim");
            std::fs::write(&victim, b"keep").unwrap();
            assert!(root.mkdir(&rel("top")).unwrap());
            symlink(&victim, out.join("top/f")).unwrap();
            let mut part = root.open_part(&rel("top/f")).unwrap();
            assert_eq!(part.metadata().unwrap().mode() & 0o777, 0o600);
            let again = root.open_part(&rel("top/f")).unwrap_err();
            assert_eq!(again.kind(), ErrorKind::WouldBlock);
            part.write_all(b"new").unwrap();
            root.publish(&rel("top/f")).unwrap();
            assert_eq!(std::fs::read(out.join("top/f")).unwrap(), b"new");
            assert!(!std::fs::symlink_metadata(out.join("top/f"))
                .unwrap()
                .is_symlink());
            assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
            let size = match root.stat(&rel("top/f")).unwrap() {
                Found::File { size, .. } => size,
                other => panic!("{other:?}"),
            };
            assert_eq!(size, 3);
        });
    }

    #[test]
    fn mkdir_symlink_and_finish_dir() {
        both(|out, root| {
            assert!(root.mkdir(&rel("d")).unwrap());
            assert!(!root.mkdir(&rel("d")).unwrap());
            assert_eq!(root.stat(&rel("d")).unwrap(), Found::Dir);
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
            drop(root.open_part(&f).unwrap());
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
}
