//! Why an entry is refused, in the words this side's user reads and the
//! fewer a sender without the key hears.

use std::fmt;

use crate::protocol::RefuseCode;

/// Why an entry is refused: its code, what this side's user reads, and,
/// when that tells of what is in OUT, the less a sender without the key
/// hears instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: RefuseCode,
    pub why: String,
    pub told: Option<String>,
}

/// What a sender without the key hears instead of what exists in OUT (its
/// size, its kind, a link's target): that something is there is all it
/// needs to act on. See "What a receiver without a key tells" in SECURITY.md.
pub const EXISTS_TOLD: &str = "exists (the receiver replaces a file only with --force)";
/// ... instead of why a path in OUT cannot be looked at or written.
pub const UNWRITABLE_TOLD: &str = "cannot be written on the receiver";
/// ... instead of where the receiver writes (its path names a user).
pub const BUSY_TOLD: &str = "is being received by another transfer";

impl Refusal {
    /// Something stands in OUT where the entry goes.
    pub fn exists(why: impl Into<String>) -> Refusal {
        Refusal::of_out(RefuseCode::Exists, why, EXISTS_TOLD)
    }

    /// A path in OUT that cannot be looked at or written.
    pub fn unwritable(code: RefuseCode, why: impl Into<String>) -> Refusal {
        Refusal::of_out(code, why, UNWRITABLE_TOLD)
    }

    /// A directory that cannot be made (`exists`: something stands there).
    pub fn no_dir(e: impl fmt::Display, exists: bool) -> Refusal {
        let told = if exists { EXISTS_TOLD } else { UNWRITABLE_TOLD };
        let why = format!("cannot make the directory: {e}");
        Refusal::of_out(RefuseCode::Exists, why, told)
    }

    /// A file alone's part (`at`, as the user knows the path) that another
    /// transfer holds.
    pub fn busy_part(at: &str) -> Refusal {
        let why = format!("{at} is being received by another transfer");
        Refusal::of_out(RefuseCode::Busy, why, BUSY_TOLD)
    }

    /// A file alone's part that cannot be opened: the error `e`, which a
    /// sender without the key hears too when it is this receiver's state
    /// (`ours`: read-only, full, no permission), not what is at the name
    /// (a link, a directory).
    pub fn unopened_part(at: &str, e: impl fmt::Display, ours: bool) -> Refusal {
        let told = match ours {
            true => format!("{UNWRITABLE_TOLD}: {e}"),
            false => UNWRITABLE_TOLD.to_string(),
        };
        Refusal::of_out(RefuseCode::Other, format!("{at}.zcpart: {e}"), told)
    }

    /// A refusal that tells of what is in OUT.
    pub fn of_out(code: RefuseCode, why: impl Into<String>, told: impl Into<String>) -> Refusal {
        Refusal {
            code,
            why: why.into(),
            told: Some(told.into()),
        }
    }

    /// The reason the sender hears: all of it with the key (an
    /// authenticated peer may know what it writes over), less without.
    pub fn to_peer(&self, keyed: bool) -> &str {
        match (keyed, &self.told) {
            (false, Some(told)) => told,
            _ => &self.why,
        }
    }
}

impl From<(RefuseCode, String)> for Refusal {
    fn from((code, why): (RefuseCode, String)) -> Refusal {
        Refusal {
            code,
            why,
            told: None,
        }
    }
}
