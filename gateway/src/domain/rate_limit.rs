//! Requests per second per terminal: a token bucket each, in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::metrics::counter::Counter;

use crate::clock::Clock;

pub struct RateLimiter {
    rate: f64,
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
        RateLimiter { rate: f64::from(per_second.max(1)), clock, buckets: Mutex::new(HashMap::new()), limited }
    }

    /// Takes a token of `terminal`'s bucket: `false` when it has none.
    pub fn take(&self, terminal: &str) -> bool {
        let now = self.clock.now_ms();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let b = match buckets.get_mut(terminal) {
            Some(b) => b,
            None => buckets.entry(terminal.to_owned()).or_insert(Bucket { tokens: self.rate, last_ms: now }),
        };
        b.tokens = (b.tokens + (now - b.last_ms).max(0) as f64 / 1000.0 * self.rate).min(self.rate);
        b.last_ms = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            self.limited.inc();
            false
        }
    }

    /// How many requests were over the rate (`hpki_rate_limited`).
    pub fn limited(&self) -> &Counter {
        &self.limited
    }
}
