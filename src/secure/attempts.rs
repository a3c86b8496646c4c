//! Key guesses on a listening side: a code allows one, a key a few a
//! minute. A guess counts from the moment its exchange starts, not from
//! when it fails: connections that arrive together cannot all get in
//! before the first of them has failed. Only a peer that proves it holds
//! the secret gives its attempt back.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Wrong keys allowed within [`WINDOW`] before a listener refuses more.
pub const KEY_FAILURES: usize = 5;
const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
enum Policy {
    /// A one-time code: one guess at a time, and the first failure burns it.
    Once,
    /// A long-lived key: at most this many guesses a minute, failed or
    /// under way.
    PerMinute(usize),
}

/// The guesses one secret has met, shared by every connection of a
/// listener (`-k` runs them on threads of their own).
#[derive(Debug)]
pub struct Attempts {
    policy: Policy,
    state: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// When each recent failure happened, oldest first.
    failures: VecDeque<Instant>,
    /// Exchanges started and not yet proven or failed.
    under_way: usize,
}

/// One guess under way. It counts as a failure unless [`Attempt::proven`]
/// says the peer proved the secret, however the connection ends: a peer
/// that hangs up after it saw this side's confirmation may test its guess
/// offline.
#[derive(Debug)]
pub struct Attempt<'a> {
    attempts: &'a Attempts,
    settled: bool,
}

impl Attempts {
    pub fn once() -> Self {
        Self::with(Policy::Once)
    }

    pub fn per_minute(n: usize) -> Self {
        Self::with(Policy::PerMinute(n))
    }

    fn with(policy: Policy) -> Self {
        Attempts {
            policy,
            state: Mutex::new(Counts::default()),
        }
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // counts stay valid whatever thread panicked holding them
        let mut counts = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Policy::PerMinute(_) = self.policy {
            while counts
                .failures
                .front()
                .is_some_and(|t| t.elapsed() >= WINDOW)
            {
                counts.failures.pop_front();
            }
        }
        counts
    }

    /// Whether a new guess would be taken now (`Err` says why not),
    /// without starting one.
    pub fn admit(&self) -> Result<(), String> {
        self.refusal(&self.counts())
    }

    /// Starts a guess, or says why none is taken now.
    pub fn begin(&self) -> Result<Attempt<'_>, String> {
        let mut counts = self.counts();
        self.refusal(&counts)?;
        counts.under_way += 1;
        Ok(Attempt {
            attempts: self,
            settled: false,
        })
    }

    fn refusal(&self, counts: &Counts) -> Result<(), String> {
        let (failed, busy) = (counts.failures.len(), counts.under_way);
        match self.policy {
            Policy::Once if failed > 0 => Err(
                "this code was burnt by a wrong attempt; start the listening side again for a new code"
                    .into(),
            ),
            Policy::Once if busy > 0 => {
                Err("another peer is trying this code right now; a code takes one try at a time".into())
            }
            Policy::PerMinute(most) if failed + busy >= most => {
                let wait = counts
                    .failures
                    .front()
                    .map_or(0, |first| WINDOW.saturating_sub(first.elapsed()).as_secs() + 1);
                Err(match busy {
                    0 => format!("{failed} wrong keys within a minute: no more attempts for {wait} s"),
                    _ => format!(
                        "{failed} wrong keys within a minute and {busy} tries under way: \
                         no more attempts now (at most {most} a minute)"
                    ),
                })
            }
            _ => Ok(()),
        }
    }

    /// Ends a guess under way; a failure is remembered. Returns what the
    /// user is told of a failure.
    fn settle(&self, failed: bool) -> String {
        let mut counts = self.counts();
        counts.under_way = counts.under_way.saturating_sub(1);
        if !failed {
            return String::new();
        }
        counts.failures.push_back(Instant::now());
        match self.policy {
            Policy::Once => "the code is burnt: start this side again for a new code".into(),
            Policy::PerMinute(most) => format!(
                "{} of {most} wrong keys allowed within a minute",
                counts.failures.len()
            ),
        }
    }
}

impl Attempt<'_> {
    /// The peer proved it holds the secret: the guess is given back.
    pub fn proven(mut self) {
        self.settled = true;
        self.attempts.settle(false);
    }

    /// The peer failed to prove the secret; returns what the user is told.
    pub fn failed(mut self) -> String {
        self.settled = true;
        self.attempts.settle(true)
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.attempts.settle(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_burnt_by_one_failure() {
        let a = Attempts::once();
        assert!(a.admit().is_ok());
        assert!(a.begin().unwrap().failed().contains("burnt"));
        assert!(a.begin().unwrap_err().contains("burnt"));
    }

    #[test]
    fn a_code_takes_one_guess_at_a_time() {
        let a = Attempts::once();
        let first = a.begin().unwrap();
        let why = a.begin().unwrap_err();
        assert!(why.contains("right now"), "{why}");
        first.proven();
        assert!(a.begin().is_ok(), "a proven guess is given back");
    }

    #[test]
    fn a_key_allows_a_few_failures_a_minute() {
        let a = Attempts::per_minute(KEY_FAILURES);
        for _ in 0..KEY_FAILURES {
            a.begin().unwrap().failed();
        }
        let why = a.begin().unwrap_err();
        assert!(why.contains("no more attempts"), "{why}");
        // a minute later the window has passed
        let old = Instant::now().checked_sub(WINDOW + Duration::from_secs(1));
        if let Some(old) = old {
            let mut counts = a.state.lock().unwrap();
            counts.failures.iter_mut().for_each(|t| *t = old);
            drop(counts);
            assert!(a.admit().is_ok());
        }
    }

    #[test]
    fn guesses_under_way_count_before_they_fail() {
        // the hostile peer's way in: many connections at once, each
        // admitted before any had failed
        let a = Attempts::per_minute(KEY_FAILURES);
        let under_way: Vec<_> = (0..KEY_FAILURES).map(|_| a.begin().unwrap()).collect();
        let why = a.begin().unwrap_err();
        assert!(why.contains("under way"), "{why}");
        drop(under_way);
        assert!(
            a.begin().is_err(),
            "an attempt dropped unproven is a failure"
        );
    }

    #[test]
    fn a_proven_key_gives_its_attempt_back() {
        let a = Attempts::per_minute(2);
        for _ in 0..10 {
            a.begin().unwrap().proven();
        }
        let _one = a.begin().unwrap();
        let _two = a.begin().unwrap();
        assert!(a.begin().is_err());
    }
}
