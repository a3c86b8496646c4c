//! The files a tree session asked for, kept until their data comes: a
//! million of them may wait through a whole manifest, so each is a small
//! record (its last component in one shared buffer, its parent directory
//! by index, stored once for all its files) and becomes a [`Want`] again
//! only when it is taken.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::mem::size_of;

use super::session::Want;
use super::sink::RelPath;
use crate::held::Ranges;
use crate::protocol::receiver::Asked;

/// A top-level file: no parent directory.
const TOP: u32 = u32::MAX;

const HASHES: u8 = 1;
const RECORDED: u8 = 2;
const WHOLE: u8 = 4;
const FRESH: u8 = 8;
const MODED: u8 = 16;
/// Kept whole in `full` (held ranges, a range, a stream, an open part).
const FULL: u8 = 128;

/// A wanted file that held nothing and asked for all its bytes: 40 bytes.
struct Compact {
    id: u64,
    size: u64,
    mtime_ns: u64,
    /// Where its last component starts in `names`.
    name: u32,
    parent: u32,
    mode: u16,
    name_len: u8,
    flags: u8,
}

#[derive(Default)]
pub(super) struct Wants {
    queue: VecDeque<Compact>,
    names: Vec<u8>,
    parents: Vec<RelPath>,
    /// Bytes the parents' paths hold.
    parent_bytes: u64,
    by_parent: HashMap<u64, u32>,
    hasher: RandomState,
    /// The wants a compact record cannot carry, by id.
    full: HashMap<u64, Want>,
    /// Bytes the whole wants' paths and ranges hold.
    full_bytes: u64,
    /// The last one asked for, whole: the manifest still works on it.
    last: Option<Want>,
    /// One taken and put back (the data went to a later entry).
    front: Option<Want>,
}

impl Wants {
    pub fn push_back(&mut self, want: Want) {
        if let Some(previous) = self.last.replace(want) {
            self.store(previous);
        }
    }

    /// The oldest not yet taken, whole again.
    pub fn pop_front(&mut self) -> Option<Want> {
        if let Some(want) = self.front.take() {
            return Some(want);
        }
        match self.queue.pop_front() {
            Some(c) => Some(self.expand(c)),
            None => self.last.take(),
        }
    }

    pub fn back(&self) -> Option<&Want> {
        self.last.as_ref()
    }

    /// Roughly what the wants hold in memory, in bytes.
    pub fn memory(&self) -> u64 {
        let whole = (self.full.capacity() + 2) * (size_of::<Want>() + 8);
        let fixed = self.queue.capacity() * size_of::<Compact>()
            + self.names.capacity()
            + self.parents.capacity() * size_of::<RelPath>()
            + self.by_parent.capacity() * (size_of::<(u64, u32)>() + 1)
            + whole;
        fixed as u64 + self.parent_bytes + self.full_bytes + self.last_bytes()
    }

    fn last_bytes(&self) -> u64 {
        self.last.as_ref().map_or(0, heap_of)
    }

    fn store(&mut self, want: Want) {
        let (parent, name) = want.rel.split();
        let plain = want.held.total() == 0
            && want.range == (0, want.size)
            && !want.stream
            && want.part.is_none()
            && want.mode <= u16::MAX as u32
            && name.len() <= u8::MAX as usize
            && self.names.len() + name.len() <= TOP as usize
            && self.parents.len() < TOP as usize;
        if !plain {
            self.full_bytes += heap_of(&want);
            self.queue.push_back(Compact {
                id: want.id,
                size: 0,
                mtime_ns: 0,
                name: 0,
                parent: TOP,
                mode: 0,
                name_len: 0,
                flags: FULL,
            });
            self.full.insert(want.id, want);
            return;
        }
        let parent = match parent.is_empty() {
            true => TOP,
            false => self.intern_parent(&want.rel, parent),
        };
        let at = self.names.len() as u32;
        self.names.extend_from_slice(name);
        let flags = [
            (want.hashes, HASHES),
            (want.recorded, RECORDED),
            (want.whole, WHOLE),
            (want.fresh, FRESH),
            (want.moded, MODED),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .fold(0, |all, (_, flag)| all | flag);
        self.queue.push_back(Compact {
            id: want.id,
            size: want.size,
            mtime_ns: want.mtime_ns,
            name: at,
            parent,
            mode: want.mode as u16,
            name_len: name.len() as u8,
            flags,
        });
    }

    /// The index of a file's parent directory, stored once: files come
    /// directory by directory, so the last parent is tried first.
    fn intern_parent(&mut self, rel: &RelPath, parent: &[u8]) -> u32 {
        let last = self.parents.len().checked_sub(1);
        if let Some(last) = last.filter(|&i| self.parents[i].bytes() == parent) {
            return last as u32;
        }
        let hash = self.hasher.hash_one(parent);
        if let Some(&at) = self.by_parent.get(&hash) {
            if self.parents[at as usize].bytes() == parent {
                return at;
            }
        }
        // (a hash that collides stores the parent again, unindexed)
        let at = self.parents.len() as u32;
        self.by_parent.entry(hash).or_insert(at);
        self.parents
            .push(rel.parent().expect("a path with a parent"));
        self.parent_bytes += parent.len() as u64;
        at
    }

    fn expand(&mut self, c: Compact) -> Want {
        if c.flags & FULL != 0 {
            let want = self.full.remove(&c.id).expect("a whole want is kept");
            self.full_bytes -= heap_of(&want);
            return want;
        }
        let name = &self.names[c.name as usize..c.name as usize + c.name_len as usize];
        let parent = (c.parent != TOP).then(|| &self.parents[c.parent as usize]);
        let on = |flag: u8| c.flags & flag != 0;
        Want {
            id: c.id,
            rel: RelPath::rejoin(parent, name),
            size: c.size,
            mode: c.mode as u32,
            mtime_ns: c.mtime_ns,
            held: Ranges::new(),
            hashes: on(HASHES),
            recorded: on(RECORDED),
            range: (0, c.size),
            stream: false,
            whole: on(WHOLE),
            part: None,
            fresh: on(FRESH),
            moded: on(MODED),
            unnamed: false,
        }
    }
}

/// What a whole want holds besides itself: its path and its ranges.
fn heap_of(want: &Want) -> u64 {
    (want.rel.bytes().len() + std::mem::size_of_val(want.held.pairs())) as u64
}

impl Asked<Want> for Wants {
    fn pop_front(&mut self) -> Option<Want> {
        Wants::pop_front(self)
    }

    fn push_front(&mut self, want: Want) {
        debug_assert!(self.front.is_none());
        self.front = Some(want);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recv::sink::check_path;

    fn want(id: u64, path: &str, size: u64) -> Want {
        Want {
            id,
            rel: check_path(path.as_bytes()).unwrap(),
            size,
            mode: 0o640,
            mtime_ns: 1_700_000_000_000_000_000 + id,
            held: Ranges::new(),
            hashes: false,
            recorded: id.is_multiple_of(2),
            range: (0, size),
            stream: false,
            whole: true,
            part: None,
            fresh: id.is_multiple_of(3),
            moded: false,
            unnamed: false,
        }
    }

    fn same(a: &Want, b: &Want) {
        assert_eq!(
            (a.id, a.rel.bytes(), a.size, a.mode, a.mtime_ns),
            (b.id, b.rel.bytes(), b.size, b.mode, b.mtime_ns)
        );
        assert_eq!((a.held.pairs(), a.range), (b.held.pairs(), b.range));
        assert_eq!(
            (a.hashes, a.recorded, a.stream, a.whole, a.fresh, a.moded),
            (b.hashes, b.recorded, b.stream, b.whole, b.fresh, b.moded)
        );
    }

    #[test]
    fn wants_come_back_whole_and_in_order() {
        let mut held = want(4, "top/b/held", 100);
        held.held = Ranges::from_pairs(&[(0, 10)]);
        held.hashes = true;
        let mut ranged = want(5, "top/ranged", 100);
        ranged.range = (10, 20);
        let all = vec![
            want(0, "top-file", 3),
            want(1, "top/a/x", 1),
            want(2, "top/b/y", 2),
            want(3, "top/a/z\nq", 0),
            held,
            ranged,
            want(6, "top/b/y2", 7),
        ];
        let mut wants = Wants::default();
        for w in &all {
            wants.push_back(clone(w));
        }
        assert_eq!(wants.back().map(|w| w.id), Some(6));
        // two parents, each stored once
        assert_eq!(wants.parents.len(), 2, "{:?}", wants.parents);
        let first = wants.pop_front().unwrap();
        same(&first, &all[0]);
        wants.push_front(first);
        for w in &all {
            same(&wants.pop_front().expect("one more"), w);
        }
        assert!(wants.pop_front().is_none());
    }

    fn clone(w: &Want) -> Want {
        Want {
            rel: w.rel.clone(),
            held: w.held.clone(),
            part: None,
            ..*w
        }
    }

    #[test]
    fn a_compact_want_costs_tens_of_bytes() {
        assert!(size_of::<Compact>() <= 40, "{}", size_of::<Compact>());
        let mut wants = Wants::default();
        let long = "d".repeat(250);
        let dir = vec![long.as_str(); 15].join("/");
        for i in 0..10_000 {
            wants.push_back(want(i, &format!("{dir}/{i:08}{}", "f".repeat(200)), 1));
        }
        // a path of ~4 KiB: its 208-byte name and a compact record each
        // (with the buffers' room to grow), the directory once
        let per = wants.memory() / 10_000;
        assert!(per < 512, "{per} bytes a want");
    }
}
