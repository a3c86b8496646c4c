//! What a session sends, settled before connecting: the sources checked
//! and counted, or one file or stream as a tree of one entry.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::progress::Reporter;
use crate::protocol::sender::Alone;
use crate::protocol::tree::{top_and_rest, Entry, EntryKind};
use crate::send::digests::Digests;
use crate::send::digests::FileId;
use crate::send::walk::{self, Kind, Totals};

/// The sources of a tree session, checked and counted before connecting.
#[derive(Default)]
pub(in crate::send) struct Outgoing {
    pub(super) sources: Vec<walk::Source>,
    pub(super) totals: Totals,
    pub(super) name: String,
    /// One file or stream named alone on the command line, a tree of one:
    /// its name, the bytes asked for, and whether `--offset` forced them.
    pub(super) alone: Option<Alone>,
    /// Said in the summary of a file alone (a `--count` cut short by the
    /// end of the file).
    pub(super) note: Option<String>,
    /// stdin or a pipe alone: read once, so never resumed.
    pub(in crate::send) stream: Option<std::sync::Mutex<Option<Box<dyn std::io::Read + Send>>>>,
    /// Whole-file digests, shared with the other sessions of `-k`.
    pub(in crate::send) digests: Arc<Digests>,
}

impl Outgoing {
    /// One file, or a stream, as a tree of one entry.
    pub(in crate::send) fn single(opened: crate::send::Plan) -> Outgoing {
        let name = (opened.name).unwrap_or_else(|| crate::output::STREAM_NAME.to_string());
        let (offset, end) = (opened.offset, opened.offset + opened.count.unwrap_or(0));
        let (sources, range, stream) = match opened.input {
            crate::send::Input::File { size, .. } => {
                let source = walk::Source {
                    path: PathBuf::from(&opened.label),
                    top: name.clone().into_bytes(),
                };
                let range = ((offset, end) != (0, size)).then_some((offset, end));
                (vec![source], range, None)
            }
            // a stream's range is only its cap
            crate::send::Input::Stream { reader } => {
                let cap = opened.count.map(|c| (0, c));
                (Vec::new(), cap, Some(std::sync::Mutex::new(Some(reader))))
            }
        };
        let totals = Totals {
            entries: 1,
            files: 1,
            bytes: if stream.is_none() { end - offset } else { 0 },
            ..Totals::default()
        };
        let alone = Alone {
            name: name.clone(),
            range,
            forced: opened.forced,
        };
        Outgoing {
            sources,
            totals,
            name,
            alone: Some(alone),
            note: opened.note,
            stream,
            digests: Arc::default(),
        }
    }

    /// The same plan, taking and keeping digests in `digests`.
    pub(in crate::send) fn sharing(self, digests: Arc<Digests>) -> Outgoing {
        Outgoing { digests, ..self }
    }

    /// Whether a lost connection can be resumed: not once a stream is read.
    pub(in crate::send) fn resumable(&self) -> bool {
        self.stream.is_none()
    }

    /// The sources checked, and with `reporter` a tree's caveats said.
    /// They are walked as their entries are sent, each session afresh
    /// (`-k`, `--retry`): the tree as it is then.
    pub(in crate::send) fn new(
        sources: &[(PathBuf, Vec<u8>)],
        reporter: Option<&Reporter>,
    ) -> Result<Outgoing> {
        let sources = (sources.iter())
            .map(|(path, top)| {
                std::fs::metadata(path).with_context(|| path.display().to_string())?;
                let (path, top) = (path.clone(), top.clone());
                Ok(walk::Source { path, top })
            })
            .collect::<Result<Vec<_>>>()?;
        let first = String::from_utf8_lossy(&sources[0].top).into_owned();
        let name = match sources.len() {
            1 => first,
            n => format!("{first} and {} more", n - 1),
        };
        if let Some(reporter) = reporter {
            reporter.warn(
                "a tree carries files, directories, links inside it, permission bits and \
                 modification times; not owners, ACLs or extended attributes",
            );
        }
        // counted as they are sent
        Ok(Outgoing {
            sources,
            name,
            ..Outgoing::default()
        })
    }
}

/// Where a session's entries are read on this machine.
pub(in crate::send) struct Sources {
    /// Each top entry's source path, and a directory's handle, opened
    /// before it is walked: each file below is opened beneath it.
    tops: HashMap<Vec<u8>, (PathBuf, Option<std::fs::File>)>,
    /// Each entry's identity when walked (a file's): what it must still be
    /// once read.
    pub(in crate::send) walked: Vec<Option<FileId>>,
}

impl Sources {
    /// Where this session reads `plan`: each top directory opened afresh.
    pub(super) fn new(plan: &Outgoing) -> Sources {
        let tops = plan.sources.iter();
        Sources {
            tops: tops
                .map(|s| (s.top.clone(), (s.path.clone(), top_handle(&s.path))))
                .collect(),
            walked: Vec::new(),
        }
    }

    /// Where an entry is read: its top source's path, then the rest of its
    /// wire path (kept once per entry, not twice).
    pub(in crate::send) fn of(&self, path: &[u8]) -> PathBuf {
        let (top, rest) = top_and_rest(path);
        let mut source = self.tops.get(top).map(|t| t.0.clone()).unwrap_or_default();
        for part in rest {
            #[cfg(unix)]
            source.push(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(part));
            #[cfg(not(unix))]
            source.push(String::from_utf8_lossy(part).as_ref());
        }
        source
    }

    /// Opens an entry's file: a top one by its path (the user named it),
    /// one below beneath its top's handle, no link followed at any name
    /// (a directory swapped for a link since the walk cannot lead the
    /// read outside), never blocking on a FIFO. With -L (`follow`) by its
    /// path: links are followed there by design.
    pub(in crate::send) fn open(&self, path: &[u8], follow: bool) -> Result<std::fs::File, String> {
        let (top, rest) = top_and_rest(path);
        let below: Vec<Vec<u8>> = rest.map(<[u8]>::to_vec).collect();
        #[cfg(unix)]
        if let Some((_, Some(dir))) = self.tops.get(top).filter(|_| !below.is_empty() && !follow) {
            return super::walk::open_beneath(dir, &below)
                .ok_or_else(|| "cannot open it beneath its source (gone, or a link now)".into());
        }
        let _ = (top, below, follow);
        std::fs::File::open(self.of(path)).map_err(|e| format!("cannot open it: {e}"))
    }
}

/// A directory source, opened (a link followed: the user named it); none
/// for a file, or where nothing is opened beneath a handle.
fn top_handle(path: &std::path::Path) -> Option<std::fs::File> {
    #[cfg(unix)]
    return walk::Dir::open(path).ok().map(walk::Dir::into_file);
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// A walked entry as it goes on the wire (its id is the machine's to set).
pub(super) fn wire_entry(entry: walk::Entry) -> Entry {
    let (kind, size, target) = match entry.kind {
        Kind::File { size } => (EntryKind::File, size, Vec::new()),
        Kind::Dir => (EntryKind::Dir, 0, Vec::new()),
        Kind::Link { target } => (EntryKind::Link, 0, target),
    };
    Entry {
        path: entry.path,
        kind,
        size,
        mode: entry.mode,
        mtime_ns: entry.mtime_ns,
        target,
        ..Entry::default()
    }
}
