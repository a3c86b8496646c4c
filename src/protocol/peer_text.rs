//! Text a peer chose (a refusal's reason, a RESULT's message, a FILE END's
//! `failed`, a name it sent) on its way to a terminal or a log: the one
//! escaping function, and the type that holds such text so that it cannot
//! be printed any other way.

use std::fmt::{self, Write as _};

use serde::{Serialize, Serializer};

/// Escapes what would move, garble or spoof a terminal: every control
/// character (C0, DEL and C1, U+0080..U+009F), bidirectional marks and
/// overrides, line and paragraph separators, and bytes that are not UTF-8
/// (as `\xNN`). Everything else, `\` included, is kept, so the escaping is
/// idempotent: a text escaped on one side (a receiver's reason naming a
/// path) shows the same when the other side escapes it again. The price is
/// that a name holding a literal `\n` looks like one holding a newline;
/// no name can look like a terminal command.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if moves_a_terminal(c) => out.extend(c.escape_unicode()),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Controls (C0, DEL, C1), bidirectional marks, embeddings, overrides and
/// isolates, and the line and paragraph separators.
pub fn moves_a_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Text a peer sent, or that holds what a peer sent. Its only `Display`
/// (and `Debug`) is [`escape`]d; its `Serialize` is the text itself (as a
/// JSON string, which the `--json` encoder escapes as data); the raw bytes
/// are only to be had as bytes, for the wire.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct PeerText(Vec<u8>);

impl PeerText {
    /// The text as it travels: bytes, which have no `Display`.
    pub fn wire(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes, as on the wire.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for PeerText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(&self.0))
    }
}

impl fmt::Debug for PeerText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", escape(&self.0))
    }
}

impl Serialize for PeerText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(&self.0))
    }
}

impl From<String> for PeerText {
    fn from(text: String) -> Self {
        PeerText(text.into_bytes())
    }
}

impl From<&str> for PeerText {
    fn from(text: &str) -> Self {
        PeerText(text.as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for PeerText {
    fn from(bytes: Vec<u8>) -> Self {
        PeerText(bytes)
    }
}

impl From<&[u8]> for PeerText {
    fn from(bytes: &[u8]) -> Self {
        PeerText(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_escaped() {
        assert_eq!(escape(b"plain name.txt"), "plain name.txt");
        assert_eq!(escape("ünï €".as_bytes()), "ünï €");
        assert_eq!(escape(b"a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(escape(b"\x1b]0;owned\x07"), "\\u{1b}]0;owned\\u{7}");
        assert_eq!(escape(b"\x1b[2J\x7f\0"), "\\u{1b}[2J\\u{7f}\\u{0}");
        // C1 controls: CSI and OSC on their own, as UTF-8
        assert_eq!(
            escape("\u{9b}2J\u{9d}0;x".as_bytes()),
            "\\u{9b}2J\\u{9d}0;x"
        );
        assert_eq!(
            escape("\u{80}\u{85}\u{9f}".as_bytes()),
            "\\u{80}\\u{85}\\u{9f}"
        );
        assert_eq!(
            escape("a\u{202e}b\u{2066}c\u{200f}\u{2028}".as_bytes()),
            "a\\u{202e}b\\u{2066}c\\u{200f}\\u{2028}"
        );
        // bytes that are not UTF-8 stay distinct; lone C1 bytes among them
        assert_eq!(escape(b"caf\xe9\x9b\xff"), "caf\\xe9\\x9b\\xff");
        assert_eq!(escape(b"a\\b"), "a\\b");
    }

    #[test]
    fn escaped_text_is_safe_and_escaping_twice_changes_nothing() {
        let nasty: &[u8] = b"\x1b[31mred\x1b[0m\n\xc2\x9b2J\xc2\x9d0;t\x07\xe2\x80\xae\xff\\";
        let once = escape(nasty);
        assert!(!once.chars().any(moves_a_terminal), "{once:?}");
        assert!(!once.bytes().any(|b| b == 0x1b || b == b'\n'));
        assert_eq!(escape(once.as_bytes()), once);
    }

    #[test]
    fn peer_text_prints_escaped_and_serializes_raw() {
        let text = PeerText::from("x\u{1b}[2J\u{9b}y\n");
        assert_eq!(text.to_string(), "x\\u{1b}[2J\\u{9b}y\\n");
        assert_eq!(format!("{text:?}"), "\"x\\u{1b}[2J\\u{9b}y\\n\"");
        assert_eq!(
            serde_json::to_value(&text).unwrap(),
            serde_json::json!("x\u{1b}[2J\u{9b}y\n")
        );
        assert_eq!(text.wire(), "x\u{1b}[2J\u{9b}y\n".as_bytes());
    }
}
