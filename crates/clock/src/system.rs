//! The system's real-time clock, read with clock_gettime(CLOCK_REALTIME) through libc.

use crate::Clock;
use nix::time::{ClockId, clock_gettime};
use syhub_ntp_proto::NtpTimestamp;

/// The kernel's CLOCK_REALTIME. Reading it needs no privilege and never changes it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// Converts a kernel `timespec` (as also found in SO_TIMESTAMPNS control messages).
    pub fn timestamp_from_timespec(seconds: i64, nanos: i64) -> NtpTimestamp {
        NtpTimestamp::from_unix(seconds, nanos.clamp(0, 999_999_999) as u32)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> NtpTimestamp {
        // CLOCK_REALTIME cannot fail on Linux; should it ever, zero means "unknown" to NTP.
        match clock_gettime(ClockId::CLOCK_REALTIME) {
            Ok(ts) => Self::timestamp_from_timespec(ts.tv_sec(), ts.tv_nsec()),
            Err(_) => NtpTimestamp::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_time_after_2025() {
        let (seconds, _) = SystemClock.now().to_unix_near(1_735_689_600);
        assert!(seconds > 1_735_689_600, "clock reads {seconds}");
    }
}
