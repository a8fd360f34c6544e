//! `[clock]`: what the daemon may do to the system clock, its step and panic thresholds and the
//! drift file.

use serde::Deserialize;
use std::path::PathBuf;

/// Where the frequency correction is kept between runs.
pub const DEFAULT_DRIFT_FILE: &str = "/var/lib/syhub-ntp/drift";
/// The leap-seconds list Debian's tzdata ships.
pub const DEFAULT_LEAP_FILE: &str = "/usr/share/zoneinfo/leap-seconds.list";
/// Default smear window: a day, as the public smearing servers use.
const DEFAULT_SMEAR_WINDOW: f64 = 86_400.0;

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
    /// The leap-seconds list; `None` relies on the sources' warnings alone.
    pub leap_file: Option<PathBuf>,
    pub leap_mode: LeapMode,
    /// Seconds over which `leap_mode = "smear"` spreads a leap second.
    pub leap_smear_window: f64,
}

/// How a leap second is handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeapMode {
    /// The kernel inserts or deletes the second at midnight; clients are warned.
    #[default]
    Kernel,
    /// Served time absorbs the second over `leap_smear_window`; clients are not warned.
    Smear,
    /// The daemon steps the clock by the second after midnight; clients are warned.
    Step,
}

impl Default for ClockConfig {
    fn default() -> Self {
        Self {
            mode: ClockMode::Steer,
            step_threshold: 0.128,
            stepout: 900.0,
            panic_threshold: 1000.0,
            drift_file: Some(PathBuf::from(DEFAULT_DRIFT_FILE)),
            leap_file: Some(PathBuf::from(DEFAULT_LEAP_FILE)),
            leap_mode: LeapMode::Kernel,
            leap_smear_window: DEFAULT_SMEAR_WINDOW,
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
    leap_file: Option<String>,
    #[serde(default)]
    leap_mode: LeapMode,
    leap_smear_window: Option<f64>,
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
        // A file the daemon reads (and for the drift file, writes): absolute, or "" for none.
        let file = |name: &str, value: Option<String>, fallback: Option<PathBuf>| match value {
            None => Ok(fallback),
            Some(path) if path.is_empty() => Ok(None),
            Some(path) if path.starts_with('/') => Ok(Some(PathBuf::from(path))),
            Some(path) => {
                Err(format!("{name} = {path:?}: expected an absolute path, or \"\" for none"))
            }
        };
        let drift_file = file("drift_file", raw.drift_file, default.drift_file)?;
        let leap_file = file("leap_file", raw.leap_file, default.leap_file)?;
        let leap_smear_window = match raw.leap_smear_window {
            None => DEFAULT_SMEAR_WINDOW,
            Some(w) if w.is_finite() && (60.0..=172_800.0).contains(&w) => w,
            Some(w) => {
                return Err(format!(
                    "leap_smear_window = {w}: expected seconds from 60 to 172800 (86400 is a day)"
                ));
            }
        };
        if raw.leap_smear_window.is_some() && raw.leap_mode != LeapMode::Smear {
            return Err("leap_smear_window applies to leap_mode = \"smear\" only".into());
        }
        Ok(Self {
            mode: raw.mode,
            step_threshold,
            stepout,
            panic_threshold,
            drift_file,
            leap_file,
            leap_mode: raw.leap_mode,
            leap_smear_window,
        })
    }
}
