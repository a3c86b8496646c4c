//! What zc says on stderr: a bar, a line a second, JSON events, or nothing,
//! behind one interface. stdout is never touched here.

use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::exit::ExitCode;
use crate::peer_text::PeerText;
use crate::units::{human_bytes, human_rate, human_seconds};

pub mod event;
mod http;
pub use http::{Access, ClientLine, Urls};
mod listen;
pub use listen::Invite;
pub mod single;
pub mod tree;

use event::Event;

/// Plain lines and JSON progress events come at most this often.
const LINE_EVERY: Duration = Duration::from_secs(1);
/// The bar redraws at most this often.
const BAR_HZ: u8 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Send,
    Recv,
}

/// A transfer as it begins.
#[derive(Debug, Clone)]
pub struct Start {
    pub role: Role,
    /// The file's name; on the receiving side, the peer's.
    pub name: PeerText,
    pub peer: String,
    /// The whole source, when known.
    pub size: Option<u64>,
    pub offset: u64,
    /// Bytes this transfer will move, when known.
    pub count: Option<u64>,
    pub resumed_from: u64,
}

/// A transfer as it ends well.
#[derive(Debug, Clone)]
pub struct Summary {
    pub role: Role,
    pub name: PeerText,
    /// Where the receiver put it (`-` for stdout): a name the peer chose.
    pub path: Option<PeerText>,
    pub bytes: u64,
    pub elapsed: Duration,
    pub zero_copy: bool,
    /// The session was encrypted (a code or a key).
    pub encrypted: bool,
    pub sha256: Option<String>,
    pub resumed_from: u64,
    /// Connections after the first (`--retry`), and the bytes they carried
    /// before the last.
    pub reconnects: u32,
    pub sent_before: u64,
    /// Anything the user should know (a fallback, a range cut at the end).
    pub note: Option<String>,
    /// The sender's digest: `computed`, or `cached` (hashed once for
    /// several receivers); none when not verifying, or on the receiving side.
    pub digest: Option<&'static str>,
}

impl Summary {
    fn line(&self) -> String {
        let what = match (self.role, &self.path) {
            (Role::Send, _) => format!("sent {}", self.name),
            (Role::Recv, Some(path)) if path != &self.name => {
                format!("received {} -> {path}", self.name)
            }
            (Role::Recv, _) => format!("received {}", self.name),
        };
        let mut line = format!(
            "zc: {what}: {} in {}, {}, {}",
            human_bytes(self.bytes),
            human_seconds(self.elapsed),
            human_rate(self.bytes, self.elapsed),
            path_name(self.zero_copy, self.encrypted),
        );
        if self.resumed_from > 0 {
            line.push_str(&format!(", resumed from byte {}", self.resumed_from));
        }
        match &self.sha256 {
            Some(sha) => line.push_str(&format!(", sha256 {sha}")),
            None => line.push_str(", not verified"),
        }
        if self.digest == Some("cached") {
            line.push_str(", digest from cache");
        }
        if let Some(note) = &self.note {
            line.push_str(&format!(" ({note})"));
        }
        line
    }

    fn event(&self) -> Event<'_> {
        let seconds = self.elapsed.as_secs_f64();
        Event::Done {
            role: role_name(self.role),
            name: &self.name,
            path: self.path.as_ref(),
            bytes: self.bytes,
            seconds,
            rate: event::rate(self.bytes, seconds),
            zero_copy: self.zero_copy,
            encrypted: self.encrypted,
            sha256: self.sha256.as_deref(),
            resumed_from: self.resumed_from,
            reconnects: self.reconnects,
            sent_before: self.sent_before,
            note: self.note.as_deref(),
            digest: (self.role == Role::Send).then_some(self.digest),
        }
    }
}

/// How the bytes went, for a summary line.
fn path_name(zero_copy: bool, encrypted: bool) -> &'static str {
    match (zero_copy, encrypted) {
        (true, _) => "zero-copy",
        (false, true) => "encrypted",
        (false, false) => "buffered",
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Send => "send",
        Role::Recv => "recv",
    }
}

/// One transfer's progress display.
pub trait Progress: Send {
    /// `bytes` moved so far by this transfer.
    fn update(&mut self, bytes: u64);
    /// The transfer ended well.
    fn finish(&mut self, summary: &Summary);
    /// The transfer ended badly; the error is reported elsewhere.
    fn abandon(&mut self) {}
    /// A verify phase ended: `good` bytes of held data match, `bad` blocks do not.
    fn finish_verify(&mut self, good: u64, bad: u64) {
        let _ = (good, bad);
    }
}

/// How zc talks on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// An indicatif bar (stderr is a terminal, or `--progress bar`).
    Bar,
    /// A line a second.
    Plain,
    /// Only the summary.
    Summary,
    /// Only errors (`-q`).
    Quiet,
    /// One JSON object a line.
    Json,
}

/// The process-wide voice: makes per-transfer displays and prints the rest.
#[derive(Clone)]
pub struct Reporter {
    style: Style,
    multi: MultiProgress,
}

impl Reporter {
    pub fn new(style: Style) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(BAR_HZ));
        Reporter { style, multi }
    }

    /// Prints a line without tearing a bar.
    fn say(&self, line: &str) {
        if self.style == Style::Bar {
            self.multi.suspend(|| eprintln!("{line}"));
        } else {
            eprintln!("{line}");
        }
    }

    /// Something the user should know that is not an error.
    pub fn warn(&self, message: &str) {
        match self.style {
            Style::Json => Event::Warning { message }.emit(),
            Style::Quiet => {}
            _ => self.say(&format!("zc: warning: {message}")),
        }
    }

    /// An error line; printed even with `-q`.
    pub fn error(&self, message: &str, code: ExitCode) {
        match self.style {
            Style::Json => Event::Error {
                message,
                code: code.code(),
            }
            .emit(),
            _ => self.say(&format!("zc: {message}")),
        }
    }

    /// A retry is coming after `wait`.
    pub fn retry(&self, attempt: u32, of: u32, wait: Duration, message: &str) {
        match self.style {
            Style::Json => Event::Retry {
                attempt,
                of,
                wait_seconds: wait.as_secs_f64(),
                message,
            }
            .emit(),
            // a retry is worth a line even with -q: something went wrong
            _ => self.say(&format!(
                "zc: {message}; retry {attempt} of {of} in {}",
                human_seconds(wait)
            )),
        }
    }

    /// The display for checking held data before a resume.
    /// The sender checks blocks; the receiver hashes what it holds for it.
    pub fn verifier(&self, role: Role, name: &str, total: u64) -> Box<dyn Progress> {
        let start = Start {
            role,
            name: name.into(),
            peer: String::new(),
            size: None,
            offset: 0,
            count: Some(total),
            resumed_from: 0,
        };
        match self.style {
            Style::Json => Box::new(Verify {
                role,
                lines: Lines::new(&start, true),
                json: true,
                updates: true,
            }),
            Style::Plain => Box::new(Verify {
                role,
                lines: Lines::new(&start, false),
                json: false,
                updates: true,
            }),
            // Without progress, still one line when verifying ends: it can
            // take a while, and it says how much was kept.
            Style::Summary => Box::new(Verify {
                role,
                lines: Lines::new(&start, false),
                json: false,
                updates: false,
            }),
            Style::Bar => {
                let bar = Bar::new(&self.multi, &start);
                bar.bar.set_prefix(format!("verifying {}", start.name));
                Box::new(bar)
            }
            Style::Quiet => Box::new(Silent),
        }
    }

    pub fn transfer(&self, start: &Start) -> Box<dyn Progress> {
        match self.style {
            Style::Json => {
                Event::Start {
                    role: role_name(start.role),
                    name: &start.name,
                    peer: &start.peer,
                    size: start.size,
                    offset: start.offset,
                    count: start.count,
                    resumed_from: start.resumed_from,
                }
                .emit();
                Box::new(Lines::new(start, true))
            }
            Style::Plain => Box::new(Lines::new(start, false)),
            Style::Bar => Box::new(Bar::new(&self.multi, start)),
            Style::Summary => Box::new(SummaryOnly),
            Style::Quiet => Box::new(Silent),
        }
    }
}

struct Silent;

impl Progress for Silent {
    fn update(&mut self, _: u64) {}
    fn finish(&mut self, _: &Summary) {}
}

struct SummaryOnly;

impl Progress for SummaryOnly {
    fn update(&mut self, _: u64) {}
    fn finish(&mut self, summary: &Summary) {
        eprintln!("{}", summary.line());
    }
}

/// `--progress plain` and `--json`: a line (or event) a second at most.
struct Lines {
    json: bool,
    name: PeerText,
    total: Option<u64>,
    began: Instant,
    next: Instant,
}

impl Lines {
    fn new(start: &Start, json: bool) -> Self {
        let now = Instant::now();
        Lines {
            json,
            name: start.name.clone(),
            total: start.count,
            began: now,
            next: now + LINE_EVERY,
        }
    }
}

impl Progress for Lines {
    fn update(&mut self, bytes: u64) {
        let now = Instant::now();
        if now < self.next {
            return;
        }
        self.next = now + LINE_EVERY;
        let elapsed = now - self.began;
        if self.json {
            let rate = bytes as f64 / elapsed.as_secs_f64().max(1e-6);
            Event::Progress {
                name: &self.name,
                bytes,
                total: self.total,
                rate,
            }
            .emit();
            return;
        }
        let of = match self.total {
            Some(total) if total > 0 => format!(
                " of {} ({:.0}%)",
                human_bytes(total),
                bytes as f64 * 100.0 / total as f64
            ),
            _ => String::new(),
        };
        eprintln!(
            "zc: {}: {}{of}, {}",
            self.name,
            human_bytes(bytes),
            human_rate(bytes, elapsed)
        );
    }

    fn finish(&mut self, summary: &Summary) {
        if self.json {
            summary.event().emit();
        } else {
            eprintln!("{}", summary.line());
        }
    }
}

/// The verify phase as lines or JSON events.
struct Verify {
    role: Role,
    lines: Lines,
    json: bool,
    /// Lines while verifying (else only the last one).
    updates: bool,
}

impl Progress for Verify {
    fn update(&mut self, bytes: u64) {
        let now = Instant::now();
        if !self.updates || now < self.lines.next {
            return;
        }
        self.lines.next = now + LINE_EVERY;
        let total = self.lines.total.unwrap_or(0);
        if self.json {
            Event::Verify {
                name: &self.lines.name,
                bytes,
                total,
            }
            .emit();
        } else {
            eprintln!(
                "zc: verifying {}: {} of {}",
                self.lines.name,
                human_bytes(bytes),
                human_bytes(total)
            );
        }
    }

    fn finish(&mut self, _: &Summary) {}

    fn finish_verify(&mut self, good: u64, bad: u64) {
        let secs = self.lines.began.elapsed().as_secs_f64();
        if self.json {
            Event::Verified {
                role: role_name(self.role),
                name: &self.lines.name,
                bytes: self.lines.total,
                total: self.lines.total,
                good,
                bad_blocks: bad,
                seconds: secs,
                done: true,
            }
            .emit();
        } else if self.role == Role::Recv {
            let held = human_bytes(good);
            eprintln!(
                "zc: hashed the {held} held of {} in {secs:.1} s",
                self.lines.name
            );
        } else {
            eprintln!(
                "zc: verified {}: {} good, {bad} bad blocks, in {secs:.1} s",
                self.lines.name,
                human_bytes(good)
            );
        }
    }
}

/// An indicatif bar (or a spinner when the size is unknown).
struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new(multi: &MultiProgress, start: &Start) -> Self {
        let (bar, template) = match start.count {
            Some(total) => (
                ProgressBar::new(total),
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {percent}% {binary_bytes_per_sec} ETA {eta}",
            ),
            None => (
                ProgressBar::new_spinner(),
                "{prefix} {spinner} {bytes} {binary_bytes_per_sec}",
            ),
        };
        let style = ProgressStyle::with_template(template)
            .expect("a valid template")
            .progress_chars("=> ");
        let bar = multi.add(bar.with_style(style).with_prefix(start.name.to_string()));
        Bar { bar }
    }
}

impl Progress for Bar {
    fn update(&mut self, bytes: u64) {
        self.bar.set_position(bytes);
    }

    fn finish(&mut self, summary: &Summary) {
        self.bar.finish_and_clear();
        self.bar.suspend(|| eprintln!("{}", summary.line()));
    }

    fn abandon(&mut self) {
        self.bar.abandon();
    }

    fn finish_verify(&mut self, _: u64, _: u64) {
        self.bar.finish_and_clear();
    }
}
