//! The status snapshot: one serialisable picture of the daemon that every surface (the CLI over
//! the control socket, HTTP, Prometheus, MQTT, systemd's status line) reports, so they never
//! disagree; and the serving path's live request counters.

use serde::{Deserialize, Serialize};

/// The daemon's state at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    pub version: String,
    /// Serving time from synchronised sources.
    pub synchronised: bool,
    /// "synchronised", "local clock" or "unsynchronised".
    pub status: String,
    /// Why not synchronised (or why on the local clock).
    pub reason: Option<String>,
    pub stratum: u8,
    pub reference_id: String,
    /// "none", "insert second", "delete second" or "unsynchronised".
    pub leap: String,
    /// The next leap second the daemon knows of and how it will be made, e.g.
    /// "insert at 2027-01-01 00:00:00 UTC (kernel)".
    #[serde(default)]
    pub leap_second: Option<String>,
    /// What the leap-seconds list says: "valid until 2026-06-28", or why it is not used.
    #[serde(default)]
    pub leap_file: Option<String>,
    /// Estimated true time minus system clock, seconds (positive: the clock is behind).
    pub offset_seconds: f64,
    /// Standard deviation of that estimate, seconds.
    pub offset_uncertainty_seconds: f64,
    /// The frequency correction the clock needs, ppm.
    pub frequency_ppm: f64,
    /// Spread of the selected sources around the system peer, seconds.
    pub jitter_seconds: f64,
    pub root_delay_seconds: f64,
    pub root_dispersion_seconds: f64,
    /// Poll interval advised to the sources, log2 seconds.
    pub poll_log2: i8,
    /// "steer", "observe", or "observe (steering refused by the kernel)".
    pub clock_mode: String,
    /// Seconds since the clock estimate was last updated from a source.
    pub last_update_seconds_ago: Option<f64>,
    pub uptime_seconds: f64,
    pub requests: RequestCounters,
    /// The upstream sources, pool members one by one.
    pub peers: Vec<SourceStatus>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounters {
    pub received: u64,
    pub answered: u64,
    /// Malformed, not requests, from port 0, or NTS requests refused (an NTS NAK included).
    pub ignored: u64,
    /// Refused by access control.
    pub denied: u64,
    /// Over their client's rate limit.
    pub rate_limited: u64,
}

/// One upstream server as the status reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// The configured name (the pool's name for pool members).
    pub name: String,
    /// The address in use.
    pub address: String,
    /// "server" or "pool".
    pub kind: String,
    pub fallback: bool,
    /// "system peer", "candidate", "outlier", "falseticker", "unreachable", "unusable", or
    /// "numbers PPS seconds" (a reference clock only watched, for its PPS pair).
    pub state: String,
    /// ntpq's tally code for the state: `*` system peer, `+` candidate, `-` outlier,
    /// `x` falseticker, space otherwise.
    pub tally: String,
    /// Why unusable, when it is.
    pub detail: Option<String>,
    /// Reachability register in octal, as ntpq prints it.
    pub reach: String,
    pub stratum: Option<u8>,
    pub reference_id: Option<String>,
    pub poll_log2: i8,
    pub delay_seconds: Option<f64>,
    pub offset_seconds: Option<f64>,
    pub jitter_seconds: Option<f64>,
    /// Seconds since its last usable sample.
    pub last_sample_seconds_ago: Option<f64>,
    /// Answers that came back but could not be used (impossible timestamps, an unsynchronised
    /// server, ...), since the source started; `detail` says why the latest was refused.
    #[serde(default)]
    pub refused_answers: u64,
    /// Requests sent to it since it started (how much load we put on the server).
    #[serde(default)]
    pub requests_sent: u64,
}

/// The serving path's counters, updated per packet without locks and read live by every surface
/// (the status snapshot of the moment may be a few seconds old).
#[derive(Debug, Default)]
pub struct RequestTally {
    pub received: std::sync::atomic::AtomicU64,
    pub answered: std::sync::atomic::AtomicU64,
    pub ignored: std::sync::atomic::AtomicU64,
    pub denied: std::sync::atomic::AtomicU64,
    pub rate_limited: std::sync::atomic::AtomicU64,
    pub send_errors: std::sync::atomic::AtomicU64,
}

impl RequestTally {
    pub fn read(&self) -> RequestCounters {
        use std::sync::atomic::Ordering::Relaxed;
        RequestCounters {
            received: self.received.load(Relaxed),
            answered: self.answered.load(Relaxed),
            ignored: self.ignored.load(Relaxed),
            denied: self.denied.load(Relaxed),
            rate_limited: self.rate_limited.load(Relaxed),
        }
    }
}

impl StatusSnapshot {
    /// This snapshot with the request counters as they are now.
    pub fn with_counters(&self, tally: &RequestTally) -> Self {
        Self { requests: tally.read(), ..self.clone() }
    }
}
