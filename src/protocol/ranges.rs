//! Sets of byte ranges: what a part holds, what a sender claimed, what
//! arrived. Both sides' rules reason in them, so they live with the rules.

/// Half-open byte ranges, sorted and merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ranges(Vec<(u64, u64)>);

impl Ranges {
    pub fn new() -> Self {
        Ranges(Vec::new())
    }

    pub fn from_pairs(pairs: &[(u64, u64)]) -> Self {
        let mut r = Ranges::new();
        for &(s, e) in pairs {
            r.insert(s, e);
        }
        r
    }

    pub fn pairs(&self) -> &[(u64, u64)] {
        &self.0
    }

    /// Adds [start, end), merging with neighbours.
    pub fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let (mut s, mut e) = (start, end);
        let mut kept = Vec::with_capacity(self.0.len() + 1);
        for &(a, b) in &self.0 {
            if b < s || a > e {
                kept.push((a, b));
            } else {
                s = s.min(a);
                e = e.max(b);
            }
        }
        kept.push((s, e));
        kept.sort_unstable();
        self.0 = kept;
    }

    /// Removes [start, end).
    pub fn remove(&mut self, start: u64, end: u64) {
        let mut kept = Vec::with_capacity(self.0.len() + 1);
        for &(a, b) in &self.0 {
            if b <= start || a >= end {
                kept.push((a, b));
                continue;
            }
            if a < start {
                kept.push((a, start));
            }
            if b > end {
                kept.push((end, b));
            }
        }
        self.0 = kept;
    }

    /// The parts of [start, end) not held.
    pub fn missing(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = start;
        for &(a, b) in &self.0 {
            if b <= at {
                continue;
            }
            if a >= end {
                break;
            }
            if a > at {
                out.push((at, a.min(end)));
            }
            at = at.max(b);
            if at >= end {
                break;
            }
        }
        if at < end {
            out.push((at, end));
        }
        out
    }

    pub fn covers(&self, start: u64, end: u64) -> bool {
        self.missing(start, end).is_empty()
    }

    /// Whether any byte of [start, end) is in the set.
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.0.iter().any(|&(a, b)| a < end && start < b)
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|(a, b)| b - a).sum()
    }

    /// Keeps only what lies below `limit`.
    pub fn clip(&mut self, limit: u64) {
        self.remove(limit, u64::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_subtract() {
        let mut r = Ranges::new();
        r.insert(10, 20);
        r.insert(30, 40);
        r.insert(20, 30);
        assert_eq!(r.pairs(), &[(10, 40)]);
        r.insert(0, 5);
        assert_eq!(r.missing(0, 50), vec![(5, 10), (40, 50)]);
        assert!(r.covers(12, 40));
        assert!(!r.covers(0, 6));
        r.remove(15, 35);
        assert_eq!(r.pairs(), &[(0, 5), (10, 15), (35, 40)]);
        assert_eq!(r.total(), 15);
        assert!(r.overlaps(4, 6) && r.overlaps(0, 100) && r.overlaps(39, 40));
        assert!(!r.overlaps(5, 10) && !r.overlaps(15, 35) && !r.overlaps(40, 41));
        r.clip(12);
        assert_eq!(r.pairs(), &[(0, 5), (10, 12)]);
        assert_eq!(Ranges::new().missing(3, 3), vec![]);
    }
}
