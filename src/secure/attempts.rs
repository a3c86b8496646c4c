//! Failed key confirmations on a listening side: a code is burnt by the
//! first one; a key allows a few a minute. Only a peer that completed the
//! key exchange and then failed to confirm counts: it had its one guess.
//! A port scan or a stray nc never gets that far.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong keys allowed within [`WINDOW`] before a listener refuses more.
pub const KEY_FAILURES: usize = 5;
const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
enum Policy {
    /// A one-time code: the first failure burns it.
    Once,
    /// A long-lived key: at most this many failures a minute.
    PerMinute(usize),
}

/// The failures one secret has met, shared by every connection of a
/// listener (`-k` runs them on threads of their own).
#[derive(Debug)]
pub struct Attempts {
    policy: Policy,
    failures: Mutex<VecDeque<Instant>>,
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
            failures: Mutex::new(VecDeque::new()),
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, VecDeque<Instant>> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Policy::PerMinute(_) = self.policy {
            while failures.front().is_some_and(|t| t.elapsed() >= WINDOW) {
                failures.pop_front();
            }
        }
        failures
    }

    /// Whether a new peer may try: `Err` says why not.
    pub fn admit(&self) -> Result<(), String> {
        let failures = self.recent();
        match (&self.policy, failures.front()) {
            (Policy::Once, Some(_)) => Err(
                "this code was burnt by a wrong attempt; start the listening side again for a new code"
                    .into(),
            ),
            (Policy::PerMinute(most), Some(first)) if failures.len() >= *most => {
                let wait = WINDOW.saturating_sub(first.elapsed()).as_secs() + 1;
                Err(format!(
                    "{} wrong keys within a minute: no more attempts for {wait} s",
                    failures.len()
                ))
            }
            _ => Ok(()),
        }
    }

    /// Records a failed confirmation; returns what the user is told of it.
    pub fn failed(&self) -> String {
        let mut failures = self.recent();
        failures.push_back(Instant::now());
        match self.policy {
            Policy::Once => "the code is burnt: start this side again for a new code".into(),
            Policy::PerMinute(most) => format!(
                "{} of {most} wrong keys allowed within a minute",
                failures.len()
            ),
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
        assert!(a.failed().contains("burnt"));
        assert!(a.admit().unwrap_err().contains("burnt"));
    }

    #[test]
    fn a_key_allows_a_few_failures_a_minute() {
        let a = Attempts::per_minute(KEY_FAILURES);
        for _ in 0..KEY_FAILURES {
            assert!(a.admit().is_ok());
            a.failed();
        }
        let why = a.admit().unwrap_err();
        assert!(why.contains("no more attempts"), "{why}");
        // a minute later the window has passed
        let old = Instant::now().checked_sub(WINDOW + Duration::from_secs(1));
        if let Some(old) = old {
            a.failures.lock().unwrap().iter_mut().for_each(|t| *t = old);
            assert!(a.admit().is_ok());
        }
    }
}
