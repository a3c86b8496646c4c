//! What stands where an entry goes, as the driver found it on the disk,
//! and what the session makes of it: a file sent, up to date or refused; a
//! link made, kept, replaced or refused.

use super::{Refusal, Session};
use crate::protocol::tree::Entry;
use crate::protocol::RefuseCode;

/// The unit of file times compared: Windows keeps 100 ns ticks, so a file
/// that landed there with its time cut down is still the same file.
const TICK_NS: u64 = if cfg!(windows) { 100 } else { 1 };

/// What stands at an entry's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum There {
    Missing,
    File { size: u64, mtime_ns: u64 },
    Dir,
    Link,
    Other,
}

/// What becomes of a file entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOver {
    /// Its data is asked for (nothing there, or replaced with --force).
    Send,
    /// The same size and time are there.
    UpToDate,
}

/// What becomes of a link entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOver {
    /// Made at the end, after all data.
    Make,
    /// The link there, to another target, goes first (--force).
    Replace,
    /// The same link, made by an earlier run of the same tree.
    Same,
}

impl Session {
    /// A file entry where `there` stands (a file or link there is replaced
    /// only with --force).
    pub fn file_over(&self, entry: &Entry, there: There) -> Result<FileOver, Refusal> {
        match there {
            There::Missing => Ok(FileOver::Send),
            There::File { size, mtime_ns }
                if !entry.stream
                    && size == entry.size
                    && mtime_ns / TICK_NS == entry.mtime_ns / TICK_NS =>
            {
                Ok(FileOver::UpToDate)
            }
            There::File { .. } | There::Link if self.setup.force => Ok(FileOver::Send),
            There::File { size, .. } => {
                let what = match (entry.stream, size == entry.size) {
                    (true, _) => String::new(),
                    (false, true) => " with another modification time".to_string(),
                    (false, false) => format!(" with {size} bytes, not {}", entry.size),
                };
                let why = format!("exists{what} (the receiver can replace it with --force)");
                Err(Refusal::exists(why))
            }
            There::Link => Err(Refusal::exists(
                "exists as a link (the receiver can replace it with --force)",
            )),
            There::Dir | There::Other => Err(Refusal::exists("exists and is not a file")),
        }
    }

    /// A link entry where `there` stands (or why it could not be looked
    /// at); `same`: a link there points where this one does.
    pub fn link_over(
        &self,
        there: Result<There, Refusal>,
        same: bool,
    ) -> Result<LinkOver, Refusal> {
        if cfg!(windows) {
            let why = "symbolic links are not made on Windows".to_string();
            return Err((RefuseCode::Other, why).into());
        }
        match there? {
            There::Missing => Ok(LinkOver::Make),
            There::Link if same => Ok(LinkOver::Same),
            There::Link if self.setup.force => Ok(LinkOver::Replace),
            There::Link => Err(Refusal::exists(
                "a link to another target exists (the receiver can replace it with --force)",
            )),
            _ => Err(Refusal::exists("something else exists there")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::receiver::{Setup, EXISTS_TOLD};
    use crate::protocol::tree::EntryKind;

    fn session(force: bool) -> Session {
        let setup = Setup {
            force,
            ..Default::default()
        };
        Session::new(setup, None)
    }

    fn entry(size: u64, mtime_ns: u64, stream: bool) -> Entry {
        Entry {
            id: 0,
            path: b"f".to_vec(),
            kind: EntryKind::File,
            size,
            mode: 0o644,
            mtime_ns,
            target: Vec::new(),
            range: None,
            stream,
        }
    }

    fn why(got: Result<FileOver, Refusal>) -> String {
        let r = got.unwrap_err();
        assert_eq!(r.told.as_deref(), Some(EXISTS_TOLD), "tells of OUT: {r:?}");
        r.why
    }

    /// tests/trees.rs's up-to-date and --force cases: a file of the same
    /// size and time is skipped, another is refused in words that say how
    /// it differs, or, with --force, replaced.
    #[test]
    fn a_file_entry_meets_what_is_there() {
        let (s, f) = (session(false), entry(10, 7, false));
        let file = |size, mtime_ns| There::File { size, mtime_ns };
        assert_eq!(s.file_over(&f, There::Missing), Ok(FileOver::Send));
        assert_eq!(s.file_over(&f, file(10, 7)), Ok(FileOver::UpToDate));
        let other_time =
            "exists with another modification time (the receiver can replace it with --force)";
        assert_eq!(why(s.file_over(&f, file(10, 8))), other_time);
        let other_size = "exists with 11 bytes, not 10 (the receiver can replace it with --force)";
        assert_eq!(why(s.file_over(&f, file(11, 7))), other_size);
        let stream = entry(10, 7, true);
        let exists = "exists (the receiver can replace it with --force)";
        assert_eq!(
            why(s.file_over(&stream, file(10, 7))),
            exists,
            "a stream is never up to date"
        );
        let link = "exists as a link (the receiver can replace it with --force)";
        assert_eq!(why(s.file_over(&f, There::Link)), link);
        assert_eq!(why(s.file_over(&f, There::Dir)), "exists and is not a file");
        let forced = session(true);
        assert_eq!(forced.file_over(&f, file(11, 7)), Ok(FileOver::Send));
        assert_eq!(forced.file_over(&f, There::Link), Ok(FileOver::Send));
        assert!(
            forced.file_over(&f, There::Other).is_err(),
            "--force replaces files only"
        );
    }

    #[test]
    #[cfg(not(windows))]
    fn a_link_entry_meets_what_is_there() {
        let s = session(false);
        assert_eq!(s.link_over(Ok(There::Missing), false), Ok(LinkOver::Make));
        assert_eq!(s.link_over(Ok(There::Link), true), Ok(LinkOver::Same));
        let other = s.link_over(Ok(There::Link), false).unwrap_err();
        assert!(
            other.why.starts_with("a link to another target exists"),
            "{other:?}"
        );
        let file = There::File {
            size: 0,
            mtime_ns: 0,
        };
        let r = s.link_over(Ok(file), false).unwrap_err();
        assert_eq!(r.why, "something else exists there");
        assert_eq!(
            session(true).link_over(Ok(There::Link), false),
            Ok(LinkOver::Replace)
        );
        let unreadable = Refusal::from((RefuseCode::BadName, "ENOTDIR".to_string()));
        assert_eq!(s.link_over(Err(unreadable.clone()), false), Err(unreadable));
    }
}
