//! Readings of a monotonic clock (never stepped), for timers and intervals. The core never reads a
//! clock: the daemon passes `tokio::time::Instant`s converted to this, the simulator virtual time.

use std::ops::{Add, Sub};
use std::time::Duration;

/// Time since an arbitrary origin (the daemon's start, or zero in a simulation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Monotonic(Duration);

impl Monotonic {
    pub const ZERO: Self = Self(Duration::ZERO);

    pub const fn from_duration(since_origin: Duration) -> Self {
        Self(since_origin)
    }

    pub fn from_seconds_f64(seconds: f64) -> Self {
        Self(Duration::from_secs_f64(seconds.max(0.0)))
    }

    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// `self - earlier` in seconds; negative when `earlier` is later.
    pub fn seconds_since(self, earlier: Self) -> f64 {
        self.0.as_secs_f64() - earlier.0.as_secs_f64()
    }

    /// The later of the two.
    pub fn max(self, other: Self) -> Self {
        if self >= other { self } else { other }
    }
}

impl Add<Duration> for Monotonic {
    type Output = Self;
    fn add(self, duration: Duration) -> Self {
        Self(self.0.saturating_add(duration))
    }
}

/// Saturates at the origin.
impl Sub<Duration> for Monotonic {
    type Output = Self;
    fn sub(self, duration: Duration) -> Self {
        Self(self.0.saturating_sub(duration))
    }
}

/// Saturates at zero when `earlier` is later.
impl Sub for Monotonic {
    type Output = Duration;
    fn sub(self, earlier: Self) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}
