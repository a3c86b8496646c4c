//! What a session sends, settled before connecting: the sources checked
//! and counted, or one file or stream as a tree of one entry.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use super::{item_of, Item};
use crate::config::SendConfig;
use crate::progress::Reporter;
use crate::send::digests::Digests;
use crate::send::walk::{self, Event, Totals};

/// The sources of a tree session, checked and counted before connecting.
pub(in crate::send) struct Plan {
    pub(super) sources: Vec<walk::Source>,
    pub(super) totals: Totals,
    pub(super) name: String,
    /// One file or stream named alone on the command line: a tree of one.
    pub(in crate::send) single: Option<Single>,
    /// Whole-file digests, shared with the other sessions of `-k`.
    pub(in crate::send) digests: Arc<Digests>,
    /// The walk that counted the sources, for the first session to offer
    /// (a session after it, `--retry`, walks them afresh, as they are then).
    walked: Mutex<Option<Walked>>,
}

/// One walk of a session's sources: each entry as the record the session
/// keeps of it, so the tree is walked (and each file looked at) once.
#[derive(Default)]
pub(super) struct Walked {
    pub(super) items: Vec<Item>,
    /// Entries that could not be read, and why.
    pub(super) failed: Vec<(String, String)>,
    /// Entries left out by design (a device, a link leaving the tree), and why.
    pub(super) skipped: Vec<(String, String)>,
    pub(super) totals: Totals,
}

impl Walked {
    pub(super) fn of(sources: &[walk::Source], dereference: bool) -> Walked {
        let mut walked = Walked::default();
        walked.totals = walk::gather(sources, dereference, |event, id| match event {
            Event::Entry(entry) => walked.items.push(item_of(entry, id)),
            Event::Skipped { path, why } => walked.skipped.push((path, why)),
            Event::Failed { path, why } => walked.failed.push((path, why)),
        });
        walked
    }
}

/// What a session of one file adds to its one entry.
pub(in crate::send) struct Single {
    /// The bytes asked for (`--offset`/`--count`), when not the whole file.
    pub(super) range: Option<(u64, u64)>,
    /// `--offset` was given: the range goes as it is, whatever is held.
    pub(super) forced: bool,
    /// Said in the summary (a `--count` cut short by the end of the file).
    pub(super) note: Option<String>,
    /// stdin or a pipe: read once, so never resumed.
    pub(super) stream: Option<std::sync::Mutex<Option<Box<dyn std::io::Read + Send>>>>,
}

impl Plan {
    /// One file, or a stream, as a tree of one entry.
    pub(in crate::send) fn single(opened: crate::send::Plan) -> Plan {
        let crate::send::Plan {
            input,
            label,
            name,
            offset,
            count,
            forced,
            note,
        } = opened;
        let name = name.unwrap_or_else(|| crate::output::STREAM_NAME.to_string());
        let mut totals = Totals {
            entries: 1,
            files: 1,
            ..Totals::default()
        };
        let (sources, range, stream) = match input {
            crate::send::Input::File { size, .. } => {
                let end = offset + count.unwrap_or(size - offset);
                totals.bytes = end - offset;
                let source = walk::Source {
                    path: PathBuf::from(&label),
                    top: name.clone().into_bytes(),
                };
                let range = ((offset, end) != (0, size)).then_some((offset, end));
                (vec![source], range, None)
            }
            crate::send::Input::Stream { reader } => {
                let cap = count.map(|c| (0, c));
                (Vec::new(), cap, Some(std::sync::Mutex::new(Some(reader))))
            }
        };
        Plan {
            sources,
            totals,
            name: name.clone(),
            single: Some(Single {
                range,
                forced,
                note,
                stream,
            }),
            digests: Arc::default(),
            walked: Mutex::default(),
        }
    }

    /// The same plan, taking and keeping digests in `digests`.
    pub(in crate::send) fn sharing(self, digests: Arc<Digests>) -> Plan {
        Plan { digests, ..self }
    }

    /// The sources walked: the walk that counted them, the first time.
    pub(super) fn walk(&self, dereference: bool) -> Walked {
        let first = self.walked.lock().ok().and_then(|mut w| w.take());
        first.unwrap_or_else(|| Walked::of(&self.sources, dereference))
    }

    /// Whether a lost connection can be resumed: not once a stream is read.
    pub(in crate::send) fn resumable(&self) -> bool {
        self.single.as_ref().is_none_or(|s| s.stream.is_none())
    }
}

impl Plan {
    pub(in crate::send) fn new(
        cfg: &SendConfig,
        sources: &[(PathBuf, Vec<u8>)],
        reporter: &Reporter,
    ) -> Result<Plan> {
        let plan = Plan::counted(cfg, sources)?;
        reporter.warn(
            "a tree carries files, directories, links inside it, permission bits and \
             modification times; not owners, ACLs or extended attributes",
        );
        if plan.totals.hard_links > 0 {
            reporter.warn(&format!(
                "{} files have hard links; each is sent as a separate file",
                plan.totals.hard_links
            ));
        }
        Ok(plan)
    }

    /// The sources checked and counted, without a word (`-k` counts them
    /// again for each receiver, as they are then).
    pub(in crate::send) fn counted(
        cfg: &SendConfig,
        sources: &[(PathBuf, Vec<u8>)],
    ) -> Result<Plan> {
        for (path, _) in sources {
            std::fs::metadata(path).with_context(|| path.display().to_string())?;
        }
        let sources: Vec<walk::Source> = sources
            .iter()
            .map(|(path, top)| walk::Source {
                path: path.clone(),
                top: top.clone(),
            })
            .collect();
        let walked = Walked::of(&sources, cfg.dereference);
        let totals = walked.totals;
        let first = String::from_utf8_lossy(&sources[0].top).into_owned();
        let name = match sources.len() {
            1 => first,
            n => format!("{first} and {} more", n - 1),
        };
        Ok(Plan {
            sources,
            totals,
            name,
            single: None,
            digests: Arc::default(),
            walked: Mutex::new(Some(walked)),
        })
    }
}
