//! `[clock]`: what the daemon may do to the system clock, its step and panic thresholds and the
//! drift file.

use serde::Deserialize;
use std::path::PathBuf;

/// Where the frequency correction is kept between runs.
pub const DEFAULT_DRIFT_FILE: &str = "/var/lib/syhub-ntp/drift";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawClockConfig")]
pub struct ClockConfig {
    pub mode: ClockMode,
    /// Offsets beyond this (seconds) are stepped, not slewed.
    pub step_threshold: f64,
    /// Seconds an offset beyond the step threshold must persist before it is stepped.
    pub stepout: f64,
    /// Offsets beyond this (seconds) are refused after start-up: the daemon stops.
    pub panic_threshold: f64,
    /// The drift file; `None` keeps none.
    pub drift_file: Option<PathBuf>,
}

impl Default for ClockConfig {
    fn default() -> Self {
        Self {
            mode: ClockMode::Steer,
            step_threshold: 0.128,
            stepout: 900.0,
            panic_threshold: 1000.0,
            drift_file: Some(PathBuf::from(DEFAULT_DRIFT_FILE)),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    /// Discipline the system clock (needs CAP_SYS_TIME).
    #[default]
    Steer,
    /// Compute and report; never touch the system clock.
    Observe,
}

/// The file's form, checked as a whole into [`ClockConfig`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClockConfig {
    #[serde(default)]
    mode: ClockMode,
    step_threshold: Option<f64>,
    stepout: Option<f64>,
    panic_threshold: Option<f64>,
    drift_file: Option<String>,
}

impl TryFrom<RawClockConfig> for ClockConfig {
    type Error = String;
    fn try_from(raw: RawClockConfig) -> Result<Self, String> {
        let default = Self::default();
        let seconds = |name: &str, value: Option<f64>, fallback: f64, least: f64| match value {
            None => Ok(fallback),
            Some(v) if v.is_finite() && v >= least => Ok(v),
            Some(v) => Err(format!("{name} = {v}: expected a number of seconds, at least {least}")),
        };
        let step_threshold =
            seconds("step_threshold", raw.step_threshold, default.step_threshold, 0.001)?;
        let stepout = seconds("stepout", raw.stepout, default.stepout, 0.0)?;
        let panic_threshold =
            seconds("panic_threshold", raw.panic_threshold, default.panic_threshold, 1.0)?;
        if panic_threshold < step_threshold {
            return Err(format!(
                "panic_threshold ({panic_threshold} s) is below step_threshold ({step_threshold} s)"
            ));
        }
        let drift_file = match raw.drift_file {
            None => default.drift_file,
            Some(path) if path.is_empty() => None,
            Some(path) if path.starts_with('/') => Some(PathBuf::from(path)),
            Some(path) => {
                return Err(format!(
                    "drift_file = {path:?}: expected an absolute path, or \"\" for none"
                ));
            }
        };
        Ok(Self { mode: raw.mode, step_threshold, stepout, panic_threshold, drift_file })
    }
}
