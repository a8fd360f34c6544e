//! The RFC 5905 clock filter of one source: the 8 latest samples; the one with the least delay is
//! the best estimate, the spread of the others is the source's jitter. No I/O.

use crate::time::Monotonic;

/// Samples kept (RFC 5905 NSTAGE).
const STAGES: usize = 8;
/// Dispersion of an empty stage, seconds (RFC 5905 MAXDISP).
pub const MAX_DISPERSION: f64 = 16.0;
/// Frequency tolerance, s/s (RFC 5905 PHI): how fast the error of an old sample grows.
pub const PHI: f64 = 15e-6;
/// A best sample further than this many jitters from the last is a popcorn spike (RFC 5905 SGATE).
const SPIKE_GATE: f64 = 3.0;

/// One measurement as the filter keeps it. Seconds throughout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilterSample {
    /// Server minus local clock.
    pub offset: f64,
    /// Round-trip delay.
    pub delay: f64,
    /// Error bound of the measurement when taken (precisions plus PHI × delay).
    pub dispersion: f64,
    pub time: Monotonic,
}

/// What the filter says about the source after a new sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilterOutput {
    pub offset: f64,
    pub delay: f64,
    /// Filter dispersion at `time` (weighted sum over all stages; empty stages count 16 s).
    pub dispersion: f64,
    /// RMS difference of the other samples' offsets from the best one's.
    pub jitter: f64,
    /// When the best sample was taken.
    pub time: Monotonic,
}

/// The result of adding a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FilterResult {
    /// The best sample is new: the output moved.
    Updated,
    /// The best sample is one already used (the new one has more delay): nothing new.
    Unchanged,
    /// The best sample is new but jumps too far from the last output: held back as a spike.
    Spike,
}

#[derive(Debug, Clone, Default)]
pub struct ClockFilter {
    /// Newest first.
    stages: [Option<FilterSample>; STAGES],
    output: Option<FilterOutput>,
    /// Time of the last addition, for ageing the dispersions.
    last_update: Option<Monotonic>,
    /// The last new best sample was held back as a spike.
    spike_held: bool,
}

impl ClockFilter {
    /// Adds a sample taken at `sample.time`; `precision` (seconds) floors the jitter.
    pub fn add(&mut self, sample: FilterSample, precision: f64) -> FilterResult {
        let now = sample.time;
        let aged = self.last_update.map_or(0.0, |last| PHI * now.seconds_since(last).max(0.0));
        for stage in self.stages.iter_mut().flatten() {
            stage.dispersion += aged;
        }
        self.last_update = Some(now);
        self.stages.rotate_right(1);
        self.stages[0] = Some(sample);

        let mut sorted: Vec<FilterSample> = self.stages.iter().flatten().copied().collect();
        sorted.sort_by(|a, b| a.delay.total_cmp(&b.delay));
        let best = sorted[0];
        let dispersion: f64 = (0..STAGES)
            .map(|i| {
                let stage_dispersion = sorted.get(i).map_or(MAX_DISPERSION, |s| s.dispersion);
                stage_dispersion / f64::from(2u32 << i)
            })
            .sum();
        let jitter = if sorted.len() > 1 {
            let sum: f64 = sorted[1..].iter().map(|s| (s.offset - best.offset).powi(2)).sum();
            (sum / (sorted.len() - 1) as f64).sqrt()
        } else {
            0.0
        }
        .max(precision);
        let output = FilterOutput {
            offset: best.offset,
            delay: best.delay,
            dispersion,
            jitter,
            time: best.time,
        };

        match self.output {
            Some(previous) if best.time <= previous.time => {
                // Same best sample as before: refresh dispersion and jitter only.
                self.output = Some(FilterOutput {
                    offset: previous.offset,
                    delay: previous.delay,
                    time: previous.time,
                    ..output
                });
                FilterResult::Unchanged
            }
            // A jump is held back once; if the next best sample agrees, it is real. Until the
            // filter holds a few samples its jitter means little, so nothing is a spike.
            Some(previous)
                if !self.spike_held
                    && sorted.len() > 4
                    && (best.offset - previous.offset).abs() > SPIKE_GATE * previous.jitter =>
            {
                self.spike_held = true;
                FilterResult::Spike
            }
            _ => {
                self.output = Some(output);
                self.spike_held = false;
                FilterResult::Updated
            }
        }
    }

    pub fn output(&self) -> Option<&FilterOutput> {
        self.output.as_ref()
    }

    /// The samples held, newest first.
    pub fn samples(&self) -> [Option<FilterSample>; STAGES] {
        self.stages
    }

    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.stages.iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Least delay among the samples held, seconds.
    pub fn min_delay(&self) -> Option<f64> {
        self.stages.iter().flatten().map(|s| s.delay).min_by(f64::total_cmp)
    }

    /// Forgets everything (after a clock step, old offsets are meaningless).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Shifts every kept offset by `correction` seconds (after the local clock was stepped by
    /// `-correction`), so old samples stay comparable with new ones.
    pub fn shift_offsets(&mut self, correction: f64) {
        for stage in self.stages.iter_mut().flatten() {
            stage.offset += correction;
        }
        if let Some(output) = self.output.as_mut() {
            output.offset += correction;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(offset: f64, delay: f64, t: f64) -> FilterSample {
        FilterSample { offset, delay, dispersion: 1e-6, time: Monotonic::from_seconds_f64(t) }
    }

    #[test]
    fn picks_the_least_delay_sample() {
        let mut filter = ClockFilter::default();
        assert_eq!(filter.add(sample(0.010, 0.050, 0.0), 1e-7), FilterResult::Updated);
        assert_eq!(filter.add(sample(0.001, 0.010, 2.0), 1e-7), FilterResult::Updated);
        // A later sample with more delay does not displace the best one.
        assert_eq!(filter.add(sample(0.004, 0.030, 4.0), 1e-7), FilterResult::Unchanged);
        let output = filter.output().unwrap();
        assert_eq!((output.offset, output.delay), (0.001, 0.010));
        assert_eq!(output.time, Monotonic::from_seconds_f64(2.0));
        assert_eq!(filter.min_delay(), Some(0.010));
    }

    #[test]
    fn dispersion_falls_as_stages_fill() {
        let mut filter = ClockFilter::default();
        let mut dispersions = Vec::new();
        for i in 0..8 {
            filter.add(sample(0.0, 0.01 + i as f64 * 1e-4, i as f64 * 2.0), 1e-7);
            dispersions.push(filter.output().unwrap().dispersion);
        }
        assert!(dispersions[0] > 7.9, "one sample: {}", dispersions[0]);
        assert!(dispersions[3] < 1.0 && dispersions[2] > 1.5, "{dispersions:?}");
        assert!(dispersions[7] < 0.001, "{dispersions:?}");
        assert!(dispersions.windows(2).all(|w| w[1] < w[0]));
    }

    #[test]
    fn jitter_is_the_rms_spread_around_the_best_offset() {
        let mut filter = ClockFilter::default();
        filter.add(sample(0.0, 0.010, 0.0), 1e-7);
        filter.add(sample(0.003, 0.020, 2.0), 1e-7);
        filter.add(sample(-0.004, 0.030, 4.0), 1e-7);
        let jitter = filter.output().unwrap().jitter;
        assert!((jitter - (12.5e-6f64).sqrt()).abs() < 1e-9, "{jitter}");
    }

    #[test]
    fn a_jump_far_beyond_the_jitter_is_held_back_as_a_spike() {
        let mut filter = ClockFilter::default();
        for i in 0..4 {
            filter.add(sample(0.001 + i as f64 * 1e-5, 0.010, i as f64), 1e-7);
        }
        assert_eq!(filter.add(sample(0.5, 0.001, 10.0), 1e-7), FilterResult::Spike);
        assert!((filter.output().unwrap().offset - 0.00103).abs() < 1e-9);
        // A second sample that agrees with the jump makes it real.
        assert_eq!(filter.add(sample(0.5, 0.0009, 12.0), 1e-7), FilterResult::Updated);
        assert_eq!(filter.output().unwrap().offset, 0.5);
    }

    #[test]
    fn old_samples_age() {
        let mut filter = ClockFilter::default();
        filter.add(sample(0.0, 0.010, 0.0), 1e-7);
        filter.add(sample(0.0, 0.020, 1000.0), 1e-7);
        // The first sample, still the best, has aged 1000 s × 15 ppm.
        let output = filter.output().unwrap();
        assert!(output.dispersion > 0.5 * 0.015, "{}", output.dispersion);
    }
}
