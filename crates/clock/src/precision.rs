//! Measures the clock's precision (NTP's log2-seconds field): the smallest step between two reads.

use crate::Clock;
use syhub_ntp_proto::NtpDuration;

/// The precision of `clock` in log2 seconds, from the smallest non-zero difference of successive
/// reads over a short burst, as ntpd does at start. Clamped to −30 (1 ns) .. −6 (16 ms).
pub fn measure_precision(clock: &dyn Clock) -> i8 {
    let mut smallest = NtpDuration::MAX;
    let mut previous = clock.now();
    for _ in 0..1_000 {
        let now = clock.now();
        let step = now - previous;
        if step > NtpDuration::ZERO && step < smallest {
            smallest = step;
        }
        previous = now;
    }
    if smallest == NtpDuration::MAX {
        return -6;
    }
    // log2 of the step in seconds, rounded up: 2^-32 s units.
    let bits = 64 - (smallest.to_bits() as u64 - 1).leading_zeros() as i32;
    (bits - 32).clamp(-30, -6) as i8
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use syhub_ntp_proto::NtpTimestamp;

    /// A clock that advances by a fixed step on each read.
    struct SteppingClock {
        now: AtomicU64,
        step: u64,
    }

    impl Clock for SteppingClock {
        fn now(&self) -> NtpTimestamp {
            NtpTimestamp::from_bits(self.now.fetch_add(self.step, Ordering::Relaxed))
        }
    }

    #[test]
    fn microsecond_steps_give_minus_19() {
        // 1 µs = 4295 units of 2^-32 s, just above 2^12: rounds up to 2^13 units = 2^-19 s.
        let clock = SteppingClock { now: AtomicU64::new(1 << 40), step: 4295 };
        assert_eq!(measure_precision(&clock), -19);
    }

    #[test]
    fn a_clock_that_never_moves_is_coarse() {
        let clock = SteppingClock { now: AtomicU64::new(1 << 40), step: 0 };
        assert_eq!(measure_precision(&clock), -6);
    }

    #[test]
    fn the_system_clock_is_finer_than_a_millisecond() {
        assert!(measure_precision(&crate::SystemClock) <= -10);
    }
}
