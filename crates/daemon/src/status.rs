//! The status snapshot every surface reports, built from the system core's state: the
//! synchronisation state, the estimate, the leap second, each source's part in the selection, and
//! a row for each configured name that has no server yet.

use crate::config::Config;
use crate::server::ServerCounters;
use crate::system_task::ClockMode;
use syhub_ntp_proto::NtpTimestamp;
use syhub_ntp_proto::leap::LeapKind;
use syhub_ntp_proto::sync::{LeapMode, SyncState};
use syhub_ntp_proto::system::{EntryKind, System, UnresolvedEntry};
use syhub_ntp_proto::time::{Monotonic, utc_date};
use syhub_ntp_status::{SourceStatus, StatusSnapshot};

/// What the status is built from.
pub(crate) struct StatusInputs<'a> {
    pub system: &'a System,
    pub config: &'a Config,
    pub clock_mode: &'a ClockMode,
    /// What the leap-seconds list came to, when one is configured.
    pub leap_file: Option<&'a str>,
    pub counters: &'a ServerCounters,
    /// Monotonic time since the daemon started.
    pub now: Monotonic,
    pub local_now: NtpTimestamp,
}

pub(crate) fn build(inputs: StatusInputs<'_>) -> StatusSnapshot {
    let StatusInputs { system, config, clock_mode, leap_file, counters, now, local_now } = inputs;
    let sync = system.sync();
    let snapshot = sync.snapshot();
    let estimate = sync.discipline().estimate(now);
    let (state, reason) = match sync.state() {
        SyncState::Synchronised { .. } => ("synchronised", None),
        SyncState::LocalClock { reason } => ("local clock", Some(reason.clone())),
        SyncState::Unsynchronised { reason } => ("unsynchronised", Some(reason.clone())),
    };
    let mut peers: Vec<SourceStatus> = system
        .sources()
        .iter()
        .map(|source| {
            let view = &source.view;
            let state = system.source_state(source);
            SourceStatus {
                name: system.entry(source.entry).name.clone(),
                address: system.location(source),
                kind: config.sources[source.entry].mode.name().into(),
                fallback: system.entry(source.entry).fallback,
                state: state.name().into(),
                tally: state.tally().into(),
                detail: system.source_problem(source, now),
                reach: format!("{:o}", view.reach),
                stratum: view.server.map(|s| s.stratum),
                reference_id: view.server.map(|s| s.reference_id.display_for_stratum(s.stratum)),
                poll_log2: view.poll,
                delay_seconds: view.filter.map(|f| f.delay),
                offset_seconds: view.filter.map(|f| f.offset),
                jitter_seconds: view.filter.map(|f| f.jitter),
                last_sample_seconds_ago: source.last_sample_at.map(|t| now.seconds_since(t)),
                refused_answers: u64::from(view.refused),
                requests_sent: u64::from(view.polls),
            }
        })
        .collect();
    peers.extend(system.unresolved_entries().iter().map(|entry| unresolved_row(entry, config)));
    StatusSnapshot {
        version: env!("CARGO_PKG_VERSION").into(),
        synchronised: matches!(sync.state(), SyncState::Synchronised { .. }),
        status: state.into(),
        reason,
        stratum: snapshot.stratum,
        reference_id: snapshot.reference_id.display_for_stratum(snapshot.stratum),
        leap: snapshot.leap.name().into(),
        leap_second: sync.leap().current().map(|leap| {
            let kind = match leap.kind {
                LeapKind::Insert => "insert",
                LeapKind::Delete => "delete",
            };
            let how = match sync.leap().mode() {
                LeapMode::Kernel => "by the kernel".to_owned(),
                LeapMode::Step => "by a step".to_owned(),
                LeapMode::Smear { window } => format!("smeared over {window} s"),
            };
            format!("{kind} before {} 00:00:00 UTC, {how}", utc_date(leap.at))
        }),
        leap_file: leap_file.map(str::to_owned),
        offset_seconds: estimate.offset,
        // Before any measurement the estimate's spread is only its starting guess (1000 s).
        offset_uncertainty_seconds: system
            .last_update()
            .map(|_| estimate.offset_variance.sqrt().min(1e6)),
        frequency_ppm: estimate.frequency * 1e6,
        jitter_seconds: sync.selection().map_or(0.0, |s| s.jitter),
        root_delay_seconds: snapshot.root_delay.to_seconds_f64(),
        root_dispersion_seconds: snapshot.root_dispersion_at(local_now).to_seconds_f64(),
        poll_log2: sync.poll_exponent(),
        clock_mode: clock_mode.to_string(),
        last_update_seconds_ago: system.last_update().map(|t| now.seconds_since(t)),
        uptime_seconds: now.seconds_since(Monotonic::ZERO),
        requests: counters.read(),
        peers,
    }
}

/// A configured name without a server, as ntpq shows a pool before it has members: stratum 16,
/// reach 0, ".POOL." for a pool and ".DNS." (what it waits on) for a server or NTS server; the
/// poll as configured, and why in `detail`.
fn unresolved_row(entry: &UnresolvedEntry<'_>, config: &Config) -> SourceStatus {
    let reference_id = match entry.config.kind {
        EntryKind::Pool(_) => ".POOL.",
        _ => ".DNS.",
    };
    SourceStatus {
        name: entry.config.name.clone(),
        address: String::new(),
        kind: config.sources[entry.entry].mode.name().into(),
        fallback: entry.config.fallback,
        state: entry.why.name().into(),
        tally: " ".into(),
        detail: Some(entry.why.reason()),
        reach: "0".into(),
        stratum: Some(16),
        reference_id: Some(reference_id.into()),
        poll_log2: entry.config.poll.minpoll,
        ..SourceStatus::default()
    }
}
