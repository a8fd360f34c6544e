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
    /// Estimated true time minus system clock, seconds (positive: the clock is behind). 0 until
    /// a source has been measured: an assumption then, not a measurement.
    pub offset_seconds: f64,
    /// Standard deviation of that estimate, seconds; `None` (null in JSON) until a source has
    /// been measured (serving the local clock from the start, or still starting).
    #[serde(default)]
    pub offset_uncertainty_seconds: Option<f64>,
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
    /// Seconds since the daemon started, as of the read (see [`StatusSnapshot::with_counters`]).
    pub uptime_seconds: f64,
    pub requests: RequestCounters,
    /// The upstream sources, pool members one by one, then a row for each configured pool or
    /// server name that has no server in use (see [`SourceStatus::has_server`]).
    pub peers: Vec<SourceStatus>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounters {
    pub received: u64,
    pub answered: u64,
    /// Not answered for what they are: malformed, not requests, from port 0, from a source no
    /// answer may go to (broadcast, multicast, unspecified, IPv4-mapped, the hub's own address at
    /// a service's port), sent to a multicast group, NTS requests refused (an NTS NAK included),
    /// or an answer the kernel would not send.
    pub ignored: u64,
    /// Refused by access control.
    pub denied: u64,
    /// Over their client's rate limit.
    pub rate_limited: u64,
}

/// One upstream server as the status reports it, or a configured name that has none yet: a pool
/// or server name still resolving or that did not resolve, shown as ntpq shows a pool (stratum
/// 16, reach 0, reference ".POOL." for a pool and ".DNS." for a server) with the resolver's error
/// in `detail`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// The configured name (the pool's name for pool members).
    pub name: String,
    /// The address in use; empty for a name without a server.
    pub address: String,
    /// The configured mode: "server", "pool", "nts", "broadcast", or a reference clock's.
    pub kind: String,
    pub fallback: bool,
    /// "system peer", "candidate", "outlier", "falseticker", "unreachable", "unusable", or
    /// "numbers PPS seconds" (a reference clock only watched, for its PPS pair); for a name
    /// without a server, "resolving" (no answer yet), "unresolved" (the resolver failed) or
    /// "no free server" (every server it gives is used by another source).
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

impl SourceStatus {
    /// Whether a server (or a reference clock) stands behind this row: false for a configured
    /// name that has none in use, whose `state` and `detail` say why.
    pub fn has_server(&self) -> bool {
        !self.address.is_empty()
    }
}

/// The serving path's counters, updated per packet without locks and read live by every surface
/// (the status snapshot of the moment may be built minutes ago, at the last source event), with
/// the daemon's start, from which the uptime is read live too.
#[derive(Debug)]
pub struct RequestTally {
    pub received: std::sync::atomic::AtomicU64,
    pub answered: std::sync::atomic::AtomicU64,
    pub ignored: std::sync::atomic::AtomicU64,
    pub denied: std::sync::atomic::AtomicU64,
    pub rate_limited: std::sync::atomic::AtomicU64,
    pub send_errors: std::sync::atomic::AtomicU64,
    /// When the daemon started.
    pub started: std::time::Instant,
}

impl Default for RequestTally {
    /// Counters from zero, for a daemon starting now.
    fn default() -> Self {
        Self::started_at(std::time::Instant::now())
    }
}

impl RequestTally {
    /// Counters from zero, for a daemon that started at `started`.
    pub fn started_at(started: std::time::Instant) -> Self {
        Self {
            received: Default::default(),
            answered: Default::default(),
            ignored: Default::default(),
            denied: Default::default(),
            rate_limited: Default::default(),
            send_errors: Default::default(),
            started,
        }
    }

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
    /// This snapshot with what changes all the time as it is now: the request counters and the
    /// uptime. Every surface reports the snapshot through this.
    pub fn with_counters(&self, tally: &RequestTally) -> Self {
        Self {
            requests: tally.read(),
            uptime_seconds: tally.started.elapsed().as_secs_f64(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::{Duration, Instant};

    #[test]
    fn counters_and_uptime_are_read_when_the_snapshot_is() {
        // A snapshot built at start, never rebuilt since (no source event).
        let built = StatusSnapshot { uptime_seconds: 0.0006, ..StatusSnapshot::default() };
        let started = Instant::now() - Duration::from_secs(92);
        let tally = RequestTally::started_at(started);
        tally.received.fetch_add(3, Relaxed);
        tally.answered.fetch_add(2, Relaxed);
        tally.ignored.fetch_add(1, Relaxed);
        let first = built.with_counters(&tally);
        assert!((92.0..100.0).contains(&first.uptime_seconds), "{}", first.uptime_seconds);
        assert_eq!((first.requests.received, first.requests.answered), (3, 2));
        assert_eq!(first.requests.ignored, 1);
        // Read again later: only the live parts differ.
        let tally = RequestTally::started_at(started - Duration::from_secs(2));
        let second = built.with_counters(&tally);
        let advanced = second.uptime_seconds - first.uptime_seconds;
        assert!((1.0..10.0).contains(&advanced), "{advanced}");
        assert_eq!(
            StatusSnapshot { uptime_seconds: 0.0006, requests: built.requests, ..second },
            built
        );
    }
}
