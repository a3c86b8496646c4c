//! A session of one file shown as one file: its bar, and the summary line
//! and JSON event a single transfer has always printed.

use std::time::Duration;

use crate::peer_text::PeerText;

use super::event::Event;
use super::tree::{EntryEvent, Status, TreeProgress, TreeStart, TreeSummary};
use super::{Progress, Reporter, Start, Style, Summary};

/// A session of one file: a tree of one entry, rendered as the file.
struct OneFile {
    reporter: Reporter,
    start: TreeStart,
    bar: Option<Box<dyn Progress>>,
    resumed_from: u64,
    sha256: Option<String>,
    note: Option<String>,
    /// The receiver has it already: nothing moved.
    up_to_date: bool,
    /// Where the receiver put it.
    path: Option<PeerText>,
}

impl Reporter {
    /// The display of a session of one file; `note` goes into its summary.
    pub fn one_file(&self, start: &TreeStart, note: Option<String>) -> Box<dyn TreeProgress> {
        Box::new(OneFile {
            reporter: self.clone(),
            start: start.clone(),
            bar: None,
            resumed_from: 0,
            sha256: None,
            note,
            path: None,
            up_to_date: false,
        })
    }
}

impl OneFile {
    /// The one line of a file the receiver holds already.
    fn unchanged(&mut self, summary: &TreeSummary) {
        let verb = match summary.role {
            super::Role::Send => "sent",
            super::Role::Recv => "received",
        };
        match self.reporter.style {
            Style::Quiet => {}
            Style::Json => Event::UpToDate {
                role: super::role_name(summary.role),
                name: &self.start.name,
                path: self.path.as_ref(),
                bytes: 0,
                seconds: summary.elapsed.as_secs_f64(),
                up_to_date: true,
            }
            .emit(),
            _ => self.reporter.say(&format!(
                "zc: {verb} {}: nothing, it is up to date at the receiver (same size and modification time)",
                self.start.name
            )),
        }
    }

    fn bar(&mut self) -> &mut dyn Progress {
        if self.bar.is_none() {
            let start = Start {
                role: self.start.role,
                name: self.start.name.clone(),
                peer: self.start.peer.clone(),
                size: Some(self.start.bytes),
                offset: 0,
                count: Some(self.start.bytes),
                resumed_from: 0,
            };
            self.bar = Some(self.reporter.transfer(&start));
        }
        self.bar.as_deref_mut().expect("made above")
    }
}

impl TreeProgress for OneFile {
    fn file(&mut self, start: &Start) {
        let start = Start {
            name: self.start.name.clone(),
            ..start.clone()
        };
        self.resumed_from = start.resumed_from;
        self.bar = Some(self.reporter.transfer(&start));
    }

    fn named(&mut self, name: &str, path: &str) {
        // the peer's name, and a path that ends in it
        self.start.name = name.into();
        self.path = Some(path.into());
    }

    fn entry(&mut self, event: &EntryEvent) {
        self.sha256.clone_from(&event.sha256);
        match event.status {
            Status::Skipped => self.up_to_date = true,
            Status::Held => self.note = event.message.map(|m| m.to_string()),
            _ => {}
        }
    }

    fn update(&mut self, bytes: u64, _: u64, _: &str) {
        self.bar().update(bytes);
    }

    fn finish(&mut self, summary: &TreeSummary) {
        if self.up_to_date {
            return self.unchanged(summary);
        }
        let done = Summary {
            role: summary.role,
            name: self.start.name.clone(),
            path: self.path.clone(),
            bytes: summary.bytes,
            elapsed: summary.elapsed.max(Duration::from_nanos(1)),
            zero_copy: summary.zero_copy,
            encrypted: summary.encrypted,
            sha256: self.sha256.take(),
            resumed_from: self.resumed_from,
            reconnects: summary.reconnects,
            sent_before: summary.sent_before,
            // the whole transfer: how many connections it took
            note: match (self.note.take(), summary.retried()) {
                (Some(note), Some(retried)) => Some(format!("{note}; {retried}")),
                (note, retried) => note.or(retried),
            },
            digest: match summary.digests {
                (_, 1..) => Some("cached"),
                (1.., _) => Some("computed"),
                _ => None,
            },
        };
        self.bar().finish(&done);
    }

    fn abandon(&mut self) {
        if let Some(bar) = self.bar.as_mut() {
            bar.abandon();
        }
    }
}
