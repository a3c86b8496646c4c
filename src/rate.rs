//! `--limit-rate`: a token bucket that caps how many bytes each copy call may move.

use std::io;
use std::time::{Duration, Instant};

use crate::interrupt;

/// The bucket holds this long at the rate. It is both the largest burst
/// after a pause and the smallest grant worth waking up for, so a paced
/// copy makes about ten calls a second whatever the rate: sendfile and
/// splice still move the bytes, in smaller counts.
const BURST: Duration = Duration::from_millis(100);

/// The longest single sleep, so Ctrl-C and the caller's own duties (a
/// receiver's keepalives) are seen promptly.
const SLICE: Duration = Duration::from_millis(50);

/// Bytes of floating-point slack when comparing the bucket with a request.
const ROUNDING: f64 = 1e-3;

/// Paces one direction of a connection to `rate` bytes a second.
#[derive(Debug, Clone)]
pub struct Pacer {
    rate: f64,
    burst: f64,
    /// Bytes that may move now; below zero after a move that was not asked
    /// for first (a DATA header), which the next grant repays.
    tokens: f64,
    refilled: Instant,
}

impl Pacer {
    pub fn new(rate: u64) -> Pacer {
        Pacer::starting(rate, Instant::now())
    }

    fn starting(rate: u64, now: Instant) -> Pacer {
        let rate = rate.max(1) as f64;
        // whole bytes, at least one, so a grant is never empty
        let burst = (rate * BURST.as_secs_f64()).floor().max(1.0);
        Pacer {
            rate,
            burst,
            tokens: burst,
            refilled: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let gained = now.saturating_duration_since(self.refilled).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + gained).min(self.burst);
        self.refilled = now;
    }

    /// How many of `want` bytes may move at `now` (at least one when `want`
    /// is not zero), or how long until they may. Waits for the whole request
    /// or a full bucket, whichever is smaller, so calls do not shrink to a
    /// byte or two at a time.
    fn grant_at(&mut self, want: usize, now: Instant) -> Result<usize, Duration> {
        if want == 0 {
            return Ok(0);
        }
        self.refill(now);
        let need = (want as f64).min(self.burst);
        // a sleep of exactly the computed wait may come up a rounding
        // error short of `need`; that must not cost another sleep
        let tokens = self.tokens + ROUNDING;
        if tokens >= need {
            return Ok((tokens.floor() as usize).clamp(1, want));
        }
        let nanos = ((need - self.tokens) / self.rate * 1e9).ceil();
        Err(Duration::from_nanos(nanos as u64))
    }

    /// Counts `n` bytes as moved.
    pub fn spent(&mut self, n: usize) {
        self.tokens -= n as f64;
    }

    /// Waits until some of `want` bytes may move and returns how many, in
    /// sleeps of at most [`SLICE`]; `between` runs before each one.
    ///
    /// Ctrl-C ends the wait with [`interrupt::stopped`], except while
    /// `finishing` (a DATA frame's payload is under way and must be
    /// complete before STOP can follow it): then the rest goes unpaced.
    pub fn take(
        &mut self,
        want: usize,
        finishing: bool,
        mut between: impl FnMut() -> io::Result<()>,
    ) -> io::Result<usize> {
        loop {
            let wait = match self.grant_at(want, Instant::now()) {
                Ok(n) => return Ok(n),
                Err(wait) => wait,
            };
            if interrupt::requested() {
                return match finishing {
                    true => Ok(want),
                    false => Err(interrupt::stopped()),
                };
            }
            between()?;
            std::thread::sleep(wait.min(SLICE));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_full_bucket_goes_at_once_then_the_rate_holds() {
        let t0 = Instant::now();
        let mut p = Pacer::starting(MIB, t0);
        let burst = (MIB / 10) as usize;
        assert_eq!(p.grant_at(16 << 20, t0), Ok(burst));
        p.spent(burst);
        let wait = p.grant_at(16 << 20, t0).unwrap_err();
        assert!(wait > Duration::from_millis(99) && wait <= Duration::from_millis(101));
        // half the wait buys nothing yet: a grant waits for a full bucket
        assert!(p.grant_at(16 << 20, t0 + wait / 2).is_err());
        assert_eq!(p.grant_at(16 << 20, t0 + wait), Ok(burst));
    }

    #[test]
    fn small_requests_do_not_wait_for_a_full_bucket() {
        let t0 = Instant::now();
        let mut p = Pacer::starting(MIB, t0);
        let all = p.grant_at(usize::MAX, t0).unwrap();
        p.spent(all);
        let wait = p.grant_at(5, t0).unwrap_err();
        assert!(wait < Duration::from_millis(2), "{wait:?}");
        assert_eq!(p.grant_at(5, t0 + wait), Ok(5));
        assert_eq!(p.grant_at(0, t0), Ok(0));
    }

    #[test]
    fn ten_simulated_seconds_stay_within_one_percent() {
        for rate in [1_000, 100 << 10, 4 * MIB, 1 << 30] {
            let t0 = Instant::now();
            let mut now = t0;
            let mut p = Pacer::starting(rate, t0);
            let mut moved = 0u64;
            while now < t0 + Duration::from_secs(10) {
                match p.grant_at(1 << 20, now) {
                    Ok(n) => {
                        // the network takes what it takes: sometimes less
                        let n = if moved.is_multiple_of(3) {
                            n.div_ceil(2)
                        } else {
                            n
                        };
                        p.spent(n);
                        moved += n as u64;
                    }
                    Err(wait) => now += wait,
                }
            }
            let expected = rate as f64 * 10.0;
            let ratio = moved as f64 / expected;
            assert!((0.99..=1.011).contains(&ratio), "rate {rate}: {ratio}");
        }
    }

    #[test]
    fn a_debt_is_repaid_by_waiting() {
        let t0 = Instant::now();
        let mut p = Pacer::starting(1000, t0);
        p.spent(100 + 1000);
        // a second of debt, and then a full bucket's tenth of a second
        let wait = p.grant_at(1 << 20, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 1.1).abs() < 0.001, "{wait:?}");
    }

    #[test]
    fn tiny_rates_still_grant_whole_bytes() {
        let t0 = Instant::now();
        let mut p = Pacer::starting(3, t0);
        assert_eq!(p.grant_at(100, t0), Ok(1));
        p.spent(1);
        let wait = p.grant_at(100, t0).unwrap_err();
        assert_eq!(p.grant_at(100, t0 + wait), Ok(1));
    }
}
