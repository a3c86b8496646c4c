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
    Interrupted = 130,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// zc's one error type: the exit code it stands for, what the caller may
/// do about it besides reporting it, and its line. Anything that is not one
/// is a runtime failure (exit 1); `main` maps it to the exit status once.
#[derive(Debug)]
pub struct Failure {
    pub code: ExitCode,
    pub message: String,
    pub tag: Option<Tag>,
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
            tag: None,
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

/// The error flattened to its line and code, with a [`Tag`]; found at any
/// depth of later context, unlike a context value.
pub fn tag(err: anyhow::Error, tag: Tag) -> anyhow::Error {
    anyhow::Error::new(Failure {
        code: code_of(&err),
        message: message_of(&err),
        tag: Some(tag),
    })
}

pub fn tag_of(err: &anyhow::Error) -> Option<Tag> {
    err.chain()
        .find_map(|c| c.downcast_ref::<Failure>().and_then(|f| f.tag))
}

/// The exit code an error stands for: the first [`Failure`] in its chain, else 1.
pub fn code_of(err: &anyhow::Error) -> ExitCode {
    err.chain()
        .find_map(|cause| {
            cause.downcast_ref::<Failure>().or_else(|| {
                // io errors made by zc's own loops carry their code inside
                cause
                    .downcast_ref::<std::io::Error>()
                    .and_then(|io| io.get_ref())
                    .and_then(|inner| inner.downcast_ref::<Failure>())
            })
        })
        .map_or(ExitCode::Failure, |f| f.code)
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
    let refused_connect = err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
    });
    if refused_connect {
        line.push_str(" — is 'zc recv' running there?");
    }
    line
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
