//! How a tree session ends, decided the same way on both sides: every
//! entry's fate is recorded, and the verdict (and so the exit code) follows
//! from the counts, without any I/O.

use crate::protocol::peer_text::{escape, PeerText};

/// What became of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Written, verified, in place (a file), or made (a directory, a link).
    Landed,
    /// Already there with the same size and mtime.
    UpToDate,
    /// The range asked for (`--offset`/`--count`) landed in the `.zcpart`,
    /// which now holds this many bytes of a file not yet whole.
    Held(u64),
    /// The peer refused it (it exists, a bad name, ...).
    Refused(PeerText),
    /// It could not be read, sent or written.
    Failed(PeerText),
    /// The digests differ; it was not kept.
    Mismatch,
}

/// The session's end, from the fates of its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry landed or was up to date.
    Complete,
    /// Some did not land (exit 5); the line names them.
    Partial(String),
    /// At least one digest mismatch (exit 3), which outranks the rest.
    Integrity(String),
}

/// Entries named one by one in the verdict; the rest are counted.
const NAMED: usize = 8;

#[derive(Debug, Default, Clone)]
pub struct Ledger {
    pub landed: u64,
    pub up_to_date: u64,
    pub not_landed: u64,
    pub mismatched: u64,
    /// Ranges that landed in a part (a success, though not a whole file).
    pub held: u64,
    named: Vec<String>,
}

impl Ledger {
    pub fn record(&mut self, path: &str, fate: &Fate) {
        let why = match fate {
            Fate::Landed => {
                self.landed += 1;
                return;
            }
            Fate::UpToDate => {
                self.up_to_date += 1;
                return;
            }
            Fate::Held(_) => {
                self.held += 1;
                return;
            }
            Fate::Refused(why) => format!("refused: {why}"),
            Fate::Failed(why) => why.to_string(),
            Fate::Mismatch => {
                self.mismatched += 1;
                "SHA-256 mismatch, not kept".to_string()
            }
        };
        self.not_landed += 1;
        if self.named.len() < NAMED {
            // a name may hold a newline: one line must stay one line
            self.named
                .push(format!("{} ({why})", escape(path.as_bytes())));
        }
    }

    /// Entries that are where they should be, landed now or before.
    pub fn accounted(&self) -> u64 {
        self.landed + self.up_to_date + self.held
    }

    pub fn verdict(&self) -> Verdict {
        if self.not_landed == 0 {
            return Verdict::Complete;
        }
        let mut line = format!(
            "{} {} did not land: {}",
            self.not_landed,
            if self.not_landed == 1 {
                "entry"
            } else {
                "entries"
            },
            self.named.join("; ")
        );
        let unnamed = self.not_landed - self.named.len() as u64;
        if unnamed > 0 {
            line.push_str(&format!("; and {unnamed} more"));
        }
        if self.mismatched > 0 {
            Verdict::Integrity(line)
        } else {
            Verdict::Partial(line)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_worst_fate() {
        let mut l = Ledger::default();
        l.record("a", &Fate::Landed);
        l.record("b", &Fate::UpToDate);
        assert_eq!(l.verdict(), Verdict::Complete);
        assert_eq!(l.accounted(), 2);
        l.record("c", &Fate::Failed("vanished".into()));
        assert_eq!(
            l.verdict(),
            Verdict::Partial("1 entry did not land: c (vanished)".into())
        );
        l.record("d", &Fate::Mismatch);
        match l.verdict() {
            Verdict::Integrity(line) => assert!(line.starts_with("2 entries"), "{line}"),
            other => panic!("{other:?}"),
        }
        for i in 0..20 {
            l.record(&format!("x{i}"), &Fate::Refused("exists".into()));
        }
        match l.verdict() {
            Verdict::Integrity(line) => assert!(line.ends_with("; and 14 more"), "{line}"),
            other => panic!("{other:?}"),
        }
    }
}
