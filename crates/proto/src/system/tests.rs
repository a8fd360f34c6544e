//! The system core in scenarios of its own: pools and their replacement, identity across
//! removals, PPS pairing, a leap step and the drift file's cadence, with sources' views made by
//! hand so each decision is seen on its own.

use super::*;
use crate::packet::LeapIndicator;
use crate::source::{
    FilterOutput, FilterSample, Measurement, RefclockConfig, ServerInfo, SourceConfig,
};
use crate::sync::{DisciplineConfig, FrequencyStart, LeapMode, LocalMode, SyncConfig};
use std::net::SocketAddr;

/// 2026-12-31 12:00:00 UTC: half a day before a month's end, where a leap can come.
const START_UNIX: i64 = 1_798_718_400;

fn address(last: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, last], 123))
}

fn at(seconds: f64) -> (Monotonic, NtpTimestamp) {
    let local = NtpTimestamp::from_unix(START_UNIX, 0)
        + crate::time::NtpDuration::from_seconds_f64(seconds);
    (Monotonic::from_seconds_f64(seconds), local)
}

fn server_entry(name: &str, kind: EntryKind, max_sources: u8) -> EntryConfig {
    EntryConfig {
        name: name.to_owned(),
        kind,
        poll: SourceConfig::default(),
        max_sources,
        fallback: false,
        prefer: false,
    }
}

fn pool(max_sources: u8) -> EntryConfig {
    let target = Target::Name { host: "pool.test".to_owned(), port: 123 };
    server_entry("pool.test", EntryKind::Pool(target), max_sources)
}

fn system_with(entries: Vec<EntryConfig>, leap_mode: LeapMode, steer: bool) -> System {
    let sync = Synchroniser::new(
        SyncConfig {
            discipline: DisciplineConfig { steer, ..DisciplineConfig::default() },
            local_stratum: Some(10),
            local_mode: LocalMode::Holdover,
            precision: -20,
            leap_mode,
        },
        FrequencyStart { frequency: 0.0, known: false, applied: 0.0 },
        false,
    );
    System::new(SystemConfig { keeps_drift: true }, entries, sync, Monotonic::ZERO)
}

fn server_info(leap: LeapIndicator) -> ServerInfo {
    ServerInfo {
        leap,
        stratum: 1,
        precision: -20,
        poll: 6,
        root_delay: 0.0,
        root_dispersion: 0.0001,
        reference_id: ReferenceId::from_bytes(*b"GPS\0"),
    }
}

/// A source answering every poll: eight samples 64 s apart up to `now`, all `offset` off with a
/// round trip of `delay`.
fn answering(now: Monotonic, offset: f64, delay: f64, leap: LeapIndicator) -> SourceView {
    let mut recent = [None; 8];
    for (age, slot) in recent.iter_mut().enumerate() {
        let time = now - Duration::from_secs(64 * age as u64).min(now.since_origin());
        *slot = Some(FilterSample { offset, delay, dispersion: 1e-5, time });
    }
    SourceView {
        reach: 0xff,
        polls: 8,
        denied: None,
        poll: 6,
        reference_id: ReferenceId::from_bytes([192, 0, 2, 1]),
        filter: Some(FilterOutput { offset, delay, dispersion: 1e-4, jitter: 1e-5, time: now }),
        samples: 8,
        min_delay: Some(delay),
        path_delay: Some(delay),
        samples_seen: 8,
        recent,
        server: Some(server_info(leap)),
        reference_clock: false,
        refused: 0,
        refused_in_a_row: 0,
        last_refusal: None,
    }
}

/// A source that has not answered its last eight polls.
fn silent() -> SourceView {
    SourceView {
        reach: 0,
        polls: 8,
        denied: None,
        poll: 6,
        reference_id: ReferenceId::from_bytes([192, 0, 2, 9]),
        filter: None,
        samples: 0,
        min_delay: None,
        path_delay: None,
        samples_seen: 0,
        recent: [None; 8],
        server: None,
        reference_clock: false,
        refused: 0,
        refused_in_a_row: 0,
        last_refusal: None,
    }
}

fn sample(view: &SourceView) -> SourceEvent {
    let filter = view.filter.expect("a filter output");
    SourceEvent::Sample(Measurement {
        offset: filter.offset,
        delay: filter.delay,
        dispersion: filter.dispersion,
        time: filter.time,
        server: view.server.expect("a server"),
    })
}

fn started(actions: &[Action]) -> Vec<(SourceId, SocketAddr)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StartSource { id, address, .. } => Some((*id, *address)),
            _ => None,
        })
        .collect()
}

fn stopped(actions: &[Action]) -> Vec<SourceId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StopSource { id } => Some(*id),
            _ => None,
        })
        .collect()
}

fn resolves(actions: &[Action]) -> usize {
    actions.iter().filter(|a| matches!(a, Action::Resolve { .. })).count()
}

/// Reports `view` with a sample from source `id` at `seconds`.
fn report(system: &mut System, id: SourceId, view: SourceView, seconds: f64) -> Vec<Action> {
    let (now, local) = at(seconds);
    let event = sample(&view);
    system.handle_report(id, view, event, now, local)
}

#[test]
fn a_pool_resolves_starts_its_members_and_replaces_one_that_stops_answering() {
    let mut system = system_with(vec![pool(2)], LeapMode::Kernel, false);
    let (now, local) = at(0.0);
    let actions = system.start(now, local);
    assert!(matches!(
        actions.iter().find(|a| matches!(a, Action::Resolve { .. })),
        Some(Action::Resolve { entry: 0, host, port: 123 }) if host == "pool.test"
    ));
    assert!(started(&actions).is_empty(), "nothing to start before the name resolves");

    let actions =
        system.handle_resolution(0, Ok(vec![address(1), address(2), address(3)]), at(0.1).0);
    let members = started(&actions);
    assert_eq!(members.iter().map(|m| m.1).collect::<Vec<_>>(), vec![address(1), address(2)]);
    let (first, second) = (members[0].0, members[1].0);

    report(
        &mut system,
        first,
        answering(at(100.0).0, 0.001, 0.02, LeapIndicator::NoWarning),
        100.0,
    );
    let (now, local) = at(101.0);
    system.handle_report(second, silent(), SourceEvent::Polled, now, local);
    let (now, local) = at(101.0);
    let actions = system.handle_timer(now, local);
    assert_eq!(stopped(&actions), vec![second], "{actions:?}");
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Notice(Notice::Dropped { why: DropReason::Unreachable, .. })
    )));
    assert_eq!(resolves(&actions), 1, "looks for another member at once");
    assert!(system.source(second).is_none());

    // The name gives the same servers again: the one in use is kept, the one just dropped is
    // passed over for one not tried yet.
    let actions =
        system.handle_resolution(0, Ok(vec![address(1), address(2), address(3)]), at(101.1).0);
    assert_eq!(started(&actions).iter().map(|m| m.1).collect::<Vec<_>>(), vec![address(3)]);
    assert_ne!(started(&actions)[0].0, second, "a new source gets a new identity");
    assert_eq!(system.sources().len(), 2);
}

#[test]
fn a_dropped_server_is_taken_back_when_its_name_gives_nothing_else() {
    let target = Target::Name { host: "ntp.test".to_owned(), port: 123 };
    let mut system = system_with(
        vec![server_entry("ntp.test", EntryKind::Server(target), 1)],
        LeapMode::Kernel,
        false,
    );
    let (now, local) = at(0.0);
    system.start(now, local);
    let actions = system.handle_resolution(0, Ok(vec![address(1)]), at(0.1).0);
    let id = started(&actions)[0].0;
    let (now, local) = at(10.0);
    system.handle_report(id, silent(), SourceEvent::Polled, now, local);
    let (now, local) = at(16.0);
    assert_eq!(stopped(&system.handle_timer(now, local)), vec![id]);
    let actions = system.handle_resolution(0, Ok(vec![address(1)]), at(16.1).0);
    assert_eq!(started(&actions).iter().map(|m| m.1).collect::<Vec<_>>(), vec![address(1)]);
}

#[test]
fn a_name_that_does_not_resolve_is_retried_with_a_growing_wait_and_reported_once() {
    let mut system = system_with(vec![pool(4)], LeapMode::Kernel, false);
    let (now, local) = at(0.0);
    system.start(now, local);
    let failure = || Err("cannot resolve pool.test: no such name".to_owned());
    let actions = system.handle_resolution(0, failure(), at(1.0).0);
    assert!(matches!(
        actions.as_slice(),
        [Action::Notice(Notice::ResolveFailed { retry_in, .. })] if *retry_in == Duration::from_secs(16)
    ));
    // Not again before the wait is over.
    let (now, local) = at(16.5);
    assert_eq!(resolves(&system.handle_timer(now, local)), 0);
    let (now, local) = at(33.0);
    assert_eq!(resolves(&system.handle_timer(now, local)), 1);
    // The same error is not reported again; the wait doubles.
    assert!(system.handle_resolution(0, failure(), at(33.5).0).is_empty());
    let (now, local) = at(50.0);
    assert_eq!(resolves(&system.handle_timer(now, local)), 0, "the wait is now 32 s");
    let (now, local) = at(66.0);
    assert_eq!(resolves(&system.handle_timer(now, local)), 1);
}

#[test]
fn removing_a_member_never_relabels_another_and_keeps_the_peer() {
    let mut system = system_with(vec![pool(3)], LeapMode::Kernel, false);
    let (now, local) = at(0.0);
    system.start(now, local);
    let actions =
        system.handle_resolution(0, Ok(vec![address(1), address(2), address(3)]), at(0.1).0);
    let ids: Vec<SourceId> = started(&actions).iter().map(|m| m.0).collect();
    let (dead, slow, fast) = (ids[0], ids[1], ids[2]);

    // The first in the list never answers; the third answers first and becomes the system
    // peer.
    let (now, local) = at(10.0);
    system.handle_report(dead, silent(), SourceEvent::Polled, now, local);
    report(
        &mut system,
        fast,
        answering(at(100.0).0, 0.0001, 0.010, LeapIndicator::NoWarning),
        100.0,
    );
    report(
        &mut system,
        slow,
        answering(at(101.0).0, 0.0002, 0.030, LeapIndicator::NoWarning),
        101.0,
    );
    assert_eq!(system.peer().map(|p| p.id), Some(fast));
    // Now the second's path is the better one, but the peer is kept while it survives
    // (hysteresis).
    report(
        &mut system,
        slow,
        answering(at(150.0).0, 0.0002, 0.005, LeapIndicator::NoWarning),
        150.0,
    );
    assert_eq!(system.peer().map(|p| p.id), Some(fast));

    // The dead member, first in the list, is dropped: nothing shifts into anyone's place.
    let (now, local) = at(160.0);
    let actions = system.handle_timer(now, local);
    assert_eq!(stopped(&actions), vec![dead]);
    let states: Vec<(SourceId, SourceState)> =
        system.sources().iter().map(|s| (s.id, system.source_state(s))).collect();
    assert_eq!(states, vec![(slow, SourceState::Candidate), (fast, SourceState::SystemPeer)]);
    // And the next selection still knows which source was the peer.
    report(
        &mut system,
        slow,
        answering(at(170.0).0, 0.0002, 0.005, LeapIndicator::NoWarning),
        170.0,
    );
    assert_eq!(system.peer().map(|p| p.id), Some(fast));
    let selection = system.sync().selection().expect("a selection");
    assert!(!selection.survivors.contains(&dead));
}

#[test]
fn a_pps_clock_is_fed_its_pairs_offset_when_it_changes_and_the_pair_is_only_watched() {
    let clock = |refid: &[u8; 4]| RefclockConfig {
        poll: 4,
        offset: 0.0,
        precision: -20,
        stratum: 0,
        reference_id: ReferenceId::from_bytes(*refid),
    };
    let gps = server_entry("GPS", EntryKind::Refclock { clock: clock(b"GPS\0"), pair: None }, 1);
    let pps = server_entry("PPS", EntryKind::Refclock { clock: clock(b"PPS\0"), pair: Some(0) }, 1);
    let mut system = system_with(vec![gps, pps], LeapMode::Kernel, false);
    let (now, local) = at(0.0);
    let actions = system.start(now, local);
    let clocks: Vec<(SourceId, usize)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::StartRefclock { id, entry, .. } => Some((*id, *entry)),
            _ => None,
        })
        .collect();
    assert_eq!(clocks.iter().map(|c| c.1).collect::<Vec<_>>(), vec![0, 1]);
    let (gps, pps) = (clocks[0].0, clocks[1].0);
    let fed = |actions: &[Action]| -> Vec<(SourceId, Option<f64>)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::FeedPair { id, offset } => Some((*id, *offset)),
                _ => None,
            })
            .collect()
    };

    let mut view = answering(at(16.0).0, -0.050, 0.0, LeapIndicator::NoWarning);
    view.reference_clock = true;
    let actions = report(&mut system, gps, view, 16.0);
    assert_eq!(fed(&actions), vec![(pps, Some(-0.050))]);
    // The same offset again: nothing to feed.
    let actions = report(&mut system, gps, view, 17.0);
    assert!(fed(&actions).is_empty(), "{actions:?}");
    // The GPS only numbers the pulses: never selected, and shown as such.
    let source = system.source(gps).expect("the GPS");
    assert_eq!(system.source_state(source), SourceState::NumbersPps);
    assert!(system.sync().selection().is_none());
    // It goes quiet: the PPS is told there is nothing to number its pulses with.
    let (now, local) = at(200.0);
    let mut quiet = silent();
    quiet.reference_clock = true;
    let actions = system.handle_report(gps, quiet, SourceEvent::Polled, now, local);
    assert_eq!(fed(&actions), vec![(pps, None)]);
}

fn leap_steps(actions: &[Action]) -> Vec<f64> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::LeapStep { offset } => Some(*offset),
            _ => None,
        })
        .collect()
}

/// One server warning of an insertion at the end of the day, followed from noon.
fn warned_system(mode: LeapMode, steer: bool) -> System {
    let entry = server_entry("192.0.2.1", EntryKind::Server(Target::Address(address(1))), 1);
    let mut system = system_with(vec![entry], mode, steer);
    let (now, local) = at(0.0);
    let actions = system.start(now, local);
    let id = started(&actions)[0].0;
    report(&mut system, id, answering(at(10.0).0, 0.0, 0.01, LeapIndicator::InsertSecond), 10.0);
    assert!(matches!(system.sync().state(), SyncState::Synchronised { .. }));
    system
}

#[test]
fn a_leap_insertion_in_step_mode_is_stepped_once_at_midnight() {
    let mut system = warned_system(LeapMode::Step, true);
    let midnight = 12.0 * 3600.0;
    let (now, local) = at(midnight - 1.0);
    assert!(leap_steps(&system.handle_timer(now, local)).is_empty());
    // The core asks to be woken at the leap.
    let wake = system.next_wake(now, local);
    assert!(wake.seconds_since(now) <= 1.0 + 1e-6, "{}", wake.seconds_since(now));
    let (now, local) = at(midnight);
    assert_eq!(leap_steps(&system.handle_timer(now, local)), vec![-1.0]);
    let (now, local) = at(midnight + 0.5);
    assert!(leap_steps(&system.handle_timer(now, local)).is_empty(), "once only");
}

#[test]
fn a_leap_step_is_only_reported_when_the_clock_is_not_steered() {
    let mut system = warned_system(LeapMode::Step, false);
    let (now, local) = at(12.0 * 3600.0);
    let actions = system.handle_timer(now, local);
    assert!(leap_steps(&actions).is_empty());
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Notice(Notice::LeapStepNotMade { offset }) if *offset == -1.0
    )));
}

#[test]
fn in_kernel_mode_the_kernel_is_armed_for_the_last_day_and_no_step_is_asked() {
    let mut system = warned_system(LeapMode::Kernel, true);
    let (now, local) = at(3600.0);
    let actions = system.handle_timer(now, local);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::SetKernelStatus(status) if status.leap == Some(crate::leap::LeapKind::Insert)
    )));
    let (now, local) = at(12.0 * 3600.0);
    assert!(leap_steps(&system.handle_timer(now, local)).is_empty());
}

#[test]
fn the_drift_file_is_written_once_settled_then_at_most_hourly() {
    let entry = server_entry("192.0.2.1", EntryKind::Server(Target::Address(address(1))), 1);
    let mut system = system_with(vec![entry], LeapMode::Kernel, false);
    let (now, local) = at(0.0);
    let id = started(&system.start(now, local))[0].0;
    let writes = |actions: &[Action]| {
        actions.iter().filter(|a| matches!(a, Action::WriteDrift { .. })).count()
    };
    let mut written = 0;
    let mut first_write = None;
    for poll in 1..=40 {
        let t = 64.0 * f64::from(poll);
        let view = answering(at(t).0, 0.0, 0.01, LeapIndicator::NoWarning);
        let mut actions = report(&mut system, id, view, t);
        let (now, local) = at(t + 0.5);
        actions.extend(system.handle_timer(now, local));
        if writes(&actions) > 0 && first_write.is_none() {
            first_write = Some((poll, t));
        }
        written += writes(&actions);
    }
    let (poll, t) = first_write.expect("written once the frequency is known");
    assert!(poll >= 16, "written after {poll} updates: not settled yet");
    assert_eq!(written, 1, "at most one write an hour (40 polls are 43 min)");
    // Stopping within the hour of the write does not write again.
    let (now, _) = at(64.0 * 40.0 + 1.0);
    assert!(now.seconds_since(at(t).0) < 3600.0);
    assert_eq!(writes(&system.stop(now)), 0);
}

#[test]
fn the_drift_file_is_written_again_an_hour_later_and_at_a_stop_after_that() {
    let entry = server_entry("192.0.2.1", EntryKind::Server(Target::Address(address(1))), 1);
    let mut system = system_with(vec![entry], LeapMode::Kernel, false);
    let (now, local) = at(0.0);
    let id = started(&system.start(now, local))[0].0;
    let mut writes = Vec::new();
    for poll in 1..=100 {
        let t = 64.0 * f64::from(poll);
        let view = answering(at(t).0, 0.0, 0.01, LeapIndicator::NoWarning);
        let mut actions = report(&mut system, id, view, t);
        let (now, local) = at(t + 0.5);
        actions.extend(system.handle_timer(now, local));
        writes.extend(actions.iter().filter(|a| matches!(a, Action::WriteDrift { .. })).map(|_| t));
    }
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert!(writes[1] - writes[0] >= 3600.0, "{writes:?}");
    // A stop an hour after the second write writes again.
    let (now, _) = at(writes[1] + 3601.0);
    assert!(system.stop(now).iter().any(|a| matches!(a, Action::WriteDrift { .. })));
}

/// A system of two servers by address, started; their sources' identities.
fn two_servers() -> (System, Vec<SourceId>) {
    let entries = vec![
        server_entry("a", EntryKind::Server(Target::Address(address(1))), 1),
        server_entry("b", EntryKind::Server(Target::Address(address(2))), 1),
    ];
    let mut system = system_with(entries, LeapMode::Kernel, false);
    let (now, local) = at(0.0);
    let ids = started(&system.start(now, local)).iter().map(|m| m.0).collect();
    (system, ids)
}

#[test]
fn an_unsynchronised_server_does_not_stand_in_the_way_of_a_majority() {
    let (mut system, ids) = two_servers();
    let mut unsynchronised = answering(at(9.0).0, 0.0, 0.01, LeapIndicator::Unsynchronised);
    unsynchronised.filter = None;
    let (now, local) = at(9.0);
    system.handle_report(
        ids[1],
        unsynchronised,
        SourceEvent::Unusable("unsynchronised"),
        now,
        local,
    );
    report(&mut system, ids[0], answering(at(10.0).0, 0.001, 0.01, LeapIndicator::NoWarning), 10.0);
    assert_eq!(system.peer().map(|p| p.id), Some(ids[0]), "{:?}", system.sync().state());
}

#[test]
fn one_server_of_two_is_not_followed_while_the_other_may_still_answer() {
    let (mut system, ids) = two_servers();
    // The second has been asked once and not answered yet: one of two is no majority.
    let mut asked = silent();
    asked.polls = 1;
    let (now, local) = at(1.0);
    system.handle_report(ids[1], asked, SourceEvent::Polled, now, local);
    report(&mut system, ids[0], answering(at(10.0).0, 0.001, 0.01, LeapIndicator::NoWarning), 10.0);
    assert!(system.peer().is_none());
    assert!(matches!(
        system.sync().state(),
        SyncState::LocalClock { reason } | SyncState::Unsynchronised { reason }
            if reason.contains("waiting for a majority")
    ));
    // Once it has missed its first polls it no longer counts, and the one that answers is followed.
    let mut gone = silent();
    gone.polls = 3;
    let (now, local) = at(11.0);
    system.handle_report(ids[1], gone, SourceEvent::Polled, now, local);
    report(&mut system, ids[0], answering(at(12.0).0, 0.001, 0.01, LeapIndicator::NoWarning), 12.0);
    assert_eq!(system.peer().map(|p| p.id), Some(ids[0]));
}

/// What [`System::unresolved_entries`] says, as (entry, why).
fn unresolved(system: &System) -> Vec<(usize, Unresolved)> {
    system.unresolved_entries().into_iter().map(|e| (e.entry, e.why)).collect()
}

fn lost_notices(actions: &[Action]) -> Vec<&Notice> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notice(n @ (Notice::EverySourceLost { .. } | Notice::SourceBack { .. })) => {
                Some(n)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_name_without_a_server_is_listed_resolving_then_failed_and_leaves_once_it_has_one() {
    let named = Target::Name { host: "ntp.test".to_owned(), port: 123 };
    let entries = vec![
        pool(2),
        server_entry("192.0.2.7", EntryKind::Server(Target::Address(address(7))), 1),
        server_entry("ntp.test", EntryKind::Server(named), 1),
        server_entry("broadcast", EntryKind::Broadcast { ipv4: true }, 2),
    ];
    let mut system = system_with(entries, LeapMode::Kernel, false);
    // Before any answer both names are resolving; an address and a broadcast listener never
    // wait for a name.
    assert_eq!(unresolved(&system), vec![(0, Unresolved::Resolving), (2, Unresolved::Resolving)]);
    let (now, local) = at(0.0);
    system.start(now, local);
    assert_eq!(unresolved(&system), vec![(0, Unresolved::Resolving), (2, Unresolved::Resolving)]);

    let error = "cannot resolve pool.test: Name or service not known".to_owned();
    system.handle_resolution(0, Err(error.clone()), at(1.0).0);
    assert_eq!(
        unresolved(&system),
        vec![(0, Unresolved::Failed(error.clone())), (2, Unresolved::Resolving)]
    );
    assert_eq!(system.unresolved_entries()[0].config.name, "pool.test");
    // Asked again, the last error stands until an answer replaces it.
    let (now, local) = at(17.0);
    assert_eq!(resolves(&system.handle_timer(now, local)), 1);
    assert_eq!(unresolved(&system)[0], (0, Unresolved::Failed(error)));

    system.handle_resolution(0, Ok(vec![address(1), address(2)]), at(17.5).0);
    system.handle_resolution(2, Ok(vec![address(3)]), at(17.5).0);
    assert_eq!(unresolved(&system), vec![]);
}

#[test]
fn a_name_whose_servers_other_sources_use_is_listed_as_taken_until_asked_again() {
    let target = Target::Name { host: "ntp.test".to_owned(), port: 123 };
    let entries = vec![
        server_entry("ntp.test", EntryKind::Server(target.clone()), 1),
        server_entry("ntp.test", EntryKind::Server(target), 1),
    ];
    let mut system = system_with(entries, LeapMode::Kernel, false);
    let (now, local) = at(0.0);
    assert_eq!(resolves(&system.start(now, local)), 2);
    system.handle_resolution(0, Ok(vec![address(1)]), at(0.1).0);
    system.handle_resolution(1, Ok(vec![address(1)]), at(0.1).0);
    assert_eq!(unresolved(&system), vec![(1, Unresolved::ServersTaken)]);
    let (now, local) = at(17.0);
    assert_eq!(resolves(&system.handle_timer(now, local)), 1);
    assert_eq!(unresolved(&system), vec![(1, Unresolved::Resolving)]);
}

#[test]
fn every_source_lost_is_said_once_when_the_last_stops_answering_and_its_return_once() {
    let entries = vec![
        server_entry("a", EntryKind::Server(Target::Address(address(1))), 1),
        server_entry("b", EntryKind::Server(Target::Address(address(2))), 1),
        pool(1),
    ];
    let mut system = system_with(entries, LeapMode::Kernel, false);
    let (now, local) = at(0.0);
    let ids: Vec<SourceId> = started(&system.start(now, local)).iter().map(|m| m.0).collect();
    let error = "cannot resolve pool.test: no such name".to_owned();
    system.handle_resolution(2, Err(error.clone()), at(0.5).0);
    // Silent from the start: nothing was had, so nothing is lost.
    let (now, local) = at(1.0);
    let actions = system.handle_report(ids[0], silent(), SourceEvent::Polled, now, local);
    assert!(lost_notices(&actions).is_empty(), "{actions:?}");

    let view = answering(at(10.0).0, 0.001, 0.01, LeapIndicator::NoWarning);
    assert!(lost_notices(&report(&mut system, ids[0], view, 10.0)).is_empty());
    let view = answering(at(11.0).0, 0.001, 0.01, LeapIndicator::NoWarning);
    assert!(lost_notices(&report(&mut system, ids[1], view, 11.0)).is_empty());
    // One of two stops: the other still answers.
    let (now, local) = at(600.0);
    let actions = system.handle_report(ids[0], silent(), SourceEvent::Polled, now, local);
    assert!(lost_notices(&actions).is_empty(), "{actions:?}");
    // The last one stops: said at once, with every source and the pool's error.
    let (now, local) = at(601.0);
    let actions = system.handle_report(ids[1], silent(), SourceEvent::Polled, now, local);
    assert_eq!(
        lost_notices(&actions),
        vec![&Notice::EverySourceLost {
            unreachable: vec![address(1).to_string(), address(2).to_string()],
            unresolved: vec![("pool.test".to_owned(), Unresolved::Failed(error))],
        }]
    );
    assert!(
        matches!(system.sync().state(), SyncState::LocalClock { .. }),
        "{:?}",
        system.sync().state()
    );
    // Not again while nothing changes: further silent polls and the upkeep say nothing.
    for seconds in [602.0, 700.0] {
        let (now, local) = at(seconds);
        let mut actions = system.handle_report(ids[1], silent(), SourceEvent::Polled, now, local);
        actions.extend(system.handle_timer(now, local));
        assert!(lost_notices(&actions).is_empty(), "{actions:?}");
    }
    // One answers again: said once, naming it.
    let view = answering(at(800.0).0, 0.001, 0.01, LeapIndicator::NoWarning);
    assert_eq!(
        lost_notices(&report(&mut system, ids[1], view, 800.0)),
        vec![&Notice::SourceBack { id: ids[1] }]
    );
    let view = answering(at(801.0).0, 0.001, 0.01, LeapIndicator::NoWarning);
    assert!(lost_notices(&report(&mut system, ids[0], view, 801.0)).is_empty());
}

#[test]
fn every_source_lost_is_said_when_the_last_answering_member_is_dropped() {
    let mut system = system_with(vec![pool(1)], LeapMode::Kernel, false);
    let (now, local) = at(0.0);
    system.start(now, local);
    let actions = system.handle_resolution(0, Ok(vec![address(1)]), at(0.1).0);
    let id = started(&actions)[0].0;
    let view = answering(at(10.0).0, 0.001, 0.01, LeapIndicator::NoWarning);
    report(&mut system, id, view, 10.0);
    // It refuses us (kiss-o'-death) while its register still shows answers: dropped at the
    // upkeep, and with it the last source that answered.
    let mut refusing = answering(at(11.0).0, 0.001, 0.01, LeapIndicator::NoWarning);
    refusing.denied = Some(ReferenceId::from_bytes(*b"DENY"));
    let (now, local) = at(11.0);
    system.handle_report(
        id,
        refusing,
        SourceEvent::Kiss(ReferenceId::from_bytes(*b"DENY")),
        now,
        local,
    );
    let (now, local) = at(16.0);
    let actions = system.handle_timer(now, local);
    assert_eq!(stopped(&actions), vec![id]);
    assert_eq!(
        lost_notices(&actions),
        vec![&Notice::EverySourceLost {
            unreachable: vec![],
            unresolved: vec![("pool.test".to_owned(), Unresolved::Resolving)],
        }]
    );
}
