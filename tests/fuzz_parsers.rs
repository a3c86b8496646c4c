//! Deterministic mutation fuzzing of every parser that reads untrusted input (wire frames, held records on disk, sizes, addresses, names), with a kept corpus in tests/corpus/<parser>/.
//!
//! cargo-fuzz needs a nightly toolchain; this runs on stable inside `cargo
//! test`. Each parser starts from valid encodings (seeds) and the files of
//! its corpus directory, then mutates them (bit flips, interesting values,
//! truncation, deletion, insertion, duplication, splices, tweaks of the
//! tag-length-value structure). Every input must parse or fail without
//! panicking, never allocate more than the protocol's bounds allow or in
//! proportion to a length it claims rather than to its real size, and a
//! successful parse must satisfy the parser's invariants (ranges inside the
//! size, names that stay one path component, encode/decode round trips).
//!
//! Coverage proxy: an input whose outcome (its error message with numbers
//! and quoted text masked, or the shape of what it decoded to) was not
//! seen before joins the pool of inputs to mutate.
//!
//! - `ZC_FUZZ_ITERS=N`: mutations per parser (default 20000).
//! - `ZC_FUZZ_SEED=N`: another PRNG seed (default fixed).
//! - `ZC_FUZZ_SAVE=1`: write inputs with new outcomes into tests/corpus/.
//!
//! An input that makes a parser panic or break a bound is always written
//! to tests/corpus/<parser>/crash-<hash> before the test fails.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashSet;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use zc::held::Record;
use zc::protocol::tree::{
    self, Action, Begin, Entry, EntryKind, FileEnd, Manifest, Reply, TreeEnd, TreeOffer,
};
use zc::protocol::{
    self as proto, kind, Answer, BlockHash, Frame, Outcome, RefuseCode, Status, ToReceiver,
    ToSender,
};

// ---------------------------------------------------------------------------
// Allocation accounting: the largest single allocation made by this thread
// while a parser runs.

struct Counting;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = TRACKING.try_with(|on| {
        if on.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// bookkeeping touches only const-initialised thread-locals without
// destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f`, returning its result and the largest single allocation it made.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    TRACKING.with(|t| t.set(true));
    let out = f();
    TRACKING.with(|t| t.set(false));
    (out, LARGEST.with(|l| l.get()))
}

/// What any parse may allocate at once: a bounded frame body (64 KiB, the
/// protocol's cap on a claimed length) plus a multiple of the input's real
/// size (field lists, copies of text). Nothing may follow a claimed length
/// past that.
fn allowed(input_len: usize) -> usize {
    proto::MAX_FRAME as usize + 4096 + 32 * input_len
}

// ---------------------------------------------------------------------------
// PRNG

/// xorshift64*: fixed seed, same inputs on every run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------
// Targets

/// One parser: how to seed it, how to run it on bytes, where its TLV
/// fields start (for structure-aware tweaks), and whether it reads text.
struct Target {
    name: &'static str,
    seeds: fn() -> Vec<Vec<u8>>,
    /// `Ok(shape)` or `Err(message)`; a broken invariant panics.
    run: fn(&[u8]) -> Result<String, String>,
    /// Offset of the first TLV field in a typical input, if it has any.
    fields_at: Option<usize>,
    text: bool,
}

/// `+name` or `-name`: shapes are words, as digits are masked.
fn flag(name: &str, on: bool) -> String {
    format!("{}{name}", if on { '+' } else { '-' })
}

fn text_of(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// The OFFER of one file named on the command line: a tree of one.
fn sample_offer() -> TreeOffer {
    TreeOffer {
        entries: 1,
        bytes: 1 << 20,
        verify: true,
        resume: true,
        fresh: false,
        nonce: Some([7; 32]),
        single: true,
        streamed: false,
    }
}

/// That file's ENTRY: 1 MiB of it from 4096 on (`--offset`/`--count`).
fn sample_entry() -> Entry {
    Entry {
        id: 0,
        path: b"big.iso".to_vec(),
        kind: EntryKind::File,
        size: 1 << 30,
        mode: 0o644,
        mtime_ns: 1_795_381_167_797_381_860,
        target: Vec::new(),
        range: Some((4096, 4096 + (1 << 20))),
        stream: false,
    }
}

fn sample_file_end() -> FileEnd {
    FileEnd {
        id: 0,
        sent: 1 << 20,
        sha256: Some([1; 32]),
        failed: None,
    }
}

/// A field list written by hand: what no encoder here writes.
fn tlv(fields: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (tag, value) in fields {
        out.push(*tag);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value);
    }
    out
}

fn seeds_preamble() -> Vec<Vec<u8>> {
    let mut ok = Vec::new();
    proto::write_preamble(&mut ok).unwrap();
    let mut v2 = ok.clone();
    v2[5] = 2;
    vec![ok, v2, b"GET / HTTP/1.1\r\n".to_vec(), b"ZCP".to_vec()]
}

fn run_preamble(data: &[u8]) -> Result<String, String> {
    proto::read_preamble(&mut &data[..])
        .map(|v| {
            match v {
                1 => "this version",
                _ => "another version",
            }
            .to_string()
        })
        .map_err(|e| format!("{e:#}"))
}

fn frame_bytes(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    proto::write_frame(&mut v, kind, body).unwrap();
    v
}

fn seeds_frames() -> Vec<Vec<u8>> {
    let offer = frame_bytes(kind::OFFER, &sample_offer().encode());
    let entry = frame_bytes(kind::ENTRY, &sample_entry().encode());
    let manifest = Manifest {
        entries: 1,
        failed: 0,
    };
    let manifest = frame_bytes(kind::MANIFEST, &manifest.encode());
    let begin = Begin {
        id: 0,
        path: b"big.iso".to_vec(),
    };
    let begin = frame_bytes(kind::BEGIN, &begin.encode());
    let mut data = proto::data_header(4096, 5).to_vec();
    data.extend_from_slice(b"hello");
    let file_end = frame_bytes(kind::FILE_END, &sample_file_end().encode());
    let end = frame_bytes(kind::END, &TreeEnd { sent: 5, failed: 0 }.encode());
    vec![
        offer.clone(),
        [
            offer,
            entry,
            manifest,
            begin,
            data.clone(),
            file_end,
            end.clone(),
        ]
        .concat(),
        frame_bytes(kind::KEEPALIVE, &[]),
        frame_bytes(kind::STOP, &[]),
        data,
        end,
    ]
}

fn run_frames(data: &[u8]) -> Result<String, String> {
    let mut r = data;
    let mut first = None;
    let mut count = 0;
    while count < 64 {
        match proto::read_frame(&mut r) {
            Ok(f) => {
                assert!(f.body.len() <= proto::MAX_FRAME as usize);
                first.get_or_insert(f.kind);
                count += 1;
            }
            Err(e) => {
                let first = match first {
                    Some(k) if KINDS.contains(&k) => (k as char).to_string(),
                    Some(_) => "another kind".into(),
                    None => "nothing".into(),
                };
                let frames = ["no frame", "one frame", "frames"][count.min(2)];
                return Err(format!("{frames}, first {first}: {e:#}"));
            }
        }
    }
    Ok("64 frames".into())
}

fn seeds_data() -> Vec<Vec<u8>> {
    let body = |o: u64, l: u64| [o.to_be_bytes(), l.to_be_bytes()].concat();
    vec![body(0, 5), body(1 << 40, 4 << 20), body(u64::MAX, 0)]
}

fn run_data(data: &[u8]) -> Result<String, String> {
    match proto::parse_data(data) {
        Ok((offset, len)) => {
            assert!(offset.checked_add(len).is_some(), "DATA past 2^64 accepted");
            Ok("ok".into())
        }
        Err(e) => Err(format!("{e:#}")),
    }
}

fn seeds_tree_offer() -> Vec<Vec<u8>> {
    let tree = TreeOffer {
        entries: 12_345,
        bytes: 1 << 40,
        verify: false,
        resume: false,
        fresh: true,
        nonce: None,
        single: false,
        streamed: true,
    };
    // a single file's OFFER from before trees, and a tree offer carrying
    // one of its fields
    let old = tlv(&[
        (1, b"big.iso"),
        (2, &(1u64 << 30).to_be_bytes()),
        (3, &0u64.to_be_bytes()),
    ]);
    let mixed = [sample_offer().encode(), tlv(&[(4, &5u64.to_be_bytes())])].concat();
    vec![
        sample_offer().encode(),
        tree.encode(),
        TreeOffer::default().encode(),
        old,
        mixed,
    ]
}

fn run_tree_offer(data: &[u8]) -> Result<String, String> {
    let o = TreeOffer::decode(data).map_err(|e| format!("{e:#}"))?;
    assert!(
        tree::is_tree(data),
        "accepted without the tree field: {o:?}"
    );
    assert_eq!(
        TreeOffer::decode(&o.encode()).ok().as_ref(),
        Some(&o),
        "an accepted tree offer does not round-trip"
    );
    Ok([
        flag("single", o.single),
        flag("nonce", o.nonce.is_some()),
        flag("resume", o.resume),
        flag("fresh", o.fresh),
    ]
    .join(" "))
}

fn seeds_entry() -> Vec<Vec<u8>> {
    let file = sample_entry();
    let whole = Entry {
        range: None,
        ..file.clone()
    };
    let stream = Entry {
        size: 0,
        range: None,
        stream: true,
        ..file.clone()
    };
    let capped = Entry {
        range: Some((0, 1 << 20)),
        ..stream.clone()
    };
    let dir = Entry {
        id: 1,
        path: b"top/sub".to_vec(),
        kind: EntryKind::Dir,
        size: 0,
        mode: 0o755,
        range: None,
        ..file.clone()
    };
    let link = Entry {
        id: 2,
        path: b"top/a\nb/\xff-x".to_vec(),
        kind: EntryKind::Link,
        target: b"../x".to_vec(),
        ..dir.clone()
    };
    [file, whole, stream, capped, dir, link]
        .iter()
        .map(Entry::encode)
        .collect()
}

fn run_entry(data: &[u8]) -> Result<String, String> {
    let e = Entry::decode(data).map_err(|e| format!("{e:#}"))?;
    assert!(e.path.len() <= tree::MAX_PATH, "path over the bound");
    assert!(e.target.len() <= tree::MAX_PATH, "target over the bound");
    assert!(
        e.mode <= 0o777,
        "mode {:o} has more than permission bits",
        e.mode
    );
    match e.kind {
        EntryKind::File => {
            if let Some((start, end)) = e.range {
                assert!(start <= end, "a backwards range: {e:?}");
                assert!(e.stream || end <= e.size, "a range past the size: {e:?}");
            }
            let (start, end) = e.offered();
            assert!(start <= end && (e.stream || end <= e.size), "{e:?}");
        }
        EntryKind::Dir | EntryKind::Link => assert!(
            e.range.is_none() && !e.stream,
            "a range or a stream on a {:?}: {e:?}",
            e.kind
        ),
    }
    if e.kind == EntryKind::Link {
        assert!(!e.target.is_empty(), "a link without a target");
    }
    assert_eq!(
        Entry::decode(&e.encode()).ok().as_ref(),
        Some(&e),
        "an accepted entry does not round-trip"
    );
    Ok(format!(
        "{:?} {} {}",
        e.kind,
        flag("range", e.range.is_some()),
        flag("stream", e.stream)
    ))
}

fn seeds_reply() -> Vec<Vec<u8>> {
    let reply = |id, action| Reply { id, action }.encode();
    vec![
        reply(
            0,
            Action::Send {
                held: vec![(0, 4 << 20), (8 << 20, 9 << 20)],
                hashes: true,
            },
        ),
        reply(
            1,
            Action::Send {
                held: vec![],
                hashes: false,
            },
        ),
        reply(2, Action::Skip),
        reply(3, Action::Done),
        reply(
            4,
            Action::Refuse {
                code: RefuseCode::Exists,
                reason: "top/a exists".into(),
            },
        ),
    ]
}

fn run_reply(data: &[u8]) -> Result<String, String> {
    let r = Reply::decode(data).map_err(|e| format!("{e:#}"))?;
    let shape = match &r.action {
        Action::Send { held, hashes } => {
            assert!(
                held.len() <= proto::MAX_RANGES,
                "{} held ranges, over the bound of {}",
                held.len(),
                proto::MAX_RANGES
            );
            assert!(held.iter().all(|(s, e)| s <= e), "backwards range");
            format!(
                "send {} {}",
                ["no ranges", "one range", "ranges"][held.len().min(2)],
                flag("hashes", *hashes)
            )
        }
        Action::Skip => "skip".into(),
        Action::Done => "done".into(),
        Action::Refuse { code, reason } => {
            assert!(reason.len() <= proto::MAX_MESSAGE);
            format!("refuse {code:?}")
        }
    };
    assert_eq!(
        Reply::decode(&r.encode()).ok().as_ref(),
        Some(&r),
        "an accepted reply does not round-trip"
    );
    Ok(shape)
}

fn seeds_answer() -> Vec<Vec<u8>> {
    vec![
        Answer::Accept {
            held: vec![(0, 5), (9, 10)],
            hashes: true,
        }
        .encode(),
        Answer::Accept {
            held: vec![],
            hashes: false,
        }
        .encode(),
        Answer::Refuse {
            code: RefuseCode::NoSpace,
            reason: "big.iso needs 4.0 GiB but /srv has 1.0 GiB free".into(),
        }
        .encode(),
    ]
}

fn run_answer(data: &[u8]) -> Result<String, String> {
    let a = Answer::decode(data).map_err(|e| format!("{e:#}"))?;
    match &a {
        Answer::Accept { held, hashes } => {
            assert!(held.iter().all(|(s, e)| s <= e), "backwards range");
            // Known bug (see answer_held_ranges_are_bounded_across_fields):
            // repeated HELD fields add up past MAX_RANGES. Reported, not
            // failed on here, so the rest keeps being fuzzed.
            if held.len() > proto::MAX_RANGES {
                return Ok("accept over the range bound (known bug)".into());
            }
            assert_eq!(
                Answer::decode(&a.encode()).ok().as_ref(),
                Some(&a),
                "an accepted answer does not round-trip"
            );
            Ok(format!(
                "accept {} {}",
                ["no ranges", "one range", "ranges"][held.len().min(2)],
                flag("hashes", *hashes)
            ))
        }
        Answer::Refuse { code, reason } => {
            assert!(reason.len() <= proto::MAX_MESSAGE);
            assert_eq!(Answer::decode(&a.encode()).ok().as_ref(), Some(&a));
            Ok(format!("refuse {code:?}"))
        }
    }
}

fn seeds_file_end() -> Vec<Vec<u8>> {
    let failed = FileEnd {
        id: 7,
        sent: 1 << 40,
        sha256: None,
        failed: Some("top/a: Input/output error".into()),
    };
    vec![sample_file_end().encode(), failed.encode()]
}

fn run_file_end(data: &[u8]) -> Result<String, String> {
    let e = FileEnd::decode(data).map_err(|e| format!("{e:#}"))?;
    if let Some(why) = &e.failed {
        assert!(why.len() <= proto::MAX_MESSAGE);
    }
    assert_eq!(
        FileEnd::decode(&e.encode()).ok().as_ref(),
        Some(&e),
        "an accepted FILE END does not round-trip"
    );
    Ok(format!(
        "{} {}",
        flag("sha", e.sha256.is_some()),
        flag("failed", e.failed.is_some())
    ))
}

fn seeds_outcome() -> Vec<Vec<u8>> {
    vec![
        Outcome {
            status: Status::Ok,
            sha256: Some([3; 32]),
            held: 1 << 30,
            message: Default::default(),
            mac: Some([4; 32]),
        }
        .encode(),
        Outcome {
            status: Status::Failed,
            sha256: None,
            held: 8 << 20,
            message: "out/big: No space left on device".into(),
            mac: None,
        }
        .encode(),
    ]
}

fn run_outcome(data: &[u8]) -> Result<String, String> {
    let o = Outcome::decode(data).map_err(|e| format!("{e:#}"))?;
    assert!(o.message.len() <= proto::MAX_MESSAGE);
    assert_eq!(Outcome::decode(&o.encode()).ok().as_ref(), Some(&o));
    Ok(format!(
        "{:?} {} {}",
        o.status,
        flag("sha", o.sha256.is_some()),
        flag("mac", o.mac.is_some())
    ))
}

fn seeds_hashes() -> Vec<Vec<u8>> {
    let b = |offset, len| BlockHash {
        offset,
        len,
        sha256: [5; 32],
    };
    vec![
        proto::encode_hashes(&[b(0, 4 << 20), b(4 << 20, 100)], true),
        proto::encode_hashes(&[], false),
        proto::encode_hashes(&[b(u64::MAX - 10, 10)], false),
    ]
}

fn run_hashes(data: &[u8]) -> Result<String, String> {
    let (blocks, last) = proto::decode_hashes(data).map_err(|e| format!("{e:#}"))?;
    assert!(blocks.len() <= proto::MAX_HASHES);
    for b in &blocks {
        assert!(b.len > 0 && b.len as u64 <= proto::BLOCK, "{b:?}");
        assert!(b.offset.checked_add(b.len as u64).is_some(), "{b:?}");
    }
    let again = proto::decode_hashes(&proto::encode_hashes(&blocks, last)).unwrap();
    assert_eq!(again, (blocks.clone(), last), "HASHES do not round-trip");
    Ok(format!(
        "{} {}",
        ["no blocks", "one block", "blocks"][blocks.len().min(2)],
        flag("last", last)
    ))
}

/// The kinds of a session's frames, and `H`, which was the single file's
/// HASHES and is no frame any more.
const KINDS: [u8; 18] = [
    kind::OFFER,
    kind::ANSWER,
    kind::DATA,
    kind::END,
    kind::RESULT,
    kind::KEEPALIVE,
    kind::STOP,
    kind::CHALLENGE,
    kind::PROOF,
    kind::ENTRY,
    kind::MANIFEST,
    kind::REPLY,
    kind::FILE_HASHES,
    kind::GO,
    kind::BEGIN,
    kind::FILE_END,
    kind::FILE_RESULT,
    b'H',
];

/// Input: the kind byte, then the body.
fn seeds_message() -> Vec<Vec<u8>> {
    let outcome = Outcome {
        status: Status::Ok,
        sha256: Some([3; 32]),
        held: 1 << 20,
        message: Default::default(),
        mac: Some([4; 32]),
    };
    let blocks = vec![BlockHash {
        offset: 4096,
        len: 4 << 20,
        sha256: [5; 32],
    }];
    let to_sender = [
        ToSender::Answer(Answer::Accept {
            held: vec![],
            hashes: false,
        }),
        ToSender::Challenge(vec![9; 32]),
        ToSender::Reply(Reply {
            id: 0,
            action: Action::Send {
                held: vec![(0, 5)],
                hashes: true,
            },
        }),
        ToSender::FileHashes(0, blocks, true),
        ToSender::Go,
        ToSender::FileResult(0, outcome.clone()),
        ToSender::Result(outcome),
    ];
    let to_receiver = [
        ToReceiver::Proof(vec![8; 32]),
        ToReceiver::Entry(sample_entry()),
        ToReceiver::Manifest(Manifest {
            entries: 1,
            failed: 0,
        }),
        ToReceiver::Begin(Begin {
            id: 0,
            path: b"big.iso".to_vec(),
        }),
        ToReceiver::Data {
            offset: 4096,
            len: 1 << 20,
        },
        ToReceiver::FileEnd(sample_file_end()),
        ToReceiver::End(TreeEnd {
            sent: 1 << 20,
            failed: 0,
        }),
        ToReceiver::Stop,
        ToReceiver::Keepalive,
    ];
    let frame = |(kind, body): (u8, Vec<u8>)| [vec![kind], body].concat();
    let mut seeds: Vec<Vec<u8>> = to_sender.iter().map(|m| frame(m.encode())).collect();
    seeds.extend(to_receiver.iter().map(|m| frame(m.encode())));
    // every kind with an empty body, and the OFFER's (not a message)
    seeds.extend(KINDS.iter().map(|&k| vec![k]));
    seeds.push([vec![kind::OFFER], sample_offer().encode()].concat());
    seeds
}

/// A frame typed as either side reads it.
#[derive(Debug, PartialEq)]
enum Typed {
    ToSender(ToSender),
    ToReceiver(ToReceiver),
}

impl Typed {
    /// The sender's reading first; a frame only the receiver reads as
    /// the receiver does (KEEPALIVE, the one both take, is the sender's).
    fn decode(frame: &Frame) -> Result<Typed, String> {
        match ToSender::decode(frame) {
            Ok(m) => Ok(Typed::ToSender(m)),
            Err(to_sender) => match ToReceiver::decode(frame) {
                Ok(m) => Ok(Typed::ToReceiver(m)),
                // the error of the side the kind belongs to
                Err(e) if format!("{to_sender}").starts_with("unexpected ") => {
                    Err(format!("{e:#}"))
                }
                Err(_) => Err(format!("{to_sender:#}")),
            },
        }
    }

    fn encode(&self) -> (u8, Vec<u8>) {
        match self {
            Typed::ToSender(m) => m.encode(),
            Typed::ToReceiver(m) => m.encode(),
        }
    }

    fn name(&self) -> String {
        let name = match self {
            Typed::ToSender(m) => m.name(),
            Typed::ToReceiver(m) => m.name(),
        };
        name.to_lowercase()
    }
}

fn run_message(data: &[u8]) -> Result<String, String> {
    let Some((&kind, body)) = data.split_first() else {
        return Err("no kind".into());
    };
    let what = match kind {
        k if KINDS.contains(&k) => format!("kind {}", k as char),
        _ => "another kind".into(),
    };
    // read_frame never hands over a longer body (one outcome for all
    // kinds, so the corpus keeps one such input, not one per kind)
    if body.len() > proto::MAX_FRAME as usize {
        return Err("over the frame bound".into());
    }
    let frame = Frame {
        kind,
        body: body.to_vec(),
    };
    let m = Typed::decode(&frame).map_err(|e| format!("{what}: {e}"))?;
    let (again, body) = m.encode();
    assert_eq!(again, kind, "{what} decodes to a message of another kind");
    assert!(
        body.len() <= proto::MAX_FRAME as usize,
        "{what}: re-encoded over the bound"
    );
    let back = Typed::decode(&Frame { kind, body });
    assert_eq!(
        back.ok().as_ref(),
        Some(&m),
        "an accepted {what} does not round-trip"
    );
    Ok(format!("{what}: {}", m.name()))
}

fn sample_record(held: &[(u64, u64)], mtime: Option<u64>, name: &str) -> Vec<u8> {
    // The record's text format, as docs/PROTOCOL.md shows it.
    let ranges: Vec<String> = held.iter().map(|(a, b)| format!("{a}-{b}")).collect();
    let mtime = mtime.map_or("-".to_string(), |m| m.to_string());
    format!(
        "zc-held 1\nsize 200000000\nmtime {mtime}\nheld {}\nname {name}\n",
        ranges.join(" ")
    )
    .into_bytes()
}

fn seeds_record() -> Vec<Vec<u8>> {
    vec![
        sample_record(
            &[(0, 10_023_616)],
            Some(1_795_381_167_797_381_860),
            "big.bin",
        ),
        sample_record(&[(0, 5), (10, 20), (30, 40)], None, "a b"),
        sample_record(&[], Some(0), "x"),
    ]
}

/// How far `text` follows the record's layout, line by line: a stand-in
/// for the path `Record::decode` took, which only says yes or no.
fn record_progress(text: &str) -> usize {
    let mut lines = text.lines();
    let expect: [fn(&str) -> bool; 5] = [
        |l| l == "zc-held 1",
        |l| {
            l.strip_prefix("size ")
                .is_some_and(|v| v.parse::<u64>().is_ok())
        },
        |l| {
            l.strip_prefix("mtime ")
                .is_some_and(|v| v == "-" || v.parse::<u64>().is_ok())
        },
        |l| {
            l.strip_prefix("held").is_some_and(|v| {
                v.split_whitespace().all(|p| {
                    p.split_once('-')
                        .is_some_and(|(a, b)| a.parse::<u64>().is_ok() && b.parse::<u64>().is_ok())
                })
            })
        },
        |l| l.starts_with("name "),
    ];
    expect
        .iter()
        .take_while(|ok| lines.next().is_some_and(ok))
        .count()
}

fn run_record(data: &[u8]) -> Result<String, String> {
    let text = text_of(data);
    let progress = record_progress(&text);
    match Record::decode(&text) {
        Some(rec) => {
            assert_eq!(progress, 5, "accepted a record off its layout: {text:?}");
            let size = rec.source.size;
            let pairs = rec.held.pairs();
            assert!(pairs.len() <= 4096, "{} ranges", pairs.len());
            for &(a, b) in pairs {
                assert!(a < b && b <= size, "range {a}..{b} of a {size}-byte file");
            }
            assert!(pairs.windows(2).all(|w| w[0].1 < w[1].0), "unmerged ranges");
            Ok(format!(
                "some {} {}",
                ["no ranges", "one range", "ranges"][pairs.len().min(2)],
                flag("mtime", rec.source.mtime_ns.is_some())
            ))
        }
        None => Err(format!(
            "none after {}",
            ["nothing", "header", "size", "mtime", "held", "name"][progress]
        )),
    }
}

fn seeds_size() -> Vec<Vec<u8>> {
    [
        "0",
        "4095",
        "1.5G",
        "4KiB",
        "10MB",
        "2 MiB",
        "18446744073709551615",
        "16777216T",
        "0.5k",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn run_size(data: &[u8]) -> Result<String, String> {
    let text = text_of(data);
    let v = zc::units::parse_size(&text)?;
    if let Ok(plain) = text.trim().parse::<u64>() {
        assert_eq!(v, plain, "{text:?}");
    }
    assert_eq!(zc::units::parse_size(&v.to_string()), Ok(v));
    Ok("ok".into())
}

fn seeds_host_port() -> Vec<Vec<u8>> {
    [
        "a.b:9",
        "[::1]:9000",
        "127.0.0.1:0",
        "host",
        "[fe80::1%eth0]:22",
        "::1:9000",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn run_host_port(data: &[u8]) -> Result<String, String> {
    let text = text_of(data);
    match zc::net::split_host_port(&text) {
        Ok((host, port)) => {
            assert!(!host.is_empty(), "{text:?}");
            let bracketed = text.starts_with('[');
            assert!(bracketed || !host.contains(':'), "{text:?}: host {host:?}");
            // the port is the digits after the last ':' (u16's parser also
            // takes a leading '+': "host:+22" is port 22)
            let digits = text.rsplit(':').next().unwrap_or("");
            let digits = digits.strip_prefix('+').unwrap_or(digits);
            assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(
                text.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()),
                Some(port)
            );
            Ok(if bracketed { "ok v6" } else { "ok" }.into())
        }
        Err(e) => Err(format!("{e:#}")),
    }
}

fn seeds_name() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = [
        "big.iso",
        "dat a-1.tar.gz",
        "..",
        "../x",
        "a\\b",
        "x.zcpart",
        "ünï €",
        "CON",
        // C1 controls (CSI, OSC, NEL) and a bidi override, as UTF-8
        "csi\u{9b}2J",
        "osc\u{9d}0;t\u{9c}",
        "\u{85}next",
        "rtl\u{202e}txt.exe",
        "a\tb\nc",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    // not UTF-8: Latin-1, and a lone C1 byte
    seeds.extend([b"caf\xe9.bin".to_vec(), b"x\x9b2J".to_vec()]);
    seeds
}

/// The name of a file sent alone, as the receiver checks it: the bytes off
/// the wire.
fn run_name(data: &[u8]) -> Result<String, String> {
    zc::output::check_wire_name(data)?;
    let name = std::str::from_utf8(data).expect("an accepted name is UTF-8");
    let name = name.to_string();
    // An accepted name stays one plain component inside the directory.
    let dir = Path::new("/srv/out");
    let joined = dir.join(&name);
    assert_eq!(joined.parent(), Some(dir), "{name:?} leaves the directory");
    assert_eq!(
        joined.file_name().and_then(|n| n.to_str()),
        Some(name.as_str()),
        "{name:?} is not a single component"
    );
    assert!(!name.is_empty() && name.len() <= proto::MAX_NAME);
    assert!(name != "." && name != "..");
    assert!(!name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\'));
    assert!(!name.ends_with(".zcpart") && !name.contains(".zcpart.held"));
    Ok("ok".into())
}

fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "preamble",
            seeds: seeds_preamble,
            run: run_preamble,
            fields_at: None,
            text: false,
        },
        Target {
            name: "frame",
            seeds: seeds_frames,
            run: run_frames,
            fields_at: Some(5),
            text: false,
        },
        Target {
            name: "data",
            seeds: seeds_data,
            run: run_data,
            fields_at: None,
            text: false,
        },
        Target {
            name: "tree_offer",
            seeds: seeds_tree_offer,
            run: run_tree_offer,
            fields_at: Some(0),
            text: false,
        },
        Target {
            name: "entry",
            seeds: seeds_entry,
            run: run_entry,
            fields_at: Some(0),
            text: false,
        },
        Target {
            name: "reply",
            seeds: seeds_reply,
            run: run_reply,
            fields_at: Some(0),
            text: false,
        },
        Target {
            name: "answer",
            seeds: seeds_answer,
            run: run_answer,
            fields_at: Some(0),
            text: false,
        },
        Target {
            name: "file_end",
            seeds: seeds_file_end,
            run: run_file_end,
            fields_at: Some(0),
            text: false,
        },
        Target {
            name: "outcome",
            seeds: seeds_outcome,
            run: run_outcome,
            fields_at: Some(0),
            text: false,
        },
        Target {
            name: "hashes",
            seeds: seeds_hashes,
            run: run_hashes,
            fields_at: None,
            text: false,
        },
        Target {
            name: "message",
            seeds: seeds_message,
            run: run_message,
            fields_at: Some(1),
            text: false,
        },
        Target {
            name: "held_record",
            seeds: seeds_record,
            run: run_record,
            fields_at: None,
            text: true,
        },
        Target {
            name: "parse_size",
            seeds: seeds_size,
            run: run_size,
            fields_at: None,
            text: true,
        },
        Target {
            name: "split_host_port",
            seeds: seeds_host_port,
            run: run_host_port,
            fields_at: None,
            text: true,
        },
        Target {
            name: "check_name",
            seeds: seeds_name,
            run: run_name,
            fields_at: None,
            text: true,
        },
    ]
}

// ---------------------------------------------------------------------------
// Mutations

const BYTES: [u8; 14] = [
    0, 1, 2, 3, 4, 5, 0x7f, 0x80, 0x89, 0x90, 0xff, b'.', b'/', b'\\',
];
const U16S: [u16; 6] = [0, 1, 8, 32, 0x7fff, 0xffff];
const U32S: [u32; 8] = [0, 1, 15, 16, 17, 65536, 65537, u32::MAX];
const U64S: [u64; 9] = [
    0,
    1,
    4 << 20,
    (4 << 20) + 1,
    1 << 62,
    1 << 63,
    u64::MAX - 1,
    u64::MAX,
    i64::MAX as u64,
];
const TEXT: [&str; 32] = [
    "0",
    "1",
    "9",
    ".",
    ":",
    "[",
    "]",
    "K",
    "M",
    "G",
    "T",
    "i",
    "B",
    "k",
    " ",
    "/",
    "\\",
    "\0",
    "\n",
    "-",
    "é",
    "\u{202e}",
    "\u{85}",
    "..",
    ".zcpart",
    "held ",
    "size ",
    "mtime ",
    "name ",
    "18446744073709551616",
    "e",
    "%",
];

/// Offsets of the length fields of a TLV list starting at `at`.
fn tlv_lengths(data: &[u8], mut at: usize) -> Vec<usize> {
    let mut out = Vec::new();
    while at + 3 <= data.len() && out.len() < 64 {
        out.push(at + 1);
        let len = u16::from_be_bytes([data[at + 1], data[at + 2]]) as usize;
        at += 3 + len;
    }
    out
}

fn mutate(rng: &mut Rng, input: &[u8], pool: &[Vec<u8>], t: &Target) -> Vec<u8> {
    let mut d = input.to_vec();
    let steps = 1 + rng.below(4);
    for _ in 0..steps {
        let len = d.len();
        match rng.below(if t.text { 15 } else { 13 }) {
            0 if len > 0 => {
                let i = rng.below(len);
                d[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                d[i] = *rng.pick(&BYTES);
            }
            2 => d.truncate(rng.below(len + 1)),
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(16)).min(len);
                d.drain(a..b);
            }
            4 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let extra: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                d.splice(at..at, extra);
            }
            5 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                let copy = d[a..b].to_vec();
                let at = rng.below(len + 1);
                d.splice(at..at, copy);
            }
            6 => {
                let other = rng.pick(pool);
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                d.truncate(cut);
                d.extend_from_slice(&other[from..]);
            }
            7 if len >= 2 => {
                let i = rng.below(len - 1);
                d[i..i + 2].copy_from_slice(&rng.pick(&U16S).to_be_bytes());
            }
            8 if len >= 4 => {
                let i = rng.below(len - 3);
                d[i..i + 4].copy_from_slice(&rng.pick(&U32S).to_be_bytes());
            }
            9 if len >= 8 => {
                let i = rng.below(len - 7);
                d[i..i + 8].copy_from_slice(&rng.pick(&U64S).to_be_bytes());
            }
            10 => {
                // structure-aware: a TLV length or tag
                if let Some(start) = t.fields_at {
                    let lens = tlv_lengths(&d, start);
                    if !lens.is_empty() {
                        let at = *rng.pick(&lens);
                        let cur = u16::from_be_bytes([d[at], d[at + 1]]);
                        let new = match rng.below(5) {
                            0 => cur.wrapping_add(1),
                            1 => cur.wrapping_sub(1),
                            2 => *rng.pick(&U16S),
                            3 => {
                                d[at - 1] = match rng.below(3) {
                                    0 => rng.below(10) as u8,
                                    1 => 0x80 | rng.below(16) as u8,
                                    _ => rng.next() as u8,
                                };
                                cur
                            }
                            _ => rng.next() as u16,
                        };
                        d[at..at + 2].copy_from_slice(&new.to_be_bytes());
                    }
                }
            }
            11 => {
                let n = 1 + rng.below(64);
                d.extend((0..n).map(|_| rng.next() as u8));
            }
            12 if len > 0 => {
                // repeat a field-sized chunk many times (bounds on counts)
                let a = rng.below(len);
                let b = (a + 1 + rng.below(48)).min(len);
                let chunk = d[a..b].to_vec();
                for _ in 0..rng.below(2000) {
                    d.extend_from_slice(&chunk);
                }
            }
            13 | 14 => {
                let piece = rng.pick(&TEXT).as_bytes().to_vec();
                let at = rng.below(len + 1);
                d.splice(at..at, piece);
            }
            _ => {}
        }
        if d.len() > 200_000 {
            d.truncate(200_000);
        }
    }
    d
}

/// Masks what varies in a message (quoted input, numbers, hex) so that the
/// set of outcomes stays a set of code paths: the text before the first
/// quote and after the last one, with digit runs as `N`.
fn signature(result: &Result<String, String>) -> String {
    let (tag, text) = match result {
        Ok(s) => ("ok", s.as_str()),
        Err(s) => ("err", s.as_str()),
    };
    let quote = |c: char| c == '\'' || c == '"';
    let text = match (text.find(quote), text.rfind(quote)) {
        (Some(a), Some(b)) => format!("{}…{}", &text[..a], &text[b + 1..]),
        _ => text.to_string(),
    };
    let mut out = String::new();
    let mut in_number = false;
    for c in text.chars().take(160) {
        let digit = c.is_ascii_digit() || (in_number && (c.is_ascii_hexdigit() || c == 'x'));
        if digit {
            if !in_number {
                out.push('N');
            }
        } else {
            out.push(c);
        }
        in_number = digit;
    }
    format!("{tag}: {out}")
}

fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name)
}

fn save(name: &str, prefix: &str, data: &[u8]) -> PathBuf {
    let dir = corpus_dir(name);
    let _ = fs::create_dir_all(&dir);
    let path = dir.join(format!("{prefix}{:016x}", fnv(data)));
    let _ = fs::write(&path, data);
    path
}

fn load_corpus(name: &str) -> Vec<Vec<u8>> {
    let Ok(entries) = fs::read_dir(corpus_dir(name)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    files.into_iter().filter_map(|p| fs::read(p).ok()).collect()
}

/// Runs one input through a target: no panic, no allocation past the
/// bound. A failing input is saved as a crash and the test fails.
fn check(t: &Target, data: &[u8]) -> Result<String, String> {
    let run = t.run;
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| measured(|| run(data))));
    match outcome {
        Ok((result, largest)) => {
            if largest > allowed(data.len()) {
                let path = save(t.name, "crash-", data);
                panic!(
                    "{}: a {}-byte input made a {largest}-byte allocation (bound {}); saved as {}",
                    t.name,
                    data.len(),
                    allowed(data.len()),
                    path.display()
                );
            }
            result
        }
        Err(cause) => {
            let path = save(t.name, "crash-", data);
            let why = cause
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| cause.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!(
                "{}: input {:?} broke the parser ({why}); saved as {}",
                t.name,
                &data[..data.len().min(200)],
                path.display()
            );
        }
    }
}

struct Stats {
    iterations: u64,
    replayed: usize,
    outcomes: usize,
    pool: usize,
}

fn fuzz(name: &str) -> Stats {
    let t = targets()
        .into_iter()
        .find(|t| t.name == name)
        .expect("a known target");
    let iterations = env_u64("ZC_FUZZ_ITERS", 20_000);
    let saving = std::env::var_os("ZC_FUZZ_SAVE").is_some_and(|v| v == "1");
    let mut rng = Rng::new(env_u64("ZC_FUZZ_SEED", 0x005E_ED2C) ^ fnv(name.as_bytes()));

    let mut pool: Vec<Vec<u8>> = (t.seeds)();
    if saving {
        for seed in &pool {
            save(t.name, "seed-", seed);
        }
    }
    let kept = load_corpus(t.name);
    let replayed = kept.len();
    pool.extend(kept);
    let mut seen = HashSet::new();
    for input in &pool {
        seen.insert(signature(&check(&t, input)));
    }
    for _ in 0..iterations {
        let base = rng.below(pool.len());
        let input = mutate(&mut rng, &pool[base], &pool, &t);
        let sig = signature(&check(&t, &input));
        if seen.insert(sig) {
            if saving {
                save(t.name, "", &input);
            }
            if pool.len() < 4096 {
                pool.push(input);
            }
        }
    }
    let stats = Stats {
        iterations,
        replayed,
        outcomes: seen.len(),
        pool: pool.len(),
    };
    eprintln!(
        "fuzz {name}: {} mutations, {} corpus files replayed, {} distinct outcomes, pool {}",
        stats.iterations, stats.replayed, stats.outcomes, stats.pool
    );
    stats
}

macro_rules! fuzz_tests {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                let stats = fuzz($name);
                assert!(stats.outcomes >= 2, "{}: the fuzzer reached a single outcome", $name);
            }
        )*
    };
}

fuzz_tests! {
    fuzz_read_preamble => "preamble",
    fuzz_read_frame => "frame",
    fuzz_parse_data => "data",
    fuzz_tree_offer_decode => "tree_offer",
    fuzz_entry_decode => "entry",
    fuzz_reply_decode => "reply",
    fuzz_answer_decode => "answer",
    fuzz_file_end_decode => "file_end",
    fuzz_outcome_decode => "outcome",
    fuzz_decode_hashes => "hashes",
    fuzz_message_decode => "message",
    fuzz_held_record_decode => "held_record",
    fuzz_parse_size => "parse_size",
    fuzz_split_host_port => "split_host_port",
    fuzz_check_name => "check_name",
}

// ---------------------------------------------------------------------------
// Claimed lengths, directly

#[test]
fn claimed_lengths_are_never_allocated() {
    // A frame that claims 4 GiB: refused from its 5-byte head.
    let mut huge = vec![kind::OFFER];
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    let (r, largest) = measured(|| proto::read_frame(&mut &huge[..]));
    assert!(r.is_err());
    assert!(largest < 4096, "a 4 GiB claim allocated {largest} bytes");

    // Just over the bound, with the body present: still refused unread.
    let mut over = vec![kind::OFFER];
    over.extend_from_slice(&(proto::MAX_FRAME + 1).to_be_bytes());
    over.resize(5 + proto::MAX_FRAME as usize + 1, 0);
    let (r, largest) = measured(|| proto::read_frame(&mut &over[..]));
    assert!(r.is_err());
    assert!(
        largest < 4096,
        "an oversized frame allocated {largest} bytes"
    );

    // A field claiming 65535 bytes with one present.
    let (r, largest) = measured(|| TreeOffer::decode(&[0x8a, 0xff, 0xff, b'a']));
    assert!(r.is_err());
    assert!(largest < 4096, "{largest}");
    let (r, largest) = measured(|| Entry::decode(&[2, 0xff, 0xff, b'a']));
    assert!(r.is_err());
    assert!(largest < 4096, "{largest}");

    // Counts over the bound are refused before anything is reserved.
    let mut hashes = vec![1u8];
    hashes.resize(1 + 44 * (proto::MAX_HASHES + 1), 1);
    let (r, largest) = measured(|| proto::decode_hashes(&hashes));
    assert!(r.is_err(), "{} blocks accepted", proto::MAX_HASHES + 1);
    assert!(largest < 4096, "{largest}");

    let held = vec![0u8; 16 * (proto::MAX_RANGES + 1)];
    let body = [
        vec![1, 0, 1, 0, 4],
        ((held.len()) as u16).to_be_bytes().to_vec(),
        held,
    ]
    .concat();
    let (r, largest) = measured(|| Answer::decode(&body));
    assert!(r.is_err(), "{} held ranges accepted", proto::MAX_RANGES + 1);
    assert!(largest < 64 << 10, "{largest}");

    // The same in a REPLY: one HELD field over the bound, or the bound's
    // worth in each of two (the last one counts, not their sum).
    let ranges = |n: usize| vec![0u8; 16 * n];
    let id = 0u64.to_be_bytes();
    let over = tlv(&[(1, &id), (2, &[0]), (5, &ranges(proto::MAX_RANGES + 1))]);
    let (r, largest) = measured(|| Reply::decode(&over));
    assert!(r.is_err(), "{} held ranges accepted", proto::MAX_RANGES + 1);
    assert!(largest < 64 << 10, "{largest}");
    let full = ranges(proto::MAX_RANGES);
    let twice = tlv(&[(1, &id), (2, &[0]), (5, &full), (5, &full)]);
    match Reply::decode(&twice) {
        Ok(Reply {
            action: Action::Send { held, .. },
            ..
        }) => assert!(held.len() <= proto::MAX_RANGES, "{}", held.len()),
        other => panic!("{other:?}"),
    }
}

/// Every kind byte, with the body of every message kind: each side's decode
/// types it or refuses it, never panics, and allocates within the bound.
#[test]
fn every_kind_of_frame_is_typed_or_refused() {
    let t = targets()
        .into_iter()
        .find(|t| t.name == "message")
        .expect("the message target");
    let bodies: Vec<Vec<u8>> = seeds_message()
        .into_iter()
        .map(|s| s[1..].to_vec())
        .collect();
    let mut typed = HashSet::new();
    for kind in 0..=255u8 {
        for body in &bodies {
            if let Ok(shape) = check(&t, &[&[kind][..], body].concat()) {
                typed.insert(shape);
            }
        }
    }
    // every message kind decodes from its own seed
    assert_eq!(typed.len(), 16, "{typed:?}");
}

/// The held record on disk is read with a size cap and parsed with a range
/// cap; a record claiming a huge size or many ranges costs nothing.
#[test]
fn held_records_are_bounded() {
    let mut text = String::from("zc-held 1\nsize 18446744073709551615\nmtime -\nheld");
    for i in 0..10_000u64 {
        text.push_str(&format!(" {}-{}", i * 10, i * 10 + 5));
    }
    text.push_str("\nname x\n");
    let (rec, largest) = measured(|| Record::decode(&text));
    let rec = rec.expect("a valid record");
    assert_eq!(
        rec.held.pairs().len(),
        4096,
        "ranges past the cap are forgotten"
    );
    assert!(largest < 256 << 10, "{largest}");
}

/// docs/PROTOCOL.md bounds the held ranges of an ANSWER at 1024; each HELD
/// field is checked, but repeated fields add up (the fuzzer's find, kept as
/// tests/corpus/answer/bug-held-ranges-over-the-bound).
#[test]
fn answer_held_ranges_are_bounded_across_fields() {
    let pair = [0u8; 16];
    let one_field = [
        vec![4u8],
        (16u16 * 1000).to_be_bytes().to_vec(),
        pair.repeat(1000),
    ]
    .concat();
    let body = [
        vec![1, 0, 1, 0],
        one_field.clone(),
        one_field.clone(),
        one_field,
    ]
    .concat();
    match Answer::decode(&body) {
        Ok(Answer::Accept { held, .. }) => assert!(
            held.len() <= proto::MAX_RANGES,
            "{} held ranges accepted, over the bound of {}",
            held.len(),
            proto::MAX_RANGES
        ),
        Ok(other) => panic!("{other:?}"),
        Err(_) => {}
    }
    let found = fs::read(corpus_dir("answer").join("bug-held-ranges-over-the-bound")).unwrap();
    if let Ok(Answer::Accept { held, .. }) = Answer::decode(&found) {
        assert!(held.len() <= proto::MAX_RANGES, "{}", held.len());
    }
}
