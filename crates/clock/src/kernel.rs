//! Steering the system clock through clock_adjtime(2) on CLOCK_REALTIME: frequency (with the tick
//! length for slews beyond the ±500 ppm the frequency field allows), steps, and the kernel's
//! synchronisation status. The only code in the project that changes the clock.

use crate::control::{ClockControl, ClockError, KernelSyncStatus};
use syhub_ntp_proto::leap::LeapKind;
use syhub_ntp_sys::errno::EPERM;
use syhub_ntp_sys::timex::{self, Timex};

/// Kernel frequency field units: 2^-16 ppm.
const FREQUENCY_SCALE: f64 = 65_536.0;
/// The frequency field's own limit, ppm.
const MAX_FREQUENCY_PPM: f64 = 500.0;
/// Status bits of a kernel PLL/FLL/PPS discipline we take over from (and switch off).
const FOREIGN_DISCIPLINE: i32 =
    timex::STA_PLL | timex::STA_FLL | timex::STA_PPSFREQ | timex::STA_PPSTIME;

/// How a frequency correction is split between the tick length and the frequency field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickAndFrequency {
    /// Microseconds per tick.
    pub tick: i64,
    /// Frequency field, 2^-16 ppm.
    pub frequency: i64,
}

/// Splits a correction (s/s, positive = faster) into a tick length around `nominal_tick` (µs; one
/// µs more per tick is 10^6 / nominal_tick ppm), within the kernel's ±10 %, and the remainder for
/// the frequency field, within ±500 ppm.
pub fn split_frequency(correction: f64, nominal_tick: i64) -> TickAndFrequency {
    let ppm = correction * 1e6;
    let ppm_per_tick_us = 1e6 / nominal_tick as f64;
    let tick_range = (nominal_tick / 10) as f64;
    let tick_delta = (ppm / ppm_per_tick_us).round().clamp(-tick_range, tick_range);
    let remainder =
        (ppm - tick_delta * ppm_per_tick_us).clamp(-MAX_FREQUENCY_PPM, MAX_FREQUENCY_PPM);
    TickAndFrequency {
        tick: nominal_tick + tick_delta as i64,
        frequency: (remainder * FREQUENCY_SCALE).round() as i64,
    }
}

/// The correction (s/s) a tick length and frequency field amount to.
pub fn join_frequency(split: TickAndFrequency, nominal_tick: i64) -> f64 {
    let tick_ppm = (split.tick - nominal_tick) as f64 * 1e6 / nominal_tick as f64;
    (tick_ppm + split.frequency as f64 / FREQUENCY_SCALE) * 1e-6
}

/// The real system clock.
#[derive(Debug)]
pub struct KernelClock {
    /// Microseconds per tick at zero correction (10 000 at 100 Hz).
    nominal_tick: i64,
    /// Tests replace what the kernel says about synchronisation (it is machine-wide).
    kernel_sync_override: Option<bool>,
}

impl KernelClock {
    pub fn new(kernel_sync_override: Option<bool>) -> Self {
        let hz = timex::ticks_per_second().unwrap_or(100);
        Self { nominal_tick: 1_000_000 / hz, kernel_sync_override }
    }
}

/// clock_adjtime(2) on CLOCK_REALTIME: the clock state it returns.
fn adjust(timex: &mut Timex) -> Result<i32, ClockError> {
    timex::adjust_realtime(timex).map_err(|error| match error.raw_os_error() {
        Some(EPERM) => ClockError::NotPermitted,
        _ => ClockError::Kernel(error.to_string()),
    })
}

/// The kernel's clock variables and state, changing nothing (needs no privilege).
fn read() -> Result<(Timex, i32), ClockError> {
    // modes = 0 only reads.
    let mut timex = Timex::default();
    let state = adjust(&mut timex)?;
    Ok((timex, state))
}

/// Whether the kernel is in or just past a leap second (its clock state TIME_OOP, during an
/// inserted second, or TIME_WAIT, after a leap). Reading needs no privilege.
pub fn kernel_leap_in_progress_or_done() -> bool {
    read().is_ok_and(|(_, state)| state == timex::TIME_OOP || state == timex::TIME_WAIT)
}

impl ClockControl for KernelClock {
    fn frequency(&self) -> Result<f64, ClockError> {
        let timex = read()?.0;
        let split = TickAndFrequency { tick: timex.tick, frequency: timex.freq };
        Ok(join_frequency(split, self.nominal_tick))
    }

    fn kernel_synchronised(&self) -> Result<bool, ClockError> {
        if let Some(faked) = self.kernel_sync_override {
            return Ok(faked);
        }
        Ok(read()?.0.status & timex::STA_UNSYNC == 0)
    }

    fn take_control(&self) -> Result<(), ClockError> {
        // Switch off any kernel PLL a previous daemon left running, with its pending offset.
        let mut timex = read()?.0;
        timex.modes = timex::ADJ_STATUS | timex::ADJ_OFFSET;
        timex.status &= !FOREIGN_DISCIPLINE;
        timex.offset = 0;
        adjust(&mut timex).map(drop)
    }

    fn set_frequency(&self, correction: f64) -> Result<(), ClockError> {
        let split = split_frequency(correction, self.nominal_tick);
        let mut timex = Timex {
            modes: timex::ADJ_FREQUENCY | timex::ADJ_TICK,
            tick: split.tick,
            freq: split.frequency,
            ..Timex::default()
        };
        adjust(&mut timex).map(drop)
    }

    fn step(&self, offset: f64) -> Result<(), ClockError> {
        if !offset.is_finite() {
            return Err(ClockError::Kernel(format!("refusing to step by {offset}")));
        }
        let seconds = offset.floor();
        let nanos = ((offset - seconds) * 1e9).round().min(999_999_999.0);
        let mut timex = Timex {
            modes: timex::ADJ_SETOFFSET | timex::ADJ_NANO,
            time_sec: seconds as i64,
            // With ADJ_NANO the microseconds field carries nanoseconds.
            time_usec: nanos as i64,
            ..Timex::default()
        };
        adjust(&mut timex).map(drop)
    }

    fn set_sync_status(&self, status: &KernelSyncStatus) -> Result<(), ClockError> {
        let mut timex = read()?.0;
        timex.modes = timex::ADJ_STATUS | timex::ADJ_MAXERROR | timex::ADJ_ESTERROR;
        if status.synchronised {
            timex.status &= !timex::STA_UNSYNC;
        } else {
            timex.status |= timex::STA_UNSYNC;
        }
        timex.status &= !FOREIGN_DISCIPLINE;
        // The leap second to make at the end of this UTC day (the kernel clears it after).
        timex.status &= !(timex::STA_INS | timex::STA_DEL);
        match status.leap {
            Some(LeapKind::Insert) => timex.status |= timex::STA_INS,
            Some(LeapKind::Delete) => timex.status |= timex::STA_DEL,
            None => {}
        }
        timex.maxerror = (status.max_error * 1e6).clamp(0.0, 16e6) as i64;
        timex.esterror = (status.estimated_error * 1e6).clamp(0.0, 16e6) as i64;
        adjust(&mut timex).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_corrections_use_the_frequency_field_only() {
        let split = split_frequency(12.5e-6, 10_000);
        assert_eq!(split, TickAndFrequency { tick: 10_000, frequency: (12.5 * 65_536.0) as i64 });
        assert!((join_frequency(split, 10_000) - 12.5e-6).abs() < 1e-12);
    }

    #[test]
    fn large_slews_move_the_tick() {
        // 1 % faster: 100 µs more per 10 ms tick.
        let split = split_frequency(0.01, 10_000);
        assert_eq!(split.tick, 10_100);
        assert!(split.frequency.abs() <= (50.0 * FREQUENCY_SCALE) as i64);
        assert!((join_frequency(split, 10_000) - 0.01).abs() < 1e-10);
        let split = split_frequency(-237.3e-6, 10_000);
        assert!((join_frequency(split, 10_000) + 237.3e-6).abs() < 1e-10);
        // At 250 Hz a tick µs is 250 ppm.
        let split = split_frequency(-0.01, 4_000);
        assert_eq!(split.tick, 3_960);
        // A 5000 ppm clock is corrected through the tick too.
        let split = split_frequency(-5000e-6, 10_000);
        assert!((join_frequency(split, 10_000) + 5000e-6).abs() < 1e-10);
    }

    #[test]
    fn the_tick_stays_within_the_kernels_ten_percent() {
        let split = split_frequency(0.3, 10_000);
        assert_eq!(split.tick, 11_000);
        assert_eq!(split.frequency, (500.0 * FREQUENCY_SCALE) as i64);
        assert_eq!(split_frequency(-0.3, 4_000).tick, 3_600);
    }

    #[test]
    fn reading_the_kernel_needs_no_privilege_and_changes_nothing() {
        let clock = KernelClock::new(None);
        let frequency = clock.frequency().unwrap();
        assert!(frequency.abs() < 0.2, "{frequency}");
        clock.kernel_synchronised().unwrap();
        assert_eq!(KernelClock::new(Some(false)).kernel_synchronised(), Ok(false));
    }
}
