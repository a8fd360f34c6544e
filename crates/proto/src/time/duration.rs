//! Signed time differences in NTP's 32.32 fixed-point format (offsets, delays, dispersions).

use std::fmt;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

const FRACTION_SCALE: f64 = 4_294_967_296.0; // 2^32 fraction units per second
const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// A signed span of time in units of 2^-32 s (about 233 ps), range about ±68 years.
///
/// Differences of two [`crate::NtpTimestamp`]s are taken modulo 2^64, so an offset stays right across an
/// era boundary as long as the two times are less than 68 years apart (RFC 5905, section 6).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NtpDuration(i64);

impl NtpDuration {
    pub const ZERO: Self = Self(0);
    pub const MAX: Self = Self(i64::MAX);
    pub const MIN: Self = Self(i64::MIN);
    pub const ONE_SECOND: Self = Self(1 << 32);

    /// From raw 32.32 fixed-point bits.
    pub const fn from_bits(bits: i64) -> Self {
        Self(bits)
    }

    /// The raw 32.32 fixed-point bits.
    pub const fn to_bits(self) -> i64 {
        self.0
    }

    /// From whole seconds, saturating at the ends of the range.
    pub const fn from_seconds(seconds: i64) -> Self {
        if seconds > i32::MAX as i64 {
            Self::MAX
        } else if seconds < i32::MIN as i64 {
            Self::MIN
        } else {
            Self(seconds << 32)
        }
    }

    /// From seconds as a float, saturating; NaN gives zero.
    pub fn from_seconds_f64(seconds: f64) -> Self {
        // `as` saturates on overflow and maps NaN to 0.
        Self((seconds * FRACTION_SCALE) as i64)
    }

    /// In seconds as a float.
    pub fn to_seconds_f64(self) -> f64 {
        self.0 as f64 / FRACTION_SCALE
    }

    /// From nanoseconds, saturating.
    pub fn from_nanos(nanos: i64) -> Self {
        let bits = ((nanos as i128) << 32) / NANOS_PER_SECOND;
        Self(bits.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }

    /// In whole nanoseconds, rounded toward zero.
    pub fn to_nanos(self) -> i64 {
        (self.0 as i128 * NANOS_PER_SECOND / (1i128 << 32)) as i64
    }

    /// 2^exponent seconds: the unit of NTP's poll and precision fields. Saturates beyond ±2^30 s.
    pub fn from_log2_seconds(exponent: i8) -> Self {
        let shift = 32 + exponent as i32;
        if shift < 0 {
            Self::ZERO
        } else if shift >= 63 {
            Self::MAX
        } else {
            Self(1i64 << shift)
        }
    }

    /// Half-way between two durations, without overflow: `(a + b) / 2`, as in the offset formula.
    pub fn midpoint(a: Self, b: Self) -> Self {
        Self(((a.0 as i128 + b.0 as i128) / 2) as i64)
    }

    pub fn abs(self) -> Self {
        Self(self.0.saturating_abs())
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn saturating_add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }

    pub fn saturating_sub(self, other: Self) -> Self {
        Self(self.0.saturating_sub(other.0))
    }

    /// Multiplies by a float (e.g. a frequency tolerance), saturating.
    pub fn mul_f64(self, factor: f64) -> Self {
        Self::from_seconds_f64(self.to_seconds_f64() * factor)
    }
}

/// Wrapping, like the timestamp arithmetic it comes from; use `saturating_*` where overflow matters.
impl Add for NtpDuration {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Self(self.0.wrapping_add(rhs.0))
    }
}

impl AddAssign for NtpDuration {
    fn add_assign(&mut self, rhs: Self) {
        *self = *self + rhs;
    }
}

impl Sub for NtpDuration {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        Self(self.0.wrapping_sub(rhs.0))
    }
}

impl SubAssign for NtpDuration {
    fn sub_assign(&mut self, rhs: Self) {
        *self = *self - rhs;
    }
}

impl Neg for NtpDuration {
    type Output = Self;
    fn neg(self) -> Self {
        Self(self.0.wrapping_neg())
    }
}

impl fmt::Debug for NtpDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NtpDuration({:+.9} s)", self.to_seconds_f64())
    }
}

impl fmt::Display for NtpDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:+.6} s", self.to_seconds_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_nanos_convert_both_ways() {
        assert_eq!(NtpDuration::from_seconds(1), NtpDuration::ONE_SECOND);
        assert_eq!(NtpDuration::from_seconds(-3).to_seconds_f64(), -3.0);
        assert_eq!(NtpDuration::from_nanos(1_500_000_000).to_seconds_f64(), 1.5);
        assert_eq!(NtpDuration::from_nanos(-250_000_000).to_seconds_f64(), -0.25);
        let d = NtpDuration::from_nanos(123_456_789);
        assert!((d.to_nanos() - 123_456_789).abs() <= 1);
    }

    #[test]
    fn saturates_instead_of_wrapping_on_conversion() {
        assert_eq!(NtpDuration::from_seconds(1 << 40), NtpDuration::MAX);
        assert_eq!(NtpDuration::from_seconds(-(1 << 40)), NtpDuration::MIN);
        assert_eq!(NtpDuration::from_seconds_f64(1e30), NtpDuration::MAX);
        assert_eq!(NtpDuration::from_seconds_f64(-1e30), NtpDuration::MIN);
        assert_eq!(NtpDuration::from_seconds_f64(f64::NAN), NtpDuration::ZERO);
        assert_eq!(NtpDuration::MIN.abs(), NtpDuration::MAX);
    }

    #[test]
    fn log2_seconds_matches_poll_and_precision_units() {
        assert_eq!(NtpDuration::from_log2_seconds(6).to_seconds_f64(), 64.0);
        assert_eq!(NtpDuration::from_log2_seconds(-20).to_seconds_f64(), 2f64.powi(-20));
        assert_eq!(NtpDuration::from_log2_seconds(-40), NtpDuration::ZERO);
        assert_eq!(NtpDuration::from_log2_seconds(100), NtpDuration::MAX);
    }

    #[test]
    fn midpoint_does_not_overflow_at_the_extremes() {
        assert_eq!(NtpDuration::midpoint(NtpDuration::MAX, NtpDuration::MAX), NtpDuration::MAX);
        assert_eq!(NtpDuration::midpoint(NtpDuration::MIN, NtpDuration::MIN), NtpDuration::MIN);
        let a = NtpDuration::from_seconds(3);
        let b = NtpDuration::from_seconds(-1);
        assert_eq!(NtpDuration::midpoint(a, b), NtpDuration::from_seconds(1));
    }
}
