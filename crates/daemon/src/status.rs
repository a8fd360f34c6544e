//! The status snapshot every surface reports, built from the system core's state: the
//! synchronisation state, the estimate, the leap second, and each source's part in the selection.

use crate::config::Config;
use crate::server::ServerCounters;
use crate::system_task::ClockMode;
use syhub_ntp_proto::NtpTimestamp;
use syhub_ntp_proto::leap::LeapKind;
use syhub_ntp_proto::sync::{LeapMode, SyncState};
use syhub_ntp_proto::system::System;
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
    let peers = system
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
