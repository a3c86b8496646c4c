//! The manifest of a tree session: each ENTRY, and the MANIFEST that ends
//! the list.

use anyhow::{bail, ensure, Result};

use super::as_path;
use crate::protocol::tlv::{as_pair, as_u32, as_u64, Decoded, Fields};

/// What an entry is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EntryKind {
    #[default]
    File = 0,
    Dir = 1,
    Link = 2,
}

/// One entry of the manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    /// Components joined by `/`; bytes, not necessarily UTF-8.
    pub path: Vec<u8>,
    pub kind: EntryKind,
    /// Files only.
    pub size: u64,
    pub mode: u32,
    pub mtime_ns: u64,
    /// Links only: the target, verbatim.
    pub target: Vec<u8>,
    /// Files only: the bytes offered, `[start, end)`, when not all of them
    /// (`--offset`/`--count`); the receiver keeps the rest it holds.
    pub range: Option<(u64, u64)>,
    /// Files only: a stream (stdin, a pipe) whose size is not known; its
    /// data comes in order, at most `range`'s end when that is given.
    pub stream: bool,
}

impl Entry {
    /// The bytes this entry offers: its range, or the whole file.
    pub fn offered(&self) -> (u64, u64) {
        self.range.unwrap_or((0, self.size))
    }
}

/// The end of the manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Manifest {
    pub entries: u64,
    /// Entries the sender's walk could not read.
    pub failed: u64,
}

fn as_kind(_: u8, value: &[u8]) -> Result<EntryKind> {
    Ok(match value {
        [0] => EntryKind::File,
        [1] => EntryKind::Dir,
        [2] => EntryKind::Link,
        _ => bail!("entry of unknown kind {value:?}"),
    })
}

fn as_range(tag: u8, value: &[u8]) -> Result<(u64, u64)> {
    let (start, end) = as_pair("range")(tag, value)?;
    ensure!(start <= end, "a range that ends before it starts");
    Ok((start, end))
}

impl Entry {
    const ID: u8 = 1;
    const PATH: u8 = 2;
    const KIND: u8 = 3;
    const SIZE: u8 = 4;
    const MODE: u8 = 5;
    const MTIME: u8 = 6;
    const TARGET: u8 = 7;
    // required: a receiver that ignored them would misplace the bytes
    const RANGE: u8 = 0x88;
    const STREAM: u8 = 0x89;

    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::default();
        f.put_u64(Self::ID, self.id);
        f.put(Self::PATH, &self.path);
        f.put(Self::KIND, &[self.kind as u8]);
        if self.kind == EntryKind::File {
            f.put_u64(Self::SIZE, self.size);
        }
        f.put(Self::MODE, &self.mode.to_be_bytes());
        f.put_u64(Self::MTIME, self.mtime_ns);
        if self.kind == EntryKind::Link {
            f.put(Self::TARGET, &self.target);
        }
        if let Some(range) = self.range {
            f.put_pair(Self::RANGE, range);
        }
        f.put_flag(Self::STREAM, self.stream);
        f.0
    }

    /// Decodes an entry; the path itself is checked by the receiver.
    pub fn decode(body: &[u8]) -> Result<Self> {
        let mut entry = Decoded::read(body, |f| {
            Ok(Entry {
                id: f.need(Self::ID, as_u64, "entry without an id")?,
                path: f.need(Self::PATH, as_path, "entry without a path")?,
                kind: f.need(Self::KIND, as_kind, "entry without a kind")?,
                size: f.get(Self::SIZE, as_u64)?.unwrap_or(0),
                mode: f.get(Self::MODE, as_u32)?.map_or(0o644, |m| m & 0o777),
                mtime_ns: f.get(Self::MTIME, as_u64)?.unwrap_or(0),
                target: f.get(Self::TARGET, as_path)?.unwrap_or_default(),
                range: f.get(Self::RANGE, as_range)?,
                stream: f.flag(Self::STREAM)?,
            })
        })?;
        if entry.kind == EntryKind::Link {
            ensure!(!entry.target.is_empty(), "link without a target");
        }
        // A size on what is not a file, a target on what is not a link:
        // optional fields nothing reads, dropped so that the entry decoded
        // is the one `encode` writes back.
        if entry.kind != EntryKind::File {
            entry.size = 0;
        }
        if entry.kind != EntryKind::Link {
            entry.target.clear();
        }
        let file = entry.kind == EntryKind::File;
        ensure!(
            file || (entry.range.is_none() && !entry.stream),
            "a range or a stream on an entry that is not a file"
        );
        if let (Some((_, end)), false) = (entry.range, entry.stream) {
            ensure!(end <= entry.size, "a range past the end of the file");
        }
        Ok(entry)
    }
}

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::default();
        f.put_u64(1, self.entries);
        f.put_u64(2, self.failed);
        f.0
    }

    pub fn decode(body: &[u8]) -> Result<Self> {
        Decoded::read(body, |f| {
            Ok(Manifest {
                entries: f.get(1, as_u64)?.unwrap_or(0),
                failed: f.get(2, as_u64)?.unwrap_or(0),
            })
        })
    }
}
