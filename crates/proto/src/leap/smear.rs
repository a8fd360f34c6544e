//! Leap smearing: the correction that turns readings of a kernel clock which steps for a leap
//! second into served time that is continuous, monotonic and steady across the leap.

use super::{Leap, LeapKind};
use crate::time::NtpTimestamp;

/// A leap second spread evenly over `window` seconds of elapsed time, centred on the kernel's step.
///
/// The system clock performs the leap itself, as Linux does when told to:
/// - insertion: when the clock reaches `leap.at` it steps back to `leap.at - 1 s`, so readings in
///   `[at - 1 s, at)` occur twice (the second time they stand for 23:59:60);
/// - deletion: when the clock reaches `leap.at - 1 s` it steps on to `leap.at`, so readings in
///   `[at - 1 s, at)` never occur.
///
/// Served time is the reading plus [`Smear::correction`]. The window holds `window / 2` seconds
/// of elapsed time before the step and as many after it. Across it served time runs at a constant
/// rate of `(window - 1) / window` of real time for an insertion (`(window + 1) / window` for a
/// deletion), so it absorbs the step: the correction falls from 0 to -0.5 s just before an
/// inserting step, is +0.5 s right after it and falls back to 0 at the window's end (a deletion
/// is the mirror image, + then -). In clock readings an insertion's window runs from
/// `at - window/2` until the stepped clock reads `at + window/2 - 1 s`; a deletion's from
/// `at - window/2 - 1 s` until `at + window/2`. Outside it served time is the reading.
///
/// A `window` of 1 s or less (or not a finite number) smears nothing: the leap is served as the
/// kernel steps it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Smear {
    pub leap: Leap,
    /// Elapsed seconds over which the leap is spread, e.g. 86400 for a day.
    pub window: f64,
}

impl Smear {
    /// Seconds to add to the clock reading `clock` to get the time to serve.
    ///
    /// `after_leap` says on which side of the kernel's step the reading was taken; the caller
    /// must know it, because an insertion repeats a second of readings. The daemon armed the leap
    /// in the kernel and can tell from the kernel's state (Linux's adjtimex reports TIME_OOP
    /// during the inserted second and TIME_WAIT after a leap) or from having watched the reading
    /// step. A reading outside its side's part of the window gets no correction.
    pub fn correction(&self, clock: NtpTimestamp, after_leap: bool) -> f64 {
        self.correction_in_window(clock, after_leap).unwrap_or(0.0)
    }

    /// Whether `clock` (on the side of the step `after_leap` says) is inside the window.
    pub fn is_active(&self, clock: NtpTimestamp, after_leap: bool) -> bool {
        self.correction_in_window(clock, after_leap).is_some()
    }

    fn correction_in_window(&self, clock: NtpTimestamp, after_leap: bool) -> Option<f64> {
        if !(self.window.is_finite() && self.window > 1.0) {
            return None;
        }
        let half = self.window / 2.0;
        // Seconds from `leap.at` to the reading; differences of timestamps need no era.
        let reading = (clock - self.leap.at).to_seconds_f64();
        // `lose` is +1 when served time must lose a second over the window (insertion), -1 when
        // it must gain one. The step takes the reading from `step_from` to `step_to`.
        let (lose, step_from, step_to) = match self.leap.kind {
            LeapKind::Insert => (1.0, 0.0, -1.0),
            LeapKind::Delete => (-1.0, -1.0, 0.0),
        };
        if after_leap {
            let remaining = step_to + half - reading;
            (reading >= step_to && remaining > 0.0).then(|| lose * remaining / self.window)
        } else {
            let elapsed = reading - (step_from - half);
            (elapsed >= 0.0 && reading < step_from).then(|| -lose * elapsed / self.window)
        }
    }
}
