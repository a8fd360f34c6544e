//! NTP timestamps: seconds since 1900 within an era (32 bits) and a 32-bit fraction, converted to and
//! from Unix time across era boundaries (the 2036 rollover).

use super::NtpDuration;
use std::fmt;
use std::ops::{Add, Sub};

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
pub const UNIX_EPOCH_IN_NTP_SECONDS: i64 = 2_208_988_800;

const ERA_SECONDS: i64 = 1 << 32;

/// A point in time as NTP carries it: era-relative, so it names one instant in every 136-year era.
///
/// Era 0 began 1900-01-01 and ends 2036-02-07 06:28:16 UTC. Which era a timestamp is in is decided
/// when it is converted to absolute time, by taking the instant nearest a pivot the caller knows
/// (its own clock); differences between timestamps need no era at all.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NtpTimestamp(u64);

impl NtpTimestamp {
    /// The all-zero timestamp, which NTP uses to mean "unknown".
    pub const ZERO: Self = Self(0);

    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    pub const fn to_bits(self) -> u64 {
        self.0
    }

    pub const fn from_parts(seconds: u32, fraction: u32) -> Self {
        Self(((seconds as u64) << 32) | fraction as u64)
    }

    /// Era-relative whole seconds.
    pub const fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Fraction of a second in units of 2^-32 s.
    pub const fn fraction(self) -> u32 {
        self.0 as u32
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// From Unix time (seconds may be negative), into whichever era it falls.
    ///
    /// Nanoseconds beyond 999,999,999 are clamped. The fraction is rounded up so that
    /// [`NtpTimestamp::to_unix_near`] gives back the same nanoseconds.
    pub fn from_unix(seconds: i64, nanos: u32) -> Self {
        let nanos = nanos.min(999_999_999) as u64;
        let fraction = ((nanos << 32).div_ceil(1_000_000_000)) as u32;
        let ntp_seconds = seconds.wrapping_add(UNIX_EPOCH_IN_NTP_SECONDS).rem_euclid(ERA_SECONDS);
        Self::from_parts(ntp_seconds as u32, fraction)
    }

    /// To Unix time `(seconds, nanoseconds)`, choosing the era that puts it nearest `pivot_unix_seconds`
    /// (within ±68 years of it).
    pub fn to_unix_near(self, pivot_unix_seconds: i64) -> (i64, u32) {
        let pivot = Self::from_unix(pivot_unix_seconds, 0);
        // Floor, not truncation: an instant before the pivot must not round up by a nanosecond.
        let nanos_from_pivot =
            (((self - pivot).to_bits() as i128) * 1_000_000_000).div_euclid(1i128 << 32);
        let total = pivot_unix_seconds as i128 * 1_000_000_000 + nanos_from_pivot;
        let seconds = total.div_euclid(1_000_000_000);
        let nanos = total.rem_euclid(1_000_000_000);
        (seconds as i64, nanos as u32)
    }

    /// Which era (0 = 1900–2036, 1 = 2036–2172, -1 before 1900) Unix time `seconds` falls in.
    pub fn era_of_unix(seconds: i64) -> i64 {
        seconds.wrapping_add(UNIX_EPOCH_IN_NTP_SECONDS).div_euclid(ERA_SECONDS)
    }
}

/// The signed difference `self - other`, modulo 2^64: right across an era boundary.
impl Sub for NtpTimestamp {
    type Output = NtpDuration;
    fn sub(self, other: Self) -> NtpDuration {
        NtpDuration::from_bits(self.0.wrapping_sub(other.0) as i64)
    }
}

impl Add<NtpDuration> for NtpTimestamp {
    type Output = Self;
    fn add(self, duration: NtpDuration) -> Self {
        Self(self.0.wrapping_add(duration.to_bits() as u64))
    }
}

impl Sub<NtpDuration> for NtpTimestamp {
    type Output = Self;
    fn sub(self, duration: NtpDuration) -> Self {
        Self(self.0.wrapping_sub(duration.to_bits() as u64))
    }
}

impl fmt::Debug for NtpTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NtpTimestamp({:08x}.{:08x})", self.seconds(), self.fraction())
    }
}

impl fmt::Display for NtpTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}.{:08x}", self.seconds(), self.fraction())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2036-02-07 06:28:16 UTC, the first second of NTP era 1.
    const ERA_1_START_UNIX: i64 = ERA_SECONDS - UNIX_EPOCH_IN_NTP_SECONDS;

    #[test]
    fn unix_epoch_is_ntp_second_2208988800() {
        let t = NtpTimestamp::from_unix(0, 0);
        assert_eq!(t.seconds(), 2_208_988_800);
        assert_eq!(t.fraction(), 0);
        assert_eq!(t.to_unix_near(0), (0, 0));
    }

    #[test]
    fn fraction_keeps_nanoseconds_exactly() {
        for nanos in [0, 1, 2, 499_999_999, 500_000_000, 999_999_998, 999_999_999] {
            let t = NtpTimestamp::from_unix(1_700_000_000, nanos);
            assert_eq!(t.to_unix_near(1_700_000_000), (1_700_000_000, nanos), "nanos {nanos}");
        }
        assert_eq!(NtpTimestamp::from_unix(0, 500_000_000).fraction(), 0x8000_0000);
    }

    #[test]
    fn era_rollover_in_2036_wraps_seconds_to_zero() {
        let last = NtpTimestamp::from_unix(ERA_1_START_UNIX - 1, 0);
        let first = NtpTimestamp::from_unix(ERA_1_START_UNIX, 0);
        assert_eq!(last.seconds(), u32::MAX);
        assert_eq!(first.seconds(), 0);
        assert_eq!(NtpTimestamp::era_of_unix(ERA_1_START_UNIX - 1), 0);
        assert_eq!(NtpTimestamp::era_of_unix(ERA_1_START_UNIX), 1);
        assert_eq!(NtpTimestamp::era_of_unix(-UNIX_EPOCH_IN_NTP_SECONDS - 1), -1);
    }

    #[test]
    fn differences_across_the_rollover_are_small_and_signed() {
        let before = NtpTimestamp::from_unix(ERA_1_START_UNIX - 2, 250_000_000);
        let after = NtpTimestamp::from_unix(ERA_1_START_UNIX + 1, 0);
        assert_eq!((after - before).to_seconds_f64(), 2.75);
        assert_eq!((before - after).to_seconds_f64(), -2.75);
        assert_eq!(before + NtpDuration::from_seconds_f64(2.75), after);
        assert_eq!(after - NtpDuration::from_seconds_f64(2.75), before);
    }

    #[test]
    fn era_is_chosen_nearest_the_pivot() {
        let t = NtpTimestamp::from_unix(ERA_1_START_UNIX + 10, 0);
        // Read by a clock in 2036, just before the rollover: it is 2036, era 1, not 1900.
        assert_eq!(t.to_unix_near(ERA_1_START_UNIX - 100), (ERA_1_START_UNIX + 10, 0));
        // The same bits read near 1900 mean 1900 (era 0).
        let near_1900 = -UNIX_EPOCH_IN_NTP_SECONDS + 5;
        assert_eq!(t.to_unix_near(near_1900), (-UNIX_EPOCH_IN_NTP_SECONDS + 10, 0));
        // And a timestamp from 2035 read in 2040 stays in era 0.
        let t2035 = NtpTimestamp::from_unix(2_051_222_400, 0);
        assert_eq!(t2035.to_unix_near(2_208_988_800), (2_051_222_400, 0));
    }

    #[test]
    fn negative_offsets_between_timestamps() {
        let a = NtpTimestamp::from_unix(1_700_000_000, 0);
        let b = NtpTimestamp::from_unix(1_700_000_000, 1_000);
        assert!((a - b).is_negative());
        assert_eq!((a - b).to_nanos(), -1_000); // 1 µs behind
        assert_eq!((b - a).to_nanos().abs(), 1_000);
    }
}
