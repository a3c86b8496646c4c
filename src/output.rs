//! Where a receiver puts a file: safe names, `NAME.zcpart`, and the final
//! fsync + rename that makes a complete, verified file appear at once.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

#[cfg(unix)]
use std::os::unix::ffi::OsStrExt;

use anyhow::{Context, Result};

use crate::peer_text::escape;
use crate::protocol::MAX_NAME;
use crate::sys;

/// Suffix of the file a transfer writes into until it is complete.
pub const PART_SUFFIX: &str = ".zcpart";
/// The name used for a stream that announced none (stdin without --name).
pub const STREAM_NAME: &str = "stdin";

/// Checks the name of a file sent alone, as it came: UTF-8, and
/// [`check_name`]. Stricter than a path of a tree (no tab, newline or `\`,
/// and UTF-8 only): the rule SECURITY.md gives a file alone.
pub fn check_wire_name(wire: &[u8]) -> Result<(), String> {
    let name = std::str::from_utf8(wire)
        .map_err(|_| format!("'{}': the file name is not UTF-8", escape(wire)))?;
    check_name(name)
}

/// Checks a name a peer sent: a single, plain path component, or a reason
/// why not. Nothing is rewritten: a name that needs rewriting is refused.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty file name".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!("file name over {MAX_NAME} bytes"));
    }
    if name == "." || name == ".." {
        return Err(format!("file name '{name}'"));
    }
    let shown = escape(name.as_bytes());
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(format!(
            "control character U+{:04X} in the file name '{shown}'",
            c as u32
        ));
    }
    if name.contains(['/', '\\']) {
        return Err(format!("'{shown}' is a path, not a file name"));
    }
    if name.ends_with(PART_SUFFIX) || name.contains(".zcpart.held") {
        return Err(format!(
            "'{shown}' would collide with zc's {PART_SUFFIX} files"
        ));
    }
    if cfg!(windows) {
        windows_safe(name)?;
    }
    Ok(())
}

/// Names Windows would misread: reserved device names (with or without an
/// extension), trailing dots or spaces, and characters it forbids.
fn windows_safe(name: &str) -> Result<(), String> {
    const RESERVED: [&str; 22] = [
        "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
        "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    ];
    let stem = name
        .split('.')
        .next()
        .unwrap_or(name)
        .trim_end()
        .to_ascii_uppercase();
    if RESERVED.contains(&stem.as_str()) {
        return Err(format!("'{name}' is a reserved device name on Windows"));
    }
    if name.ends_with(['.', ' ']) {
        return Err(format!(
            "'{name}' ends with a dot or a space, which Windows drops"
        ));
    }
    if let Some(c) = name.chars().find(|c| "<>:\"|?*".contains(*c)) {
        return Err(format!(
            "'{name}' has {c:?}, which Windows does not allow in names"
        ));
    }
    Ok(())
}

/// The base name of a path as the sender announces it: the last component,
/// whether it was written with `/` or `\`.
pub fn base_name(path: &str) -> Option<String> {
    let name = path.rsplit(['/', '\\']).find(|part| !part.is_empty())?;
    (name != "." && name != "..").then(|| name.to_string())
}

/// The top name for a source path: its last component (for "dir/", "dir/.", "/abs/dir"), None for "/" or "..",
/// or something without a usable name; as bytes.
pub fn top_name(path: &Path) -> Option<Vec<u8>> {
    // components() already drops trailing slashes and inner "." ("dir/." is "dir")
    match path.components().next_back()? {
        Component::Normal(name) => Some(name_bytes(name).into_owned()),
        _ => None,
    }
}

#[cfg(unix)]
pub fn name_bytes(name: &OsStr) -> Cow<'_, [u8]> {
    Cow::Borrowed(name.as_bytes())
}
#[cfg(not(unix))]
pub fn name_bytes(name: &OsStr) -> Cow<'_, [u8]> {
    Cow::Owned(name.to_string_lossy().into_owned().into_bytes())
}

pub fn part_path(target: &Path) -> PathBuf {
    let mut os = target.as_os_str().to_os_string();
    os.push(PART_SUFFIX);
    PathBuf::from(os)
}

/// Names being written by this process right now, so that two concurrent
/// transfers (`-k`) never share a `.zcpart`; the file lock covers other processes.
static BUSY: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// An open `.zcpart`, reserved for one transfer until dropped.
pub struct Part {
    pub file: File,
    pub path: PathBuf,
    pub target: PathBuf,
}

impl Drop for Part {
    fn drop(&mut self) {
        if let Ok(mut busy) = BUSY.lock() {
            busy.get_or_insert_with(HashSet::new).remove(&self.target);
        }
    }
}

/// Why a part could not be opened: someone else is writing it, or a real error.
pub enum OpenError {
    Busy,
    Io(anyhow::Error),
}

fn open_nofollow(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW).mode(0o644);
    }
    #[cfg(not(unix))]
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a symbolic link",
        ));
    }
    opts.open(path)
}

impl Part {
    /// Opens (creating it if need be) `target.zcpart` for one transfer,
    /// never through a symlink.
    pub fn open(target: &Path) -> Result<Part, OpenError> {
        {
            let mut busy = BUSY.lock().unwrap_or_else(|e| e.into_inner());
            if !busy
                .get_or_insert_with(HashSet::new)
                .insert(target.to_path_buf())
            {
                return Err(OpenError::Busy);
            }
        }
        let path = part_path(target);
        let reserve = Part {
            file: match open_nofollow(&path) {
                Ok(f) => f,
                Err(e) => {
                    let err = anyhow::Error::new(e).context(format!("{}", path.display()));
                    // no Part exists yet to release it on drop
                    release(target);
                    return Err(OpenError::Io(err));
                }
            },
            path,
            target: target.to_path_buf(),
        };
        match sys::try_lock(&reserve.file) {
            Ok(true) => Ok(reserve),
            Ok(false) => Err(OpenError::Busy),
            Err(e) => Err(OpenError::Io(
                anyhow::Error::new(e).context(format!("{}: cannot lock", reserve.path.display())),
            )),
        }
    }

    /// Makes what was written durable.
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_all()
            .with_context(|| format!("{}: fsync", self.path.display()))
    }

    /// Moves the complete, synced part to its final name and makes the
    /// rename itself durable.
    pub fn publish(&self) -> Result<()> {
        fs::rename(&self.path, &self.target).with_context(|| {
            format!(
                "renaming {} to {}",
                self.path.display(),
                self.target.display()
            )
        })?;
        sync_dir(&self.target);
        Ok(())
    }
}

fn release(target: &Path) {
    if let Ok(mut busy) = BUSY.lock() {
        busy.get_or_insert_with(HashSet::new).remove(target);
    }
}

/// fsyncs the directory holding `path`, so a rename survives a crash.
/// Best effort: not every platform can open a directory.
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The directory a target lives in (for free-space checks).
pub fn dir_of(target: &Path) -> PathBuf {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A destination written in order: stdout, a device, a FIFO.
pub enum Stream {
    File(File),
    Other(Box<dyn io::Write + Send>),
}

impl Stream {
    /// An existing device or FIFO, opened for writing in order; never
    /// created, truncated or renamed over.
    pub fn open(path: &Path) -> io::Result<Stream> {
        Ok(Stream::File(OpenOptions::new().write(true).open(path)?))
    }

    /// stdout as a plain file: no line buffering on binary data.
    pub fn stdout() -> Stream {
        #[cfg(unix)]
        {
            use std::os::fd::AsFd;
            if let Ok(fd) = io::stdout().as_fd().try_clone_to_owned() {
                return Stream::File(File::from(fd));
            }
        }
        Stream::Other(Box::new(io::stdout()))
    }

    pub fn sink(&mut self) -> crate::copy::Sink<'_> {
        match self {
            Stream::File(f) => crate::copy::Sink::File(f),
            Stream::Other(w) => crate::copy::Sink::Writer(w.as_mut()),
        }
    }

    /// A character device (such as /dev/null): splice(2) beats a copy through
    /// user space there (measured 2x). Pipes and terminals take the copy:
    /// splice refuses terminals, and a pipe reader gains nothing from it.
    pub fn is_char_device(&self) -> bool {
        #[cfg(unix)]
        if let Stream::File(f) = self {
            use std::os::unix::fs::FileTypeExt;
            return f.metadata().is_ok_and(|m| m.file_type().is_char_device());
        }
        false
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::File(f) => io::Write::write_all(f, bytes),
            Stream::Other(w) => w.write_all(bytes),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::File(f) => io::Write::flush(f),
            Stream::Other(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("big.iso").is_ok());
        assert!(check_name("dat a-1.tar.gz").is_ok());
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "..\\x",
            "/etc/passwd",
            "a\0b",
            "a\nb",
            "x.zcpart",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"a".repeat(256)).is_err());
        assert!(check_name(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn a_file_alone_has_the_rule_security_md_gives_it() {
        assert!(check_wire_name("ünï €.txt".as_bytes()).is_ok());
        for bad in [
            &b"a\xc2\x9b2J"[..],
            "next\u{85}line".as_bytes(),
            b"a\\b",
            b"..\\x",
            b"a\nb",
            b"tab\there",
            b"caf\xe9.bin",
            b"\xff",
        ] {
            let why = check_wire_name(bad).unwrap_err();
            // the reason goes to both terminals: nothing raw in it
            assert!(
                !why.chars().any(crate::peer_text::moves_a_terminal),
                "{why:?}"
            );
        }
    }

    #[test]
    fn windows_names() {
        for bad in [
            "CON",
            "con.txt",
            "LPT1",
            "Aux.tar.gz",
            "a.",
            "a ",
            "a:b",
            "a?",
        ] {
            assert!(windows_safe(bad).is_err(), "{bad:?}");
        }
        for good in ["CONSOLE", "a.b", "com10", "null"] {
            assert!(windows_safe(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn base_names() {
        assert_eq!(base_name("/tmp/a.iso").as_deref(), Some("a.iso"));
        assert_eq!(base_name("C:\\x\\b.bin").as_deref(), Some("b.bin"));
        assert_eq!(base_name("dir/").as_deref(), Some("dir"));
        assert_eq!(base_name(".."), None);
        assert_eq!(base_name("/"), None);
    }

    #[cfg(unix)]
    #[test]
    fn top_names() {
        let name = |p: &str| top_name(Path::new(p)).map(|n| String::from_utf8(n).unwrap());
        let named = [
            ("dir/", "dir"),
            ("dir/.", "dir"),
            ("/abs/dir", "dir"),
            ("a.iso", "a.iso"),
        ];
        for (path, want) in named {
            assert_eq!(name(path).as_deref(), Some(want));
        }
        for none in ["/", "..", ".", "dir/..", ""] {
            assert_eq!(name(none), None, "{none}");
        }
        let odd = Path::new(OsStr::from_bytes(b"x/\xff"));
        assert_eq!(top_name(odd), Some(b"\xff".to_vec()));
    }
}
