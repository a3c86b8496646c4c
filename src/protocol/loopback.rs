//! The two session machines wired to each other in memory, with no
//! sockets: the sender's frames (and the DATA payloads its fake driver
//! appends) go to the receiver, the receiver's back. A fake driver on each
//! side answers the events as the real ones do, over in-memory files; a
//! [`Pipe`] between them may drop, repeat, swap or corrupt what passes, or
//! cut the connection, so the tests (and the property test in
//! loopback/props.rs) see what each machine makes of it.

mod props;
mod tests;

use std::collections::{BTreeMap, VecDeque};

use sha2::{Digest, Sha256};

use super::ledger::{Fate, Verdict};
use super::receiver::{self, Setup, Shown, Then, Wanted};
use super::sender;
use super::tree::{lossy, Action, Entry, EntryKind, TreeOffer};
use super::{data_header, read_frame, BlockHash, Ranges, ToReceiver, ToSender};

pub(super) const PEER: &str = "127.0.0.1:9";
/// The payload of one DATA frame, and of one held block hashed.
const CHUNK: usize = 1000;

fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// An entry of the source tree.
#[derive(Debug, Clone)]
pub(super) struct Src {
    pub path: String,
    pub kind: EntryKind,
    pub data: Vec<u8>,
}

impl Src {
    pub fn file(path: &str, data: &[u8]) -> Src {
        let (path, kind, data) = (path.into(), EntryKind::File, data.to_vec());
        Src { path, kind, data }
    }

    pub fn dir(path: &str) -> Src {
        let (path, kind, data) = (path.into(), EntryKind::Dir, Vec::new());
        Src { path, kind, data }
    }

    pub fn link(path: &str, target: &str) -> Src {
        let (path, kind, data) = (path.into(), EntryKind::Link, target.as_bytes().to_vec());
        Src { path, kind, data }
    }

    fn entry(&self) -> Entry {
        let file = self.kind == EntryKind::File;
        Entry {
            id: 0,
            path: self.path.as_bytes().to_vec(),
            kind: self.kind,
            size: if file { self.data.len() as u64 } else { 0 },
            mode: 0o644,
            mtime_ns: 0,
            target: if file { Vec::new() } else { self.data.clone() },
            range: None,
            stream: false,
        }
    }
}

/// One thing on the wire from the sender: a frame and, for DATA, its payload.
#[derive(Debug, Clone)]
pub(super) struct Unit {
    pub msg: ToReceiver,
    pub payload: Vec<u8>,
}

/// Splits the sender's bytes into frames and DATA payloads.
fn units(mut wire: &[u8]) -> Vec<Unit> {
    let mut out = Vec::new();
    while !wire.is_empty() {
        let frame = read_frame(&mut wire).expect("whole frames");
        let msg = ToReceiver::decode(&frame).expect("a frame a receiver takes");
        let mut payload = Vec::new();
        if let ToReceiver::Data { len, .. } = msg {
            (payload, wire) = (wire[..len as usize].to_vec(), &wire[len as usize..]);
        }
        out.push(Unit { msg, payload });
    }
    out
}

fn frames(mut wire: &[u8]) -> Vec<ToSender> {
    let mut out = Vec::new();
    while !wire.is_empty() {
        let frame = read_frame(&mut wire).expect("whole frames");
        out.push(ToSender::decode(&frame).expect("a frame a sender takes"));
    }
    out
}

/// What the sender's fake driver does beyond sending everything.
#[derive(Debug, Clone, Default)]
pub(super) struct TxPlan {
    /// Its source fails after one frame of data: given up.
    pub give_up: Option<u64>,
    /// Ctrl-C after the first frame of this file's data: STOP.
    pub stop_in: Option<u64>,
    /// `--no-verify`: FILE END carries no digest.
    pub no_verify: bool,
}

/// The sending side: the machine and a driver over in-memory sources.
pub(super) struct Tx {
    pub s: sender::Session,
    src: Vec<Src>,
    plan: TxPlan,
    wire: Vec<u8>,
    pub settled: Vec<sender::Settled>,
    pub verdict: Option<Verdict>,
    pub error: Option<sender::Violation>,
    pub stopped: bool,
    /// The receiver refused the session or gave up before GO: why.
    pub given_up: Option<sender::Ending>,
    /// DATA payload bytes that went.
    pub sent: u64,
}

impl Tx {
    pub fn new(src: &[Src], plan: TxPlan) -> Tx {
        let mut s = sender::Session::new(None, true, PEER, None);
        for e in src {
            s.offer(e.entry());
        }
        s.manifest_done();
        Tx {
            s,
            src: src.to_vec(),
            plan,
            wire: Vec::new(),
            settled: Vec::new(),
            verdict: None,
            error: None,
            stopped: false,
            given_up: None,
            sent: 0,
        }
    }

    /// What goes on the wire now.
    fn take(&mut self) -> Vec<Unit> {
        self.s.move_outbox_to(&mut self.wire);
        units(&std::mem::take(&mut self.wire))
    }

    fn handle(&mut self, msg: ToSender) {
        if self.error.is_some() || self.verdict.is_some() || self.given_up.is_some() {
            return;
        }
        match self.s.handle(msg) {
            Err(v) => self.error = Some(v),
            Ok(None) => {}
            Ok(Some(sender::Event::Go)) => self.send_all(),
            Ok(Some(sender::Event::CheckBlocks { id, blocks, .. })) => self.check(id, &blocks),
            Ok(Some(sender::Event::Settled(s))) => self.settled.push(s),
            Ok(Some(sender::Event::Concluded)) => self.verdict = self.s.verdict(),
            Ok(Some(sender::Event::Ended(why))) => self.given_up = Some(why),
        }
    }

    /// Held blocks whose digest is the source's are not sent again.
    fn check(&mut self, id: u64, blocks: &[BlockHash]) {
        let data = &self.src[id as usize].data;
        let matched: Vec<(u64, u64)> = blocks
            .iter()
            .filter(|b| {
                let (a, z) = (b.offset as usize, b.offset as usize + b.len as usize);
                data.get(a..z).map(sha) == Some(b.sha256)
            })
            .map(|b| (b.offset, b.offset + b.len as u64))
            .collect();
        self.s.matched(id, &matched);
    }

    fn send_all(&mut self) {
        let mut sent = 0;
        for id in 0..self.s.len() {
            let Some(job) = self.s.to_send(id) else {
                continue;
            };
            self.s.begin(id);
            let data = self.src[id as usize].data.clone();
            let mut payloads = Sha256::new();
            let mut went = 0;
            for (a, z) in job.ranges {
                for from in (a..z).step_by(CHUNK) {
                    let to = z.min(from + CHUNK as u64);
                    let bytes = &data[from as usize..to as usize];
                    self.s.move_outbox_to(&mut self.wire);
                    self.wire.extend_from_slice(&data_header(from, to - from));
                    self.wire.extend_from_slice(bytes);
                    payloads.update(bytes);
                    went += to - from;
                    if self.plan.give_up == Some(id) {
                        let why = "it shrank";
                        self.settled.push(self.s.give_up(id, went, why));
                        break;
                    }
                    if self.plan.stop_in == Some(id) {
                        self.sent = sent + went;
                        self.s.stop();
                        self.stopped = true;
                        return;
                    }
                }
            }
            sent += went;
            self.sent = sent;
            if self.plan.give_up == Some(id) {
                continue;
            }
            let digest = match job.whole {
                true => sha(&data),
                false => payloads.finalize().into(),
            };
            self.s
                .file_end(id, went, (!self.plan.no_verify).then_some(digest));
        }
        self.s.end(sent);
    }
}

/// A file the receiver asked for.
#[derive(Debug, Clone)]
struct Want {
    id: u64,
    path: Vec<u8>,
    size: u64,
    held: Ranges,
}

impl Wanted for Want {
    fn id(&self) -> u64 {
        self.id
    }
    fn path(&self) -> &[u8] {
        &self.path
    }
    fn shape(&self) -> (u64, (u64, u64), Ranges, bool, bool) {
        let whole = super::whole(&self.held, (0, self.size), self.size);
        (self.size, (0, self.size), self.held.clone(), false, whole)
    }
}

/// The file being written: its bytes, and which of them were written.
struct Open {
    path: String,
    buf: Vec<u8>,
    filled: Ranges,
}

/// The receiving side: the machine and a driver over in-memory files.
pub(super) struct Rx {
    pub s: receiver::Session,
    asked: VecDeque<Want>,
    /// Parts held from an earlier run, by path.
    pub parts: BTreeMap<String, Vec<u8>>,
    /// Files in place, by path.
    pub disk: BTreeMap<String, Vec<u8>>,
    open: Option<Open>,
    /// Directories and links, made (and settled) at the end.
    later: Vec<(String, EntryKind)>,
    pub settled: Vec<receiver::Settled>,
    pub verdict: Option<Verdict>,
    pub error: Option<receiver::Violation>,
    /// A file the machine called complete though bytes were never written.
    pub unfilled: Vec<String>,
}

impl Rx {
    pub fn new(src: &[Src]) -> Rx {
        Rx::verifying(src, true)
    }

    /// With `verify` false, as `--no-verify` on both sides.
    pub fn verifying(src: &[Src], verify: bool) -> Rx {
        let setup = Setup {
            offer: TreeOffer {
                entries: src.len() as u64,
                verify,
                resume: true,
                ..Default::default()
            },
            max_files: u64::MAX,
            verify,
            ..Default::default()
        };
        Rx {
            s: receiver::Session::new(setup, None),
            asked: VecDeque::new(),
            parts: BTreeMap::new(),
            disk: BTreeMap::new(),
            open: None,
            later: Vec::new(),
            settled: Vec::new(),
            verdict: None,
            error: None,
            unfilled: Vec::new(),
        }
    }

    fn take(&mut self) -> Vec<ToSender> {
        frames(&self.s.take_outbox())
    }

    fn handle(&mut self, unit: Unit) {
        if self.error.is_some() || self.s.phase() == receiver::Phase::Ended {
            return;
        }
        let event = match self.s.handle(unit.msg, &mut self.asked) {
            Err(v) => {
                self.s.fail(&v.to_string());
                self.error = Some(v);
                return;
            }
            Ok(event) => event,
        };
        match event {
            receiver::Event::Nothing => {}
            receiver::Event::Decide(entry) => {
                if let Err(v) = self.decide(entry) {
                    self.error = Some(v);
                }
            }
            receiver::Event::Manifest { .. } => self.s.go(),
            receiver::Event::Open(want) => {
                let mut buf = vec![0; want.size as usize];
                let part = self
                    .parts
                    .get(&lossy(&want.path))
                    .cloned()
                    .unwrap_or_default();
                let held = part.len().min(buf.len());
                buf[..held].copy_from_slice(&part[..held]);
                let (path, filled) = (lossy(&want.path), want.held.clone());
                self.open = Some(Open { path, buf, filled });
            }
            receiver::Event::Write(fits) => {
                let open = self.open.as_mut().expect("a file is open");
                let (a, z) = (fits.offset as usize, fits.end as usize);
                let n = unit.payload.len().min(z - a);
                open.buf[a..a + n].copy_from_slice(&unit.payload[..n]);
                if n == z - a {
                    open.filled.insert(fits.offset, fits.end);
                }
                self.s.arrived(fits.offset, fits.end);
            }
            receiver::Event::Ended(ended) => self.ended(ended),
            receiver::Event::Finished => {
                for (path, kind) in std::mem::take(&mut self.later) {
                    self.s.settle(&path, Shown::Kind(kind), Fate::Landed);
                }
                self.s.conclude();
                self.verdict = Some(self.s.ledger().verdict());
            }
            receiver::Event::Stopped(_) => self.s.stopped(),
        }
        self.settled.extend(self.s.settled());
    }

    fn decide(&mut self, entry: Entry) -> Result<(), receiver::Violation> {
        let path = lossy(&entry.path);
        if entry.kind != EntryKind::File {
            self.later.push((path.clone(), entry.kind));
            return self.s.decided(entry.id, &path, Ok(Action::Done));
        }
        let part = self
            .parts
            .get(&path)
            .filter(|p| p.len() as u64 <= entry.size);
        let held: Vec<(u64, u64)> = match part {
            Some(p) if !p.is_empty() => vec![(0, p.len() as u64)],
            _ => Vec::new(),
        };
        let blocks: Vec<((u64, u64), [u8; 32])> = part
            .map(|p| p.chunks(CHUNK).enumerate())
            .into_iter()
            .flatten()
            .map(|(i, c)| {
                let from = (i * CHUNK) as u64;
                ((from, from + c.len() as u64), sha(c))
            })
            .collect();
        let hashes = !blocks.is_empty();
        self.asked.push_back(Want {
            id: entry.id,
            path: entry.path.clone(),
            size: entry.size,
            held: Ranges::from_pairs(&held),
        });
        self.s
            .decided(entry.id, &path, Ok(Action::Send { held, hashes }))?;
        for (range, sha256) in blocks {
            self.s.block_hashed(entry.id, range, sha256);
        }
        Ok(())
    }

    fn ended(&mut self, ended: receiver::Ended) {
        let open = self.open.take().expect("a file is open");
        let kept = match ended.then {
            Then::Digest { .. } => self.s.digest(Some(sha(&open.buf))).is_some(),
            Then::Keep(_) => true,
            _ => return,
        };
        if !open.filled.covers(0, ended.size) {
            self.unfilled.push(open.path.clone());
        }
        if kept {
            self.disk.insert(open.path, open.buf);
            self.s.landed();
        }
    }
}

/// What may happen to one unit on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Pass,
    Drop,
    /// It arrives twice.
    Twice,
    /// It arrives after the next one.
    Swap,
    /// One byte of a DATA payload flips (`at` modulo its length).
    Flip {
        at: usize,
        mask: u8,
    },
}

/// The connection between the two: applies an op to each unit in turn
/// (then passes everything), and dies after `cut` units, if given.
#[derive(Debug, Clone, Default)]
pub(super) struct Pipe {
    pub ops: VecDeque<Op>,
    pub cut: Option<usize>,
    passed: usize,
}

impl Pipe {
    pub fn clean() -> Pipe {
        Pipe::default()
    }

    fn carry<T: Clone>(&mut self, items: Vec<T>, flip: impl Fn(&mut T, usize, u8)) -> Vec<T> {
        let mut out = Vec::new();
        let mut items: VecDeque<T> = items.into();
        while let Some(mut item) = items.pop_front() {
            match self.ops.pop_front().unwrap_or(Op::Pass) {
                Op::Pass => out.push(item),
                Op::Drop => {}
                Op::Twice => out.extend([item.clone(), item]),
                Op::Swap => match items.pop_front() {
                    Some(next) => out.extend([next, item]),
                    None => out.push(item),
                },
                Op::Flip { at, mask } => {
                    flip(&mut item, at, mask);
                    out.push(item);
                }
            }
        }
        out
    }

    /// Whether the connection is still up to carry one more unit.
    fn up(&mut self) -> bool {
        self.passed += 1;
        self.cut.is_none_or(|cut| self.passed <= cut)
    }
}

/// Runs a session to its end (or until nothing moves, or the cut).
pub(super) fn run(tx: &mut Tx, rx: &mut Rx, pipe: &mut Pipe) {
    loop {
        let down = pipe.carry(tx.take(), |u: &mut Unit, at, mask| {
            if !u.payload.is_empty() {
                let i = at % u.payload.len();
                u.payload[i] ^= mask;
            }
        });
        let mut moved = !down.is_empty();
        for unit in down {
            if !pipe.up() {
                return;
            }
            rx.handle(unit);
        }
        let up = pipe.carry(rx.take(), |_: &mut ToSender, _, _| {});
        moved |= !up.is_empty();
        for msg in up {
            if !pipe.up() {
                return;
            }
            tx.handle(msg);
        }
        if !moved {
            return;
        }
    }
}
