//! The simulated local clock: a frequency error that wanders as a random walk, the corrections the
//! discipline applies, and exact integration between events; beside it the oscillator's own time,
//! uncorrected, which the daemon reads as its time base (CLOCK_MONOTONIC_RAW).

use crate::rng::Rng;

/// The local clock against true time (both in seconds since the start of the simulation).
pub struct SimClock {
    /// Local minus true time at `time`.
    error: f64,
    /// True time of the state above.
    time: f64,
    /// How fast the clock gains with no correction, s/s.
    natural_frequency: f64,
    /// Random-walk step of the natural frequency per second of time, s/s.
    wander: f64,
    /// The frequency correction in force, s/s (positive = faster).
    applied: f64,
    /// Time up to which the wander has been drawn.
    wander_time: f64,
    /// The oscillator's own time minus true time: what CLOCK_MONOTONIC_RAW, the daemon's time
    /// base, reads against true time (the natural frequency error, no correction).
    raw_error: f64,
}

impl SimClock {
    pub fn new(initial_error: f64, natural_frequency: f64, wander: f64) -> Self {
        Self {
            error: initial_error,
            time: 0.0,
            natural_frequency,
            wander,
            applied: 0.0,
            wander_time: 0.0,
            raw_error: 0.0,
        }
    }

    /// Advances to true time `time` (never backwards), drawing the wander once a second.
    pub fn advance(&mut self, time: f64, rng: &mut Rng) {
        while self.time < time {
            let step_end = (self.wander_time + 1.0).min(time);
            self.error += (self.natural_frequency + self.applied) * (step_end - self.time);
            self.raw_error += self.natural_frequency * (step_end - self.time);
            self.time = step_end;
            if self.time >= self.wander_time + 1.0 {
                self.wander_time += 1.0;
                self.natural_frequency += self.wander * rng.normal();
            }
        }
    }

    /// Local clock reading at the current time, seconds since the start.
    pub fn local(&self) -> f64 {
        self.time + self.error
    }

    /// Local minus true time now.
    pub fn error(&self) -> f64 {
        self.error
    }

    /// The oscillator's own time now (CLOCK_MONOTONIC_RAW), seconds since the start.
    pub fn raw(&self) -> f64 {
        self.time + self.raw_error
    }

    /// True time at which the oscillator's own time reads `raw`, at its present rate.
    pub fn true_time_at_raw(&self, raw: f64) -> f64 {
        self.time + (raw - self.raw()) / (1.0 + self.natural_frequency)
    }

    /// The clock's actual frequency error with the correction applied, s/s.
    pub fn frequency_error(&self) -> f64 {
        self.natural_frequency + self.applied
    }

    pub fn set_frequency(&mut self, applied: f64) {
        self.applied = applied;
    }

    pub fn step(&mut self, step: f64) {
        self.error += step;
    }

    /// Someone else moves the clock (a test's injected error).
    pub fn disturb(&mut self, error: f64) {
        self.error += error;
    }
}
