//! The JSON events of `--json`, one typed enum: the whole schema in one
//! place, each event one line on stderr.

use serde::Serialize;

use crate::peer_text::{moves_a_terminal, PeerText};

/// One line of `--json` output; `event` names it.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    Listening {
        addr: String,
        /// A one-time code this side made (`--code` alone, listening),
        /// and the other side's command line that uses it.
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        command: Option<&'a str>,
    },
    /// `zc send --http` listens: the URLs to give the other side.
    #[serde(rename = "listening")]
    HttpListening {
        addr: String,
        url: &'a str,
        curl: &'a str,
        wget: &'a str,
    },
    /// One HTTP request answered (`zc send --http`).
    Request {
        client: &'a str,
        method: &'a str,
        path: &'a str,
        status: u16,
        range: Option<&'a str>,
        bytes: u64,
        seconds: f64,
    },
    Warning {
        message: &'a str,
    },
    /// A listener announced on the LAN.
    Announced {
        name: &'a str,
    },
    /// A peer found on the LAN (`@NAME`, or no address).
    Found {
        name: &'a str,
        addrs: Vec<String>,
    },
    Error {
        message: &'a str,
        code: i32,
    },
    Retry {
        attempt: u32,
        of: u32,
        wait_seconds: f64,
        message: &'a str,
    },
    /// A file (or a session of one file) begins.
    Start {
        role: &'static str,
        name: &'a PeerText,
        peer: &'a str,
        size: Option<u64>,
        offset: u64,
        count: Option<u64>,
        resumed_from: u64,
    },
    /// A tree session begins; its totals are null when it is counted as
    /// it is sent (the progress events carry them from then on).
    #[serde(rename = "start")]
    TreeStart {
        role: &'static str,
        tree: bool,
        name: &'a PeerText,
        peer: &'a str,
        entries: Option<u64>,
        size: Option<u64>,
    },
    /// At most once a second while a file moves.
    Progress {
        name: &'a PeerText,
        bytes: u64,
        total: Option<u64>,
        rate: f64,
    },
    /// At most once a second while a tree moves.
    #[serde(rename = "progress")]
    TreeProgress {
        name: &'a PeerText,
        bytes: u64,
        total: u64,
        entries_done: u64,
        entries: u64,
        current: &'a str,
        rate: f64,
    },
    /// Held data being checked before a resume.
    Verify {
        name: &'a PeerText,
        bytes: u64,
        total: u64,
    },
    /// The check of held data ended.
    #[serde(rename = "verify")]
    Verified {
        role: &'static str,
        name: &'a PeerText,
        bytes: Option<u64>,
        total: Option<u64>,
        good: u64,
        bad_blocks: u64,
        seconds: f64,
        done: bool,
    },
    /// One entry of a tree landed, was skipped, refused or failed.
    Entry {
        role: &'static str,
        path: &'a str,
        kind: &'static str,
        bytes: u64,
        sha256: Option<&'a str>,
        status: &'static str,
        message: Option<&'a PeerText>,
    },
    /// A file arrived (or went) whole.
    Done {
        role: &'static str,
        name: &'a PeerText,
        path: Option<&'a PeerText>,
        bytes: u64,
        seconds: f64,
        rate: f64,
        zero_copy: bool,
        /// The session was encrypted (a code or a key).
        encrypted: bool,
        sha256: Option<&'a str>,
        resumed_from: u64,
        reconnects: u32,
        sent_before: u64,
        note: Option<&'a str>,
        /// The sender's only: `computed` or `cached` (null when not verifying).
        #[serde(skip_serializing_if = "Option::is_none")]
        digest: Option<Option<&'static str>>,
    },
    /// A file the receiver held already: nothing moved.
    #[serde(rename = "done")]
    UpToDate {
        role: &'static str,
        name: &'a PeerText,
        path: Option<&'a PeerText>,
        bytes: u64,
        seconds: f64,
        up_to_date: bool,
    },
    /// A tree session ended (a verdict short of complete follows as an error).
    #[serde(rename = "done")]
    TreeDone {
        role: &'static str,
        tree: bool,
        name: &'a str,
        path: Option<&'a str>,
        entries: u64,
        files: u64,
        up_to_date: u64,
        not_landed: u64,
        bytes: u64,
        seconds: f64,
        rate: f64,
        zero_copy: bool,
        encrypted: bool,
        verified: bool,
        reconnects: u32,
        sent_before: u64,
        /// The sender's only: how many digests it computed and took from
        /// its cache.
        #[serde(skip_serializing_if = "Option::is_none")]
        digests_computed: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        digests_cached: Option<u64>,
    },
}

impl Event<'_> {
    /// Writes the event as one line on stderr.
    pub fn emit(&self) {
        // a derived Serialize of strings and numbers cannot fail
        if let Ok(line) = to_line(self) {
            eprintln!("{line}");
        }
    }
}

/// JSON as serde_json writes it, but with every character that moves a
/// terminal written as `\uXXXX` (serde_json escapes only C0, `"` and `\`):
/// the same JSON value, and a line that is safe on a terminal too.
fn to_line(value: &impl Serialize) -> serde_json::Result<String> {
    let mut out = Vec::new();
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out,
        TerminalSafe,
    ))?;
    // serde_json writes UTF-8 only
    Ok(String::from_utf8(out).unwrap_or_default())
}

struct TerminalSafe;

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some((at, c)) = rest.char_indices().find(|(_, c)| moves_a_terminal(*c)) {
            writer.write_all(&rest.as_bytes()[..at])?;
            // all of them are in the Basic Multilingual Plane: one \u each
            write!(writer, "\\u{:04x}", c as u32)?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

/// Bytes per second over `seconds` (0 for no time at all).
pub fn rate(bytes: u64, seconds: f64) -> f64 {
    match seconds > 0.0 {
        true => bytes as f64 / seconds,
        false => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_carry_peer_text_as_data_and_nothing_a_terminal_obeys() {
        let raw = "x\u{1b}]0;t\u{7}\u{9b}2J\u{9d}\u{7f}\u{202e}\n\\\"é";
        let text = PeerText::from(raw);
        let line = to_line(&Event::Entry {
            role: "recv",
            path: "p\u{85}",
            kind: "file",
            bytes: 0,
            sha256: None,
            status: "failed",
            message: Some(&text),
        })
        .unwrap();
        assert!(!line.chars().any(moves_a_terminal), "{line:?}");
        assert!(
            line.contains("\\u001b]0;t\\u0007\\u009b2J\\u009d\\u007f\\u202e\\n"),
            "{line}"
        );
        // the same JSON value: the peer's text, byte for byte
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["message"], raw);
        assert_eq!(v["path"], "p\u{85}");
    }

    #[test]
    fn events_carry_their_name_and_fields() {
        let line = serde_json::to_value(Event::Warning { message: "m" }).unwrap();
        assert_eq!(
            line,
            serde_json::json!({"event": "warning", "message": "m"})
        );
        let start = Event::TreeStart {
            role: "recv",
            tree: true,
            name: &"t".into(),
            peer: "p",
            entries: Some(2),
            size: None,
        };
        let v = serde_json::to_value(start).unwrap();
        assert_eq!(
            (v["event"].as_str(), v["tree"].as_bool()),
            (Some("start"), Some(true))
        );
        // the receiver's done event has no digest; the sender's has one, null or not
        let f = "f".into();
        let done = |digest| Event::Done {
            role: "send",
            name: &f,
            path: None,
            bytes: 1,
            seconds: 0.5,
            rate: 2.0,
            zero_copy: true,
            encrypted: false,
            sha256: None,
            resumed_from: 0,
            reconnects: 0,
            sent_before: 0,
            note: None,
            digest,
        };
        let recv = serde_json::to_value(done(None)).unwrap();
        assert!(recv.get("digest").is_none());
        assert!(recv["path"].is_null(), "absent values are null, as before");
        let send = serde_json::to_value(done(Some(None))).unwrap();
        assert!(send.get("digest").is_some_and(|d| d.is_null()));
    }
}
