//! What the server can tell of its clients' own clocks: whether a request's transmit timestamp is
//! plausibly the device's clock (the rule below), the device's clock error as seen from here, and
//! the state each device is in (in sync, off, unknown, silent). No I/O, no allocation.

use crate::time::NtpTimestamp;

/// A transmit timestamp this close to our receive time is taken as the device's clock on its own.
/// Random bits (chrony, some SNTP stacks) land this close once in about 600 000 requests.
const NEAR_SECONDS: f64 = 3600.0;
/// Farther off, a transmit timestamp is the device's clock only if it advanced since the
/// device's previous request as our clock did, to within this many seconds plus
/// [`CONSISTENT_FRACTION`] of the interval: a clock hours or years off, but running.
const CONSISTENT_SECONDS: f64 = 1.0;
const CONSISTENT_FRACTION: f64 = 0.001;

/// What a request's transmit timestamp says about the device's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TransmitReading {
    /// Zero: the device does not say (Arduino, lwIP and other SNTP stacks).
    Zero,
    /// The same as the device's previous request: a stack that never updates it, or a replay.
    Repeated,
    /// Neither near our clock nor advancing with it: random bits (chrony) or nonsense.
    Implausible,
    /// The device's clock: our receive time minus its transmit time, seconds (positive: the
    /// device is behind). It includes the request's one-way network delay (the device is behind
    /// by that much less, or ahead by that much more, than it reads).
    ClockError(f64),
}

/// Reads `transmit`, received at our (served) time `received`; `previous` is the device's
/// previous transmit timestamp and `interval` the seconds since that request, if there was one.
pub fn read_transmit(
    transmit: NtpTimestamp,
    received: NtpTimestamp,
    previous: Option<(NtpTimestamp, f64)>,
) -> TransmitReading {
    if transmit.is_zero() {
        return TransmitReading::Zero;
    }
    if previous.is_some_and(|(earlier, _)| earlier == transmit) {
        return TransmitReading::Repeated;
    }
    let error = (received - transmit).to_seconds_f64();
    if error.abs() <= NEAR_SECONDS {
        return TransmitReading::ClockError(error);
    }
    let consistent = previous.is_some_and(|(earlier, interval)| {
        !earlier.is_zero() && {
            let advance = (transmit - earlier).to_seconds_f64();
            (advance - interval).abs() <= CONSISTENT_SECONDS + CONSISTENT_FRACTION * interval
        }
    });
    if consistent { TransmitReading::ClockError(error) } else { TransmitReading::Implausible }
}

/// When a device counts as in sync and when as silent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DevicePolicy {
    /// A clock error within this many seconds is in sync (default 0.1).
    pub in_sync_within: f64,
    /// A device is silent after this many times its usual interval without a request...
    pub silent_factor: f64,
    /// ...and never sooner than this many seconds (default an hour).
    pub silent_after_at_least: f64,
}

impl Default for DevicePolicy {
    fn default() -> Self {
        Self { in_sync_within: 0.1, silent_factor: 3.0, silent_after_at_least: 3600.0 }
    }
}

/// The state of one device's clock as the server sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceState {
    /// Its clock is off by more than the threshold. First: what an operator must see.
    Off,
    /// It stopped asking.
    Silent,
    /// It does not say its time (zero, random or repeated transmit timestamps).
    Unknown,
    InSync,
}

impl DeviceState {
    /// The state's name as every surface shows it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Silent => "silent",
            Self::Unknown => "unknown",
            Self::InSync => "in sync",
        }
    }

    pub const ALL: [Self; 4] = [Self::Off, Self::Silent, Self::Unknown, Self::InSync];
}

impl DevicePolicy {
    /// The state of a device last heard `last_seen_ago` seconds ago, usually asking every
    /// `interval` seconds (0: asked once), whose last request read `latest_error` (its clock
    /// error, or `None` when that request did not say).
    pub fn state(
        &self,
        last_seen_ago: f64,
        interval: f64,
        latest_error: Option<f64>,
    ) -> DeviceState {
        let silent_after = (self.silent_factor * interval).max(self.silent_after_at_least);
        if last_seen_ago > silent_after {
            return DeviceState::Silent;
        }
        match latest_error {
            None => DeviceState::Unknown,
            Some(error) if error.abs() <= self.in_sync_within => DeviceState::InSync,
            Some(_) => DeviceState::Off,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::NtpDuration;

    fn seconds(seconds: f64) -> NtpDuration {
        NtpDuration::from_seconds_f64(seconds)
    }

    fn ours() -> NtpTimestamp {
        NtpTimestamp::from_unix(1_796_000_000, 250_000_000)
    }

    #[test]
    fn a_zero_transmit_says_nothing() {
        assert_eq!(read_transmit(NtpTimestamp::ZERO, ours(), None), TransmitReading::Zero);
    }

    #[test]
    fn a_real_clock_five_seconds_ahead_reads_minus_five_and_one_in_step_reads_its_delay() {
        let ahead = ours() + seconds(5.0);
        match read_transmit(ahead, ours(), None) {
            TransmitReading::ClockError(e) => assert!((e + 5.0).abs() < 1e-6, "{e}"),
            other => panic!("{other:?}"),
        }
        // Sent 300 µs before it arrived, by a clock in step with ours.
        let sent = ours() - seconds(0.0003);
        match read_transmit(sent, ours(), Some((sent - seconds(64.0), 64.0))) {
            TransmitReading::ClockError(e) => assert!((e - 0.0003).abs() < 1e-6, "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_repeated_transmit_is_not_a_clock() {
        let sent = ours() - seconds(0.001);
        assert_eq!(read_transmit(sent, ours(), Some((sent, 64.0))), TransmitReading::Repeated);
    }

    #[test]
    fn random_bits_are_implausible_and_a_clock_far_off_but_running_is_read() {
        // Random transmit timestamps (a splitmix sequence, as chrony's would look).
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut random = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            NtpTimestamp::from_bits(z ^ (z >> 31))
        };
        let mut previous = random();
        for _ in 0..10_000 {
            let transmit = random();
            let reading = read_transmit(transmit, ours(), Some((previous, 64.0)));
            assert_eq!(reading, TransmitReading::Implausible, "{transmit:?}");
            previous = transmit;
        }
        // An ESP32 still at 1970, asking every 64 s: its first request alone says nothing
        // certain; the second advanced by 64 s, so its clock is read (about 56 years behind).
        let boot = NtpTimestamp::from_unix(3_600, 0);
        assert_eq!(read_transmit(boot, ours(), None), TransmitReading::Implausible);
        let next = boot + seconds(64.0);
        match read_transmit(next, ours(), Some((boot, 64.0))) {
            TransmitReading::ClockError(e) => assert!(e > 50.0 * 365.0 * 86_400.0, "{e}"),
            other => panic!("{other:?}"),
        }
        // Two hours off (a time-zone mistake), asked 10 s apart but advanced 20 s: not a clock.
        let wrong_zone = ours() + seconds(7200.0);
        let reading = read_transmit(wrong_zone, ours(), Some((wrong_zone - seconds(20.0), 10.0)));
        assert_eq!(reading, TransmitReading::Implausible);
    }

    #[test]
    fn states_follow_the_error_and_the_silence() {
        let policy = DevicePolicy::default();
        assert_eq!(policy.state(10.0, 64.0, Some(0.004)), DeviceState::InSync);
        assert_eq!(policy.state(10.0, 64.0, Some(-0.1)), DeviceState::InSync);
        assert_eq!(policy.state(10.0, 64.0, Some(-5.0)), DeviceState::Off);
        assert_eq!(policy.state(10.0, 64.0, None), DeviceState::Unknown);
        // Silent after 3 intervals, but never under an hour.
        assert_eq!(policy.state(3000.0, 64.0, Some(0.0)), DeviceState::InSync);
        assert_eq!(policy.state(3601.0, 64.0, Some(0.0)), DeviceState::Silent);
        assert_eq!(policy.state(3601.0, 1024.0, None), DeviceState::Silent);
        assert_eq!(policy.state(6000.0, 2048.0, None), DeviceState::Unknown);
        assert_eq!(policy.state(6145.0, 2048.0, None), DeviceState::Silent);
        let quick = DevicePolicy { silent_after_at_least: 5.0, ..policy };
        assert_eq!(quick.state(7.0, 2.0, Some(0.0)), DeviceState::Silent);
        assert_eq!(quick.state(4.0, 2.0, Some(0.0)), DeviceState::InSync);
        // Sorted for the operator: off, silent, unknown, in sync.
        let mut states = [DeviceState::InSync, DeviceState::Unknown, DeviceState::Off];
        states.sort();
        assert_eq!(states, [DeviceState::Off, DeviceState::Unknown, DeviceState::InSync]);
    }
}
