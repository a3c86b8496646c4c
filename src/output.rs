//! Where a receiver puts a file: safe names, the `.zcpart` suffix, and the
//! destinations written in order (stdout, a device, a FIFO).

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Component, Path, PathBuf};

#[cfg(unix)]
use std::os::unix::ffi::OsStrExt;

use crate::held::RECORD_SUFFIX;
use crate::peer_text::escape;
use crate::protocol::MAX_NAME;

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
    if name.ends_with(PART_SUFFIX) || name.contains(RECORD_SUFFIX) {
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
