//! Where an upload lands: the receiver's own sink (`NAME.zcpart` beneath
//! the output directory's handle, the tree's name checks, then a rename),
//! and the answers for what it refuses.

use std::fs::File;
use std::io::{self, ErrorKind, Read, Seek, SeekFrom, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::recv::sink::{check_path, landed_mode, Made, RelPath, Root, There};

/// An upload refused, with the status and the reason for the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub why: String,
}

pub fn refused(status: u16, why: impl Into<String>) -> Refused {
    Refused {
        status,
        why: why.into(),
    }
}

/// The output directory and the rules every upload lands by.
pub struct Lander {
    pub root: Root,
    pub force: bool,
    pub max_size: Option<u64>,
}

impl Lander {
    /// The names of a URL (or a form's file name, split on `/`) as a path
    /// beneath the output directory, by the rules of a tree's paths.
    pub fn rel_of(names: &[&[u8]]) -> Result<RelPath, Refused> {
        let joined = names.join(&b'/');
        check_path(&joined).map_err(|why| refused(400, format!("not a name zc writes: {why}")))
    }

    /// Refused before a byte: larger than `--max-size`, or than the room
    /// left on the output's file system (`need`: what is still to come).
    pub fn check_room(&self, total: u64, need: u64) -> Result<(), Refused> {
        if let Some(most) = self.max_size.filter(|&most| total > most) {
            return Err(refused(
                413,
                format!("{total} bytes is more than this receiver's --max-size of {most}"),
            ));
        }
        match self.root.free_space() {
            Ok(free) if need > free => Err(refused(
                507,
                format!("{need} bytes do not fit: {free} bytes are free"),
            )),
            _ => Ok(()),
        }
    }

    /// What is at `rel` may be replaced: nothing, or a file or a link
    /// with `--force`; never a directory.
    pub fn check_free(&self, rel: &RelPath) -> Result<(), Refused> {
        let found = self.root.stat(rel).map_err(|e| io_refusal(rel, &e))?;
        let shown = rel.display();
        match found {
            There::Missing => Ok(()),
            There::File { .. } | There::Link if self.force => Ok(()),
            There::File { .. } | There::Link => Err(refused(
                409,
                format!("'{shown}' exists: the receiver replaces files only with --force"),
            )),
            There::Dir | There::Other => Err(refused(
                409,
                format!("'{shown}' exists and is not a file: it is never replaced"),
            )),
        }
    }

    /// Makes the directories above `rel` inside the output directory
    /// (never through a link), each finished at once in this side's mode.
    pub fn parents(&self, rel: &RelPath) -> Result<(), Refused> {
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        let mut at: Option<RelPath> = None;
        for name in parent.components() {
            let dir = RelPath::rejoin(at.as_ref(), name);
            let made = self.root.mkdir(&dir).map_err(|e| io_refusal(&dir, &e))?;
            if made != Made::Existing {
                let mode = landed_mode(0o777, crate::sys::umask(), false);
                self.root
                    .finish_dir(&dir, mode, now_ns())
                    .map_err(|e| io_refusal(&dir, &e))?;
            }
            at = Some(dir);
        }
        Ok(())
    }

    /// The part of `rel`, locked, positioned at `start`: fresh from
    /// nothing at 0, else a kept part holding at least `start` bytes (what
    /// it holds past `start` is dropped).
    pub fn open_part(&self, rel: &RelPath, start: u64) -> Result<File, Refused> {
        let mut file = match self.root.open_part(rel, start == 0) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                return Err(refused(
                    409,
                    format!("'{}' is being uploaded by another client", rel.display()),
                ))
            }
            other => other.map_err(|e| io_refusal(rel, &e))?,
        };
        let held = file.metadata().map_err(|e| io_refusal(rel, &e))?.len();
        if start > held {
            return Err(refused(
                409,
                format!(
                    "the kept part of '{}' holds {held} bytes: continue from byte {held}",
                    rel.display()
                ),
            ));
        }
        let placed = file
            .set_len(start)
            .and_then(|_| file.seek(SeekFrom::Start(start)));
        placed.map_err(|e| io_refusal(rel, &e))?;
        Ok(file)
    }

    /// How many bytes the kept part of `rel` holds (0: none). It only
    /// looks: opening the part (which creates and locks it) raced an upload
    /// that was opening the same part, which then got a 409.
    pub fn held(&self, rel: &RelPath) -> u64 {
        self.root.part_len(rel).unwrap_or(0)
    }

    /// The part is complete: on disk, then under its name, then the
    /// rename on disk too. Checked once more for what may have appeared
    /// at the name meanwhile.
    pub fn publish(&self, rel: &RelPath, file: &File) -> Result<(), Refused> {
        file.sync_all().map_err(|e| io_refusal(rel, &e))?;
        self.check_free(rel)?;
        self.root.publish(rel).map_err(|e| io_refusal(rel, &e))?;
        self.root.sync_parent(rel).map_err(|e| io_refusal(rel, &e))
    }
}

/// Copies `body` into `file` to its end, feeding `hash` on the way.
pub fn write_body(body: &mut impl Read, file: &mut File, hash: &mut Sha256) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = body.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        hash.update(&buf[..n]);
        file.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// The first `len` bytes of a kept part, hashed (the whole file's digest
/// of a resumed upload starts with them).
pub fn hash_prefix(file: &File, len: u64, hash: &mut Sha256) -> io::Result<()> {
    let mut from = file.try_clone()?;
    from.seek(SeekFrom::Start(0))?;
    let mut prefix = from.take(len);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match prefix.read(&mut buf)? {
            0 => return Ok(()),
            n => hash.update(&buf[..n]),
        }
    }
}

fn io_refusal(rel: &RelPath, e: &io::Error) -> Refused {
    let status = match e.kind() {
        ErrorKind::StorageFull => 507,
        ErrorKind::NotADirectory | ErrorKind::AlreadyExists | ErrorKind::InvalidInput => 409,
        _ => 500,
    };
    refused(status, format!("'{}': {e}", rel.display()))
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
