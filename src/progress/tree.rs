//! Progress of a tree session: one display for the whole session (bytes,
//! files done of total, the current file), a typed event per entry, and one
//! summary, rendered as a bar, lines or JSON.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::event::Event;
use super::{role_name, Reporter, Role, Style, LINE_EVERY};
use crate::peer_text::{escape, PeerText};
use crate::protocol::ledger::Fate;
use crate::units::{human_bytes, human_rate, human_seconds};

/// A tree session as it begins.
#[derive(Debug, Clone)]
pub struct TreeStart {
    pub role: Role,
    /// What the session is; with a file alone, the peer's name for it.
    pub name: PeerText,
    pub peer: String,
    pub entries: u64,
    pub bytes: u64,
    /// `entries` and `bytes` are known now (else they come with
    /// [`TreeProgress::totals`] once the manifest is sent).
    pub counted: bool,
}

/// What happened to one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A file's data went out (sender) or landed verified (receiver).
    Done,
    /// Already there, up to date.
    Skipped,
    /// A range landed in a part that is not whole yet.
    Held,
    /// A directory or link made.
    Made,
    Refused,
    Failed,
}

impl Status {
    fn name(self, role: Role) -> &'static str {
        match (self, role) {
            (Status::Done, Role::Send) => "sent",
            (Status::Done, Role::Recv) => "received",
            (Status::Skipped, _) => "skipped",
            (Status::Held, _) => "held",
            (Status::Made, _) => "made",
            (Status::Refused, _) => "refused",
            (Status::Failed, _) => "failed",
        }
    }
}

impl Status {
    /// How an entry's fate is shown, and why when it did not land.
    pub fn of(fate: &Fate, kind: &str) -> (Status, Option<PeerText>) {
        match fate {
            Fate::Landed if kind == "file" => (Status::Done, None),
            Fate::Landed => (Status::Made, None),
            Fate::UpToDate => (Status::Skipped, None),
            Fate::Held(held) => (
                Status::Held,
                Some(format!("the part holds {held} bytes").into()),
            ),
            Fate::Refused(why) => (Status::Refused, Some(why.clone())),
            Fate::Failed(why) => (Status::Failed, Some(why.clone())),
            Fate::Mismatch => (Status::Failed, Some("SHA-256 mismatch, not kept".into())),
        }
    }
}

/// Shows an entry's fate (its session's machine recorded it): the one
/// place both sides turn a fate into an event.
pub fn show(
    progress: &mut dyn TreeProgress,
    (path, kind): (&str, &'static str),
    bytes: u64,
    sha256: Option<String>,
    fate: &Fate,
) {
    let (status, message) = Status::of(fate, kind);
    progress.entry(&EntryEvent {
        path,
        kind,
        bytes,
        sha256,
        status,
        message: message.as_ref(),
    });
}

/// One entry's end, for `--json` and `--progress plain`.
#[derive(Debug, Clone)]
pub struct EntryEvent<'a> {
    pub path: &'a str,
    pub kind: &'static str,
    pub bytes: u64,
    pub sha256: Option<String>,
    pub status: Status,
    /// Why it did not land: often the peer's words.
    pub message: Option<&'a PeerText>,
}

/// A tree session as it ends (the verdict is reported as an error if it is
/// not complete).
#[derive(Debug, Clone)]
pub struct TreeSummary {
    pub role: Role,
    pub name: String,
    /// The receiver's output directory.
    pub path: Option<String>,
    pub entries: u64,
    pub files: u64,
    pub up_to_date: u64,
    pub not_landed: u64,
    /// Data bytes, on every connection of the transfer.
    pub bytes: u64,
    /// From the first connection, the waits between them included.
    pub elapsed: Duration,
    /// Connections after the first (`--retry`), and the bytes the earlier
    /// ones carried.
    pub reconnects: u32,
    pub sent_before: u64,
    pub zero_copy: bool,
    /// The session was encrypted (a code or a key).
    pub encrypted: bool,
    /// Each file's SHA-256 was checked end to end.
    pub verified: bool,
    /// The sender's digests: how many it computed, how many it took from
    /// its cache (a file served before, or being hashed by another session).
    pub digests: (u64, u64),
}

impl TreeSummary {
    /// What reconnections there were: how many, and what the earlier
    /// connections carried (sent again where the receiver could not keep it).
    pub fn retried(&self) -> Option<String> {
        let n = self.reconnects;
        (n > 0).then(|| {
            format!(
                "after {n} reconnect{}: {} of it went on the earlier connections (what they lost was sent again)",
                if n == 1 { "" } else { "s" },
                human_bytes(self.sent_before)
            )
        })
    }

    fn line(&self) -> String {
        let verb = match self.role {
            Role::Send => "sent",
            Role::Recv => "received",
        };
        let into = self
            .path
            .as_ref()
            .map_or_else(String::new, |p| format!(" -> {p}"));
        let mut line = format!(
            "zc: {verb} {}{into}: {} entries, {} files, {} in {}, {}, {}",
            self.name,
            self.entries,
            self.files,
            human_bytes(self.bytes),
            human_seconds(self.elapsed),
            human_rate(self.bytes, self.elapsed),
            super::path_name(self.zero_copy, self.encrypted),
        );
        line.push_str(match self.verified {
            true => ", each file SHA-256 checked",
            false => ", not verified",
        });
        if self.up_to_date > 0 {
            line.push_str(&format!(", {} up to date", self.up_to_date));
        }
        if let Some(retried) = self.retried() {
            line.push_str(&format!(", {retried}"));
        }
        if self.not_landed > 0 {
            line.push_str(&format!(", {} did not land", self.not_landed));
        }
        if self.digests.1 > 0 {
            line.push_str(&format!(", {} digests from cache", self.digests.1));
        }
        line
    }

    fn event(&self) -> Event<'_> {
        let seconds = self.elapsed.as_secs_f64();
        let sender = self.role == Role::Send;
        Event::TreeDone {
            role: role_name(self.role),
            tree: true,
            name: &self.name,
            path: self.path.as_deref(),
            entries: self.entries,
            files: self.files,
            up_to_date: self.up_to_date,
            not_landed: self.not_landed,
            bytes: self.bytes,
            seconds,
            rate: super::event::rate(self.bytes, seconds),
            zero_copy: self.zero_copy,
            encrypted: self.encrypted,
            verified: self.verified,
            reconnects: self.reconnects,
            sent_before: self.sent_before,
            digests_computed: sender.then_some(self.digests.0),
            digests_cached: sender.then_some(self.digests.1),
        }
    }
}

/// A tree session's display.
pub trait TreeProgress: Send {
    fn entry(&mut self, event: &EntryEvent);
    /// `bytes` of data moved so far, `files` entries finished, `current` the file under way.
    fn update(&mut self, bytes: u64, files: u64, current: &str);
    fn finish(&mut self, summary: &TreeSummary);
    fn abandon(&mut self) {}
    /// A tree walked as it was sent is counted: its totals.
    fn totals(&mut self, entries: u64, bytes: u64) {
        let _ = (entries, bytes);
    }
    /// One file's data begins (what a display of one file shows).
    fn file(&mut self, start: &super::Start) {
        let _ = start;
    }
    /// The one file of a session of one file is known: its name, and
    /// where it lands.
    fn named(&mut self, name: &str, path: &str) {
        let _ = (name, path);
    }
}

impl Reporter {
    pub fn tree(&self, start: &TreeStart) -> Box<dyn TreeProgress> {
        match self.style {
            Style::Json => {
                Event::TreeStart {
                    role: role_name(start.role),
                    tree: true,
                    name: &start.name,
                    peer: &start.peer,
                    entries: start.counted.then_some(start.entries),
                    size: start.counted.then_some(start.bytes),
                }
                .emit();
                Box::new(Lines::new(start, true))
            }
            Style::Plain => Box::new(Lines::new(start, false)),
            Style::Summary => Box::new(Lines {
                quiet_updates: true,
                ..Lines::new(start, false)
            }),
            Style::Bar => Box::new(Bar::new(self, start)),
            Style::Quiet => Box::new(Silent),
        }
    }
}

struct Silent;

impl TreeProgress for Silent {
    fn entry(&mut self, _: &EntryEvent) {}
    fn update(&mut self, _: u64, _: u64, _: &str) {}
    fn finish(&mut self, _: &TreeSummary) {}
}

/// Lines (`--progress plain`, or only the summary) and JSON events.
struct Lines {
    json: bool,
    quiet_updates: bool,
    role: Role,
    start: TreeStart,
    began: Instant,
    next: Instant,
}

impl Lines {
    fn new(start: &TreeStart, json: bool) -> Self {
        let now = Instant::now();
        Lines {
            json,
            quiet_updates: false,
            role: start.role,
            start: start.clone(),
            began: now,
            next: now + LINE_EVERY,
        }
    }
}

impl TreeProgress for Lines {
    fn totals(&mut self, entries: u64, bytes: u64) {
        (self.start.entries, self.start.bytes) = (entries, bytes);
    }

    fn entry(&mut self, e: &EntryEvent) {
        if self.json {
            Event::Entry {
                role: role_name(self.role),
                path: e.path,
                kind: e.kind,
                bytes: e.bytes,
                sha256: e.sha256.as_deref(),
                status: e.status.name(self.role),
                message: e.message,
            }
            .emit();
        } else if matches!(e.status, Status::Refused | Status::Failed) {
            let why = e.message.cloned().unwrap_or_default();
            let path = escape(e.path.as_bytes());
            eprintln!("zc: {} {path}: {why}", e.status.name(self.role));
        } else if !self.quiet_updates && e.status != Status::Made {
            eprintln!(
                "zc: {} {} ({})",
                e.status.name(self.role),
                escape(e.path.as_bytes()),
                human_bytes(e.bytes)
            );
        }
    }

    fn update(&mut self, bytes: u64, files: u64, current: &str) {
        let now = Instant::now();
        if self.quiet_updates || now < self.next {
            return;
        }
        self.next = now + LINE_EVERY;
        let elapsed = now - self.began;
        if self.json {
            let rate = bytes as f64 / elapsed.as_secs_f64().max(1e-6);
            Event::TreeProgress {
                name: &self.start.name,
                bytes,
                total: self.start.bytes,
                entries_done: files,
                entries: self.start.entries,
                current,
                rate,
            }
            .emit();
            return;
        }
        eprintln!(
            "zc: {}: {} of {}, {files} of {} entries, {} ({})",
            self.start.name,
            human_bytes(bytes),
            human_bytes(self.start.bytes),
            self.start.entries,
            human_rate(bytes, elapsed),
            escape(current.as_bytes())
        );
    }

    fn finish(&mut self, summary: &TreeSummary) {
        if self.json {
            summary.event().emit();
        } else {
            eprintln!("{}", summary.line());
        }
    }
}

/// One bar for the session: bytes, entries done of total, the current file.
struct Bar {
    bar: ProgressBar,
    role: Role,
    entries: u64,
}

impl Bar {
    fn new(reporter: &Reporter, start: &TreeStart) -> Self {
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:25}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> ");
        let bar = ProgressBar::new(start.bytes)
            .with_style(style)
            .with_prefix(start.name.to_string());
        Bar {
            bar: reporter.multi.add(bar),
            role: start.role,
            entries: start.entries,
        }
    }
}

impl TreeProgress for Bar {
    fn totals(&mut self, entries: u64, bytes: u64) {
        self.entries = entries;
        self.bar.set_length(bytes);
    }

    fn entry(&mut self, e: &EntryEvent) {
        if matches!(e.status, Status::Refused | Status::Failed) {
            let line = format!(
                "zc: {} {}: {}",
                e.status.name(self.role),
                escape(e.path.as_bytes()),
                e.message.cloned().unwrap_or_default()
            );
            self.bar.suspend(|| eprintln!("{line}"));
        }
    }

    fn update(&mut self, bytes: u64, files: u64, current: &str) {
        self.bar.set_position(bytes);
        self.bar.set_message(format!(
            "{files}/{} {}",
            self.entries,
            escape(current.as_bytes())
        ));
    }

    fn finish(&mut self, summary: &TreeSummary) {
        self.bar.finish_and_clear();
        self.bar.suspend(|| eprintln!("{}", summary.line()));
    }

    fn abandon(&mut self) {
        self.bar.abandon();
    }
}
