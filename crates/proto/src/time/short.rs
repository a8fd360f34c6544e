//! NTP's 32-bit short format (16.16 unsigned seconds), used for root delay and root dispersion.

use super::NtpDuration;
use std::fmt;

/// An unsigned 16.16 fixed-point number of seconds, range 0 to 65536 s with 15 µs resolution.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NtpShort(u32);

impl NtpShort {
    pub const ZERO: Self = Self(0);
    pub const MAX: Self = Self(u32::MAX);

    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    pub const fn to_bits(self) -> u32 {
        self.0
    }

    /// From a duration, rounding up to the next 2^-16 s (a dispersion is never understated),
    /// clamping negative values to zero and large ones to the maximum.
    pub fn from_duration_saturating(duration: NtpDuration) -> Self {
        let bits = duration.to_bits();
        if bits <= 0 {
            return Self::ZERO;
        }
        let rounded_up = (bits as u64).div_ceil(1 << 16);
        Self(u32::try_from(rounded_up).unwrap_or(u32::MAX))
    }

    pub fn to_duration(self) -> NtpDuration {
        NtpDuration::from_bits((self.0 as i64) << 16)
    }

    pub fn to_seconds_f64(self) -> f64 {
        self.0 as f64 / 65_536.0
    }
}

impl fmt::Debug for NtpShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NtpShort({:.6} s)", self.to_seconds_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_at_both_ends() {
        assert_eq!(
            NtpShort::from_duration_saturating(NtpDuration::from_seconds(-5)),
            NtpShort::ZERO
        );
        assert_eq!(
            NtpShort::from_duration_saturating(NtpDuration::from_seconds(65_536)),
            NtpShort::MAX
        );
        assert_eq!(NtpShort::from_duration_saturating(NtpDuration::MAX), NtpShort::MAX);
        assert_eq!(NtpShort::from_duration_saturating(NtpDuration::ZERO), NtpShort::ZERO);
    }

    #[test]
    fn rounds_up_so_dispersion_is_never_understated() {
        let tiny = NtpDuration::from_bits(1);
        assert_eq!(NtpShort::from_duration_saturating(tiny).to_bits(), 1);
        let one_and_a_half = NtpDuration::from_seconds_f64(1.5);
        let short = NtpShort::from_duration_saturating(one_and_a_half);
        assert_eq!(short.to_bits(), 0x0001_8000);
        assert_eq!(short.to_duration(), one_and_a_half);
    }
}
