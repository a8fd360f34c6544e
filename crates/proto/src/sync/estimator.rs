//! Estimates how far the local clock is from true time and how fast that distance grows: a
//! two-state Kalman filter over offset and frequency that knows every correction we apply, so it
//! works the same whether the clock is steered or only observed. No I/O.

use crate::time::Monotonic;

/// Measurements further than this many standard deviations from the prediction are outliers.
const OUTLIER_GATE_SIGMAS: f64 = 5.0;
/// Outliers in a row after which the estimate is reset to the measurements (the clock moved).
const OUTLIERS_BEFORE_RESET: u32 = 4;
/// Bounds of the frequency wander (s²/s³), a random walk of the clock's frequency: from an oven
/// oscillator in a steady room to a cheap crystal in a shed.
const WANDER_LIMITS: (f64, f64) = (1e-20, 1e-13);
/// Largest frequency correction followed, s/s: 5 %, far beyond any working oscillator (cheap
/// boards and VMs run some thousands of ppm off), within what the kernel can apply (its tick
/// ±10 % plus 500 ppm) with room for a slew on top.
const MAX_FREQUENCY: f64 = 0.05;
/// Measurements that teach offset and frequency before the wander is learned from the rest.
const MEASUREMENTS_BEFORE_WANDER: u32 = 6;
/// Innovations remembered by the succession test, and its bound either way.
const SUCCESSION_MEMORY: f64 = 16.0;
const SUCCESSION_LIMIT: f64 = 0.3;
/// Frequency variance after a reset, (s/s)²: 100 ppm: a reset means the model was wrong.
const RESET_FREQUENCY_VARIANCE: f64 = 1e-8;
/// Offset variance of an estimate with no measurement yet, s².
const UNKNOWN_OFFSET_VARIANCE: f64 = 1e6;

/// The estimate at some time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockEstimate {
    /// True time minus local clock, seconds: positive when the clock is behind.
    pub offset: f64,
    /// The frequency correction the clock needs, s/s (what a perfect steer would apply).
    pub frequency: f64,
    pub offset_variance: f64,
    pub frequency_variance: f64,
}

/// What became of a measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measured {
    Accepted,
    /// Too far from the prediction: counted only as far as the gate.
    Outlier,
    /// The latest of several outliers in a row: the estimate now follows the measurements.
    Reset,
}

#[derive(Debug, Clone)]
pub struct Estimator {
    /// When the state below holds.
    time: Option<Monotonic>,
    /// When the latest measurement was taken.
    last_measured: Option<Monotonic>,
    offset: f64,
    frequency: f64,
    /// Covariance of (offset, frequency).
    p: [[f64; 2]; 2],
    /// Spectral density of the frequency random walk, s²/s³.
    wander: f64,
    /// The frequency correction currently applied to the clock, s/s.
    applied: f64,
    outliers_in_a_row: u32,
    /// Running mean of squared normalised innovations; 1 when the model fits.
    innovation_fit: f64,
    /// Measurements taken since the start (or the last reset).
    measured: u32,
    /// Running mean of the products of successive normalised innovations: 0 when the model
    /// fits, positive when the estimate lags, negative when it chases noise.
    innovation_succession: f64,
    last_innovation: f64,
}

impl Estimator {
    /// An estimator that knows nothing of the offset and believes the frequency correction is
    /// `frequency` (s/s) give or take `frequency_uncertainty`.
    pub fn new(frequency: f64, frequency_uncertainty: f64, wander: f64) -> Self {
        Self {
            time: None,
            last_measured: None,
            offset: 0.0,
            frequency: frequency.clamp(-MAX_FREQUENCY, MAX_FREQUENCY),
            p: [[UNKNOWN_OFFSET_VARIANCE, 0.0], [0.0, frequency_uncertainty.powi(2)]],
            wander: wander.clamp(WANDER_LIMITS.0, WANDER_LIMITS.1),
            applied: 0.0,
            outliers_in_a_row: 0,
            innovation_fit: 1.0,
            measured: 0,
            innovation_succession: 0.0,
            last_innovation: 0.0,
        }
    }

    pub fn has_measurements(&self) -> bool {
        self.p[0][0] < UNKNOWN_OFFSET_VARIANCE
    }

    /// When the latest measurement was taken: older ones can no longer be used.
    pub fn last_measured(&self) -> Option<Monotonic> {
        self.last_measured
    }

    pub fn wander(&self) -> f64 {
        self.wander
    }

    /// The estimate predicted to `now`.
    pub fn estimate_at(&self, now: Monotonic) -> ClockEstimate {
        let mut predicted = self.clone();
        predicted.predict(now);
        ClockEstimate {
            offset: predicted.offset,
            frequency: predicted.frequency,
            offset_variance: predicted.p[0][0],
            frequency_variance: predicted.p[1][1],
        }
    }

    fn predict(&mut self, now: Monotonic) {
        let Some(then) = self.time else {
            self.time = Some(now);
            return;
        };
        let dt = now.seconds_since(then);
        if dt <= 0.0 {
            return;
        }
        // Time is the oscillator's own (CLOCK_MONOTONIC_RAW), which runs 1/(1 − frequency) fast
        // against true time: a correction `applied` short of the one needed moves the offset by
        // (frequency − applied) / (1 − frequency) per second of it. The factor is 1 to within the
        // frequency error, but it matters while a far-off clock (5000 ppm) is slewed.
        let f = self.frequency;
        let rate = (f - self.applied) / (1.0 - f);
        self.offset += rate * dt;
        // The rate's sensitivity to the frequency, for the covariance.
        let g = dt * (1.0 - self.applied) / ((1.0 - f) * (1.0 - f));
        let q = self.wander;
        let [[p00, p01], [p10, p11]] = self.p;
        self.p = [
            [
                p00 + g * (p01 + p10) + g * g * p11 + q * dt.powi(3) / 3.0,
                p01 + g * p11 + q * dt * dt / 2.0,
            ],
            [p10 + g * p11 + q * dt * dt / 2.0, p11 + q * dt],
        ];
        self.time = Some(now);
    }

    /// From `now` on, the clock runs with frequency correction `applied` (s/s).
    pub fn set_applied_frequency(&mut self, now: Monotonic, applied: f64) {
        self.predict(now);
        self.applied = applied;
    }

    /// The clock was stepped at `now` by `step` seconds (local time += step) to correct a
    /// measured `offset`: what remains is `offset - step`, known about as well as `variance`.
    pub fn stepped(&mut self, now: Monotonic, step: f64, offset: f64, variance: f64) {
        self.predict(now);
        // Samples from before the step no longer apply.
        self.last_measured = Some(now);
        self.offset = offset - step;
        self.p[0][0] = variance;
        self.p[0][1] = 0.0;
        self.p[1][0] = 0.0;
        self.outliers_in_a_row = 0;
    }

    /// A measured offset (true minus local) taken at `time`, with its variance (s²).
    pub fn measure(&mut self, time: Monotonic, offset: f64, variance: f64) -> Measured {
        if self.time.is_some_and(|t| time < t) {
            // Older than the state: out of order, of no use.
            return Measured::Outlier;
        }
        self.predict(time);
        self.last_measured = Some(time);
        let innovation = offset - self.offset;
        let normalised = innovation * innovation / (self.p[0][0] + variance);
        let signed = innovation / (self.p[0][0] + variance).sqrt();
        let gate = OUTLIER_GATE_SIGMAS * OUTLIER_GATE_SIGMAS;
        let mut variance = variance;
        let mut result = Measured::Accepted;
        if self.has_measurements() && normalised > gate {
            self.outliers_in_a_row += 1;
            if self.outliers_in_a_row >= OUTLIERS_BEFORE_RESET {
                // The clock moved under us, or the model was wrong: start over from here, with
                // the frequency open to revision too.
                self.p = [
                    [UNKNOWN_OFFSET_VARIANCE, 0.0],
                    [0.0, self.p[1][1].max(RESET_FREQUENCY_VARIANCE)],
                ];
                self.outliers_in_a_row = 0;
                result = Measured::Reset;
            } else {
                // Counted as no further than the gate, so one bad sample moves little, while the
                // frequency is held less certain so that a real change is soon followed.
                variance = innovation * innovation / gate - self.p[0][0];
                self.p[1][1] *= 2.0;
                result = Measured::Outlier;
            }
        } else {
            self.outliers_in_a_row = 0;
        }
        let [[p00, p01], [p10, p11]] = self.p;
        let s = p00 + variance;
        let (k0, k1) = (p00 / s, p10 / s);
        let innovation = offset - self.offset;
        self.offset += k0 * innovation;
        self.frequency = (self.frequency + k1 * innovation).clamp(-MAX_FREQUENCY, MAX_FREQUENCY);
        self.p = [[(1.0 - k0) * p00, (1.0 - k0) * p01], [p10 - k1 * p00, p11 - k1 * p01]];
        // Outliers count too (capped): a wander the model underrates shows as outliers first.
        // The first measurements teach the offset and frequency, and their surprises say nothing
        // of the wander.
        self.measured = self.measured.saturating_add(1);
        if result != Measured::Reset && self.measured > MEASUREMENTS_BEFORE_WANDER {
            self.adapt_wander(normalised, signed);
        }
        result
    }

    /// Raises the wander when innovations are larger than the model predicts, lowers it when
    /// smaller, so a clock in a changing room is followed and a steady one is averaged. Where
    /// measurement noise dominates, the innovations' size says little of the wander, but their
    /// succession does: a wander set too low lets the estimate lag (innovations of one sign in a
    /// row), one set too high makes it chase the noise (innovations that alternate).
    fn adapt_wander(&mut self, normalised_innovation: f64, signed_innovation: f64) {
        self.innovation_fit += (normalised_innovation.min(25.0) - self.innovation_fit) / 16.0;
        let signed = signed_innovation.clamp(-5.0, 5.0);
        self.innovation_succession +=
            (signed * self.last_innovation - self.innovation_succession) / SUCCESSION_MEMORY;
        self.last_innovation = signed;
        let (low, high) = WANDER_LIMITS;
        let change = if self.innovation_fit > 2.0 || self.innovation_succession > SUCCESSION_LIMIT {
            2.0
        } else if self.innovation_fit < 0.5 || self.innovation_succession < -SUCCESSION_LIMIT {
            0.5
        } else {
            return;
        };
        self.wander = (self.wander * change).clamp(low, high);
        self.innovation_fit = 1.0;
        self.innovation_succession = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: f64) -> Monotonic {
        Monotonic::from_seconds_f64(t)
    }

    #[test]
    fn learns_offset_and_frequency_of_a_free_running_clock() {
        // True offset 1 ms growing by 50 ppm, measured every 16 s without noise.
        let mut estimator = Estimator::new(0.0, 1e-4, 1e-18);
        for i in 0..40 {
            let t = i as f64 * 16.0;
            estimator.measure(at(t), 0.001 + 50e-6 * t, 1e-10);
        }
        let estimate = estimator.estimate_at(at(640.0));
        assert!((estimate.frequency - 50e-6).abs() < 1e-8, "{estimate:?}");
        assert!((estimate.offset - (0.001 + 50e-6 * 640.0)).abs() < 1e-6, "{estimate:?}");
    }

    #[test]
    fn applied_corrections_and_steps_are_accounted_for() {
        let mut estimator = Estimator::new(0.0, 1e-4, 1e-18);
        // Clock needs +20 ppm; we apply +20 ppm from t=100 and step +0.5 s at t=200.
        let truth = |t: f64| if t < 100.0 { 20e-6 * t } else { 20e-6 * 100.0 };
        for i in 0..7 {
            let t = i as f64 * 16.0;
            estimator.measure(at(t), truth(t), 1e-12);
        }
        estimator.set_applied_frequency(at(100.0), 20e-6);
        estimator.stepped(at(200.0), 0.5, truth(200.0), 1e-12);
        let estimate = estimator.estimate_at(at(300.0));
        assert!((estimate.offset - (truth(300.0) - 0.5)).abs() < 1e-5, "{estimate:?}");
    }

    #[test]
    fn a_lone_outlier_moves_little_and_a_lasting_jump_is_followed() {
        let mut estimator = Estimator::new(0.0, 1e-6, 1e-18);
        for i in 0..20 {
            assert_ne!(estimator.measure(at(i as f64 * 16.0), 0.0, 1e-10), Measured::Outlier);
        }
        assert_eq!(estimator.measure(at(320.0), 0.2, 1e-10), Measured::Outlier);
        assert!(estimator.estimate_at(at(320.0)).offset.abs() < 1e-6);
        let results: Vec<Measured> =
            (0..4).map(|i| estimator.measure(at(336.0 + i as f64 * 16.0), 0.2, 1e-10)).collect();
        assert_eq!(&results[..3], &[Measured::Outlier, Measured::Outlier, Measured::Reset]);
        assert!((estimator.estimate_at(at(400.0)).offset - 0.2).abs() < 1e-3);
    }
}
