//! When a server warns of a leap second: its leap indicator says "insert" or "delete" only during
//! the last UTC day before the leap, the day whose last minute has 61 or 59 seconds.

use super::{Leap, LeapKind};
use crate::packet::LeapIndicator;
use crate::time::{NtpDuration, NtpTimestamp};

/// How long before the leap the warning starts: one day, in seconds.
const ANNOUNCE_SECONDS: i64 = 86_400;

/// Whether `now` is in the last day before the leap: from `leap.at - 86400 s` (inclusive) to
/// `leap.at` (exclusive).
pub fn announce(leap: &Leap, now: NtpTimestamp) -> bool {
    // A difference of timestamps needs no era: it is right within ±68 years.
    let until_leap = leap.at - now;
    until_leap > NtpDuration::ZERO && until_leap <= NtpDuration::from_seconds(ANNOUNCE_SECONDS)
}

/// The leap indicator a synchronised server sends at `now`, given the next leap (if any).
pub fn leap_indicator_for(leap: Option<&Leap>, now: NtpTimestamp) -> LeapIndicator {
    match leap {
        Some(leap) if announce(leap, now) => match leap.kind {
            LeapKind::Insert => LeapIndicator::InsertSecond,
            LeapKind::Delete => LeapIndicator::DeleteSecond,
        },
        _ => LeapIndicator::NoWarning,
    }
}
