//! The leap second the system is heading for (from the leap-seconds file while it is valid, else
//! from the warnings of the selected sources) and what the chosen leap mode asks for: the leap
//! indicator to serve, the kernel to arm, a step to make, or the smear to apply to served time.

use crate::leap::{Leap, LeapKind, LeapTable, Smear, announce, leap_indicator_for};
use crate::packet::LeapIndicator;
use crate::time::{NtpTimestamp, next_month_start};

/// How a leap second reaches the clock and the clients.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LeapMode {
    /// The kernel inserts or deletes the second at midnight (armed during the last day); clients
    /// are warned through the leap indicator.
    Kernel,
    /// The daemon steps the clock back (or on) by one second when the leap is due; clients are
    /// warned through the leap indicator.
    Step,
    /// The kernel leaps as in `Kernel`, but served time runs `window` seconds long at a slightly
    /// different rate so clients see no leap at all, and no warning (they would correct twice).
    Smear { window: f64 },
}

/// A leap is kept in hand this long after it happened (beyond a smear's window), seconds.
const KEEP_AFTER: f64 = 2.0;
/// Sources' warnings this soon (seconds) after a leap are about that leap: they warn until their
/// next answer, up to a poll interval late, and leaps come at most twice a year.
const STALE_WARNINGS: f64 = 28.0 * 86_400.0;
/// From this many seconds before the leap, it is kept whatever the sources say.
const HOLD_BEFORE: f64 = 2.0;

/// Follows the next leap second.
#[derive(Debug, Clone)]
pub struct LeapWatch {
    mode: LeapMode,
    table: Option<LeapTable>,
    /// The leap in hand: coming, or just passed and still being smeared or stepped.
    current: Option<Leap>,
    /// The step of `LeapMode::Step` has been made for `current`.
    stepped: bool,
    /// The last leap that passed: sources keep warning of it until their next answer.
    passed: Option<Leap>,
}

impl LeapWatch {
    pub fn new(mode: LeapMode, table: Option<LeapTable>) -> Self {
        Self { mode, table, current: None, stepped: false, passed: None }
    }

    pub fn mode(&self) -> LeapMode {
        self.mode
    }

    /// The leap-seconds table (a fresh one read, or `None` when it went bad).
    pub fn set_table(&mut self, table: Option<LeapTable>) {
        self.table = table;
    }

    /// Updates the leap in hand at clock reading `now`. `sources_warn`: the leap a majority of
    /// the selected sources warn of, if any. A valid table decides; without one (none, or
    /// expired) the sources' warning stands for a leap at the end of the current month.
    pub fn update(&mut self, now: NtpTimestamp, sources_warn: Option<LeapKind>) -> Option<Leap> {
        if let Some(leap) = self.current
            && (now - leap.at).to_seconds_f64() > self.keep_after()
        {
            self.passed = self.current.take();
            self.stepped = false;
        }
        let foreseen = match self.table.as_ref().filter(|t| !t.is_expired(now)) {
            Some(table) => table.next_leap(now),
            // A warning within a month of the last leap is a stale one about that leap.
            None => sources_warn
                .filter(|_| {
                    self.passed.is_none_or(|p| (now - p.at).to_seconds_f64() > STALE_WARNINGS)
                })
                .map(|kind| Leap { at: next_month_start(now), kind }),
        };
        // A leap about to happen or just happened stays in hand: it is no longer "next" once
        // passed, and an inserting clock reads the second before it twice.
        match (self.current, foreseen) {
            (Some(current), _) if (current.at - now).to_seconds_f64() <= HOLD_BEFORE => {}
            (_, foreseen) => {
                if foreseen != self.current {
                    self.stepped = false;
                }
                self.current = foreseen;
            }
        }
        self.current
    }

    pub fn current(&self) -> Option<Leap> {
        self.current
    }

    /// The leap indicator a synchronised server sends at `now`: the warning during the last day,
    /// never when smearing.
    pub fn indicator(&self, now: NtpTimestamp) -> LeapIndicator {
        match self.mode {
            LeapMode::Smear { .. } => LeapIndicator::NoWarning,
            LeapMode::Kernel | LeapMode::Step => leap_indicator_for(self.current.as_ref(), now),
        }
    }

    /// What the kernel should be armed with at `now` (Kernel and Smear modes, during the last
    /// day before the leap).
    pub fn kernel_leap(&self, now: NtpTimestamp) -> Option<LeapKind> {
        match self.mode {
            LeapMode::Step => None,
            LeapMode::Kernel | LeapMode::Smear { .. } => {
                self.current.filter(|leap| announce(leap, now)).map(|leap| leap.kind)
            }
        }
    }

    /// Step mode: the step to make now (−1 s for an insertion once the clock reads the leap's
    /// midnight, +1 s for a deletion a second before it), once per leap.
    pub fn step_due(&mut self, now: NtpTimestamp) -> Option<f64> {
        let leap = self.current.filter(|_| self.mode == LeapMode::Step && !self.stepped)?;
        let until = (leap.at - now).to_seconds_f64();
        let (due, step) = match leap.kind {
            LeapKind::Insert => (until <= 0.0, -1.0),
            LeapKind::Delete => (until <= 1.0, 1.0),
        };
        if due && until > -self.keep_after() {
            self.stepped = true;
            return Some(step);
        }
        None
    }

    /// When the daemon must look again (a step or the end of a smear is due), seconds from `now`.
    pub fn seconds_until_due(&self, now: NtpTimestamp) -> Option<f64> {
        let leap = self.current?;
        let until = (leap.at - now).to_seconds_f64();
        // A deletion is stepped over a second before midnight; everything else is at midnight.
        let early =
            if self.mode == LeapMode::Step && leap.kind == LeapKind::Delete { 1.0 } else { 0.0 };
        let due = until - early;
        (due > 0.0).then_some(due)
    }

    /// Smear mode: the smear to apply to served time.
    pub fn smear(&self) -> Option<Smear> {
        match self.mode {
            LeapMode::Smear { window } => self.current.map(|leap| Smear { leap, window }),
            LeapMode::Kernel | LeapMode::Step => None,
        }
    }

    fn keep_after(&self) -> f64 {
        match self.mode {
            LeapMode::Smear { window } => window / 2.0 + KEEP_AFTER,
            LeapMode::Kernel | LeapMode::Step => KEEP_AFTER,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leap::tests::{at_day, build_file, ntp_day};
    use crate::time::NtpDuration;

    /// A list whose last entry is an insertion at 2027-01-01, valid until 2027-06-28.
    fn table_with_2027_insertion() -> LeapTable {
        let entries =
            [(ntp_day(1972, 1, 1), 10), (ntp_day(2017, 1, 1), 11), (ntp_day(2027, 1, 1), 12)];
        LeapTable::parse(&build_file(ntp_day(2026, 7, 1), ntp_day(2027, 6, 28), &entries)).unwrap()
    }

    fn before(time: NtpTimestamp, seconds: i64) -> NtpTimestamp {
        time - NtpDuration::from_seconds(seconds)
    }

    #[test]
    fn a_valid_table_decides_over_the_sources() {
        let leap_at = at_day(2027, 1, 1);
        let mut watch = LeapWatch::new(LeapMode::Kernel, Some(table_with_2027_insertion()));
        // The sources warn of a deletion this month: the table says otherwise and wins.
        let now = before(at_day(2026, 8, 1), 3_600);
        assert_eq!(
            watch.update(now, Some(LeapKind::Delete)),
            Some(Leap { at: leap_at, kind: LeapKind::Insert })
        );
        assert_eq!(watch.indicator(now), LeapIndicator::NoWarning, "not the last day yet");
        let last_day = before(leap_at, 3_600);
        watch.update(last_day, None);
        assert_eq!(watch.indicator(last_day), LeapIndicator::InsertSecond);
        assert_eq!(watch.kernel_leap(last_day), Some(LeapKind::Insert));
    }

    #[test]
    fn without_a_valid_table_the_sources_warning_means_the_end_of_the_month() {
        let mut watch = LeapWatch::new(LeapMode::Kernel, None);
        let now = before(at_day(2026, 7, 1), 600);
        let leap = watch.update(now, Some(LeapKind::Insert)).expect("a leap");
        assert_eq!(leap, Leap { at: at_day(2026, 7, 1), kind: LeapKind::Insert });
        // An expired table counts as none.
        let mut expired = LeapWatch::new(LeapMode::Kernel, Some(table_with_2027_insertion()));
        let late = before(at_day(2027, 8, 1), 600);
        assert_eq!(
            expired.update(late, Some(LeapKind::Delete)).map(|l| l.kind),
            Some(LeapKind::Delete)
        );
        assert_eq!(expired.update(late, None), None);
    }

    #[test]
    fn stale_warnings_after_a_leap_are_ignored() {
        let mut watch = LeapWatch::new(LeapMode::Kernel, None);
        let leap_at = at_day(2026, 7, 1);
        watch.update(before(leap_at, 10), Some(LeapKind::Insert));
        // A second after: still in hand; a minute after: passed; sources still warn (their last
        // answers were before the leap) but that is no new leap at the end of July.
        assert!(
            watch.update(leap_at + NtpDuration::from_seconds(1), Some(LeapKind::Insert)).is_some()
        );
        let later = leap_at + NtpDuration::from_seconds(60);
        assert_eq!(watch.update(later, Some(LeapKind::Insert)), None);
        assert_eq!(watch.indicator(later), LeapIndicator::NoWarning);
    }

    #[test]
    fn step_mode_steps_once_at_midnight_and_kernel_mode_never() {
        let leap_at = at_day(2027, 1, 1);
        let mut watch = LeapWatch::new(LeapMode::Step, Some(table_with_2027_insertion()));
        watch.update(before(leap_at, 5), None);
        assert_eq!(watch.step_due(before(leap_at, 5)), None);
        assert_eq!(
            watch.kernel_leap(before(leap_at, 5)),
            None,
            "step mode leaves the kernel alone"
        );
        assert!((watch.seconds_until_due(before(leap_at, 5)).unwrap() - 5.0).abs() < 1e-9);
        watch.update(leap_at, None);
        assert_eq!(watch.step_due(leap_at), Some(-1.0));
        // After the step the clock reads the second before midnight again: no second step.
        let again = before(leap_at, 1);
        watch.update(again, None);
        assert_eq!(watch.step_due(again), None);
        let mut kernel = LeapWatch::new(LeapMode::Kernel, Some(table_with_2027_insertion()));
        kernel.update(leap_at, None);
        assert_eq!(kernel.step_due(leap_at), None);
    }

    #[test]
    fn smear_mode_warns_nobody_and_smears_around_the_leap() {
        let leap_at = at_day(2027, 1, 1);
        let mut watch =
            LeapWatch::new(LeapMode::Smear { window: 86_400.0 }, Some(table_with_2027_insertion()));
        let now = before(leap_at, 3_600);
        watch.update(now, None);
        assert_eq!(watch.indicator(now), LeapIndicator::NoWarning);
        assert_eq!(watch.kernel_leap(now), Some(LeapKind::Insert), "the kernel still leaps");
        let smear = watch.smear().expect("a smear");
        // Half a second at the leap, less what the hour left to go takes back.
        assert!((smear.correction(now, false) - (-0.5 + 3_600.0 / 86_400.0)).abs() < 1e-6);
    }
}
