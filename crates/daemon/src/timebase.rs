//! The discipline's time base: the oscillator's own time (CLOCK_MONOTONIC_RAW) since the daemon
//! started, which our frequency corrections do not stretch, and the tokio instant at which a
//! moment of it comes (tokio's timers run on CLOCK_MONOTONIC, which a slew of 1 % stretches by
//! 1 %; measured against it, every interval during a slew would be that much wrong).

use std::time::Duration;
use syhub_ntp_clock::raw_monotonic;
use syhub_ntp_proto::time::Monotonic;
use tokio::time::Instant;

/// Where the monotonic time handed to the protocol core comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timebase {
    start: Instant,
    /// CLOCK_MONOTONIC_RAW at the start; `None`: tokio's clock is used (no raw clock, or a test
    /// in tokio's paused time).
    raw_start: Option<Duration>,
}

impl Timebase {
    /// Starts now, on the raw clock where the kernel has one.
    pub(crate) fn start() -> Self {
        Self { start: Instant::now(), raw_start: raw_monotonic() }
    }

    /// On tokio's clock: for tests that run in tokio's paused time.
    #[cfg(test)]
    pub(crate) fn tokio() -> Self {
        Self { start: Instant::now(), raw_start: None }
    }

    /// Time since the start.
    pub(crate) fn now(&self) -> Monotonic {
        match self.raw_start.zip(raw_monotonic()) {
            Some((start, now)) => Monotonic::from_duration(now.saturating_sub(start)),
            None => Monotonic::from_duration(self.start.elapsed()),
        }
    }

    /// The tokio instant at which `at` comes (now, when it is past).
    pub(crate) fn instant_at(&self, at: Monotonic) -> Instant {
        Instant::now() + (at - self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_moves_on_and_an_instant_is_found_for_a_moment_to_come() {
        let timebase = Timebase::start();
        let first = timebase.now();
        std::thread::sleep(Duration::from_millis(5));
        let second = timebase.now();
        assert!(second.seconds_since(first) >= 0.004, "{first:?} {second:?}");
        let soon = timebase.instant_at(second + Duration::from_millis(100));
        let wait = soon - Instant::now();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100), "{wait:?}");
        assert!(timebase.instant_at(first) <= Instant::now());
    }
}
