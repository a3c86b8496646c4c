//! Exit codes of the contract, and the mapping from an error to its code.

use std::fmt;

/// The process exit status, as the contract (README, "Exit codes") defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    /// Network, I/O, a vanished peer, a timeout.
    Failure = 1,
    /// A bad flag, size or address.
    Usage = 2,
    /// SHA-256 (or keyed digest) mismatch.
    Integrity = 3,
    /// The peer said no: file exists, too large, no space, wrong key, version.
    Refused = 4,
    /// Some entries of a tree did not land; the rest did.
    Partial = 5,
    /// Ctrl-C / SIGINT.
    Interrupted = crate::interrupt::EXIT_STATUS as isize,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// zc's one error type: the exit code it stands for, and its line.
/// Anything that is not one is a runtime failure (exit 1); `main` maps it
/// to the exit status once.
#[derive(Debug)]
pub struct Failure {
    pub code: ExitCode,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl Failure {
    pub fn new(code: ExitCode, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

fn failure(code: ExitCode, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure::new(code, message))
}

pub fn usage(message: impl Into<String>) -> anyhow::Error {
    failure(ExitCode::Usage, message)
}

pub fn integrity(message: impl Into<String>) -> anyhow::Error {
    failure(ExitCode::Integrity, message)
}

pub fn refused(message: impl Into<String>) -> anyhow::Error {
    failure(ExitCode::Refused, message)
}

pub fn partial(message: impl Into<String>) -> anyhow::Error {
    failure(ExitCode::Partial, message)
}

pub fn interrupted(message: impl Into<String>) -> anyhow::Error {
    failure(ExitCode::Interrupted, message)
}

/// What the caller may do about an error besides reporting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// A new connection may get past it (a reset, a timeout, a restarting peer).
    Retryable,
    /// A receiver kept what arrived and may wait for the sender to come back.
    Resumable,
    /// The peer never spoke zc (a port scan, a stray nc).
    NotASender,
}

/// An error with a [`Tag`], or with a note for the end of its line, kept
/// whole: its chain, its code and its line are the wrapped error's. It
/// shows as the wrapped error's first link, and its sources are the
/// wrapped error's, so `{:#}` prints the same line.
#[derive(Debug)]
pub struct Tagged {
    pub tag: Option<Tag>,
    note: Option<String>,
    pub error: anyhow::Error,
}

impl fmt::Display for Tagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // the first link only: the rest are this error's sources
        write!(f, "{}", self.error)
    }
}

impl std::error::Error for Tagged {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// `err` with `tag`, which the caller reads back with [`tag_of`] however
/// much context is added later.
pub fn tag(err: anyhow::Error, tag: Tag) -> anyhow::Error {
    anyhow::Error::new(Tagged {
        tag: Some(tag),
        note: None,
        error: err,
    })
}

/// `err` whose line ends with "; `note`" (a resume command, what was kept),
/// after the cause rather than before it as context would put it.
pub fn noted(err: anyhow::Error, note: impl Into<String>) -> anyhow::Error {
    let tag = tag_of(&err);
    anyhow::Error::new(Tagged {
        tag,
        note: Some(note.into()),
        error: err,
    })
}

/// The tag of the outermost [`Tagged`] under `err`'s context.
pub fn tag_of(err: &anyhow::Error) -> Option<Tag> {
    // anyhow's downcast looks through context layers, to the error itself
    err.downcast_ref::<Tagged>().and_then(|t| t.tag)
}

/// Every link of `err`'s chain, with a [`Tagged`] link replaced by the
/// whole chain it wraps (whose first link its `Display` stands in for).
fn causes(err: &anyhow::Error) -> Vec<&(dyn std::error::Error + 'static)> {
    let mut all = Vec::new();
    for cause in err.chain() {
        if let Some(tagged) = cause.downcast_ref::<Tagged>() {
            // the rest of the chain is the wrapped error's
            all.extend(causes(&tagged.error));
            break;
        }
        all.push(cause);
    }
    all
}

/// The notes of every [`Tagged`] under `err`, the outermost first.
fn notes(err: &anyhow::Error) -> Vec<&str> {
    let mut all = Vec::new();
    if let Some(tagged) = err.chain().find_map(|c| c.downcast_ref::<Tagged>()) {
        all.extend(tagged.note.as_deref());
        all.extend(notes(&tagged.error));
    }
    all
}

/// Whether any link of `err` is an I/O error of `kind`.
pub fn has_io(err: &anyhow::Error, kind: std::io::ErrorKind) -> bool {
    causes(err).iter().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == kind)
    })
}

/// The exit code an error stands for: the first [`Failure`] in its chain;
/// else 130 once Ctrl-C was pressed (every loop it stops returns an error
/// of its own, [`crate::interrupt::Stopped`]); else 1.
pub fn code_of(err: &anyhow::Error) -> ExitCode {
    let failure = causes(err).into_iter().find_map(|cause| {
        cause
            .downcast_ref::<Failure>()
            .or_else(|| carried_in(cause))
    });
    match failure {
        Some(failure) => failure.code,
        None if crate::interrupt::requested() => ExitCode::Interrupted,
        None => ExitCode::Failure,
    }
}

/// One line for the user: the context chain joined with ": ", without the
/// "(os error N)" noise, and with a hint where the cause is a common one.
pub fn message_of(err: &anyhow::Error) -> String {
    let mut line = format!("{err:#}");
    if let Some(start) = line.find(" (os error ") {
        if let Some(len) = line[start..].find(')') {
            line.replace_range(start..start + len + 1, "");
        }
    }
    if has_io(err, std::io::ErrorKind::ConnectionRefused) {
        line.push_str(" — is 'zc recv' running there?");
    }
    for note in notes(err).iter().rev() {
        line.push_str("; ");
        line.push_str(note);
    }
    line
}

/// A failure that must travel as an `io::Error` (through a connection's
/// `Read`: an encrypted record that does not open, exit 3), and still
/// stand for its exit code.
pub fn in_io(kind: std::io::ErrorKind, failure: Failure) -> std::io::Error {
    std::io::Error::new(kind, Carried(failure))
}

/// What [`in_io`]'s error carries.
#[derive(Debug)]
struct Carried(Failure);

impl fmt::Display for Carried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Carried {}

/// The failure a link of an error chain carries if it is [`in_io`]'s error.
fn carried_in<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a Failure> {
    let io = cause.downcast_ref::<std::io::Error>()?;
    io.get_ref()?.downcast_ref::<Carried>().map(|c| &c.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn code_survives_context() {
        let err = Err::<(), _>(refused("exists"))
            .context("sending a.iso")
            .unwrap_err();
        assert_eq!(code_of(&err), ExitCode::Refused);
        assert_eq!(code_of(&anyhow::anyhow!("plain")), ExitCode::Failure);
    }

    #[test]
    fn tags_survive_context() {
        let err = tag(anyhow::anyhow!("cut").context("peer"), Tag::Resumable).context("more");
        assert_eq!(tag_of(&err), Some(Tag::Resumable));
        assert_eq!(message_of(&err), "more: peer: cut");
        let err = tag(interrupted("stop"), Tag::Retryable);
        assert_eq!(code_of(&err.context("x")), ExitCode::Interrupted);
        assert_eq!(tag_of(&anyhow::anyhow!("plain")), None);
    }

    #[test]
    fn a_tag_keeps_the_chain_and_its_code() {
        let io = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        let err = tag(anyhow::Error::new(io), Tag::Retryable).context("127.0.0.1:9");
        assert_eq!(tag_of(&err), Some(Tag::Retryable));
        assert!(has_io(&err, std::io::ErrorKind::ConnectionRefused));
        let line = message_of(&err);
        assert!(
            line.starts_with("127.0.0.1:9: Connection refused — is"),
            "{line}"
        );
        let err = tag(refused("no").context("peer"), Tag::NotASender);
        assert_eq!(code_of(&err.context("more")), ExitCode::Refused);
    }

    #[test]
    fn notes_end_the_line_in_order() {
        let err = noted(refused("no").context("peer"), "kept 3 files");
        let err = tag(err, Tag::Resumable).context("outer");
        let err = noted(err, "resume with: zc send");
        assert_eq!(
            message_of(&err),
            "outer: peer: no; kept 3 files; resume with: zc send"
        );
        assert_eq!(code_of(&err), ExitCode::Refused);
        assert_eq!(tag_of(&err), Some(Tag::Resumable));
    }

    #[test]
    fn message_drops_os_error_and_hints() {
        let io = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        let err = anyhow::Error::new(io).context("127.0.0.1:9");
        let line = message_of(&err);
        assert!(
            line.starts_with("127.0.0.1:9: Connection refused — is"),
            "{line}"
        );
    }
}
