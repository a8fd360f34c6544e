//! What the system knows of a source when it selects: its filtered offset, root distance and
//! whether it is fit to synchronise to (RFC 5905's fit test).

use super::filter::{FilterOutput, FilterSample, PHI};
use crate::packet::{LeapIndicator, NtpHeader, ReferenceId};
use crate::time::{Monotonic, NtpDuration};

/// Largest root distance a source may have to be selected, seconds (RFC 5905 MAXDIST).
pub const MAX_DISTANCE: f64 = 1.5;
/// Least delay assumed in the root distance, seconds (RFC 5905 MINDISP).
const MIN_DISPERSION: f64 = 0.005;
/// Polls without any answer after which a source that never answered is unreachable (an
/// initial burst gives up after two losses).
const POLLS_BEFORE_UNREACHABLE: u32 = 3;
/// Refused answers in a row after which a source no longer counts toward a majority.
const REFUSALS_NOT_COUNTED: u32 = 2;

/// The server's state from its latest answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerInfo {
    pub leap: LeapIndicator,
    pub stratum: u8,
    /// log2 seconds.
    pub precision: i8,
    pub poll: i8,
    /// Seconds.
    pub root_delay: f64,
    /// Seconds.
    pub root_dispersion: f64,
    /// The server's own reference id (its upstream).
    pub reference_id: ReferenceId,
}

impl ServerInfo {
    pub fn from_header(header: &NtpHeader) -> Self {
        Self {
            leap: header.leap,
            stratum: header.stratum,
            precision: header.precision,
            poll: header.poll,
            root_delay: header.root_delay.to_seconds_f64(),
            root_dispersion: header.root_dispersion.to_seconds_f64(),
            reference_id: header.reference_id,
        }
    }

    pub fn precision_seconds(&self) -> f64 {
        NtpDuration::from_log2_seconds(self.precision).to_seconds_f64()
    }
}

/// A snapshot of one source for selection and monitoring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceView {
    /// Reachability register: bit 0 is the latest poll.
    pub reach: u8,
    /// Requests sent so far.
    pub polls: u32,
    /// The kiss code (DENY, RSTR) with which the server told us to go away.
    pub denied: Option<ReferenceId>,
    /// Poll exponent in use.
    pub poll: i8,
    /// Our reference id while this source is the system peer.
    pub reference_id: ReferenceId,
    pub filter: Option<FilterOutput>,
    /// Samples in the clock filter (0–8).
    pub samples: u8,
    /// Least delay among them, seconds.
    pub min_delay: Option<f64>,
    /// Least delay over a longer window (32–64 samples), seconds.
    pub path_delay: Option<f64>,
    /// Usable samples since the source started.
    pub samples_seen: u32,
    /// The samples in the filter, newest first.
    pub recent: [Option<FilterSample>; 8],
    pub server: Option<ServerInfo>,
    /// A reference clock (GPS, PPS) rather than a server: stratum 0 is its normal state.
    pub reference_clock: bool,
    /// Answers that came back but could not be used, since the start and in a row now.
    pub refused: u32,
    pub refused_in_a_row: u32,
    /// Why the latest refused answer was refused.
    pub last_refusal: Option<&'static str>,
}

impl SourceView {
    /// Root distance at `now`: half the round trip to the primary reference plus every
    /// dispersion on the way, aged since the sample (RFC 5905 root_dist).
    pub fn root_distance(&self, now: Monotonic) -> Option<f64> {
        let filter = self.filter?;
        let server = self.server?;
        let age = now.seconds_since(filter.time).max(0.0);
        Some(
            (server.root_delay + filter.delay).max(MIN_DISPERSION) / 2.0
                + server.root_dispersion
                + filter.dispersion
                + PHI * age
                + filter.jitter,
        )
    }

    /// Whether the source may still answer: it answered one of its last eight polls, or it has
    /// not yet been polled often enough to tell, and it has not told us to go away.
    pub fn may_answer(&self) -> bool {
        self.denied.is_none() && (self.reach != 0 || self.polls < POLLS_BEFORE_UNREACHABLE)
    }

    /// Whether the source may give us time, fit to be selected yet or not: it may answer, it
    /// does not say it is unsynchronised, and its answers are not being refused. These count
    /// when a majority of the sources is needed.
    pub fn may_give_time(&self) -> bool {
        let server_synchronised = self.server.is_none_or(|s| {
            s.leap != LeapIndicator::Unsynchronised
                && s.stratum < 16
                && (s.stratum > 0 || self.reference_clock)
        });
        self.may_answer() && server_synchronised && self.refused_in_a_row < REFUSALS_NOT_COUNTED
    }

    /// Why this source cannot be selected now, or `None` if it can (RFC 5905 fit, less the loop
    /// test, which needs our own addresses).
    pub fn unfit_reason(&self, now: Monotonic, system_poll: i8) -> Option<&'static str> {
        if self.denied.is_some() {
            return Some("the server refused us (kiss-o'-death)");
        }
        if self.reach == 0 {
            return Some(if self.may_answer() { "no answer yet" } else { "unreachable" });
        }
        let Some(server) = self.server else {
            return Some(self.last_refusal.unwrap_or("no answer yet"));
        };
        if server.leap == LeapIndicator::Unsynchronised
            || (server.stratum == 0 && !self.reference_clock)
            || server.stratum >= 16
        {
            return Some("the server is not synchronised");
        }
        let Some(distance) = self.root_distance(now) else {
            // It answers, but nothing it said could be used yet: say why, not "unreachable".
            return Some(
                self.last_refusal
                    .filter(|_| self.refused_in_a_row > 0)
                    .unwrap_or("no usable sample yet"),
            );
        };
        if distance > MAX_DISTANCE + PHI * 2f64.powi(i32::from(system_poll)) {
            return Some("root distance too large (too few samples, or too far from a reference)");
        }
        None
    }

    /// Stratum-weighted distance used to order survivors (RFC 5905 merit: smaller is better).
    pub fn merit(&self, now: Monotonic) -> f64 {
        let stratum = self.server.map_or(16, |s| s.stratum);
        f64::from(stratum) * MAX_DISTANCE + self.root_distance(now).unwrap_or(MAX_DISTANCE)
    }
}
