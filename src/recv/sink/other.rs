//! [`Root`] where there are no `*at` calls (Windows): plain paths, each
//! existing component checked to be a real directory, not a link or another
//! reparse point, before it is used. A peer only sends names, so it cannot
//! win the race between check and use; a local process could.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use super::{ignore_missing, Made, RelPath, There};
use crate::held::{self, RECORD_SUFFIX};
use crate::output::PART_SUFFIX;
use crate::sys;

pub struct Root {
    path: PathBuf,
}

/// Links, junctions and every other reparse point.
fn is_link(meta: &fs::Metadata) -> bool {
    #[cfg(windows)]
    {
        use std::os::windows::fs::MetadataExt;
        const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;
        if meta.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            return true;
        }
    }
    meta.file_type().is_symlink()
}

fn refused(why: &str) -> io::Error {
    io::Error::new(ErrorKind::InvalidInput, why.to_string())
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut os = path.as_os_str().to_os_string();
    os.push(suffix);
    PathBuf::from(os)
}

impl Root {
    pub fn open(dir: &Path) -> io::Result<Root> {
        if !fs::metadata(dir)?.is_dir() {
            return Err(refused("not a directory"));
        }
        Ok(Root {
            path: dir.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory `rel` (the root for `None`), every component checked.
    fn dir(&self, rel: Option<&RelPath>) -> io::Result<PathBuf> {
        let mut path = self.path.clone();
        for name in rel.into_iter().flat_map(|r| r.components()) {
            path.push(&*String::from_utf8_lossy(name));
            let meta = fs::symlink_metadata(&path)?;
            if is_link(&meta) {
                return Err(refused("a link in the path"));
            }
            if !meta.is_dir() {
                return Err(refused("not a directory"));
            }
        }
        Ok(path)
    }

    /// `rel` itself, beneath its checked parent.
    fn target(&self, rel: &RelPath) -> io::Result<PathBuf> {
        let parent = self.dir(rel.parent().as_ref())?;
        Ok(parent.join(&*String::from_utf8_lossy(rel.name())))
    }

    pub fn stat(&self, rel: &RelPath) -> io::Result<There> {
        let meta = match self.target(rel).and_then(fs::symlink_metadata) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(There::Missing),
            other => other?,
        };
        Ok(if is_link(&meta) {
            There::Link
        } else if meta.is_file() {
            let mtime = meta
                .modified()?
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            There::File {
                size: meta.len(),
                mtime_ns: u64::try_from(mtime.as_nanos()).unwrap_or(u64::MAX),
            }
        } else if meta.is_dir() {
            There::Dir
        } else {
            There::Other
        })
    }

    /// Windows keeps no mode that could mark a directory unfinished (see
    /// [`super::UNFINISHED`]): one that exists is left as it is.
    pub fn mkdir(&self, rel: &RelPath) -> io::Result<Made> {
        let path = self.target(rel)?;
        match fs::create_dir(&path) {
            Ok(()) => Ok(Made::New),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let meta = fs::symlink_metadata(&path)?;
                if meta.is_dir() && !is_link(&meta) {
                    Ok(Made::Existing)
                } else {
                    Err(io::Error::new(
                        ErrorKind::AlreadyExists,
                        "exists and is not a directory",
                    ))
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Opens the reparse point itself if one is there (then refuses it), and
    /// shares the part with readers only: a second writer is `WouldBlock`.
    /// `fresh`: the part is to be written from nothing, so what it holds is
    /// dropped, once it is ours (truncating in the open itself could cut
    /// another writer's part short); a part just created costs nothing.
    /// How many bytes `NAME.zcpart` holds (0: none, or not a regular
    /// file), looked at without opening or locking it.
    pub fn part_len(&self, rel: &RelPath) -> io::Result<u64> {
        let path = suffixed(&self.target(rel)?, PART_SUFFIX);
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_file() => Ok(meta.len()),
            Ok(_) => Ok(0),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    pub fn open_part(&self, rel: &RelPath, fresh: bool) -> io::Result<File> {
        let path = suffixed(&self.target(rel)?, PART_SUFFIX);
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true);
        #[cfg(windows)]
        {
            use std::os::windows::fs::OpenOptionsExt;
            const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
            const SHARE_READ_DELETE: u32 = 0x1 | 0x4;
            opts.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
                .share_mode(SHARE_READ_DELETE);
        }
        let file = match opts.open(&path) {
            // ERROR_SHARING_VIOLATION: another writer has it open
            Err(e) if cfg!(windows) && e.raw_os_error() == Some(32) => {
                return Err(io::Error::from(ErrorKind::WouldBlock))
            }
            other => other?,
        };
        let meta = file.metadata()?;
        if is_link(&meta) || !meta.is_file() {
            return Err(refused("not a regular file"));
        }
        if !sys::try_lock(&file)? {
            return Err(io::Error::from(ErrorKind::WouldBlock));
        }
        // no other writer can have it now (share mode, lock): the length
        // read above is current
        if fresh && meta.len() > 0 {
            file.set_len(0)?;
        }
        Ok(file)
    }

    /// Leaves every part to [`Root::open_part`] here.
    pub fn create_part(&self, _rel: &RelPath, _mode: u32) -> io::Result<Option<File>> {
        Ok(None)
    }

    /// No part goes without a name here.
    pub fn create_unnamed(&self, _rel: &RelPath, _mode: u32) -> io::Result<Option<File>> {
        Ok(None)
    }

    /// Never called: [`Root::create_unnamed`] makes no such part here.
    pub fn publish_unnamed(&self, _rel: &RelPath, _file: &File) -> io::Result<()> {
        Err(io::Error::from(ErrorKind::Unsupported))
    }

    /// Windows' rename replaces a file or a link named NAME, not its target.
    pub fn publish(&self, rel: &RelPath) -> io::Result<()> {
        let path = self.target(rel)?;
        fs::rename(suffixed(&path, PART_SUFFIX), &path)
    }

    pub fn discard_part(&self, rel: &RelPath) -> io::Result<()> {
        let path = match self.target(rel) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            other => other?,
        };
        ignore_missing(fs::remove_file(suffixed(&path, PART_SUFFIX)))?;
        ignore_missing(fs::remove_file(suffixed(&path, RECORD_SUFFIX)))
    }

    /// Links need privileges on Windows and could point anywhere later.
    /// Links are not made on Windows, so none is removed either.
    pub fn discard_link(&self, _rel: &RelPath) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    /// Removes the directory `NAME` if it is empty (a reparse point is
    /// removed as itself, never followed).
    pub fn remove_empty_dir(&self, rel: &RelPath) -> io::Result<()> {
        fs::remove_dir(self.target(rel)?)
    }

    /// Links are not made on Windows, so none is read either.
    pub fn read_link(&self, _rel: &RelPath) -> io::Result<Vec<u8>> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    pub fn symlink(&self, _rel: &RelPath, _target: &[u8]) -> io::Result<()> {
        Err(io::Error::from(ErrorKind::Unsupported))
    }

    /// Only the mtime: Windows has no permission bits for directories.
    pub fn finish_dir(&self, rel: &RelPath, _mode: u32, mtime_ns: u64) -> io::Result<()> {
        let path = self.dir(Some(rel))?;
        #[cfg(windows)]
        {
            use std::os::windows::fs::OpenOptionsExt;
            const FILE_WRITE_ATTRIBUTES: u32 = 0x100;
            const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
            const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
            let dir = OpenOptions::new()
                .access_mode(FILE_WRITE_ATTRIBUTES)
                .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT)
                .open(&path)?;
            dir.set_modified(UNIX_EPOCH + Duration::from_nanos(mtime_ns))?;
        }
        #[cfg(not(windows))]
        let _ = (path, mtime_ns, Duration::ZERO);
        Ok(())
    }

    pub fn read_record(&self, rel: &RelPath) -> Option<String> {
        let path = suffixed(&self.target(rel).ok()?, RECORD_SUFFIX);
        let meta = fs::symlink_metadata(&path).ok()?;
        if is_link(&meta) || !meta.is_file() {
            return None;
        }
        held::read_capped(File::open(&path).ok()?)
    }

    /// create_new never opens what is already there, link or not.
    pub fn write_record(&self, rel: &RelPath, text: &str) -> io::Result<()> {
        let record = suffixed(&self.target(rel)?, RECORD_SUFFIX);
        let tmp = suffixed(&record, ".tmp");
        ignore_missing(fs::remove_file(&tmp))?;
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, &record)
    }

    pub fn sync_all(&self) -> io::Result<()> {
        Err(io::Error::from(ErrorKind::Unsupported))
    }

    /// Best effort, and here there is none: std cannot fsync a directory on Windows.
    pub fn sync_parent(&self, _rel: &RelPath) -> io::Result<()> {
        Ok(())
    }

    pub fn free_space(&self) -> io::Result<u64> {
        sys::free_space(&self.path)
    }
}
