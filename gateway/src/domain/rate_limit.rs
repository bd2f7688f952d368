//! Request rates, a token bucket per key in memory: per terminal on the
//! institution listener; per source address and per patient ID for the
//! patient listener's sign-ins, where the keys are the attacker's to choose
//! and so are bounded (full buckets are forgotten first; with every bucket
//! in use a new key is refused — fail closed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::metrics::counter::Counter;

use crate::clock::Clock;

pub struct RateLimiter {
    /// Tokens a second.
    rate: f64,
    burst: f64,
    max_keys: usize,
    clock: Arc<dyn Clock>,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// `hpki_rate_limited`.
    limited: Counter,
}

struct Bucket {
    tokens: f64,
    last_ms: i64,
}

impl RateLimiter {
    /// `per_second` requests a second per terminal, with bursts of as many.
    pub fn new(per_second: u32, clock: Arc<dyn Clock>, limited: Counter) -> RateLimiter {
        let rate = f64::from(per_second.max(1));
        RateLimiter { rate, burst: rate, max_keys: usize::MAX, clock, buckets: Mutex::new(HashMap::new()), limited }
    }

    /// `per_minute` a minute per key, bursts of `burst`, at most `max_keys`
    /// keys remembered.
    pub fn per_minute(
        per_minute: u32,
        burst: u32,
        max_keys: usize,
        clock: Arc<dyn Clock>,
        limited: Counter,
    ) -> RateLimiter {
        RateLimiter {
            rate: f64::from(per_minute.max(1)) / 60.0,
            burst: f64::from(burst.max(1)),
            max_keys: max_keys.max(1),
            clock,
            buckets: Mutex::new(HashMap::new()),
            limited,
        }
    }

    /// Takes a token of `terminal`'s bucket: `false` when it has none.
    pub fn take(&self, terminal: &str) -> bool {
        let now = self.clock.now_ms();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if !buckets.contains_key(terminal) && buckets.len() >= self.max_keys {
            // A bucket that has refilled says nothing a new one would not.
            buckets.retain(|_, b| b.tokens + (now - b.last_ms).max(0) as f64 / 1000.0 * self.rate < self.burst);
            if buckets.len() >= self.max_keys {
                self.limited.inc();
                return false;
            }
        }
        let b = match buckets.get_mut(terminal) {
            Some(b) => b,
            None => buckets.entry(terminal.to_owned()).or_insert(Bucket { tokens: self.burst, last_ms: now }),
        };
        b.tokens = (b.tokens + (now - b.last_ms).max(0) as f64 / 1000.0 * self.rate).min(self.burst);
        b.last_ms = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            self.limited.inc();
            false
        }
    }

    /// Keys remembered now.
    pub fn keys(&self) -> usize {
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// How many requests were over the rate (`hpki_rate_limited`).
    pub fn limited(&self) -> &Counter {
        &self.limited
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn keys_chosen_by_a_client_are_bounded_and_full_buckets_are_forgotten_first() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let l = RateLimiter::per_minute(6, 2, 100, clock.clone(), Counter::default());
        for i in 0..100 {
            assert!(l.take(&format!("id{i}")));
        }
        // Every bucket is in use: a new key is refused, a known one is not.
        assert!(!l.take("id-new"));
        assert!(l.take("id0"));
        assert!(!l.take("id0"), "a burst of two");
        // Twenty seconds on, every bucket has refilled (six a minute) and
        // can be forgotten: the new key gets one.
        clock.advance_ms(20_000);
        assert!(l.take("id-new"));
        assert!(l.keys() <= 100);
    }
}
