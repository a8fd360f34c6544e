//! A reference clock (GPS through gpsd, PPS) as a source: the samples a driver delivers between two
//! polls are reduced to their median, which goes through the same clock filter as a network
//! source's, and the reach register counts polls with at least one sample.

use super::filter::{ClockFilter, FilterResult, FilterSample};
use super::view::{ServerInfo, SourceView};
use super::{Measurement, POLL_LIMITS};
use crate::packet::{LeapIndicator, ReferenceId};
use crate::time::{Monotonic, NtpDuration};
use std::time::Duration;

/// Samples kept between two polls (a driver delivers about one a second); older ones are dropped.
const MAX_GATHERED: usize = 64;

/// How a reference clock is used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefclockConfig {
    /// Samples are reduced and filtered every 2^poll seconds.
    pub poll: i8,
    /// Seconds added to every sample's offset: how late the device's timestamps are (an NMEA
    /// sentence arrives 0.1–0.5 s after the second it names; a PPS edge a few µs).
    pub offset: f64,
    /// The device's precision, log2 seconds (-20 for PPS, about -10 for NMEA).
    pub precision: i8,
    /// Stratum the clock counts as; the hub serves one more (0: the hub is stratum 1).
    pub stratum: u8,
    /// What the hub advertises as its reference while following this clock (`GPS`, `PPS`).
    pub reference_id: ReferenceId,
}

/// The state of one reference clock.
#[derive(Debug, Clone)]
pub struct RefclockSource {
    config: RefclockConfig,
    reach: u8,
    polls: u32,
    next_poll: Monotonic,
    /// Samples since the last poll: (when, offset with the fixed correction applied).
    gathered: Vec<(Monotonic, f64)>,
    /// The leap warning of the latest sample.
    leap: LeapIndicator,
    filter: ClockFilter,
    samples_seen: u32,
}

impl RefclockSource {
    /// A reference clock whose first poll is one interval after `now`.
    pub fn new(config: RefclockConfig, now: Monotonic) -> Self {
        let poll = config.poll.clamp(POLL_LIMITS.0, POLL_LIMITS.1);
        let config = RefclockConfig { poll, ..config };
        Self {
            config,
            reach: 0,
            polls: 0,
            next_poll: now + interval(poll),
            gathered: Vec::new(),
            leap: LeapIndicator::NoWarning,
            filter: ClockFilter::default(),
            samples_seen: 0,
        }
    }

    pub fn config(&self) -> &RefclockConfig {
        &self.config
    }

    /// A sample from the driver: reference minus local clock, seconds, taken at `at`.
    /// Non-finite offsets are ignored.
    pub fn add_sample(&mut self, at: Monotonic, offset: f64, leap: LeapIndicator) {
        if !offset.is_finite() {
            return;
        }
        if self.gathered.len() == MAX_GATHERED {
            self.gathered.remove(0);
        }
        self.gathered.push((at, offset + self.config.offset));
        self.leap = leap;
    }

    /// When [`RefclockSource::poll`] is due.
    pub fn next_poll_at(&self) -> Monotonic {
        self.next_poll
    }

    /// The poll: shifts the reach register, and when samples came since the last poll feeds
    /// their median to the clock filter and returns it as a measurement (`None` if the filter
    /// held it back as a spike or it is older than the filter's best).
    pub fn poll(&mut self, now: Monotonic) -> Option<Measurement> {
        self.polls += 1;
        self.next_poll = now + interval(self.config.poll);
        self.reach <<= 1;
        if self.gathered.is_empty() {
            return None;
        }
        self.reach |= 1;
        let (time, offset, residual) = reduce(&self.gathered);
        // The error bound: the device's precision and how far the samples stray from the line.
        let dispersion = self.precision_seconds() + residual;
        self.gathered.clear();
        self.samples_seen += 1;
        let sample = FilterSample { offset, delay: 0.0, dispersion, time };
        let result = self.filter.add(sample, self.precision_seconds());
        (result == FilterResult::Updated).then(|| Measurement {
            offset,
            delay: 0.0,
            dispersion,
            time,
            server: self.server_info(),
        })
    }

    /// The clock was stepped by `step` seconds (local += step): shift kept offsets to match.
    pub fn clock_stepped(&mut self, step: f64) {
        self.filter.shift_offsets(-step);
        for (_, offset) in &mut self.gathered {
            *offset -= step;
        }
    }

    /// What selection needs to know about this clock.
    pub fn view(&self) -> SourceView {
        SourceView {
            reach: self.reach,
            polls: self.polls,
            denied: None,
            poll: self.config.poll,
            reference_id: self.config.reference_id,
            filter: self.filter.output().copied(),
            samples: self.filter.len() as u8,
            min_delay: self.filter.min_delay(),
            path_delay: None,
            samples_seen: self.samples_seen,
            recent: self.filter.samples(),
            server: (self.samples_seen > 0).then(|| self.server_info()),
            reference_clock: true,
            refused: 0,
            refused_in_a_row: 0,
            last_refusal: None,
        }
    }

    fn server_info(&self) -> ServerInfo {
        ServerInfo {
            leap: self.leap,
            stratum: self.config.stratum,
            precision: self.config.precision,
            poll: self.config.poll,
            root_delay: 0.0,
            root_dispersion: 0.0,
            reference_id: self.config.reference_id,
        }
    }

    fn precision_seconds(&self) -> f64 {
        NtpDuration::from_log2_seconds(self.config.precision).to_seconds_f64()
    }
}

/// One sample from those gathered over a poll: the offset at the newest sample's time on the
/// least-squares line through them (the local clock may be slewing, so the offsets drift within
/// a poll), with the samples' RMS distance from that line. Samples more than three of those from
/// the line (a late NMEA sentence) are left out and the line drawn again.
fn reduce(samples: &[(Monotonic, f64)]) -> (Monotonic, f64, f64) {
    let newest = samples.iter().map(|s| s.0).max().unwrap_or_default();
    let fit = |points: &[(f64, f64)]| -> (f64, f64, f64) {
        let n = points.len() as f64;
        let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
        let mean_o = points.iter().map(|p| p.1).sum::<f64>() / n;
        let spread: f64 = points.iter().map(|p| (p.0 - mean_t).powi(2)).sum();
        let slope = if spread > 0.0 {
            points.iter().map(|p| (p.0 - mean_t) * (p.1 - mean_o)).sum::<f64>() / spread
        } else {
            0.0
        };
        let rms =
            (points.iter().map(|p| (p.1 - mean_o - slope * (p.0 - mean_t)).powi(2)).sum::<f64>()
                / n)
                .sqrt();
        (mean_o - slope * mean_t, slope, rms)
    };
    // Times relative to the newest, so the line's intercept is the offset wanted.
    let mut points: Vec<(f64, f64)> =
        samples.iter().map(|(t, o)| (t.seconds_since(newest), *o)).collect();
    let (mut intercept, slope, mut rms) = fit(&points);
    if points.len() > 3 {
        let kept: Vec<(f64, f64)> = points
            .iter()
            .copied()
            .filter(|p| (p.1 - intercept - slope * p.0).abs() <= 3.0 * rms)
            .collect();
        if kept.len() >= 2 && kept.len() < points.len() {
            points = kept;
            (intercept, _, rms) = fit(&points);
        }
    }
    (newest, intercept, rms)
}

fn interval(poll: i8) -> Duration {
    Duration::from_secs(1u64 << poll.max(0))
}

/// Largest error of the coarse source, seconds, with which a PPS edge is still numbered: beyond
/// it the edge could belong to the neighbouring second.
pub(super) const PPS_PAIRING_LIMIT: f64 = 0.4;

/// The offset (reference − local) a PPS edge gives: the edge, read at `edge_local` on the local
/// clock, marks the start of a true second, and the coarse source's offset says which one. `None`
/// when the coarse offset does not put the edge within [`PPS_PAIRING_LIMIT`] of a second.
pub fn pps_offset(edge_local: crate::time::NtpTimestamp, coarse_offset: f64) -> Option<f64> {
    if !coarse_offset.is_finite() {
        return None;
    }
    let fraction = f64::from(edge_local.fraction()) / 4_294_967_296.0;
    // Where the true time of the edge falls relative to the start of its local second.
    let estimated = fraction + coarse_offset;
    let second = estimated.round();
    ((estimated - second).abs() <= PPS_PAIRING_LIMIT).then_some(second - fraction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::NtpTimestamp;

    fn config() -> RefclockConfig {
        RefclockConfig {
            poll: 4,
            offset: 0.0,
            precision: -20,
            stratum: 0,
            reference_id: ReferenceId::from_bytes(*b"PPS\0"),
        }
    }

    fn at(seconds: f64) -> Monotonic {
        Monotonic::from_seconds_f64(seconds)
    }

    #[test]
    fn reach_counts_polls_with_samples_and_the_view_is_a_fit_stratum_0_clock() {
        let mut clock = RefclockSource::new(config(), at(0.0));
        assert_eq!(clock.next_poll_at(), at(16.0));
        assert!(clock.view().server.is_none(), "no sample yet");
        for poll in 0..5 {
            for second in 1..16 {
                let time = f64::from(poll * 16 + second);
                clock.add_sample(at(time), 0.002, LeapIndicator::NoWarning);
            }
            let measurement = clock.poll(at(f64::from(poll * 16 + 16)));
            if poll == 0 {
                let measurement = measurement.expect("a measurement");
                assert!((measurement.offset - 0.002).abs() < 1e-12 && measurement.delay == 0.0);
            }
        }
        assert!(clock.poll(at(96.0)).is_none(), "nothing gathered");
        let view = clock.view();
        assert_eq!(view.reach, 0b111110);
        assert!(view.reference_clock);
        assert_eq!(view.server.map(|s| s.stratum), Some(0));
        assert_eq!(view.unfit_reason(at(96.0), 4), None);
    }

    #[test]
    fn a_slewing_clock_and_a_late_sample_are_reduced_to_the_newest_offset() {
        let mut clock = RefclockSource::new(config(), at(0.0));
        // The clock is slewed 500 µs/s; one sample is 30 ms late (a delayed sentence).
        for second in 1..=15 {
            let late = if second == 7 { -0.030 } else { 0.0 };
            let offset = 0.010 - 0.0005 * f64::from(second) + late;
            clock.add_sample(at(f64::from(second)), offset, LeapIndicator::NoWarning);
        }
        let measurement = clock.poll(at(16.0)).unwrap();
        assert!((measurement.offset - (0.010 - 0.0075)).abs() < 1e-6, "{}", measurement.offset);
        assert_eq!(measurement.time, at(15.0));
        assert!(measurement.dispersion < 1e-5, "{}", measurement.dispersion);
    }

    #[test]
    fn the_fixed_offset_is_added_and_steps_shift_what_is_kept() {
        let mut clock = RefclockSource::new(RefclockConfig { offset: 0.1, ..config() }, at(0.0));
        clock.add_sample(at(1.0), -0.1, LeapIndicator::NoWarning);
        clock.add_sample(at(2.0), f64::NAN, LeapIndicator::NoWarning);
        clock.clock_stepped(0.5);
        let measurement = clock.poll(at(16.0)).unwrap();
        assert!((measurement.offset + 0.5).abs() < 1e-12, "{}", measurement.offset);
    }

    #[test]
    fn a_pps_edge_is_numbered_by_the_coarse_offset() {
        let edge = |seconds: i64, fraction: f64| {
            NtpTimestamp::from_parts(seconds as u32, (fraction * 4_294_967_296.0) as u32)
        };
        // The local clock 0.3 s ahead: the edge reads .3; a coarse source 50 ms off says -0.25.
        let offset = pps_offset(edge(1_000, 0.3), -0.25).unwrap();
        assert!((offset + 0.3).abs() < 1e-9, "{offset}");
        // The local clock 0.2 s behind: the edge reads .8; it starts the next second.
        let offset = pps_offset(edge(1_000, 0.8), 0.21).unwrap();
        assert!((offset - 0.2).abs() < 1e-9, "{offset}");
        // Whole seconds off are numbered by the coarse source too.
        let offset = pps_offset(edge(1_000, 0.0), 3.01).unwrap();
        assert!((offset - 3.0).abs() < 1e-9, "{offset}");
        // Half a second from any edge: which second is anyone's guess.
        assert_eq!(pps_offset(edge(1_000, 0.0), 0.5), None);
        assert_eq!(pps_offset(edge(1_000, 0.0), f64::INFINITY), None);
    }
}
