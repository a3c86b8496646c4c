//! The sender's walk of a tree session's sources: entries in wire order, streamed in bounded memory.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use crate::output::name_bytes;
use crate::peer_text::escape;

#[cfg(unix)]
use std::os::unix::ffi::OsStrExt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File { size: u64 },
    Dir,
    Link { target: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The wire path: components joined by b'/', the first being the top name. Names are bytes (unix OsStrExt).
    pub path: Vec<u8>,
    /// Where to read it on this machine.
    pub source: PathBuf,
    pub kind: Kind,
    /// Permission bits & 0o777 (setuid, setgid and sticky dropped); on non-unix 0o644 files / 0o755 dirs
    /// (0o444 for a readonly file).
    pub mode: u32,
    /// Modification time, ns since the epoch (0 if before it or unknown).
    pub mtime_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Entry(Entry),
    /// Not sent, by design; a warning (device, fifo, socket, a link leaving the tree, a -L cycle).
    Skipped {
        path: String,
        why: String,
    },
    /// Could not be read (permission denied on a directory, vanished during the walk, dangling link with -L): it
    /// counts as not landed (exit code 5 "partial").
    Failed {
        path: String,
        why: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    /// The top name: the base name, or --name.
    pub top: Vec<u8>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub entries: u64,
    pub bytes: u64,
    pub files: u64,
    pub hard_links: u64,
}

mod dir;

#[cfg(unix)]
pub(crate) use dir::open_beneath;
pub(crate) use dir::{Dir, Stat, Type};

/// An entry listed by read_dir that is gone when looked at.
const VANISHED: &str = "vanished during the walk";

/// At most this many directories of the walk's stack are held open: a
/// deeper one's ancestors are closed, oldest first, and each is opened
/// again from its child (`..`) when the walk comes back to it, checked to
/// be the directory it left. A tree 2,000 levels deep is walked within a
/// limit of 1,024 descriptors; one this deep holds a handle per level.
const MAX_OPEN: usize = 64;

/// What identifies a directory for loop detection under -L.
#[cfg(unix)]
type DirId = (u64, u64);
#[cfg(not(unix))]
type DirId = PathBuf;

/// A directory being walked. Its names are read and sorted once, on entry, so
/// the walk holds one child list per level, and one handle per level (at
/// most [`MAX_OPEN`]) through which its entries are looked at.
struct Frame {
    /// `None` when closed to bound the handles held (or lost: see
    /// [`Walk::back_to`]).
    dir: Option<Rc<Dir>>,
    path: PathBuf,
    wire: Vec<u8>,
    /// Components in `wire`: the top entry is 1.
    depth: usize,
    id: Option<DirId>,
    names: std::vec::IntoIter<OsString>,
}

/// Where an entry is looked at: a source by the path the user gave, or a
/// name in a directory being walked, through its handle.
enum At<'a> {
    Top,
    In(&'a Dir, &'a OsStr),
}

impl At<'_> {
    fn stat(&self, path: &Path, follow: bool) -> io::Result<Stat> {
        match self {
            // sources are followed like `cp -H`
            At::Top => fs::metadata(path).map(|m| Stat::from(&m)),
            At::In(dir, name) => dir.stat(name, follow),
        }
    }

    fn lstat(&self, path: &Path) -> io::Result<Stat> {
        match self {
            At::Top => fs::symlink_metadata(path).map(|m| Stat::from(&m)),
            At::In(dir, name) => dir.stat(name, false),
        }
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        match self {
            At::Top => fs::read_link(path),
            At::In(dir, name) => dir.read_link(name).map(PathBuf::from),
        }
    }

    fn open(&self, path: &Path, follow: bool) -> io::Result<Dir> {
        match self {
            At::Top => Dir::open(path),
            At::In(dir, name) => dir.child(name, follow),
        }
    }
}

pub struct Walk {
    sources: std::vec::IntoIter<Source>,
    dereference: bool,
    stack: Vec<Frame>,
    /// The Failed that follows an unreadable directory's own entry.
    pending: Option<Event>,
    /// The link count of the last file produced, for the hard-link total
    /// (kept out of Entry, which is only what the wire needs).
    last_nlink: u64,
    /// The identity of the last file produced, as the walk saw it: what
    /// the file must still be once it is read.
    last_id: Option<crate::send::digests::FileId>,
}

impl Walk {
    pub fn new(sources: Vec<Source>, dereference: bool) -> Walk {
        Walk {
            sources: sources.into_iter(),
            dereference,
            stack: Vec::new(),
            pending: None,
            last_nlink: 0,
            last_id: None,
        }
    }

    /// The event for one entry; a readable directory is pushed to be walked next.
    fn visit(&mut self, at: At, path: PathBuf, wire: Vec<u8>, depth: usize) -> Event {
        let top = matches!(at, At::Top);
        let stat = match at.stat(&path, self.dereference) {
            Ok(stat) => stat,
            Err(e) => return unstatable(&at, &path, &wire, top, &e),
        };
        match stat.kind {
            Type::Link => link(&at, path, wire, depth, &stat),
            Type::Dir => self.enter(&at, path, wire, depth, &stat),
            Type::File => {
                self.last_nlink = stat.nlink;
                self.last_id = Some(stat.id);
                Event::Entry(entry(path, wire, Kind::File { size: stat.size }, &stat))
            }
            other => skipped(&wire, special(other)),
        }
    }

    /// A directory: opened, then listed through its handle. What it is,
    /// is what was opened.
    fn enter(&mut self, at: &At, path: PathBuf, wire: Vec<u8>, depth: usize, seen: &Stat) -> Event {
        let opened = at
            .open(&path, self.dereference)
            .and_then(|dir| Ok((dir.stat_self()?, dir)));
        let (stat, dir) = match opened {
            Ok(opened) => opened,
            // the directory is still made on the other side; only its contents fail
            Err(e) => {
                self.pending = Some(failed(&wire, unreadable(&e)));
                return Event::Entry(entry(path, wire, Kind::Dir, seen));
            }
        };
        let id = dir_id(&path, &stat, self.dereference);
        if id.is_some() && self.stack.iter().any(|f| f.id == id) {
            return skipped(&wire, "directory loop");
        }
        let event = Event::Entry(entry(path.clone(), wire.clone(), Kind::Dir, &stat));
        match sorted_names(&dir) {
            Ok(names) => self.push(Frame {
                dir: Some(Rc::new(dir)),
                path,
                wire,
                depth,
                id,
                names: names.into_iter(),
            }),
            Err(e) => self.pending = Some(failed(&wire, unreadable(&e))),
        }
        event
    }

    /// Walks into `frame`, closing the handle [`MAX_OPEN`] levels up.
    fn push(&mut self, frame: Frame) {
        self.stack.push(frame);
        if let Some(closed) = self.stack.len().checked_sub(MAX_OPEN + 1) {
            self.stack[closed].dir = None;
        }
    }

    /// Back from `child` to its parent, the top of the stack: opened again
    /// if it was closed. A parent that is no longer the directory the walk
    /// left (moved meanwhile) is not read further: its other entries fail.
    fn back_to(&mut self, child: Frame) {
        let Some(parent) = self.stack.last_mut() else {
            return;
        };
        if parent.dir.is_some() {
            return;
        }
        match reopened(&child, parent) {
            Some(dir) => parent.dir = Some(Rc::new(dir)),
            None => {
                parent.names = Vec::new().into_iter();
                let why = "moved during the walk: its other entries are not sent";
                self.pending = Some(failed(&parent.wire, why));
            }
        }
    }
}

/// The parent of `child` by `..`, if it is still `parent` (the same
/// device and inode).
#[cfg(unix)]
fn reopened(child: &Frame, parent: &Frame) -> Option<Dir> {
    let dir = child.dir.as_ref()?.parent().ok()?;
    let id = dir.stat_self().ok()?.id.dev_ino();
    (parent.id == Some(id)).then_some(dir)
}
/// Elsewhere a directory is its path.
#[cfg(not(unix))]
fn reopened(_child: &Frame, parent: &Frame) -> Option<Dir> {
    Dir::open(&parent.path).ok()
}

/// Why a directory could not be read: one put in its place since it was
/// looked at (a link: not followed) says so.
fn unreadable(e: &io::Error) -> String {
    #[cfg(unix)]
    if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) {
        return "no longer a directory: replaced during the walk".into();
    }
    format!("cannot read the directory: {e}")
}

impl Iterator for Walk {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.take() {
                return Some(event);
            }
            let Some(frame) = self.stack.last_mut() else {
                let source = self.sources.next()?;
                return Some(self.visit(At::Top, source.path, source.top, 1));
            };
            let (Some(name), Some(dir)) = (frame.names.next(), frame.dir.clone()) else {
                let done = self.stack.pop().expect("the frame just looked at");
                self.back_to(done);
                continue;
            };
            let mut wire = Vec::with_capacity(frame.wire.len() + 1 + name.len());
            wire.extend_from_slice(&frame.wire);
            wire.push(b'/');
            wire.extend_from_slice(&name_bytes(&name));
            let (path, depth) = (frame.path.join(&name), frame.depth + 1);
            return Some(self.visit(At::In(&dir, &name), path, wire, depth));
        }
    }
}

/// Walks the sources once, handing each event to `each` (with, for a file,
/// its identity as the walk saw it) as it comes; the totals of the entries.
/// An error from `each` ends the walk.
pub(crate) fn gather<E>(
    sources: &[Source],
    dereference: bool,
    mut each: impl FnMut(Event, Option<crate::send::digests::FileId>) -> Result<(), E>,
) -> Result<Totals, E> {
    let mut walk = Walk::new(sources.to_vec(), dereference);
    let mut totals = Totals::default();
    // not a `for`: the body reads what the walk noted of the last file
    while let Some(event) = walk.next() {
        let mut id = None;
        if let Event::Entry(entry) = &event {
            totals.entries += 1;
            if let Kind::File { size } = entry.kind {
                totals.files += 1;
                totals.bytes = totals.bytes.saturating_add(size);
                totals.hard_links += u64::from(walk.last_nlink > 1);
                id = walk.last_id;
            }
        }
        each(event, id)?;
    }
    Ok(totals)
}

/// A link found inside the tree (so not followed): kept if it stays inside the top entry.
fn link(at: &At, path: PathBuf, wire: Vec<u8>, depth: usize, stat: &Stat) -> Event {
    let target = match at.read_link(&path) {
        Ok(target) => target,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return failed(&wire, VANISHED),
        Err(e) => return failed(&wire, e.to_string()),
    };
    let bytes = path_bytes(&target);
    let rooted = |c| matches!(c, Component::Prefix(_) | Component::RootDir);
    if target.components().any(rooted) || !stays_inside(&bytes, depth) {
        let why = "leaves the tree (-L sends what it points to)";
        return skipped(
            &wire,
            format!("symbolic link to '{}' {why}", escape(&bytes)),
        );
    }
    Event::Entry(entry(path, wire, Kind::Link { target: bytes }, stat))
}

/// Why an entry could not be looked at.
fn unstatable(at: &At, path: &Path, wire: &[u8], top: bool, e: &io::Error) -> Event {
    let why = match at.lstat(path) {
        Ok(s) if s.kind == Type::Link && e.kind() == io::ErrorKind::NotFound => {
            let target = at
                .read_link(path)
                .map(|t| path_bytes(&t))
                .unwrap_or_default();
            format!("dangling symbolic link to '{}'", escape(&target))
        }
        // it was listed by read_dir a moment ago
        Err(_) if !top && e.kind() == io::ErrorKind::NotFound => VANISHED.into(),
        _ => e.to_string(),
    };
    failed(wire, why)
}

/// The receiver's rule for a link at wire depth `depth`: relative, `..` only as
/// a leading run, never climbing above the top entry (level 1).
fn stays_inside(target: &[u8], depth: usize) -> bool {
    // the level of the link's directory; the top entry is 1 (and is never a link)
    let mut level = depth.saturating_sub(1);
    if target.is_empty() || target[0] == b'/' || level == 0 {
        return false;
    }
    let mut leading = true;
    for c in target.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." if !leading || level <= 1 => return false,
            b".." => level -= 1,
            _ => {
                leading = false;
                level += 1;
            }
        }
    }
    true
}

pub(crate) fn entry(source: PathBuf, path: Vec<u8>, kind: Kind, stat: &Stat) -> Entry {
    Entry {
        path,
        source,
        kind,
        mode: stat.mode,
        mtime_ns: stat.mtime_ns,
    }
}

/// The names in a directory, sorted by their bytes so the walk is deterministic.
fn sorted_names(dir: &Dir) -> io::Result<Vec<OsString>> {
    let mut names = dir.names()?;
    names.sort_by(|a, b| name_bytes(a).cmp(&name_bytes(b)));
    Ok(names)
}

// A path in a message is escaped: names may hold newlines.
fn skipped(wire: &[u8], why: impl Into<String>) -> Event {
    let (path, why) = (escape(wire), why.into());
    Event::Skipped { path, why }
}

fn failed(wire: &[u8], why: impl Into<String>) -> Event {
    let (path, why) = (escape(wire), why.into());
    Event::Failed { path, why }
}

#[cfg(unix)]
fn path_bytes(path: &Path) -> Vec<u8> {
    path.as_os_str().as_bytes().to_vec()
}
/// A Windows link target with `/` separators, as the wire has them.
#[cfg(not(unix))]
fn path_bytes(path: &Path) -> Vec<u8> {
    path.to_string_lossy().replace('\\', "/").into_bytes()
}

/// On unix (dev, ino) also catches bind-mount loops, so it is always kept.
#[cfg(unix)]
fn dir_id(_path: &Path, stat: &Stat, _dereference: bool) -> Option<DirId> {
    Some(stat.id.dev_ino())
}
/// Elsewhere the canonical path costs a lookup, paid only when links are followed.
#[cfg(not(unix))]
fn dir_id(path: &Path, _stat: &Stat, dereference: bool) -> Option<DirId> {
    dereference.then(|| fs::canonicalize(path).ok()).flatten()
}

/// Why a special file is skipped (never opened: opening a FIFO blocks).
fn special(kind: Type) -> &'static str {
    match kind {
        Type::Fifo => "a FIFO is not sent",
        Type::Device => "a device is not sent",
        Type::Socket => "a socket is not sent",
        _ => "not a file, directory or link: not sent",
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
    use std::time::{Duration, UNIX_EPOCH};

    const LEAVES: &str = " leaves the tree (-L sends what it points to)";

    /// Makes each of `spec` under `root`: "d/" a directory, "l>target" a link, "f=text" a file.
    fn make(root: &Path, spec: &[&str]) {
        for s in spec {
            if let Some(dir) = s.strip_suffix('/') {
                fs::create_dir_all(root.join(dir)).unwrap();
            } else if let Some((link, target)) = s.split_once('>') {
                symlink(target, root.join(link)).unwrap();
            } else {
                let (file, text) = s.split_once('=').unwrap_or((s, ""));
                fs::write(root.join(file), text).unwrap();
            }
        }
    }

    fn src(path: &Path, top: &str) -> Source {
        let (path, top) = (path.to_path_buf(), top.as_bytes().to_vec());
        Source { path, top }
    }

    /// The events as "D path", "F path size", "L path>target", "S path: why", "X path: why", joined by ", ".
    fn walk(sources: Vec<Source>, deref: bool) -> String {
        let line = |e: Event| match e {
            Event::Entry(e) => match e.kind {
                Kind::Dir => format!("D {}", escape(&e.path)),
                Kind::File { size } => format!("F {} {size}", escape(&e.path)),
                Kind::Link { target } => format!("L {}>{}", escape(&e.path), escape(&target)),
            },
            Event::Skipped { path, why } => format!("S {path}: {}", why.replace(LEAVES, " out")),
            Event::Failed { path, why } => format!("X {path}: {why}"),
        };
        // bounded, so that a broken loop check fails instead of hanging
        let lines: Vec<String> = Walk::new(sources, deref).take(1000).map(line).collect();
        lines.join(", ")
    }

    fn entries(root: &Path) -> Vec<Entry> {
        let walk = Walk::new(vec![src(root, "top")], false);
        walk.filter_map(|e| {
            if let Event::Entry(e) = e {
                Some(e)
            } else {
                None
            }
        })
        .collect()
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn walk_is_sorted_preorder_with_sources_in_order() {
        let t = tempfile::tempdir().unwrap();
        make(
            t.path(),
            &["r/a/empty/", "r/a/f=hello", "r/a/e", "r/b=abc", "one=12"],
        );
        make(t.path(), &["r/B", "r/_", "r/9", "r/10"]);
        let (r, one) = (t.path().join("r"), t.path().join("one"));
        let want = "D top, F top/10 0, F top/9 0, F top/B 0, F top/_ 0, D top/a, F top/a/e 0, \
                    D top/a/empty, F top/a/f 5, F top/b 3, F one 2";
        assert_eq!(walk(vec![src(&r, "top"), src(&one, "one")], false), want);
        assert_eq!(entries(&r)[8].source, r.join("a/f"));
    }

    #[test]
    fn walk_modes_and_mtimes() {
        let t = tempfile::tempdir().unwrap();
        make(t.path(), &["d/", "p", "s"]);
        let when = UNIX_EPOCH + Duration::new(1_600_000_000, 123_456_789);
        let p = fs::File::options().write(true).open(t.path().join("p"));
        p.unwrap().set_modified(when).unwrap();
        chmod(&t.path().join("d"), 0o700);
        chmod(&t.path().join("p"), 0o640);
        chmod(&t.path().join("s"), 0o4755);
        let got: Vec<_> = entries(t.path())
            .iter()
            .map(|e| (e.mode, e.mtime_ns))
            .collect();
        assert_eq!(got[1].0, 0o700);
        assert_eq!(got[2], (0o640, 1_600_000_000_123_456_789));
        assert_eq!(got[3].0, 0o755);
    }

    #[test]
    fn walk_odd_names_survive_as_bytes() {
        let t = tempfile::tempdir().unwrap();
        let names: [&[u8]; 3] = [b"-dash", b"bad\xff", b"new\nline"];
        for name in names {
            fs::write(t.path().join(OsStr::from_bytes(name)), name).unwrap();
        }
        let got = entries(t.path());
        assert_eq!(got.len(), 4);
        for (e, name) in got[1..].iter().zip(names) {
            assert_eq!(e.path, [b"top/".as_slice(), name].concat());
            assert_eq!(fs::read(&e.source).unwrap(), name);
        }
    }

    const LINKS: &[&str] = &[
        "a/d/",
        "a/f=1234",
        "b=b",
        "a/sib>../b",
        "a/up>../a/f",
        "in>a/f",
    ];
    const LEAVING: &[&str] = &[
        "abs>/etc/passwd",
        "esc>../../x",
        "esc1>../x",
        "mid>a/../../x",
    ];

    #[test]
    fn walk_links_inside_kept_leaving_skipped() {
        let t = tempfile::tempdir().unwrap();
        make(t.path(), LINKS);
        make(t.path(), LEAVING);
        make(t.path(), &["inner>a/../b"]);
        let want = "D top, D top/a, D top/a/d, F top/a/f 4, L top/a/sib>../b, L top/a/up>../a/f, \
                    S top/abs: symbolic link to '/etc/passwd' out, F top/b 1, \
                    S top/esc: symbolic link to '../../x' out, S top/esc1: symbolic link to '../x' out, \
                    L top/in>a/f, S top/inner: symbolic link to 'a/../b' out, \
                    S top/mid: symbolic link to 'a/../../x' out";
        assert_eq!(walk(vec![src(t.path(), "top")], false), want);
        let skipped = Walk::new(vec![src(t.path(), "top")], false).nth(6).unwrap();
        let why = format!("symbolic link to '/etc/passwd'{LEAVES}");
        assert_eq!(
            skipped,
            Event::Skipped {
                path: "top/abs".into(),
                why
            }
        );
    }

    #[test]
    fn walk_dereference_follows_and_detects_loops() {
        let t = tempfile::tempdir().unwrap();
        make(
            t.path(),
            &["d/", "d/f=abc", "lf>d/f", "ld>d", "d/back>..", "nx>nowhere"],
        );
        let want = "D top, D top/d, S top/d/back: directory loop, F top/d/f 3, D top/ld, \
                    S top/ld/back: directory loop, F top/ld/f 3, F top/lf 3, \
                    X top/nx: dangling symbolic link to 'nowhere'";
        assert_eq!(walk(vec![src(t.path(), "top")], true), want);
        let want = "D top, D top/d, L top/d/back>.., F top/d/f 3, L top/ld>d, L top/lf>d/f, \
                    L top/nx>nowhere";
        assert_eq!(walk(vec![src(t.path(), "top")], false), want);
    }

    #[test]
    fn walk_sources_follow_links_and_fail_when_missing() {
        let t = tempfile::tempdir().unwrap();
        make(t.path(), &["d/", "d/f", "ld>d"]);
        let got = walk(
            vec![
                src(&t.path().join("ld"), "ld"),
                src(&t.path().join("no"), "no"),
            ],
            false,
        );
        assert_eq!(
            got,
            "D ld, F ld/f 0, X no: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn walk_skips_fifo_without_blocking() {
        let t = tempfile::tempdir().unwrap();
        let mkfifo = std::process::Command::new("mkfifo")
            .arg(t.path().join("p"))
            .status();
        assert!(mkfifo.unwrap().success());
        let (root, (tx, rx)) = (t.path().to_path_buf(), std::sync::mpsc::channel());
        std::thread::spawn(move || tx.send(walk(vec![src(&root, "top")], false)));
        let got = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("blocked on a FIFO");
        assert_eq!(got, "D top, S top/p: a FIFO is not sent");
    }

    #[test]
    fn walk_unreadable_dir_is_made_then_failed() {
        let t = tempfile::tempdir().unwrap();
        make(t.path(), &["locked/", "locked/child", "z"]);
        let locked = t.path().join("locked");
        chmod(&locked, 0o000);
        let readable = fs::read_dir(&locked).is_ok(); // as root
        let got = walk(vec![src(t.path(), "top")], false);
        chmod(&locked, 0o755);
        let want = "D top, D top/locked, X top/locked: cannot read the directory: \
                    Permission denied (os error 13), F top/z 0";
        assert!(readable || got == want, "{got}");
    }

    #[test]
    fn gather_counts_the_walk() {
        let t = tempfile::tempdir().unwrap();
        make(t.path(), LINKS);
        make(t.path(), LEAVING);
        fs::hard_link(t.path().join("b"), t.path().join("a/hb")).unwrap();
        let sources = [src(t.path(), "top")];
        for deref in [false, true] {
            let mut want = Totals::default();
            for e in Walk::new(sources.to_vec(), deref) {
                let Event::Entry(e) = e else { continue };
                want.entries += 1;
                if let Kind::File { size } = e.kind {
                    want.files += 1;
                    want.bytes += size;
                    let nlink = fs::metadata(&e.source).unwrap().nlink();
                    want.hard_links += u64::from(nlink > 1);
                }
            }
            let counted = gather(&sources, deref, |_, _| Ok::<(), ()>(()));
            assert_eq!(counted, Ok(want));
        }
        let (entries, bytes, files, hard_links) = (9, 6, 3, 2);
        let want = Totals {
            entries,
            bytes,
            files,
            hard_links,
        };
        assert_eq!(gather(&sources, false, |_, _| Ok::<(), ()>(())), Ok(want));
    }

    /// A directory already entered is swapped for a link to an outside
    /// directory holding the same names: the walk goes on through the
    /// handle it opened (the real directory, wherever it went), and no
    /// outside name comes out.
    #[test]
    fn walk_a_directory_swapped_for_a_link_is_not_followed_out() {
        let t = tempfile::tempdir().unwrap();
        make(
            t.path(),
            &["top/a/b/", "top/a/b/f=in", "out/b/", "out/b/secret=x"],
        );
        let (top, out) = (t.path().join("top"), t.path().join("out"));
        let mut walk = Walk::new(vec![src(&top, "top")], false);
        let first: Vec<Event> = walk.by_ref().take(2).collect();
        assert!(matches!(&first[1], Event::Entry(e) if e.path == b"top/a"));
        // `a` is listed (its names read); `a/b` is not yet looked at
        fs::rename(top.join("a"), t.path().join("aside")).unwrap();
        symlink(&out, top.join("a")).unwrap();
        let rest: Vec<String> = walk
            .map(|e| match e {
                Event::Entry(e) => escape(&e.path),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(rest, ["top/a/b", "top/a/b/f"]);
    }

    /// A tree deeper than the handles held is walked whole (a name beside
    /// each level is looked at through its directory opened again), never
    /// holding more than [`MAX_OPEN`] directories open.
    #[test]
    fn walk_deeper_than_its_handles_reopens_each_level() {
        let t = tempfile::tempdir().unwrap();
        let levels = MAX_OPEN * 2 + 5;
        let mut dir = t.path().to_path_buf();
        for _ in 0..levels {
            fs::write(dir.join("z"), b"").unwrap();
            dir.push("d");
            fs::create_dir(&dir).unwrap();
        }
        let mut walk = Walk::new(vec![src(t.path(), "top")], false);
        let (mut files, mut dirs, mut most) = (0, 0, 0);
        while let Some(event) = walk.next() {
            let open = walk.stack.iter().filter(|f| f.dir.is_some()).count();
            most = most.max(open);
            match event {
                Event::Entry(e) if e.kind == Kind::Dir => dirs += 1,
                Event::Entry(_) => files += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((dirs, files), (levels + 1, levels));
        assert_eq!(most, MAX_OPEN);
    }

    /// A directory closed to bound the handles and moved before the walk
    /// comes back to it is not read further: its other entries fail.
    #[test]
    fn walk_back_to_a_moved_directory_fails_its_rest() {
        let t = tempfile::tempdir().unwrap();
        let mut dir = t.path().join("top");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("z"), b"").unwrap();
        for _ in 0..=MAX_OPEN {
            dir.push("d");
            fs::create_dir(&dir).unwrap();
        }
        let mut walk = Walk::new(vec![src(&t.path().join("top"), "top")], false);
        let deepest = MAX_OPEN + 2;
        assert_eq!(walk.by_ref().take(deepest).count(), deepest);
        // the top's first directory goes elsewhere: `..` of it is not the top
        let moved = t.path().join("moved");
        fs::rename(t.path().join("top/d"), &moved).unwrap();
        let rest: Vec<Event> = walk.collect();
        let why = "moved during the walk: its other entries are not sent";
        let failed = |path: &str| Event::Failed {
            path: path.into(),
            why: why.into(),
        };
        assert_eq!(rest, [failed("top")]);
    }
}
