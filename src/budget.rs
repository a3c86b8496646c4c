//! `--max-memory`: one budget for the manifests of all the sessions a
//! receiver runs at once (under `-k`), not one per session, so that 256
//! concurrent senders cannot make it hold 256 times the limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The receiver's whole budget; its clones share what is in use.
#[derive(Debug, Clone)]
pub struct Budget {
    limit: u64,
    used: Arc<AtomicU64>,
}

impl Budget {
    pub fn new(limit: u64) -> Budget {
        Budget {
            limit,
            used: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// A session's share, empty until it grows; given back when dropped,
    /// however the session ends.
    pub fn share(&self) -> Share {
        Share {
            budget: self.clone(),
            held: 0,
        }
    }
}

/// What one session holds of the budget.
#[derive(Debug)]
pub struct Share {
    budget: Budget,
    held: u64,
}

impl Share {
    /// Makes this share `bytes`: `false`, and no change, when growing to
    /// that would take all the sessions together past the limit.
    pub fn resize(&mut self, bytes: u64) -> bool {
        let (held, limit) = (self.held, self.budget.limit);
        let moved = self
            .budget
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                let others = used - held;
                (bytes <= held || others.saturating_add(bytes) <= limit).then_some(others + bytes)
            });
        if moved.is_ok() {
            self.held = bytes;
        }
        moved.is_ok()
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_share_one_budget_and_give_it_back_when_they_end() {
        let budget = Budget::new(100);
        let mut a = budget.share();
        let mut b = budget.clone().share();
        assert!(a.resize(60));
        assert!(!b.resize(41), "60 + 41 is past 100");
        assert!(b.resize(40));
        assert!(a.resize(50), "shrinking is always allowed");
        assert!(b.resize(50));
        drop(a);
        assert!(b.resize(100));
        assert!(!b.resize(101));
        drop(b);
        assert!(budget.share().resize(100));
    }
}
