//! clock_adjtime(2) on CLOCK_REALTIME, with the fields of `struct timex` the daemon uses in fixed
//! widths (the C fields are `long`, 32 bits on 32-bit ARM), the kernel's tick rate
//! (sysconf(_SC_CLK_TCK)) and CLOCK_MONOTONIC_RAW. What to read or set, and when, is the clock
//! crate's business.

use std::io;

/// `modes` bits: which fields clock_adjtime sets.
pub const ADJ_OFFSET: u32 = libc::ADJ_OFFSET;
pub const ADJ_FREQUENCY: u32 = libc::ADJ_FREQUENCY;
pub const ADJ_MAXERROR: u32 = libc::ADJ_MAXERROR;
pub const ADJ_ESTERROR: u32 = libc::ADJ_ESTERROR;
pub const ADJ_STATUS: u32 = libc::ADJ_STATUS;
pub const ADJ_TICK: u32 = libc::ADJ_TICK;
/// Step the clock by `time_sec` + `time_usec`.
pub const ADJ_SETOFFSET: u32 = libc::ADJ_SETOFFSET;
/// `time_usec` (and the offset) in nanoseconds.
pub const ADJ_NANO: u32 = libc::ADJ_NANO;

/// `status` bits.
pub const STA_PLL: i32 = libc::STA_PLL;
pub const STA_PPSFREQ: i32 = libc::STA_PPSFREQ;
pub const STA_PPSTIME: i32 = libc::STA_PPSTIME;
pub const STA_FLL: i32 = libc::STA_FLL;
pub const STA_INS: i32 = libc::STA_INS;
pub const STA_DEL: i32 = libc::STA_DEL;
pub const STA_UNSYNC: i32 = libc::STA_UNSYNC;

/// Clock states clock_adjtime returns: inside an inserted leap second, and just after a leap.
pub const TIME_OOP: i32 = libc::TIME_OOP;
pub const TIME_WAIT: i32 = libc::TIME_WAIT;

/// The fields of `struct timex` the daemon reads or sets; the others are passed as zero and, not
/// being named in `modes`, left alone by the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timex {
    /// `ADJ_*` bits: the fields to set; 0 only reads.
    pub modes: u32,
    /// Pending PLL offset (µs, or ns with ADJ_NANO).
    pub offset: i64,
    /// Frequency offset, 2^-16 ppm.
    pub freq: i64,
    /// Maximum error, µs.
    pub maxerror: i64,
    /// Estimated error, µs.
    pub esterror: i64,
    /// `STA_*` bits.
    pub status: i32,
    /// Microseconds per tick.
    pub tick: i64,
    /// With ADJ_SETOFFSET: the step, whole seconds (possibly negative) ...
    pub time_sec: i64,
    /// ... and a non-negative fraction in µs (ns with ADJ_NANO).
    pub time_usec: i64,
}

impl Timex {
    fn to_c(self) -> libc::timex {
        // SAFETY: all-zero is a valid timex (integers only).
        let mut c: libc::timex = unsafe { std::mem::zeroed() };
        c.modes = self.modes as _;
        c.offset = self.offset as _;
        c.freq = self.freq as _;
        c.maxerror = self.maxerror as _;
        c.esterror = self.esterror as _;
        c.status = self.status;
        c.tick = self.tick as _;
        c.time.tv_sec = self.time_sec as _;
        c.time.tv_usec = self.time_usec as _;
        c
    }

    // `long` and `time_t` are 32 bits on 32-bit ARM, 64 elsewhere.
    #[allow(clippy::useless_conversion)]
    fn from_c(c: &libc::timex) -> Self {
        Self {
            modes: c.modes,
            offset: i64::from(c.offset),
            freq: i64::from(c.freq),
            maxerror: i64::from(c.maxerror),
            esterror: i64::from(c.esterror),
            status: c.status,
            tick: i64::from(c.tick),
            time_sec: i64::from(c.time.tv_sec),
            time_usec: i64::from(c.time.tv_usec),
        }
    }
}

/// clock_adjtime(2) on CLOCK_REALTIME: sets what `timex.modes` names, then fills `timex` with the
/// kernel's variables. Returns the clock state (TIME_OK, TIME_INS, ..., TIME_OOP, TIME_WAIT,
/// TIME_ERROR). Setting needs CAP_SYS_TIME (EPERM otherwise); reading needs nothing.
pub fn adjust_realtime(timex: &mut Timex) -> io::Result<i32> {
    let mut c = timex.to_c();
    // SAFETY: `c` is a valid, initialised timex for the duration of the call.
    let state = unsafe { libc::clock_adjtime(libc::CLOCK_REALTIME, &mut c) };
    if state < 0 {
        return Err(io::Error::last_os_error());
    }
    *timex = Timex::from_c(&c);
    Ok(state)
}

/// CLOCK_MONOTONIC_RAW: time since boot at the oscillator's own rate, which no frequency
/// correction touches (CLOCK_MONOTONIC runs at the corrected rate: slewing the clock by 1 %
/// would stretch it by 1 % too). `None` where the kernel lacks it.
pub fn monotonic_raw() -> Option<std::time::Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the call to fill; no other memory is touched.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_RAW, &mut ts) };
    #[allow(clippy::useless_conversion)] // time_t and c_long are 32 bits on 32-bit ARM
    let (seconds, nanos) = (i64::from(ts.tv_sec), i64::from(ts.tv_nsec));
    (result == 0 && seconds >= 0 && (0..1_000_000_000).contains(&nanos))
        .then(|| std::time::Duration::new(seconds as u64, nanos as u32))
}

/// Clock ticks per second (sysconf(_SC_CLK_TCK)), if the system says.
pub fn ticks_per_second() -> Option<i64> {
    // SAFETY: sysconf has no preconditions and touches no memory of ours.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    #[allow(clippy::useless_conversion)] // c_long is 32 bits on 32-bit ARM
    (hz > 0).then(|| i64::from(hz))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_raw_monotonic_clock_moves_forward() {
        let first = monotonic_raw().expect("CLOCK_MONOTONIC_RAW");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = monotonic_raw().expect("CLOCK_MONOTONIC_RAW");
        assert!(second >= first + std::time::Duration::from_millis(1), "{first:?} {second:?}");
    }

    #[test]
    fn reading_needs_no_privilege_and_gives_plausible_values() {
        let mut timex = Timex::default();
        let state = adjust_realtime(&mut timex).unwrap();
        assert!((0..=5).contains(&state), "state {state}");
        let hz = ticks_per_second().expect("a tick rate");
        // The tick length is about 10^6 / hz µs, within the ±10 % the kernel allows.
        let nominal = 1_000_000 / hz;
        assert!((timex.tick - nominal).abs() <= nominal / 10, "tick {} at {hz} Hz", timex.tick);
        assert!(timex.freq.abs() <= 500 * 65_536, "freq {}", timex.freq);
    }

    #[test]
    fn fields_survive_the_round_trip_through_the_c_struct() {
        let timex = Timex {
            modes: ADJ_STATUS | ADJ_MAXERROR,
            offset: -5,
            freq: 12 << 16,
            maxerror: 16_000_000,
            esterror: 3,
            status: STA_UNSYNC | STA_INS,
            tick: 10_001,
            time_sec: -2,
            time_usec: 999_999_999,
        };
        assert_eq!(Timex::from_c(&timex.to_c()), timex);
    }
}
