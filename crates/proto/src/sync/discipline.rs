//! The clock discipline: turns the estimate into steering (a frequency correction plus a slew of
//! the offset, or a step), decides when a step is allowed (at start-up, or after `stepout` of
//! persistent error) and when an error is too large to follow (panic), and picks the poll
//! interval that balances measurement noise against frequency wander. No I/O: it says what to do.

use super::estimator::{ClockEstimate, Estimator, Measured};
use crate::time::Monotonic;
use std::time::Duration;

/// A steered offset is corrected in about this many update intervals (chrony's corrtimeratio).
const CORRECTION_TIME_RATIO: f64 = 2.0;
/// Offsets beyond this many standard deviations of the estimate are slewed faster than the
/// gentle rate, up to `max_slew`.
const SIGNIFICANT_SIGMAS: f64 = 3.0;
/// Polls wanted within the averaging time of the estimate.
const SAMPLES_PER_AVERAGING_TIME: f64 = 5.0;
/// Updates in a row that must want a longer poll before it is lengthened.
const POLL_UP_AGREEMENT: u8 = 4;
/// The least wander assumed when choosing the poll (s²/s³).
const POLL_WANDER_FLOOR: f64 = 1e-18;
/// How well the offset is known right after a step, s² (1 ms): the step used the selection's
/// offset, good to about that.
const STEP_RESIDUAL_VARIANCE: f64 = 1e-6;
/// Frequency wander assumed for a fresh estimator: a good crystal in a steady room, s²/s³.
const INITIAL_WANDER: f64 = 1e-18;
/// How well the frequency is known with no drift file (s/s, one standard deviation).
const UNKNOWN_FREQUENCY_UNCERTAINTY: f64 = 0.01;

/// How the discipline may act. Seconds and s/s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DisciplineConfig {
    /// Steer the clock; `false` only estimates (observe mode).
    pub steer: bool,
    /// Offsets beyond this are stepped, not slewed (after `stepout`, or at start-up).
    pub step_threshold: f64,
    /// How long an offset beyond the step threshold must persist before it is stepped.
    pub stepout: f64,
    /// Offsets beyond this are refused after the first update (the daemon exits).
    pub panic_threshold: f64,
    /// Fastest slew, s/s.
    pub max_slew: f64,
    /// Poll exponent bounds for the system's advice.
    pub minpoll: i8,
    pub maxpoll: i8,
}

impl Default for DisciplineConfig {
    fn default() -> Self {
        Self {
            steer: true,
            step_threshold: 0.128,
            stepout: 900.0,
            panic_threshold: 1000.0,
            max_slew: 0.01,
            minpoll: 6,
            maxpoll: 10,
        }
    }
}

/// What is known of the clock's frequency at start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrequencyStart {
    /// The correction the clock is believed to need, s/s.
    pub frequency: f64,
    /// It came from a drift file (good to about 1 ppm), not a guess.
    pub known: bool,
    /// The correction in force, s/s.
    pub applied: f64,
}

/// What to do to the clock now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Steering {
    /// Step the clock by this many seconds (local time += step), before anything else.
    pub step: Option<f64>,
    /// Set the clock's frequency correction to this (s/s, positive = faster).
    pub frequency: Option<f64>,
    /// The offset is beyond the panic threshold: refuse to follow and stop.
    pub panic: Option<f64>,
}

/// What the discipline did with an update, for the log and the status.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DisciplineEvent {
    /// The clock was stepped by this many seconds.
    Stepped { offset: f64, at_start_up: bool },
    /// An offset beyond the step threshold is being held until it persists for `stepout`.
    HoldingSpike { offset: f64, since: Monotonic },
    /// The offset is beyond the panic threshold.
    Panic { offset: f64 },
    /// The estimator saw the clock jump and restarted from the measurements.
    EstimatorReset,
}

#[derive(Debug, Clone)]
pub struct Discipline {
    config: DisciplineConfig,
    estimator: Estimator,
    /// The frequency correction currently applied, s/s (0 in observe mode).
    applied: f64,
    /// The base correction (frequency estimate) while a slew runs, and when the slew ends.
    slew_until: Option<Monotonic>,
    updates: u64,
    spike_since: Option<Monotonic>,
    poll: i8,
    /// Updates in a row whose target poll was above the present one.
    poll_votes_up: u8,
    /// Running mean of measurement variances, s².
    typical_variance: Option<f64>,
}

impl Discipline {
    /// `start.frequency` (s/s) is the correction the clock is believed to need: from the drift
    /// file (`known`), or the kernel's current setting; `start.applied` the one in force (which a
    /// steering daemon sets to `frequency` at once).
    pub fn new(config: DisciplineConfig, start: FrequencyStart) -> Self {
        // Unknown, the frequency is whatever the first measurements say: a prior this wide
        // leaves them alone (a clock 5000 ppm off is locked as fast as one 5 ppm off).
        let uncertainty = if start.known { 1e-6 } else { UNKNOWN_FREQUENCY_UNCERTAINTY };
        let mut estimator = Estimator::new(start.frequency, uncertainty, INITIAL_WANDER);
        let applied = start.applied;
        estimator.set_applied_frequency(Monotonic::ZERO, applied);
        Self {
            config,
            estimator,
            applied,
            slew_until: None,
            updates: 0,
            spike_since: None,
            poll: config.minpoll,
            poll_votes_up: 0,
            typical_variance: None,
        }
    }

    pub fn config(&self) -> &DisciplineConfig {
        &self.config
    }

    /// The frequency correction in force now (s/s).
    pub fn applied_frequency(&self) -> f64 {
        self.applied
    }

    /// Steering is no longer possible (the kernel refused): from `now` on only estimate, with the
    /// clock running at `applied` (what the kernel really has).
    pub fn stop_steering(&mut self, now: Monotonic, applied: f64) {
        self.config.steer = false;
        self.slew_until = None;
        self.spike_since = None;
        self.apply(now, applied);
    }

    /// Observe mode: the correction in force from `now` on is `applied` (s/s), as the kernel
    /// says, set by whoever steers the clock. The estimate stays the correction the clock needs
    /// in total (kernel's plus residual: what steering would start from), not the residual of
    /// someone else's steering. Nothing changes while this discipline steers.
    pub fn observe_applied(&mut self, now: Monotonic, applied: f64) {
        if !self.config.steer && applied != self.applied {
            self.apply(now, applied);
        }
    }

    pub fn estimate(&self, now: Monotonic) -> ClockEstimate {
        self.estimator.estimate_at(now)
    }

    /// The estimated offset still to correct (true minus local), seconds.
    pub fn offset(&self, now: Monotonic) -> f64 {
        self.estimate(now).offset
    }

    pub fn has_estimate(&self) -> bool {
        self.estimator.has_measurements()
    }

    /// The frequency wander the estimator has settled on, s²/s³.
    pub fn wander(&self) -> f64 {
        self.estimator.wander()
    }

    /// The poll exponent the system advises.
    pub fn poll_exponent(&self) -> i8 {
        self.poll
    }

    /// Holding an offset beyond the step threshold.
    pub fn spike_since(&self) -> Option<Monotonic> {
        self.spike_since
    }

    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// When the current slew ends and the frequency must go back to the estimate.
    pub fn next_update_at(&self) -> Option<Monotonic> {
        self.slew_until
    }

    /// When the estimator's latest measurement was taken; only later ones are of use.
    pub fn last_measured(&self) -> Option<Monotonic> {
        self.estimator.last_measured()
    }

    /// A system update at `now`: `system_offset` is the combined offset of the selected sources
    /// (step and panic decisions use it); `samples` are new measurements (time, offset, variance)
    /// from selected sources for the estimator, oldest first.
    pub fn update(
        &mut self,
        now: Monotonic,
        system_offset: f64,
        samples: &[(Monotonic, f64, f64)],
    ) -> (Steering, Option<DisciplineEvent>) {
        let first = self.updates == 0;
        self.updates += 1;
        let mut steering = Steering::default();
        let mut event = None;
        if self.config.steer && system_offset.abs() > self.config.step_threshold {
            self.surprised();
            if !first && system_offset.abs() > self.config.panic_threshold {
                steering.panic = Some(system_offset);
                return (steering, Some(DisciplineEvent::Panic { offset: system_offset }));
            }
            let since = *self.spike_since.get_or_insert(now);
            if !first && now.seconds_since(since) < self.config.stepout {
                return (
                    steering,
                    Some(DisciplineEvent::HoldingSpike { offset: system_offset, since }),
                );
            }
            steering.step = Some(system_offset);
            self.estimator.stepped(now, system_offset, system_offset, STEP_RESIDUAL_VARIANCE);
            self.spike_since = None;
            event = Some(DisciplineEvent::Stepped { offset: system_offset, at_start_up: first });
            // The sample was taken before the step: it no longer applies.
            steering.frequency = Some(self.steer(now));
            return (steering, event);
        }
        self.spike_since = None;
        for &(time, offset, variance) in samples {
            match self.estimator.measure(time, offset, variance) {
                Measured::Accepted => {}
                Measured::Outlier => self.surprised(),
                Measured::Reset => {
                    self.surprised();
                    event = Some(DisciplineEvent::EstimatorReset);
                }
            }
            self.typical_variance =
                Some(self.typical_variance.map_or(variance, |v| v + (variance - v) / 8.0));
        }
        if !samples.is_empty() {
            self.adapt_poll(now);
        }
        if self.config.steer {
            steering.frequency = Some(self.steer(now));
        }
        (steering, event)
    }

    /// Something does not fit the estimate (a measurement far off, a jump): poll at `minpoll`
    /// again, so that it is confirmed or dismissed in minutes, not hours.
    pub fn surprised(&mut self) {
        self.poll = self.config.minpoll;
        self.poll_votes_up = 0;
    }

    /// Called at [`Discipline::next_update_at`]: ends the slew.
    pub fn tick(&mut self, now: Monotonic) -> Steering {
        match self.slew_until {
            Some(until) if now >= until && self.config.steer => {
                self.slew_until = None;
                let base = self.estimator.estimate_at(now).frequency;
                self.apply(now, base);
                Steering { frequency: Some(base), ..Steering::default() }
            }
            _ => Steering::default(),
        }
    }

    /// Chooses the frequency: the estimated correction plus a slew that removes the estimated
    /// offset in about three update intervals, faster for offsets well beyond the noise.
    fn steer(&mut self, now: Monotonic) -> f64 {
        let estimate = self.estimator.estimate_at(now);
        // Nothing measured yet (just stepped at start-up): no offset to slew.
        let offset = if self.estimator.has_measurements() { estimate.offset } else { 0.0 };
        let gentle_time = CORRECTION_TIME_RATIO * 2f64.powi(i32::from(self.poll));
        // An offset clearly beyond the estimate's own uncertainty is real: correct it sooner, the
        // sooner the larger (a 0.1 s start-up offset in seconds, at the slew limit).
        let significant = SIGNIFICANT_SIGMAS * estimate.offset_variance.sqrt();
        let correction_time = if offset.abs() > significant {
            (gentle_time * significant / offset.abs()).max(1.0)
        } else {
            gentle_time
        };
        let rate = (offset / correction_time).clamp(-self.config.max_slew, self.config.max_slew);
        let duration = if rate == 0.0 { 0.0 } else { offset / rate };
        self.slew_until = (duration > 0.0).then(|| now + Duration::from_secs_f64(duration));
        let frequency = estimate.frequency + rate;
        self.apply(now, frequency);
        frequency
    }

    fn apply(&mut self, now: Monotonic, frequency: f64) {
        self.applied = frequency;
        self.estimator.set_applied_frequency(now, frequency);
    }

    /// Poll so that a few samples fall within the averaging time where measurement noise and
    /// frequency wander weigh the same (the Allan intercept: 3σ²/τ² = wander·τ/3): a steady clock
    /// on a quiet path climbs toward maxpoll, as chrony's does, and a wandering one stays near
    /// minpoll. Down at once, one step at a time; up only when several updates in a row agree, so
    /// a moment's low wander estimate does not send the poll to its ceiling.
    fn adapt_poll(&mut self, now: Monotonic) {
        let Some(variance) = self.typical_variance else { return };
        let estimate = self.estimator.estimate_at(now);
        let settled = self.updates > 8 && estimate.offset.abs() < 10.0 * variance.sqrt() + 1e-4;
        let target = if settled {
            let averaging_time =
                (9.0 * variance / self.estimator.wander().max(POLL_WANDER_FLOOR)).cbrt();
            // While the frequency is still uncertain, an interval must not let that uncertainty
            // carry the clock further than one measurement's noise.
            let frequency_limited = variance.sqrt() / estimate.frequency_variance.sqrt().max(1e-12);
            let interval = (averaging_time / SAMPLES_PER_AVERAGING_TIME).min(frequency_limited);
            interval.log2().floor() as i8
        } else {
            self.config.minpoll
        };
        let target = target.clamp(self.config.minpoll, self.config.maxpoll);
        if target > self.poll {
            self.poll_votes_up += 1;
            if self.poll_votes_up >= POLL_UP_AGREEMENT {
                self.poll += 1;
                self.poll_votes_up = 0;
            }
        } else {
            self.poll_votes_up = 0;
            if target < self.poll {
                self.poll -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Observe mode beside another daemon: the clock needs 12 ppm in total; the other daemon
    /// had 10 ppm in force and changes it to 11.5 ppm halfway. Told each change, the estimate
    /// is the 12 ppm steering would need, not 10 ppm plus the residual it sees after the change.
    #[test]
    fn in_observe_mode_the_estimate_is_the_kernels_correction_plus_the_residual() {
        let needed = 12e-6;
        let kernel = |t: f64| if t < 2048.0 { 10e-6 } else { 11.5e-6 };
        let config = DisciplineConfig { steer: false, ..DisciplineConfig::default() };
        let start = FrequencyStart { frequency: kernel(0.0), known: false, applied: kernel(0.0) };
        let (mut told, mut untold) =
            (Discipline::new(config, start), Discipline::new(config, start));
        let mut offset = 0.0;
        for step in 1..=256 {
            let t = f64::from(step) * 16.0;
            // True minus local grows by what the clock needs beyond what is applied.
            offset += (needed - kernel(t - 16.0)) * 16.0;
            let now = Monotonic::from_seconds_f64(t);
            told.observe_applied(now, kernel(t));
            for discipline in [&mut told, &mut untold] {
                let (steering, _) = discipline.update(now, offset, &[(now, offset, 1e-10)]);
                assert_eq!(steering, Steering::default(), "observe mode never steers");
            }
        }
        let end = Monotonic::from_seconds_f64(4096.0);
        let told = told.estimate(end).frequency;
        let untold = untold.estimate(end).frequency;
        assert!((told - needed).abs() < 0.05e-6, "estimate {told} s/s, needed {needed} s/s");
        assert!((untold - needed).abs() > 1e-6, "without the kernel's change: {untold} s/s");
    }

    #[test]
    fn a_steering_discipline_ignores_what_the_kernel_is_said_to_have() {
        let start = FrequencyStart { frequency: 5e-6, known: true, applied: 5e-6 };
        let mut discipline = Discipline::new(DisciplineConfig::default(), start);
        discipline.observe_applied(Monotonic::from_seconds_f64(1.0), 40e-6);
        assert_eq!(discipline.applied_frequency(), 5e-6);
    }
}
