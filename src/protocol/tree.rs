//! The frames of a tree session (several entries in one connection); see
//! "Trees" in docs/PROTOCOL.md.

use anyhow::{bail, ensure, Result};

use super::tlv::{
    as_byte, as_bytes, as_digest, as_message, as_pair, as_u32, as_u64, fields, Decoded, Fields,
};
use super::{
    clip, decode_hashes, decode_ranges, encode_hashes, encode_ranges, BlockHash, Outcome, PeerText,
    RefuseCode,
};
// the tests below ask the rule itself about every tag
#[cfg(test)]
use super::tlv::unknown;

/// A wire path or a link target is at most this long.
pub const MAX_PATH: usize = 4096;

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

/// What an entry is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EntryKind {
    #[default]
    File = 0,
    Dir = 1,
    Link = 2,
}

/// One entry of the manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    /// Components joined by `/`; bytes, not necessarily UTF-8.
    pub path: Vec<u8>,
    pub kind: EntryKind,
    /// Files only.
    pub size: u64,
    pub mode: u32,
    pub mtime_ns: u64,
    /// Links only: the target, verbatim.
    pub target: Vec<u8>,
    /// Files only: the bytes offered, `[start, end)`, when not all of them
    /// (`--offset`/`--count`); the receiver keeps the rest it holds.
    pub range: Option<(u64, u64)>,
    /// Files only: a stream (stdin, a pipe) whose size is not known; its
    /// data comes in order, at most `range`'s end when that is given.
    pub stream: bool,
}

impl Entry {
    /// The bytes this entry offers: its range, or the whole file.
    pub fn offered(&self) -> (u64, u64) {
        self.range.unwrap_or((0, self.size))
    }
}

/// The end of the manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Manifest {
    pub entries: u64,
    /// Entries the sender's walk could not read.
    pub failed: u64,
}

/// What the receiver will do with an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send the file; `held` lists what is already here (with `hashes`,
    /// FILE HASHES frames of those blocks follow).
    Send {
        held: Vec<(u64, u64)>,
        hashes: bool,
    },
    /// Up to date: the same size and mtime are here already.
    Skip,
    Refuse {
        code: RefuseCode,
        reason: PeerText,
    },
    /// A directory made, or a link to make at the end: no data needed.
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub id: u64,
    pub action: Action,
}

/// The data of one entry follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begin {
    pub id: u64,
    pub path: Vec<u8>,
}

/// One entry's data is over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileEnd {
    pub id: u64,
    pub sent: u64,
    pub sha256: Option<[u8; 32]>,
    /// The source could not be read to its end; what arrived is not kept.
    pub failed: Option<PeerText>,
}

/// The END of a tree session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeEnd {
    /// DATA payload bytes of the whole session.
    pub sent: u64,
    /// Entries the sender could not send.
    pub failed: u64,
}

impl TreeEnd {
    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::default();
        f.put_u64(1, self.sent);
        f.put_u64(4, self.failed);
        f.0
    }

    pub fn decode(body: &[u8]) -> Result<Self> {
        Decoded::read(body, |f| {
            Ok(TreeEnd {
                sent: f.get(1, as_u64)?.unwrap_or(0),
                failed: f.get(4, as_u64)?.unwrap_or(0),
            })
        })
    }
}

/// A wire path or a link target: at most [`MAX_PATH`] bytes.
fn as_path(tag: u8, value: &[u8]) -> Result<Vec<u8>> {
    as_bytes(tag, value, MAX_PATH)
}

fn as_kind(_: u8, value: &[u8]) -> Result<EntryKind> {
    Ok(match value {
        [0] => EntryKind::File,
        [1] => EntryKind::Dir,
        [2] => EntryKind::Link,
        _ => bail!("entry of unknown kind {value:?}"),
    })
}

fn as_range(tag: u8, value: &[u8]) -> Result<(u64, u64)> {
    let (start, end) = as_pair("range")(tag, value)?;
    ensure!(start <= end, "a range that ends before it starts");
    Ok((start, end))
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

impl Entry {
    const ID: u8 = 1;
    const PATH: u8 = 2;
    const KIND: u8 = 3;
    const SIZE: u8 = 4;
    const MODE: u8 = 5;
    const MTIME: u8 = 6;
    const TARGET: u8 = 7;
    // required: a receiver that ignored them would misplace the bytes
    const RANGE: u8 = 0x88;
    const STREAM: u8 = 0x89;

    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::default();
        f.put_u64(Self::ID, self.id);
        f.put(Self::PATH, &self.path);
        f.put(Self::KIND, &[self.kind as u8]);
        if self.kind == EntryKind::File {
            f.put_u64(Self::SIZE, self.size);
        }
        f.put(Self::MODE, &self.mode.to_be_bytes());
        f.put_u64(Self::MTIME, self.mtime_ns);
        if self.kind == EntryKind::Link {
            f.put(Self::TARGET, &self.target);
        }
        if let Some(range) = self.range {
            f.put_pair(Self::RANGE, range);
        }
        f.put_flag(Self::STREAM, self.stream);
        f.0
    }

    /// Decodes an entry; the path itself is checked by the receiver.
    pub fn decode(body: &[u8]) -> Result<Self> {
        let mut entry = Decoded::read(body, |f| {
            Ok(Entry {
                id: f.need(Self::ID, as_u64, "entry without an id")?,
                path: f.need(Self::PATH, as_path, "entry without a path")?,
                kind: f.need(Self::KIND, as_kind, "entry without a kind")?,
                size: f.get(Self::SIZE, as_u64)?.unwrap_or(0),
                mode: f.get(Self::MODE, as_u32)?.map_or(0o644, |m| m & 0o777),
                mtime_ns: f.get(Self::MTIME, as_u64)?.unwrap_or(0),
                target: f.get(Self::TARGET, as_path)?.unwrap_or_default(),
                range: f.get(Self::RANGE, as_range)?,
                stream: f.flag(Self::STREAM)?,
            })
        })?;
        if entry.kind == EntryKind::Link {
            ensure!(!entry.target.is_empty(), "link without a target");
        }
        // A size on what is not a file, a target on what is not a link:
        // optional fields nothing reads, dropped so that the entry decoded
        // is the one `encode` writes back.
        if entry.kind != EntryKind::File {
            entry.size = 0;
        }
        if entry.kind != EntryKind::Link {
            entry.target.clear();
        }
        let file = entry.kind == EntryKind::File;
        ensure!(
            file || (entry.range.is_none() && !entry.stream),
            "a range or a stream on an entry that is not a file"
        );
        if let (Some((_, end)), false) = (entry.range, entry.stream) {
            ensure!(end <= entry.size, "a range past the end of the file");
        }
        Ok(entry)
    }
}

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::default();
        f.put_u64(1, self.entries);
        f.put_u64(2, self.failed);
        f.0
    }

    pub fn decode(body: &[u8]) -> Result<Self> {
        Decoded::read(body, |f| {
            Ok(Manifest {
                entries: f.get(1, as_u64)?.unwrap_or(0),
                failed: f.get(2, as_u64)?.unwrap_or(0),
            })
        })
    }
}

impl Reply {
    const ID: u8 = 1;
    const ACTION: u8 = 2;
    const CODE: u8 = 3;
    const REASON: u8 = 4;
    const HELD: u8 = 5;
    const HASHES: u8 = 6;

    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::default();
        f.put_u64(Self::ID, self.id);
        match &self.action {
            Action::Send { held, hashes } => {
                f.put(Self::ACTION, &[0]);
                f.put(Self::HELD, &encode_ranges(held));
                if *hashes {
                    f.put(Self::HASHES, &[1]);
                }
            }
            Action::Skip => f.put(Self::ACTION, &[1]),
            Action::Refuse { code, reason } => {
                f.put(Self::ACTION, &[2]);
                f.put(Self::CODE, &[*code as u8]);
                f.put(Self::REASON, &clip(reason));
            }
            Action::Done => f.put(Self::ACTION, &[3]),
        }
        f.0
    }

    pub fn decode(body: &[u8]) -> Result<Self> {
        Decoded::read(body, |f| {
            // every field is checked, whatever the action makes of it
            let id = f.need(Self::ID, as_u64, "reply without an id")?;
            let action = f.get(Self::ACTION, as_byte)?;
            let code = f.get(Self::CODE, as_byte)?;
            let reason = f.get(Self::REASON, as_message)?;
            let held = f.get(Self::HELD, decode_ranges)?.unwrap_or_default();
            let hashes = f.flag(Self::HASHES)?;
            let action = match action {
                Some(0) => Action::Send { held, hashes },
                Some(1) => Action::Skip,
                Some(2) => Action::Refuse {
                    code: code.map_or(RefuseCode::Other, RefuseCode::from_u8),
                    reason: reason.unwrap_or_else(|| "refused".into()),
                },
                Some(3) => Action::Done,
                other => bail!("reply with unknown action {other:?}"),
            };
            Ok(Reply { id, action })
        })
    }
}

impl Begin {
    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::default();
        f.put_u64(1, self.id);
        f.put(2, &self.path);
        f.0
    }

    pub fn decode(body: &[u8]) -> Result<Self> {
        Decoded::read(body, |f| {
            Ok(Begin {
                id: f.need(1, as_u64, "begin without an id")?,
                path: f.need(2, as_path, "begin without a path")?,
            })
        })
    }
}

impl FileEnd {
    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fields::default();
        f.put_u64(1, self.id);
        f.put_u64(2, self.sent);
        if let Some(d) = &self.sha256 {
            f.put(3, d);
        }
        if let Some(why) = &self.failed {
            f.put(4, &clip(why));
        }
        f.0
    }

    pub fn decode(body: &[u8]) -> Result<Self> {
        Decoded::read(body, |f| {
            Ok(FileEnd {
                id: f.need(1, as_u64, "file end without an id")?,
                sent: f.get(2, as_u64)?.unwrap_or(0),
                sha256: f.get(3, as_digest)?,
                failed: f.get(4, as_message)?,
            })
        })
    }
}

/// FILE RESULT: a RESULT body plus the entry's id (tag 6).
pub fn encode_file_result(id: u64, outcome: &Outcome) -> Vec<u8> {
    let mut body = outcome.encode();
    let mut f = Fields::default();
    f.put_u64(6, id);
    body.extend_from_slice(&f.0);
    body
}

pub fn decode_file_result(body: &[u8]) -> Result<(u64, Outcome)> {
    let (id, rest) = Decoded::read(body, |f| {
        Ok((f.need(6, as_u64, "file result without an id")?, f.rest()))
    })?;
    Ok((id, Outcome::decode(&rest)?))
}

/// FILE HASHES: the entry's id, then a HASHES body.
pub fn encode_file_hashes(id: u64, blocks: &[BlockHash], last: bool) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    body.extend_from_slice(&encode_hashes(blocks, last));
    body
}

pub fn decode_file_hashes(body: &[u8]) -> Result<(u64, Vec<BlockHash>, bool)> {
    ensure!(body.len() >= 8, "FILE HASHES frame without an id");
    let id = u64::from_be_bytes(body[..8].try_into().expect("8 bytes"));
    let (blocks, last) = decode_hashes(&body[8..])?;
    Ok((id, blocks, last))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Status;

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
