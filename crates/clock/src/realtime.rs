//! The system's real-time clock (CLOCK_REALTIME), and kernel timestamps converted to NTP time.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::Clock;
use syhub_ntp_proto::NtpTimestamp;
use syhub_ntp_sys::net::KernelTime;

/// The kernel's CLOCK_REALTIME. Reading it needs no privilege and never changes it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// Converts a kernel `timespec` (as also found in SO_TIMESTAMPNS control messages).
    #[inline]
    pub fn timestamp_from_timespec(seconds: i64, nanos: i64) -> NtpTimestamp {
        NtpTimestamp::from_unix(seconds, nanos.clamp(0, 999_999_999) as u32)
    }

    /// Converts a kernel timestamp (SO_TIMESTAMPNS or SO_TIMESTAMP control messages). On 32-bit
    /// ARM the kernel truncates seconds after January 2038 (`time_t` is 32 bits); NTP time is
    /// modulo 2^32 seconds, so a truncated value still gives the right timestamp.
    #[inline]
    pub fn timestamp_from_kernel(time: KernelTime) -> NtpTimestamp {
        Self::timestamp_from_timespec(time.seconds, i64::from(time.nanos))
    }
}

impl Clock for SystemClock {
    fn now(&self) -> NtpTimestamp {
        // The standard library reads CLOCK_REALTIME with 64-bit seconds on 64-bit targets and,
        // with glibc, on 32-bit ARM (clock_gettime64). The armhf package's static musl build
        // reads it through musl's 32-bit call, which fails after January 2038 (README, Raspberry
        // Pi). Before 1970 cannot happen on a running system; zero means "unknown" to NTP.
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => Self::timestamp_from_timespec(
                i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
                i64::from(since.subsec_nanos()),
            ),
            Err(_) => NtpTimestamp::ZERO,
        }
    }
}

/// The oscillator's own time since boot (CLOCK_MONOTONIC_RAW): the time base of the discipline,
/// which our frequency corrections do not stretch (CLOCK_MONOTONIC runs at the corrected rate, so
/// a 1 % slew would make it run 1 % fast). `None` where the kernel lacks it.
pub fn raw_monotonic() -> Option<std::time::Duration> {
    syhub_ntp_sys::timex::monotonic_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_time_after_2025() {
        let (seconds, _) = SystemClock.now().to_unix_near(1_735_689_600);
        assert!(seconds > 1_735_689_600, "clock reads {seconds}");
    }

    #[test]
    fn seconds_truncated_to_32_bits_give_the_same_ntp_time() {
        // 2040-06-01: what a 32-bit time_t holds then is the true value less 2^32.
        let after_2038: i64 = 2_222_208_000;
        let truncated = i64::from(after_2038 as i32);
        assert!(truncated < 0);
        assert_eq!(
            SystemClock::timestamp_from_timespec(truncated, 5),
            SystemClock::timestamp_from_timespec(after_2038, 5)
        );
        assert_eq!(
            SystemClock::timestamp_from_kernel(KernelTime { seconds: truncated, nanos: 5 }),
            SystemClock::timestamp_from_timespec(after_2038, 5)
        );
        assert_eq!(
            SystemClock::timestamp_from_timespec(after_2038, 0).to_unix_near(2_200_000_000),
            (after_2038, 0)
        );
    }
}
