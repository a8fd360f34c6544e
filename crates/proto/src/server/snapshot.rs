//! The system state a server advertises in every answer: leap, stratum, reference and the root
//! delay and dispersion that tell clients how far from true time it may be.

use crate::leap::Smear;
use crate::packet::{LeapIndicator, ReferenceId};
use crate::time::{NtpDuration, NtpTimestamp};

/// How fast an undisciplined clock's error may grow: 15 ppm (RFC 5905's PHI).
pub const FREQUENCY_TOLERANCE: f64 = 15e-6;

/// What the server says about itself, copied into each answer. Cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SystemSnapshot {
    pub leap: LeapIndicator,
    /// 1–15 while synchronised, 16 while not.
    pub stratum: u8,
    /// Precision of the local clock, log2 seconds.
    pub precision: i8,
    pub reference_id: ReferenceId,
    /// When the system clock was last set or corrected; zero while never.
    pub reference_time: NtpTimestamp,
    /// Round-trip delay to the primary reference.
    pub root_delay: NtpDuration,
    /// Dispersion to the primary reference at `reference_time`; grows at [`FREQUENCY_TOLERANCE`] after.
    pub root_dispersion: NtpDuration,
    /// The growth stops here.
    pub max_root_dispersion: NtpDuration,
    /// A leap second being smeared into served time (`leap_mode = "smear"`).
    pub smear: Option<Smear>,
}

impl SystemSnapshot {
    /// Honestly unsynchronised: leap indicator 3 and stratum 16, which clients refuse to follow.
    pub fn unsynchronised(precision: i8) -> Self {
        Self {
            leap: LeapIndicator::Unsynchronised,
            stratum: 16,
            precision,
            reference_id: ReferenceId::NONE,
            reference_time: NtpTimestamp::ZERO,
            root_delay: NtpDuration::ZERO,
            root_dispersion: NtpDuration::ZERO,
            max_root_dispersion: NtpDuration::from_seconds(16),
            smear: None,
        }
    }

    /// Serving the free-running local clock at a fixed stratum (ntpd's `127.127.1.0`, chrony's
    /// `local`), with `now` as the reference time, as if the local clock had just been consulted.
    pub fn local_clock(stratum: u8, precision: i8, now: NtpTimestamp) -> Self {
        Self {
            leap: LeapIndicator::NoWarning,
            stratum,
            precision,
            reference_id: ReferenceId::LOCAL,
            reference_time: now,
            root_delay: NtpDuration::ZERO,
            root_dispersion: NtpDuration::ZERO,
            max_root_dispersion: NtpDuration::ONE_SECOND,
            smear: None,
        }
    }

    /// The time to serve for clock reading `clock`: the reading, or while a leap is smeared the
    /// reading plus the smear's correction. `leap_passed` is asked only for a reading in the second
    /// an insertion repeats (or a deletion skips): whether the clock has made its leap step.
    pub fn served_time(
        &self,
        clock: NtpTimestamp,
        leap_passed: impl FnOnce() -> bool,
    ) -> NtpTimestamp {
        let Some(smear) = self.smear else { return clock };
        let from_leap = (clock - smear.leap.at).to_seconds_f64();
        let after = from_leap >= 0.0 || (from_leap >= -1.0 && leap_passed());
        clock + NtpDuration::from_seconds_f64(smear.correction(clock, after))
    }

    pub fn is_synchronised(&self) -> bool {
        self.leap != LeapIndicator::Unsynchronised && (1..16).contains(&self.stratum)
    }

    /// Root dispersion at `now`: the dispersion at the reference time plus the clock's precision
    /// plus the frequency tolerance times the time elapsed since.
    pub fn root_dispersion_at(&self, now: NtpTimestamp) -> NtpDuration {
        let elapsed = if self.reference_time.is_zero() {
            NtpDuration::ZERO
        } else {
            (now - self.reference_time).max(NtpDuration::ZERO)
        };
        self.root_dispersion
            .saturating_add(NtpDuration::from_log2_seconds(self.precision))
            .saturating_add(elapsed.mul_f64(FREQUENCY_TOLERANCE))
            .min(self.max_root_dispersion)
    }
}
