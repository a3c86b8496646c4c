//! The directories a walk reads, and what it reads of their entries.
//!
//! On unix a directory is an open handle: its source opened by path (the
//! user named it, a link followed), each directory below opened from its
//! parent's handle by name with `O_NOFOLLOW | O_DIRECTORY`, its names read
//! through the handle and each entry looked at relative to it. A directory
//! swapped for a link after it was looked at cannot lead the walk out of
//! its source: the open fails, or finds the real directory. Elsewhere (no
//! `*at` calls) a directory is its path, as it always was there.

use std::ffi::{OsStr, OsString};
#[cfg(unix)]
use std::fs::File;
use std::fs::Metadata;
use std::io;
use std::path::Path;
#[cfg(not(unix))]
use std::path::PathBuf;

use crate::send::digests::FileId;

/// What an entry is (without unix's stat, only files, dirs and links show).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) enum Type {
    File,
    Dir,
    Link,
    Fifo,
    Device,
    Socket,
    Other,
}

/// What the walk reads of an entry: its type and what the wire and the
/// later checks of a file need. From a path's or a handle's [`Metadata`],
/// or (unix) from fstatat beneath a directory's handle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stat {
    pub(crate) kind: Type,
    pub(crate) size: u64,
    /// Permission bits & 0o777 (setuid, setgid and sticky dropped); on
    /// non-unix 0o644 files / 0o755 dirs (0o444 for a readonly file).
    pub(crate) mode: u32,
    /// Modification time, ns since the epoch (0 if before it or unknown).
    pub(crate) mtime_ns: u64,
    pub(crate) nlink: u64,
    pub(crate) id: FileId,
}

#[cfg(unix)]
impl Stat {
    /// From the raw fields every unix stat has.
    // mode_t is u32 here, u16 on macOS
    #[allow(clippy::unnecessary_cast)]
    fn unix(mode: u32, size: u64, nlink: u64, mtime: (i64, i64), id: FileId) -> Stat {
        let kind = match mode & libc::S_IFMT as u32 {
            m if m == libc::S_IFREG as u32 => Type::File,
            m if m == libc::S_IFDIR as u32 => Type::Dir,
            m if m == libc::S_IFLNK as u32 => Type::Link,
            m if m == libc::S_IFIFO as u32 => Type::Fifo,
            m if m == libc::S_IFBLK as u32 || m == libc::S_IFCHR as u32 => Type::Device,
            m if m == libc::S_IFSOCK as u32 => Type::Socket,
            _ => Type::Other,
        };
        let (secs, nanos) = mtime;
        let mtime_ns = match u64::try_from(secs) {
            Ok(secs) => secs
                .saturating_mul(1_000_000_000)
                .saturating_add(nanos as u64),
            Err(_) => 0,
        };
        Stat {
            kind,
            size,
            mode: mode & 0o777,
            mtime_ns,
            nlink,
            id,
        }
    }

    // the field types differ between platforms (u16 modes on macOS)
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    pub(crate) fn of_raw(st: &libc::stat) -> Stat {
        let mtime = (st.st_mtime as i64, st.st_mtime_nsec as i64);
        let (mode, size, nlink) = (st.st_mode as u32, st.st_size as u64, st.st_nlink as u64);
        Stat::unix(mode, size, nlink, mtime, FileId::of_stat(st))
    }
}

impl From<&Metadata> for Stat {
    #[cfg(unix)]
    fn from(meta: &Metadata) -> Stat {
        use std::os::unix::fs::MetadataExt;
        let mtime = (meta.mtime(), meta.mtime_nsec());
        Stat::unix(
            meta.mode(),
            meta.size(),
            meta.nlink(),
            mtime,
            FileId::of(meta),
        )
    }

    /// Windows has only the readonly bit; a readonly directory stays traversable.
    #[cfg(not(unix))]
    fn from(meta: &Metadata) -> Stat {
        let ft = meta.file_type();
        let kind = match () {
            _ if ft.is_symlink() => Type::Link,
            _ if ft.is_dir() => Type::Dir,
            _ if ft.is_file() => Type::File,
            _ => Type::Other,
        };
        let mode = match (meta.is_dir(), meta.permissions().readonly()) {
            (true, _) => 0o755,
            (false, true) => 0o444,
            (false, false) => 0o644,
        };
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Stat {
            kind,
            size: meta.len(),
            mode,
            mtime_ns,
            nlink: 1,
            id: FileId::of(meta),
        }
    }
}

/// A directory being walked: an open handle on unix, its path elsewhere.
#[cfg(unix)]
pub(crate) struct Dir(File);
#[cfg(not(unix))]
pub(crate) struct Dir(PathBuf);

#[cfg(unix)]
impl Dir {
    /// A directory by its path, a link followed (a source: the user named
    /// it), never blocking on what it may have become.
    pub(crate) fn open(path: &Path) -> io::Result<Dir> {
        use std::os::unix::fs::OpenOptionsExt;
        let flags = libc::O_DIRECTORY | libc::O_NONBLOCK;
        let file = File::options().read(true).custom_flags(flags).open(path)?;
        Ok(Dir(file))
    }

    /// The directory `name` in this one, opened from this handle; a link
    /// there is refused (ELOOP, ENOTDIR) unless `follow` (-L).
    pub(crate) fn child(&self, name: &OsStr, follow: bool) -> io::Result<Dir> {
        use std::os::fd::AsFd;
        use std::os::unix::ffi::OsStrExt;
        let mut flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NONBLOCK;
        if !follow {
            flags |= libc::O_NOFOLLOW;
        }
        let fd = crate::sys::openat(self.0.as_fd(), name.as_bytes(), flags, 0)?;
        Ok(Dir(File::from(fd)))
    }

    /// This directory's parent, by `..` from its handle.
    pub(crate) fn parent(&self) -> io::Result<Dir> {
        self.child(OsStr::new(".."), false)
    }

    /// The names in it, read through the handle.
    pub(crate) fn names(&self) -> io::Result<Vec<OsString>> {
        use std::os::fd::AsFd;
        use std::os::unix::ffi::OsStringExt;
        let names = crate::sys::read_dir_names(self.0.as_fd())?;
        Ok(names.into_iter().map(OsString::from_vec).collect())
    }

    /// What `name` in it is: a link as a link unless `follow`.
    pub(crate) fn stat(&self, name: &OsStr, follow: bool) -> io::Result<Stat> {
        use std::os::fd::AsFd;
        use std::os::unix::ffi::OsStrExt;
        let raw = crate::sys::statat(self.0.as_fd(), name.as_bytes(), follow)?;
        Ok(Stat::of_raw(&raw))
    }

    /// The target of the link `name` in it.
    pub(crate) fn read_link(&self, name: &OsStr) -> io::Result<OsString> {
        use std::os::fd::AsFd;
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let target = crate::sys::readlinkat(self.0.as_fd(), name.as_bytes())?;
        Ok(OsString::from_vec(target))
    }

    /// What this directory is, from its handle.
    pub(crate) fn stat_self(&self) -> io::Result<Stat> {
        Ok(Stat::from(&self.0.metadata()?))
    }

    /// A directory opened already (by [`open_beneath`]).
    pub(crate) fn from_file(file: File) -> Dir {
        Dir(file)
    }

    /// The handle, to open files beneath it ([`open_beneath`]).
    pub(crate) fn into_file(self) -> File {
        self.0
    }
}

/// Without the `*at` calls: by path, each entry looked at by its path.
#[cfg(not(unix))]
impl Dir {
    pub(crate) fn open(path: &Path) -> io::Result<Dir> {
        match std::fs::metadata(path)?.is_dir() {
            true => Ok(Dir(path.to_path_buf())),
            false => Err(io::Error::other("not a directory")),
        }
    }

    pub(crate) fn child(&self, name: &OsStr, _follow: bool) -> io::Result<Dir> {
        Dir::open(&self.0.join(name))
    }

    pub(crate) fn names(&self) -> io::Result<Vec<OsString>> {
        std::fs::read_dir(&self.0)?
            .map(|e| e.map(|e| e.file_name()))
            .collect()
    }

    pub(crate) fn stat(&self, name: &OsStr, follow: bool) -> io::Result<Stat> {
        let path = self.0.join(name);
        let meta = match follow {
            true => std::fs::metadata(path)?,
            false => std::fs::symlink_metadata(path)?,
        };
        Ok(Stat::from(&meta))
    }

    pub(crate) fn read_link(&self, name: &OsStr) -> io::Result<OsString> {
        Ok(std::fs::read_link(self.0.join(name))?.into_os_string())
    }

    pub(crate) fn stat_self(&self) -> io::Result<Stat> {
        Ok(Stat::from(&std::fs::metadata(&self.0)?))
    }
}

/// Opens `below` (names, at least one) beneath the directory `dir`
/// without following a link at any of them; never blocks on a FIFO.
#[cfg(unix)]
pub(crate) fn open_beneath(dir: &File, below: &[Vec<u8>]) -> Option<File> {
    use std::os::fd::AsFd;
    const FLAGS: libc::c_int =
        libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    #[cfg(target_os = "linux")]
    match crate::sys::openat2_beneath(dir.as_fd(), &below.join(&b'/'), FLAGS, 0) {
        // an old kernel or a seccomp filter: the walk below is as safe
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS | libc::EPERM | libc::EINVAL)
            ) => {}
        opened => return opened.ok().map(File::from),
    }
    let mut at = crate::sys::openat(dir.as_fd(), &below[0], FLAGS, 0).ok()?;
    for name in &below[1..] {
        at = crate::sys::openat(at.as_fd(), name, FLAGS, 0).ok()?;
    }
    Some(File::from(at))
}
