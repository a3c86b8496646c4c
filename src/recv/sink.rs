//! Where a tree lands: checked peer paths, and the output directory handle all writes go beneath.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::held::RECORD_SUFFIX;
use crate::output::PART_SUFFIX;
use crate::peer_text::escape;
use crate::protocol::tree::MAX_PATH;
use crate::protocol::MAX_NAME;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::Root;
#[cfg(not(unix))]
mod other;
#[cfg(not(unix))]
pub use other::Root;

/// Components of a wire path.
pub const MAX_DEPTH: usize = 128;

/// A path a peer sent, checked: components are plain names joined by `/`.
/// Only [`check_path`] makes one, so holding one means the checks passed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelPath {
    bytes: Vec<u8>,
}

impl RelPath {
    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.bytes.split(|&b| b == b'/')
    }

    /// `None` for a top-level entry (its parent is the output directory).
    pub fn parent(&self) -> Option<RelPath> {
        let cut = self.bytes.iter().rposition(|&b| b == b'/')?;
        Some(RelPath {
            bytes: self.bytes[..cut].to_vec(),
        })
    }

    /// The last component.
    pub fn name(&self) -> &[u8] {
        self.components().last().unwrap_or_default()
    }

    pub fn depth(&self) -> usize {
        self.bytes.iter().filter(|&&b| b == b'/').count() + 1
    }

    /// The wire form, borrowed.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The parent's wire form (empty at the top) and the last component.
    pub fn split(&self) -> (&[u8], &[u8]) {
        match self.bytes.iter().rposition(|&b| b == b'/') {
            Some(cut) => (&self.bytes[..cut], &self.bytes[cut + 1..]),
            None => (&[], &self.bytes),
        }
    }

    /// The path again from the two halves [`RelPath::split`] gave: both
    /// were checked as one, so the join is too.
    pub fn rejoin(parent: Option<&RelPath>, name: &[u8]) -> RelPath {
        let mut bytes = Vec::with_capacity(parent.map_or(0, |p| p.bytes.len() + 1) + name.len());
        if let Some(parent) = parent {
            bytes.extend_from_slice(&parent.bytes);
            bytes.push(b'/');
        }
        bytes.extend_from_slice(name);
        debug_assert!(check_path(&bytes).is_ok());
        RelPath { bytes }
    }

    /// For messages: a peer's name may hold anything a terminal obeys.
    pub fn display(&self) -> String {
        escape(&self.bytes)
    }

    /// The path beneath `dir`, for messages, escaped as [`RelPath::display`].
    pub fn display_in(&self, dir: &Path) -> String {
        escape(dir.join(self.to_path()).as_os_str().as_encoded_bytes())
    }

    /// The relative native path.
    pub fn to_path(&self) -> PathBuf {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            PathBuf::from(std::ffi::OsStr::from_bytes(&self.bytes))
        }
        #[cfg(not(unix))]
        self.components()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect()
    }
}

/// Checks a wire path: see PROTOCOL.md, "Trees". Nothing is rewritten: a
/// path that would need rewriting is refused.
pub fn check_path(wire: &[u8]) -> Result<RelPath, String> {
    path_for(wire, cfg!(windows))
}

fn path_for(wire: &[u8], windows: bool) -> Result<RelPath, String> {
    if wire.is_empty() {
        return Err("empty path".into());
    }
    if wire.len() > MAX_PATH {
        return Err(format!("path over {MAX_PATH} bytes"));
    }
    for (i, c) in wire.split(|&b| b == b'/').enumerate() {
        if i == MAX_DEPTH {
            return Err(format!("path deeper than {MAX_DEPTH} components"));
        }
        if c.is_empty() {
            return Err(format!("empty component in '{}'", escape(wire)));
        }
        component(c, windows).map_err(|why| format!("'{}': {why}", escape(c)))?;
    }
    Ok(RelPath {
        bytes: wire.to_vec(),
    })
}

/// One component; the caller names it in the error.
fn component(c: &[u8], windows: bool) -> Result<(), String> {
    if c == b"." || c == b".." {
        return Err("not a name".into());
    }
    if c.len() > MAX_NAME {
        return Err(format!("name over {MAX_NAME} bytes"));
    }
    // tab and newline are legal Unix names; every other control is refused
    if let Some(b) = c
        .iter()
        .find(|&&b| (b < 0x20 && b != b'\t' && b != b'\n') || b == 0x7f)
    {
        return Err(format!("control character 0x{b:02x}"));
    }
    // C1 controls too, as the characters they are in UTF-8 (a byte that is
    // not UTF-8 is no character: it is kept, and escaped when printed)
    let mut c1 = c.utf8_chunks().flat_map(|chunk| chunk.valid().chars());
    if let Some(ch) = c1.find(|ch| ('\u{80}'..='\u{9f}').contains(ch)) {
        return Err(format!("control character U+{:04X}", ch as u32));
    }
    let held = RECORD_SUFFIX.as_bytes();
    if c.ends_with(PART_SUFFIX.as_bytes()) || c.windows(held.len()).any(|w| w == held) {
        return Err(format!("would collide with zc's {PART_SUFFIX} files"));
    }
    if windows {
        windows_name(c)?;
    }
    Ok(())
}

/// Names Windows would refuse or misread.
fn windows_name(c: &[u8]) -> Result<(), String> {
    const RESERVED: [&str; 22] = [
        "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
        "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    ];
    let name = std::str::from_utf8(c).map_err(|_| "not UTF-8".to_string())?;
    if let Some(ch) = name
        .chars()
        .find(|&ch| ch < ' ' || "\\:<>\"|?*".contains(ch))
    {
        return Err(format!("{ch:?} is not allowed in Windows names"));
    }
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        return Err("a reserved device name on Windows".into());
    }
    if name.ends_with(['.', ' ']) {
        return Err("ends with a dot or a space, which Windows drops".into());
    }
    Ok(())
}

/// The permission bits a file or directory from the peer lands with: the
/// sender's, never setuid, setgid or sticky, less this side's umask
/// unless `--preserve-modes` asks for them exactly (as tar does for a user
/// who is not root, and rsync without `-p`).
pub fn landed_mode(sent: u32, umask: Option<u32>, preserve: bool) -> u32 {
    match preserve {
        true => sent & 0o777,
        false => sent & 0o777 & !umask.unwrap_or(0),
    }
}

/// Checks the target of a link that will be made at `link`: it must resolve,
/// lexically, inside the link's top entry. Lexical resolution is exact here
/// because `..` may only lead (the link's parents are real directories of
/// this session), and every other link is held to the same rule.
pub fn check_link_target(link: &RelPath, target: &[u8]) -> Result<(), String> {
    link_target(link, target, cfg!(windows))
}

fn link_target(link: &RelPath, target: &[u8], windows: bool) -> Result<(), String> {
    let refuse = |why: &str| Err(format!("link target '{}': {why}", escape(target)));
    if target.is_empty() {
        return Err("empty link target".into());
    }
    if target.len() > MAX_PATH {
        return Err(format!("link target over {MAX_PATH} bytes"));
    }
    if target.contains(&0) {
        return refuse("NUL byte");
    }
    if target[0] == b'/' || (windows && target.iter().any(|&b| b == b'\\' || b == b':')) {
        return refuse("not a relative path");
    }
    // depth of the directory we are in, counted from the output directory;
    // it must stay at least 1 (inside the top entry) throughout
    let mut depth = link.depth() - 1;
    if depth == 0 {
        return refuse("a top-level link cannot point inside its own entry");
    }
    let mut leading = true;
    for c in target.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." if !leading => return refuse("'..' after a name"),
            b".." if depth <= 1 => return refuse("climbs above the top entry"),
            b".." => depth -= 1,
            _ => {
                leading = false;
                depth += 1;
            }
        }
    }
    Ok(())
}

/// Ok for NotFound: removing what is not there is done.
fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// What [`Root::mkdir`] found or made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// Made now: its mode and time are set when the session ends.
    New,
    /// Made by a session that did not finish (see [`UNFINISHED`]): as new,
    /// its mode and time are set at the end, though it is not empty.
    Unfinished,
    /// A directory that was there: left exactly as it is (mode, owner,
    /// times), whatever the sender says of it.
    Existing,
}

/// The mode a directory holds while zc fills it: owner only, and sticky,
/// which no directory from a sender ever is (their modes are cut to
/// 0o777) and hardly one a user makes. A directory still in this mode and
/// owned by this user was made by a session that stopped before its end
/// (Ctrl-C, a cut, a crash), so the session that resumes the tree gives it
/// its mode and time; not while another live session of this process
/// holds it (it made it and is filling it). Every other directory that
/// exists is not zc's to change: a sender without a key must not re-mode
/// `~/.ssh`. The setgid bit a directory inherits from its parent is not
/// part of the mark, and stays when it is finished.
pub const UNFINISHED: u32 = 0o1700;

/// What is at a path, without following links.
pub use crate::protocol::receiver::There;

/// The paths of one session, as 128-bit hashes (a session may hold
/// millions of paths of up to 4 KiB): the directories that were accepted,
/// so their children may be, and every other path. Two sets of bare keys
/// rather than one map of key and flag: 16 bytes a slot, not 32.
pub struct Seen {
    fold: bool,
    dirs: HashSet<u128>,
    others: HashSet<u128>,
}

impl Seen {
    /// `fold`: the output is case-insensitive (`cfg!(any(windows, target_os = "macos"))`).
    pub fn new(fold: bool) -> Seen {
        Seen {
            fold,
            dirs: HashSet::new(),
            others: HashSet::new(),
        }
    }

    /// What the sets hold, in bytes (their slots and control bytes).
    pub fn memory(&self) -> u64 {
        let slots = self.dirs.capacity() + self.others.capacity();
        (slots * (std::mem::size_of::<u128>() + 1)) as u64
    }

    pub fn admit(&mut self, rel: &RelPath, is_dir: bool) -> Result<(), String> {
        if let Some(parent) = rel.parent() {
            if !self.dirs.contains(&self.key(&parent)) {
                return Err(format!(
                    "'{}' is not beneath a directory of this session",
                    rel.display()
                ));
            }
        }
        let key = self.key(rel);
        if self.dirs.contains(&key) || self.others.contains(&key) {
            return Err(format!("'{}' was sent twice", rel.display()));
        }
        match is_dir {
            true => self.dirs.insert(key),
            false => self.others.insert(key),
        };
        Ok(())
    }

    /// The directory stays known (a second one is still a duplicate) but
    /// nothing is admitted beneath it.
    pub fn reject_dir(&mut self, rel: &RelPath) {
        let key = self.key(rel);
        self.dirs.remove(&key);
        self.others.insert(key);
    }

    /// Case folding is `to_lowercase` on what is UTF-8: close to, not exactly,
    /// what NTFS and APFS do (APFS also ignores Unicode normalization).
    fn key(&self, rel: &RelPath) -> u128 {
        let mut hash = Sha256::new();
        if self.fold {
            for chunk in rel.bytes.utf8_chunks() {
                hash.update(chunk.valid().to_lowercase().as_bytes());
                hash.update(chunk.invalid());
            }
        } else {
            hash.update(&rel.bytes);
        }
        let digest = hash.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        u128::from_be_bytes(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landed_modes_lose_the_umask_and_never_keep_setuid_setgid_or_sticky() {
        assert_eq!(landed_mode(0o777, Some(0o022), false), 0o755);
        assert_eq!(landed_mode(0o666, Some(0o027), false), 0o640);
        assert_eq!(landed_mode(0o7777, Some(0o022), false), 0o755);
        assert_eq!(landed_mode(0o1777, Some(0o077), false), 0o700);
        // --preserve-modes: exact, but still never setuid, setgid or sticky
        assert_eq!(landed_mode(0o777, Some(0o022), true), 0o777);
        assert_eq!(landed_mode(0o6755, Some(0o022), true), 0o755);
        // where there is no umask (Windows), the bits as sent
        assert_eq!(landed_mode(0o640, None, false), 0o640);
    }

    fn rel(p: &str) -> RelPath {
        check_path(p.as_bytes()).unwrap()
    }

    #[test]
    fn paths_accepted() {
        let long = "a".repeat(255);
        for good in ["a", "a b/c", "-x", "a\nb", "t\tab/x", "...", &long] {
            assert!(check_path(good.as_bytes()).is_ok(), "{good:?}");
        }
        #[cfg(unix)]
        assert!(check_path(b"a/\xff\xfe").is_ok());
        let deep = vec!["d"; MAX_DEPTH].join("/");
        assert_eq!(check_path(deep.as_bytes()).unwrap().depth(), MAX_DEPTH);
    }

    #[test]
    fn paths_refused() {
        let long = "a".repeat(256);
        // 17 components: over the byte bound, not the depth bound
        let full = vec!["a".repeat(240); 17].join("/");
        assert_eq!(full.len(), MAX_PATH);
        assert!(check_path(full.as_bytes()).is_ok());
        let huge = format!("{full}a");
        let deep = vec!["d"; MAX_DEPTH + 1].join("/");
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "a/./b",
            "a/../b",
            "..",
            ".",
            "a\0b",
            "a\x1bb",
            "a\rb",
            "a\x7f",
            &long,
            &huge,
            &deep,
            "x.zcpart",
            "d/x.zcpart",
            "x.zcpart.held.tmp",
        ] {
            assert!(check_path(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let why = check_path(b"ok/a\x1bb").unwrap_err();
        assert!(why.contains("a\\u{1b}b"), "{why}");
    }

    #[test]
    fn c1_controls_are_refused_as_characters_not_as_bytes() {
        // CSI, NEL, OSC and the range's ends, as UTF-8 (C2 80..C2 9F)
        for c in ['\u{80}', '\u{85}', '\u{9b}', '\u{9d}', '\u{9f}'] {
            let path = format!("top/a{c}b");
            let why = check_path(path.as_bytes()).unwrap_err();
            assert!(why.contains(&format!("U+{:04X}", c as u32)), "{why}");
            // the reason names it escaped, never raw
            assert!(!why.contains(c), "{why:?}");
        }
        // the characters after them are fine, and so are lone bytes that are
        // not UTF-8 (Latin-1's 0x85 is no character here: escaped when printed)
        assert!(check_path("top/\u{a0}\u{e9}".as_bytes()).is_ok());
        #[cfg(unix)]
        assert!(check_path(b"top/caf\xe9\x85\x9b").is_ok());
    }

    #[test]
    fn windows_paths() {
        for bad in [
            &b"CON"[..],
            b"d/con.txt",
            b"LPT1",
            b"Aux.tar.gz",
            b"a.",
            b"a ",
            b"a:b",
            b"a?",
            b"a\\b",
            b"a\tb",
            b"\xff",
        ] {
            assert!(path_for(bad, true).is_err(), "{bad:?}");
            assert!(path_for(bad, false).is_ok(), "{bad:?}");
        }
        for good in ["CONSOLE", "a.b", "com10", "null", "d/é"] {
            assert!(path_for(good.as_bytes(), true).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn rel_path_parts() {
        let p = rel("top/a/b\nc");
        assert_eq!(p.name(), b"b\nc");
        assert_eq!(p.depth(), 3);
        assert_eq!(p.parent(), Some(rel("top/a")));
        assert_eq!(p.split(), (&b"top/a"[..], &b"b\nc"[..]));
        assert_eq!(RelPath::rejoin(Some(&rel("top/a")), b"b\nc"), p);
        assert_eq!(rel("top").split(), (&b""[..], &b"top"[..]));
        assert_eq!(RelPath::rejoin(None, b"top"), rel("top"));
        assert_eq!(rel("top").parent(), None);
        assert_eq!(p.bytes(), b"top/a/b\nc");
        assert_eq!(p.display(), "top/a/b\\nc");
        assert_eq!(p.to_path(), PathBuf::from("top").join("a").join("b\nc"));
        assert_eq!(
            escape(b"\xff\\\t\x1b\xe2\x80\xae"),
            "\\xff\\\\t\\u{1b}\\u{202e}"
        );
    }

    #[test]
    fn link_targets() {
        let ok = [
            ("top/a/l", "../b"),
            ("top/a/b/l", "../../x"),
            ("top/l", "a/b"),
            ("top/l", "."),
        ];
        let ok = ok
            .iter()
            .chain(&[("top/a/b/l", "../../c/./d/"), ("top/a/l", "..")]);
        for (link, target) in ok {
            let err = check_link_target(&rel(link), target.as_bytes()).err();
            assert!(err.is_none(), "{link} -> {target}: {err:?}");
        }
        for (link, target) in [
            ("top/l", "../x"),
            ("top/a/l", "../../top/x"),
            ("top/a/l", "../../../etc"),
            ("top/a/l", "a/../b"),
            ("top/a/l", "../a/../b"),
            ("top/a/l", "/etc/passwd"),
            ("top/a/l", ""),
            ("top/a/l", "a\0b"),
            ("l", "x"),
        ] {
            assert!(
                check_link_target(&rel(link), target.as_bytes()).is_err(),
                "{link} -> {target}"
            );
        }
        assert!(link_target(&rel("top/l"), &vec![b'a'; MAX_PATH + 1], false).is_err());
        assert!(link_target(&rel("top/l"), b"a\\b", true).is_err());
        assert!(link_target(&rel("top/l"), b"C:x", true).is_err());
    }

    #[test]
    fn seen_refuses_duplicates_and_orphans() {
        let mut seen = Seen::new(false);
        assert!(seen.admit(&rel("top"), true).is_ok());
        assert!(seen.admit(&rel("top/f"), false).is_ok());
        assert!(seen.admit(&rel("top/F"), false).is_ok());
        assert!(seen.admit(&rel("top/f"), false).is_err());
        assert!(seen.admit(&rel("top"), true).is_err());
        assert!(
            seen.admit(&rel("top/f/x"), false).is_err(),
            "parent is a file"
        );
        assert!(
            seen.admit(&rel("other/x"), false).is_err(),
            "unknown parent"
        );
        assert!(seen.admit(&rel("top/d"), true).is_ok());
        assert!(seen.admit(&rel("top/d/x"), false).is_ok());
        seen.reject_dir(&rel("top/d"));
        assert!(
            seen.admit(&rel("top/d/y"), false).is_err(),
            "rejected parent"
        );
        assert!(
            seen.admit(&rel("top/d"), true).is_err(),
            "still a duplicate"
        );

        let mut folding = Seen::new(true);
        assert!(folding.admit(&rel("Top"), true).is_ok());
        assert!(folding.admit(&rel("TOP"), true).is_err());
        assert!(folding.admit(&rel("top/Ärger"), false).is_ok());
        assert!(folding.admit(&rel("TOP/äRGER"), false).is_err());
    }
}
