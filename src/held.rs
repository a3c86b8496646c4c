//! What a `.zcpart` holds: byte ranges, for which source, kept in a small
//! record beside it (`NAME.zcpart.held`) that is only ever written after the
//! data it describes has been fsync'd.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

pub use crate::protocol::ranges::Ranges;

/// The source a part belongs to; a different source means starting over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub size: u64,
    pub mtime_ns: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub source: Identity,
    pub held: Ranges,
}

/// Holdings beyond this many ranges are forgotten (and simply re-sent).
const MAX_RECORD_RANGES: usize = 4096;
/// A record is small: a larger file beside a part is not read, and nothing
/// in it is trusted.
const MAX_RECORD: u64 = 256 * 1024;
const HEADER: &str = "zc-held 1";
/// What a record's name adds to the name of the file it is for (the
/// part's `.zcpart`, then `.held`).
pub const RECORD_SUFFIX: &str = ".zcpart.held";

/// A record file's text, read whole: `None` if it is over [`MAX_RECORD`]
/// bytes or not UTF-8, which no record zc writes is.
pub fn read_capped(file: impl Read) -> Option<String> {
    let mut text = String::new();
    file.take(MAX_RECORD + 1).read_to_string(&mut text).ok()?;
    (text.len() as u64 <= MAX_RECORD).then_some(text)
}

pub fn record_path(part: &Path) -> PathBuf {
    let mut os = part.as_os_str().to_os_string();
    os.push(".held");
    PathBuf::from(os)
}

impl Record {
    pub fn encode(&self) -> String {
        let mtime = self
            .source
            .mtime_ns
            .map_or_else(|| "-".to_string(), |m| m.to_string());
        let ranges: Vec<String> = self
            .held
            .pairs()
            .iter()
            .take(MAX_RECORD_RANGES)
            .map(|(a, b)| format!("{a}-{b}"))
            .collect();
        format!(
            "{HEADER}\nsize {}\nmtime {mtime}\nheld {}\nname {}\n",
            self.source.size,
            ranges.join(" "),
            self.source.name
        )
    }

    /// Parses a record; anything malformed is `None` (nothing is trusted).
    pub fn decode(text: &str) -> Option<Record> {
        let mut lines = text.lines();
        if lines.next()? != HEADER {
            return None;
        }
        let size = lines.next()?.strip_prefix("size ")?.parse().ok()?;
        let mtime = lines.next()?.strip_prefix("mtime ")?;
        let mtime_ns = if mtime == "-" {
            None
        } else {
            Some(mtime.parse().ok()?)
        };
        let mut held = Ranges::new();
        for pair in lines
            .next()?
            .strip_prefix("held")?
            .split_whitespace()
            .take(MAX_RECORD_RANGES)
        {
            let (a, b) = pair.split_once('-')?;
            held.insert(a.parse().ok()?, b.parse().ok()?);
        }
        let name = lines.next()?.strip_prefix("name ")?.to_string();
        held.clip(size);
        Some(Record {
            source: Identity {
                name,
                size,
                mtime_ns,
            },
            held,
        })
    }
}

/// How often a receiver makes its progress durable, so that even a
/// SIGKILL or a power cut loses at most this much of a transfer.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

struct Shared {
    held: Mutex<Ranges>,
    stop: Mutex<bool>,
    wake: Condvar,
}

/// Keeps the record of a `.zcpart` current while data arrives: on its own
/// thread, it takes a snapshot of what was written, fsyncs the data, then
/// stores the snapshot, so the record never claims bytes that are not durable.
pub struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<thread::JoinHandle<()>>,
}

/// Where a checkpoint's record goes: a caller's writer (a tree writes
/// beneath its output handle).
pub type Store = Arc<dyn Fn(&Record) -> io::Result<()> + Send + Sync>;

impl Checkpointer {
    /// Starts the thread, which writes each record with `store`.
    pub fn start_with(
        file: &File,
        store: Store,
        source: Identity,
        held: Ranges,
    ) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            held: Mutex::new(held),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let (file2, shared2) = (file.try_clone()?, shared.clone());
        let thread = thread::Builder::new()
            .name("zc-checkpoint".into())
            .spawn(move || {
                let mut stop = shared2.stop.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    // a stop that came before this thread first waited
                    // notified no one: without this, it is heard a tick late
                    if *stop {
                        return;
                    }
                    stop = shared2
                        .wake
                        .wait_timeout(stop, CHECKPOINT_EVERY)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    if *stop {
                        return;
                    }
                    let snapshot = shared2
                        .held
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    if file2.sync_data().is_ok() {
                        let _ = store(&Record {
                            source: source.clone(),
                            held: snapshot,
                        });
                    }
                }
            })?;
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// Notes that [start, end) was written.
    pub fn add(&self, start: u64, end: u64) {
        self.shared
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(start, end);
    }

    fn stop(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_read_up_to_its_bound_and_not_past_it() {
        let at = vec![b'a'; MAX_RECORD as usize];
        assert_eq!(read_capped(&at[..]).map(|t| t.len()), Some(at.len()));
        let over = vec![b'a'; MAX_RECORD as usize + 1];
        assert_eq!(read_capped(&over[..]), None, "one byte over");
        assert_eq!(read_capped(&b"zc-held 1\n\xff"[..]), None, "not UTF-8");
    }

    #[test]
    fn record_round_trip() {
        let rec = Record {
            source: Identity {
                name: "a b".into(),
                size: 100,
                mtime_ns: Some(5),
            },
            held: Ranges::from_pairs(&[(0, 10), (50, 60)]),
        };
        assert_eq!(Record::decode(&rec.encode()), Some(rec));
        assert_eq!(Record::decode("zc-held 1\nsize x\n"), None);
    }
}
