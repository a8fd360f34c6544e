//! Keeps repeated log events (a server that cannot be reached, a broker that is down, a flooding
//! client) from filling the journal and wearing out a Pi's SD card: one line per kind of event
//! per period, with a count of what was held back since.

use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// Distinct events remembered; beyond this the oldest are forgotten.
const MAX_KEYS: usize = 256;

#[derive(Debug)]
pub(crate) struct LogLimiter {
    period: Duration,
    /// When each event was last logged, and how often it happened since.
    seen: HashMap<String, (Instant, u32)>,
}

impl LogLimiter {
    pub(crate) fn new(period: Duration) -> Self {
        Self { period, seen: HashMap::new() }
    }

    /// Whether event `key` may be logged at `now`: `Some(held back since the last line)` if so.
    pub(crate) fn allow(&mut self, key: &str, now: Instant) -> Option<u32> {
        if let Some((last, held)) = self.seen.get_mut(key) {
            if now.duration_since(*last) < self.period {
                *held = held.saturating_add(1);
                return None;
            }
            let held_back = *held;
            *last = now;
            *held = 0;
            return Some(held_back);
        }
        if self.seen.len() >= MAX_KEYS
            && let Some(oldest) =
                self.seen.iter().min_by_key(|(_, (t, _))| *t).map(|(k, _)| k.clone())
        {
            self.seen.remove(&oldest);
        }
        self.seen.insert(key.to_owned(), (now, 0));
        Some(0)
    }
}

/// " (and N more like it since)" for a line that stands for held-back ones.
pub(crate) fn held_back(count: u32) -> String {
    if count == 0 {
        String::new()
    } else {
        format!(" ({count} more like it since the last report)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_with_a_count_of_the_rest() {
        let mut limiter = LogLimiter::new(Duration::from_secs(60));
        let start = Instant::now();
        assert_eq!(limiter.allow("a", start), Some(0));
        assert_eq!(limiter.allow("a", start + Duration::from_secs(1)), None);
        assert_eq!(limiter.allow("a", start + Duration::from_secs(2)), None);
        assert_eq!(limiter.allow("b", start + Duration::from_secs(3)), Some(0));
        assert_eq!(limiter.allow("a", start + Duration::from_secs(61)), Some(2));
        assert_eq!(held_back(2), " (2 more like it since the last report)");
        for i in 0..1000 {
            limiter.allow(&format!("k{i}"), start);
        }
        assert!(limiter.seen.len() <= MAX_KEYS);
    }
}
