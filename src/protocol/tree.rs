//! The frames of a tree session (several entries in one connection); see
//! "Trees" in docs/PROTOCOL.md.

mod entry;
mod file;
mod reply;

pub use entry::{Entry, EntryKind, Manifest};
pub use file::{
    decode_file_hashes, decode_file_result, encode_file_hashes, encode_file_result, Begin, FileEnd,
    TreeEnd,
};
pub use reply::{Action, Reply};

use anyhow::{bail, ensure, Result};

use super::tlv::{as_bytes, as_digest, as_pair, fields, Decoded, Fields};
// the tests below ask the rule itself about every tag
#[cfg(test)]
use super::tlv::unknown;

/// A wire path or a link target is at most this long.
pub const MAX_PATH: usize = 4096;

/// A wire path's top entry (its first component, a source named on the
/// sender's command line) and the components below it.
pub fn top_and_rest(path: &[u8]) -> (&[u8], impl Iterator<Item = &[u8]>) {
    let mut parts = path.split(|b| *b == b'/');
    let top = parts.next().unwrap_or_default();
    (top, parts.filter(|p| !p.is_empty()))
}

/// A wire path as text: lossy UTF-8 (escaped where it is printed).
pub fn lossy(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// The OFFER of a tree session: what the sender's counting pass found,
/// and the session's settings. Its `tree` field is required, so a receiver
/// that predates trees refuses it instead of misreading it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeOffer {
    pub entries: u64,
    pub bytes: u64,
    pub verify: bool,
    pub resume: bool,
    pub fresh: bool,
    pub nonce: Option<[u8; 32]>,
    /// The session is one file named on the sender's command line, not a
    /// tree: the receiver may write it to `-o FILE` or a stream, and shows
    /// it as a file.
    pub single: bool,
    /// `entries` and `bytes` are not counted: the sender walks its sources
    /// as it sends their entries, and MANIFEST says how many there were.
    pub streamed: bool,
}

/// A wire path or a link target: at most [`MAX_PATH`] bytes.
fn as_path(tag: u8, value: &[u8]) -> Result<Vec<u8>> {
    as_bytes(tag, value, MAX_PATH)
}

/// True when an OFFER body carries the `tree` field: a tree session.
pub fn is_tree(offer_body: &[u8]) -> bool {
    fields(offer_body).is_ok_and(|f| f.iter().any(|(tag, _)| *tag == TreeOffer::TREE))
}

/// Whether an OFFER carries a key's nonce (the sender authenticates with
/// a key, in the clear).
pub fn offers_key(offer_body: &[u8]) -> bool {
    fields(offer_body).is_ok_and(|f| f.iter().any(|(tag, _)| *tag == TreeOffer::NONCE))
}

impl TreeOffer {
    const VERIFY: u8 = 5;
    const RESUME: u8 = 7;
    const FRESH: u8 = 8;
    const SINGLE: u8 = 9;
    const NONCE: u8 = 0x89;
    const TREE: u8 = 0x8a;
    // required: a receiver that took the zeros in `tree` for counts would
    // refuse every entry as one too many
    const STREAMED: u8 = 0x8b;

    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::default();
        f.put_pair(Self::TREE, (self.entries, self.bytes));
        f.put_flag(Self::VERIFY, self.verify);
        f.put_flag(Self::RESUME, self.resume);
        f.put_flag(Self::FRESH, self.fresh);
        f.put_flag(Self::SINGLE, self.single);
        if let Some(nonce) = &self.nonce {
            f.put(Self::NONCE, nonce);
        }
        f.put_flag(Self::STREAMED, self.streamed);
        f.0
    }

    pub fn decode(body: &[u8]) -> Result<Self> {
        Decoded::read(body, |f| {
            // a single file's fields have no meaning in a tree
            if let Some(tag) = f.first_of(&[1, 2, 3, 4, 6]) {
                bail!("a tree offer with a single file's field {tag}");
            }
            let tree = f.get(Self::TREE, as_pair("tree"))?;
            let (entries, bytes) = tree.unwrap_or_default();
            let offer = TreeOffer {
                entries,
                bytes,
                verify: f.flag(Self::VERIFY)?,
                resume: f.flag(Self::RESUME)?,
                fresh: f.flag(Self::FRESH)?,
                single: f.flag(Self::SINGLE)?,
                nonce: f.get(Self::NONCE, as_digest)?,
                streamed: f.flag(Self::STREAMED)?,
            };
            ensure!(tree.is_some(), "not a tree offer");
            // a file alone is counted before it is offered: one entry
            ensure!(
                !offer.single || (entries == 1 && !offer.streamed),
                "a single offer of {entries} entries{}: it carries one file",
                if offer.streamed { ", streamed" } else { "" }
            );
            Ok(offer)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{BlockHash, Outcome, RefuseCode, Status};

    /// Where the sender reads an entry: its top source, then the rest.
    #[test]
    fn a_wire_path_splits_into_its_top_and_the_rest() {
        let (top, rest) = top_and_rest(b"set/d//e.txt");
        let rest: Vec<&[u8]> = rest.collect();
        assert_eq!((top, rest), (&b"set"[..], vec![&b"d"[..], &b"e.txt"[..]]));
        let (top, mut rest) = top_and_rest(b"alone");
        assert_eq!((top, rest.next()), (&b"alone"[..], None));
    }

    #[test]
    fn a_tree_offer_is_refused_by_a_single_file_decoder() {
        let t = TreeOffer {
            entries: 1,
            bytes: 99,
            verify: true,
            resume: true,
            fresh: false,
            nonce: Some([4; 32]),
            single: true,
            streamed: false,
        };
        let body = t.encode();
        assert!(is_tree(&body));
        assert_eq!(TreeOffer::decode(&body).unwrap(), t);
        // `single` is one file: not two, not none, not counted as it comes
        for (entries, streamed) in [(2, false), (0, false), (0, true), (1, true)] {
            let odd = TreeOffer {
                entries,
                streamed,
                ..t.clone()
            };
            let err = TreeOffer::decode(&odd.encode()).unwrap_err().to_string();
            assert!(err.contains("it carries one file"), "{err}");
            let tree = TreeOffer {
                single: false,
                ..odd
            };
            assert_eq!(TreeOffer::decode(&tree.encode()).unwrap(), tree);
        }
        // what a receiver that predates trees does with it: the tree field
        // is required (0x80 and above), and every decoder refuses a
        // required field it does not know
        let tags: Vec<u8> = fields(&body).unwrap().iter().map(|(t, _)| *t).collect();
        assert!(tags.contains(&TreeOffer::TREE), "{tags:?}");
        let err = unknown(TreeOffer::TREE).unwrap_err().to_string();
        assert!(err.contains("unknown required field 0x8a"), "{err}");
        for tag in 0..=255u8 {
            assert_eq!(unknown(tag).is_err(), tag >= 0x80, "tag {tag:#x}");
        }
        // and the other way: a single file's OFFER from before trees
        let mut old = Fields::default();
        old.put(1, b"a.iso");
        old.put_u64(3, 0);
        assert!(!is_tree(&old.0));
        assert!(TreeOffer::decode(&old.0).is_err());
    }

    #[test]
    fn entries_round_trip_with_byte_names() {
        for (kind, target) in [
            (EntryKind::File, vec![]),
            (EntryKind::Dir, vec![]),
            (EntryKind::Link, b"../x".to_vec()),
        ] {
            let e = Entry {
                id: 7,
                path: b"top/a\nb/\xff-x".to_vec(),
                kind,
                size: if kind == EntryKind::File { 42 } else { 0 },
                mode: 0o751,
                mtime_ns: 1_700_000_000_123_456_789,
                target,
                range: None,
                stream: false,
            };
            assert_eq!(Entry::decode(&e.encode()).unwrap(), e);
        }
        let mut ranged = Entry {
            id: 1,
            path: b"a.iso".to_vec(),
            kind: EntryKind::File,
            size: 100,
            mode: 0o644,
            mtime_ns: 5,
            target: vec![],
            range: Some((10, 60)),
            stream: false,
        };
        assert_eq!(Entry::decode(&ranged.encode()).unwrap(), ranged);
        assert_eq!(ranged.offered(), (10, 60));
        ranged.range = Some((10, 101));
        assert!(
            Entry::decode(&ranged.encode()).is_err(),
            "range past the end"
        );
        ranged.stream = true;
        ranged.size = 0;
        assert_eq!(
            Entry::decode(&ranged.encode()).unwrap(),
            ranged,
            "a capped stream"
        );
        let mut dir = Fields::default();
        dir.put_u64(1, 0);
        dir.put(2, b"d");
        dir.put(3, &[1]);
        dir.put_u64(4, 5);
        dir.put(7, b"x");
        let dir = Entry::decode(&dir.0).unwrap();
        assert_eq!((dir.size, &dir.target[..]), (0, &b""[..]), "{dir:?}");
        assert_eq!(Entry::decode(&dir.encode()).unwrap(), dir);
        let mut f = Fields::default();
        f.put_u64(1, 0);
        f.put(3, &[0]);
        assert!(Entry::decode(&f.0).is_err(), "no path");
        f.put(2, &vec![b'a'; MAX_PATH + 1]);
        assert!(Entry::decode(&f.0).is_err(), "path over the bound");
    }

    #[test]
    fn replies_ends_and_results_round_trip() {
        for action in [
            Action::Send {
                held: vec![(0, 4), (8, 9)],
                hashes: true,
            },
            Action::Skip,
            Action::Done,
            Action::Refuse {
                code: RefuseCode::Exists,
                reason: "x exists".into(),
            },
        ] {
            let r = Reply { id: 3, action };
            assert_eq!(Reply::decode(&r.encode()).unwrap(), r);
        }
        let end = FileEnd {
            id: 9,
            sent: 5,
            sha256: Some([1; 32]),
            failed: Some("vanished".into()),
        };
        assert_eq!(FileEnd::decode(&end.encode()).unwrap(), end);
        let o = Outcome {
            status: Status::Ok,
            sha256: Some([2; 32]),
            held: 5,
            message: Default::default(),
            mac: None,
        };
        assert_eq!(
            decode_file_result(&encode_file_result(11, &o)).unwrap(),
            (11, o)
        );
        let b = Begin {
            id: 2,
            path: b"a/b".to_vec(),
        };
        assert_eq!(Begin::decode(&b.encode()).unwrap(), b);
        let m = Manifest {
            entries: 4,
            failed: 1,
        };
        assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
        let blocks = [BlockHash {
            offset: 0,
            len: 4,
            sha256: [5; 32],
        }];
        assert_eq!(
            decode_file_hashes(&encode_file_hashes(8, &blocks, true)).unwrap(),
            (8, blocks.to_vec(), true)
        );
        assert!(decode_file_hashes(&[0; 7]).is_err());
    }
}
