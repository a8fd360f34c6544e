//! Simulated scenarios of the whole protocol core, in virtual time: accuracy in chrony's
//! reference scenario, falsetickers, steps, panics, holdover and recovery. At default polling the
//! poll climbs toward 2^10 s once the clock is steady, so timings here allow for a poll of up to
//! about ten minutes before a change is seen.

use syhub_ntp_sim::{Scenario, Simulation, anchor};

const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];
/// Longest poll interval a settled source uses at default polling (2^10 s and 10 % jitter),
/// seconds: how long a change can go unseen.
const LONGEST_POLL: f64 = 1_130.0;

#[test]
fn reference_scenario_accuracy_at_64_s() {
    let mut worst = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for seed in SEEDS {
        let mut sim = Simulation::new(anchor::fixed_poll(Scenario::reference(seed), 6));
        sim.run_until(10_000.0);
        let stats = sim.statistics();
        println!(
            "seed {seed}: synchronised at {:?} s, RMS offset {:.1} µs, max {:.1} µs, RMS frequency {:.3} ppm, poll 2^{}",
            stats.synchronised_at,
            stats.rms_offset * 1e6,
            stats.max_offset * 1e6,
            stats.rms_frequency * 1e6,
            sim.sync().poll_exponent(),
        );
        worst.0 = worst.0.max(stats.synchronised_at.unwrap_or(f64::INFINITY));
        worst.1 = worst.1.max(stats.rms_offset);
        worst.2 = worst.2.max(stats.max_offset);
        worst.3 = worst.3.max(stats.rms_frequency);
    }
    assert!(worst.0 <= 150.0, "synchronised only at {} s", worst.0);
    assert!(worst.1 <= 20e-6, "RMS offset {} µs", worst.1 * 1e6);
    assert!(worst.2 <= 100e-6, "max offset {} µs", worst.2 * 1e6);
    assert!(worst.3 <= 0.15e-6, "RMS frequency {} ppm", worst.3 * 1e6);
}

use syhub_ntp_proto::sync::{DisciplineEvent, LocalMode, SyncState};
use syhub_ntp_sim::{Path, ServerSpec};

fn steps(sim: &Simulation) -> Vec<(f64, f64, bool)> {
    sim.events
        .iter()
        .filter_map(|(t, e)| match e {
            DisciplineEvent::Stepped { offset, at_start_up } => Some((*t, *offset, *at_start_up)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_falseticker_among_four_is_rejected() {
    for seed in SEEDS {
        let mut scenario = Scenario::reference(seed);
        scenario.servers = vec![ServerSpec::reference(); 4];
        scenario.servers[2].offset = 0.050; // 50 ms wrong
        let mut sim = Simulation::new(scenario);
        sim.run_until(3_000.0);
        let selection = sim.sync().selection().expect("a selection");
        let falseticker = sim.server_id(2).expect("the falseticker is polled");
        // Cast out by the intersection, or (once its interval has widened at a long poll) by
        // clustering: never combined, never the peer.
        assert!(
            selection.falsetickers.contains(&falseticker)
                || selection.outliers.contains(&falseticker),
            "seed {seed}: {selection:?}"
        );
        assert!(!selection.survivors.contains(&falseticker));
        let stats = sim.statistics();
        assert!(stats.rms_offset < 50e-6, "seed {seed}: RMS {} µs", stats.rms_offset * 1e6);
        assert_eq!(sim.stratum(), 2);
    }
}

#[test]
fn half_a_second_of_error_after_sync_is_stepped_once_after_stepout() {
    for seed in SEEDS {
        let mut sim = Simulation::new(Scenario::reference(seed));
        sim.disturb_at(2_000.0, 0.5);
        sim.run_until(5_000.0);
        let steps = steps(&sim);
        assert_eq!(steps.len(), 1, "seed {seed}: {steps:?}");
        let (at, offset, at_start_up) = steps[0];
        assert!(!at_start_up);
        // Seen at the next poll (up to a long poll later); the surprise brings the poll down to
        // minpoll, three samples are believed, then the 900 s stepout.
        let held = sim
            .events
            .iter()
            .find(|(_, e)| matches!(e, DisciplineEvent::HoldingSpike { .. }))
            .map(|(t, _)| *t)
            .expect("the error is held");
        assert!(
            (2_000.0..2_000.0 + LONGEST_POLL + 250.0).contains(&held),
            "seed {seed}: held from {held} s"
        );
        assert!((held + 900.0..held + 1_000.0).contains(&at), "seed {seed}: stepped at {at} s");
        // While it is held, the hub never claims to be synchronised.
        let claims: Vec<&(f64, SyncState)> =
            sim.states.iter().filter(|(t, _)| (held..at).contains(t)).collect();
        assert!(
            claims.iter().all(|(_, s)| !matches!(s, SyncState::Synchronised { .. })),
            "seed {seed}: {claims:?}"
        );
        assert!(
            sim.states.iter().any(|(t, s)| (2_000.0..at).contains(t)
                && matches!(s, SyncState::Unsynchronised { reason } if reason.contains("beyond the step threshold"))),
            "seed {seed}: {:?}",
            sim.states
        );
        assert!((offset + 0.5).abs() < 0.005, "seed {seed}: stepped by {offset} s");
        assert!(sim.clock.error().abs() < 0.001, "seed {seed}: error {} s", sim.clock.error());
        assert!(matches!(sim.sync().state(), SyncState::Synchronised { .. }));
    }
}

#[test]
fn a_huge_error_after_sync_is_refused_but_stepped_at_start_up() {
    for seed in SEEDS {
        let mut sim = Simulation::new(Scenario::reference(seed));
        sim.disturb_at(2_000.0, 5_000.0);
        sim.run_until(2_000.0 + LONGEST_POLL + 250.0);
        assert!(
            sim.events.iter().any(|(t, e)| *t >= 2_000.0 && matches!(e, DisciplineEvent::Panic { offset } if (offset + 5_000.0).abs() < 1.0)),
            "seed {seed}: {:?}",
            sim.events
        );
        assert!(steps(&sim).is_empty(), "seed {seed}: a panic offset must never be stepped");

        let mut scenario = Scenario::reference(seed);
        scenario.initial_error = 5_000.0;
        let mut sim = Simulation::new(scenario);
        sim.run_until(200.0);
        let steps = steps(&sim);
        assert_eq!(steps.len(), 1, "seed {seed}: {steps:?}");
        assert!(steps[0].2 && steps[0].0 < 10.0, "seed {seed}: start-up step at {} s", steps[0].0);
        assert!(sim.clock.error().abs() < 0.001, "seed {seed}: error {} s", sim.clock.error());
    }
}

#[test]
fn loss_of_every_server_falls_back_to_the_local_clock_and_recovers() {
    for seed in SEEDS {
        // Eight unanswered polls make a source unreachable: at the long poll of a settled clock
        // that takes hours, so this runs at 64 s.
        let (lost, back) = (3_000.0, 6_000.0);
        let mut scenario = anchor::fixed_poll(Scenario::reference(seed), 6);
        scenario.servers[0].outages = vec![(lost, back)];
        let mut sim = Simulation::new(scenario);
        sim.run_until(lost - 100.0);
        assert_eq!(sim.stratum(), 2);
        sim.run_until(back - 100.0);
        let snapshot = sim.sync().snapshot();
        assert_eq!(
            (snapshot.stratum, snapshot.reference_id.as_ascii()),
            (10, Some("LOCL")),
            "seed {seed}"
        );
        assert!(matches!(sim.sync().state(), SyncState::LocalClock { .. }));
        // The error bar grows with the time since the last sync.
        let at_loss = snapshot.root_dispersion_at(snapshot.reference_time);
        let later = snapshot.root_dispersion_at(
            snapshot.reference_time + syhub_ntp_proto::NtpDuration::from_seconds(3_000),
        );
        assert!(later.to_seconds_f64() - at_loss.to_seconds_f64() > 0.04, "seed {seed}");
        // Held over on the learned frequency, the clock stays close.
        assert!(
            sim.clock.error().abs() < 0.005,
            "seed {seed}: drifted {} s in holdover",
            sim.clock.error()
        );
        // The silent server was polled ever less often (up to maxpoll, 1024 s): its return is
        // noticed at the next poll and a burst resynchronises.
        sim.run_until(back + LONGEST_POLL);
        assert_eq!(sim.stratum(), 2, "seed {seed}: resynchronised after the server returned");
        assert!(sim.clock.error().abs() < 0.001);
    }
}

#[test]
fn never_synchronised_holdover_is_honest_and_always_serves_local() {
    let mut scenario = Scenario::reference(1);
    scenario.servers[0].outages = vec![(0.0, 1e9)];
    let mut sim = Simulation::new(scenario.clone());
    sim.run_until(1_000.0);
    assert_eq!(sim.stratum(), 16);
    assert!(
        matches!(sim.sync().state(), SyncState::Unsynchronised { reason } if reason.contains("synchronised since boot"))
    );

    scenario.local_mode = LocalMode::Always;
    let mut sim = Simulation::new(scenario.clone());
    sim.run_until(1_000.0);
    assert_eq!(sim.stratum(), 10);

    scenario.local_stratum = None;
    let mut sim = Simulation::new(scenario);
    sim.run_until(1_000.0);
    assert_eq!(sim.stratum(), 16);
}

#[test]
fn fallback_servers_are_used_only_while_no_primary_is_selectable() {
    for seed in SEEDS {
        let mut scenario = Scenario::reference(seed);
        let mut fallback = ServerSpec::reference();
        fallback.fallback = true;
        fallback.offset = 0.0002; // a smearing server, 200 µs off: must never be mixed in
        scenario.servers.push(fallback);
        scenario.servers[0].outages = vec![(3_000.0, 1e9)];
        let mut sim = Simulation::new(scenario);
        let primary = sim.server_id(0).expect("the primary is polled");
        for t in (100..3_000).step_by(100) {
            sim.run_until(t as f64);
            if let Some(selection) = sim.sync().selection() {
                assert_eq!(selection.survivors, vec![primary], "seed {seed} at {t} s");
            }
        }
        // The primary becomes unreachable after eight unanswered polls (hours at a long poll).
        sim.run_until(30_000.0);
        let selection = sim.sync().selection().expect("the fallback is selected");
        assert_eq!(selection.survivors, vec![sim.server_id(1).unwrap()], "seed {seed}");
        assert_eq!(sim.stratum(), 2);
    }
}

#[test]
fn lossy_jittery_path_still_synchronises() {
    for seed in SEEDS {
        let mut scenario = Scenario::reference(seed);
        let path = Path { base: 0.010, jitter: 0.001, loss: 0.1 };
        scenario.servers[0].to_server = path;
        scenario.servers[0].to_client = path;
        let mut sim = Simulation::new(scenario);
        sim.run_until(10_000.0);
        let stats = sim.statistics();
        // 10 ms + 1 ms × Exp(1) each way (a sample is often off by a millisecond) and one
        // exchange in ten lost; a noisy path is polled less often.
        assert!(stats.synchronised_at.is_some_and(|t| t < 600.0), "seed {seed}: {stats:?}");
        assert!(stats.rms_offset < 700e-6, "seed {seed}: RMS {} µs", stats.rms_offset * 1e6);
    }
}

#[test]
fn observe_mode_estimates_without_touching_the_clock() {
    for seed in SEEDS {
        let mut scenario = Scenario::reference(seed);
        scenario.discipline.steer = false;
        scenario.initial_error = 0.003;
        scenario.frequency_error = 20e-6;
        let mut sim = Simulation::new(scenario);
        sim.run_until(3_000.0);
        assert!(steps(&sim).is_empty());
        // The clock drifted freely: 3 ms + 20 ppm × 3000 s.
        assert!((sim.clock.error() - 0.063).abs() < 0.002, "seed {seed}: {}", sim.clock.error());
        let estimate = sim.sync().discipline().estimate(sim.now());
        assert!((estimate.offset + sim.clock.error()).abs() < 100e-6, "seed {seed}: {estimate:?}");
        assert!((estimate.frequency + 20e-6).abs() < 0.1e-6, "seed {seed}: {estimate:?}");
    }
}

use syhub_ntp_proto::packet::ReferenceId;
use syhub_ntp_proto::source::RefclockConfig;
use syhub_ntp_sim::{RefclockKind, RefclockSpec};

/// A GPS whose sentences arrive 50 ms after their second (uncorrected), and a PPS with 1 µs
/// jitter numbered by it: the hub locks to the PPS and serves stratum 1.
fn gps_with_pps(seed: u64) -> Scenario {
    let mut scenario = Scenario::reference(seed);
    scenario.servers = Vec::new();
    let config = |refid: &[u8; 4], precision| RefclockConfig {
        poll: 4,
        offset: 0.0,
        precision,
        stratum: 0,
        reference_id: ReferenceId::from_bytes(*refid),
    };
    scenario.refclocks = vec![
        RefclockSpec {
            kind: RefclockKind::Coarse { delay: 0.050, jitter: 0.002 },
            config: config(b"GPS\0", -10),
            prefer: false,
            fallback: false,
            // Numbering the PPS's seconds is its only job (chrony's `noselect` + `lock`): the
            // core makes it so because the PPS names it as its pair.
            outages: Vec::new(),
        },
        RefclockSpec {
            kind: RefclockKind::Pps { jitter: 1e-6, pair: 0 },
            config: config(b"PPS\0", -20),
            prefer: true,
            fallback: false,
            outages: Vec::new(),
        },
    ];
    scenario
}

#[test]
fn pps_paired_with_a_coarse_gps_locks_to_the_pulse() {
    for seed in SEEDS {
        let mut sim = Simulation::new(gps_with_pps(seed));
        sim.run_until(3_000.0);
        let stats = sim.statistics();
        let gps = sim.refclock(0).unwrap().view().filter.expect("GPS samples").offset;
        println!(
            "seed {seed}: synchronised at {:?} s, RMS {:.2} µs, max {:.2} µs, GPS offset {:.1} ms",
            stats.synchronised_at,
            stats.rms_offset * 1e6,
            stats.max_offset * 1e6,
            gps * 1e3
        );
        assert_eq!(
            sim.sync().selection().map(|s| s.system_peer),
            sim.refclock_id(1),
            "seed {seed}"
        );
        assert_eq!(sim.stratum(), 1);
        assert_eq!(sim.sync().snapshot().reference_id, ReferenceId::from_bytes(*b"PPS\0"));
        // The GPS alone is 50 ms off; the PPS brings the clock within a few µs.
        assert!((gps + 0.050).abs() < 0.005, "seed {seed}: GPS offset {gps}");
        assert!(stats.rms_offset < 5e-6, "seed {seed}: RMS {} µs", stats.rms_offset * 1e6);
        assert!(stats.max_offset < 20e-6, "seed {seed}: max {} µs", stats.max_offset * 1e6);
    }
}

#[test]
fn without_pulses_the_hub_holds_over_and_locks_again() {
    let mut scenario = gps_with_pps(1);
    scenario.refclocks[1].outages = vec![(2_000.0, 3_000.0)];
    let mut sim = Simulation::new(scenario);
    sim.run_until(1_900.0);
    assert_eq!(sim.sync().selection().map(|s| s.system_peer), sim.refclock_id(1));
    assert_eq!(sim.stratum(), 1);
    sim.run_until(2_900.0);
    // The PPS stopped: unreachable like any source; the GPS alone only numbers seconds, so the
    // hub serves its local clock (stratum 10) until the pulses come back.
    assert_eq!(sim.refclock(1).unwrap().view().reach, 0);
    assert!(sim.sync().selection().is_none());
    assert!(matches!(sim.sync().state(), SyncState::LocalClock { .. }), "{:?}", sim.sync().state());
    assert_eq!(sim.stratum(), 10);
    sim.run_until(4_000.0);
    assert_eq!(sim.sync().selection().map(|s| s.system_peer), sim.refclock_id(1));
    assert_eq!(sim.stratum(), 1);
    assert!(sim.clock.error().abs() < 20e-6, "error {} µs", sim.clock.error() * 1e6);
}

use syhub_ntp_proto::packet::LeapIndicator;
use syhub_ntp_proto::sync::LeapMode;

/// True time of the leap: 2026-01-01 00:00:00 UTC, 100,000 s into the run.
const LEAP_AT: f64 = 100_000.0;

/// Three servers that insert a leap second at the end of 2025 and warn of it for the last day.
fn leap_scenario(mode: LeapMode) -> Simulation {
    let mut scenario = Scenario::reference(1);
    scenario.servers = vec![ServerSpec::reference(); 3];
    scenario.epoch_unix = 1_767_225_600 - LEAP_AT as i64;
    scenario.leap_insertion = Some(LEAP_AT);
    scenario.leap_mode = mode;
    Simulation::new(scenario)
}

/// Served minus UTC over the run, after synchronisation, away from the second of the leap itself.
fn served_error_outside(sim: &Simulation, skip: (f64, f64)) -> f64 {
    sim.served
        .iter()
        .filter(|(t, ..)| *t > 1_000.0 && (*t < skip.0 || *t > skip.1))
        .map(|(_, error, _)| error.abs())
        .fold(0.0, f64::max)
}

fn indicator_at(sim: &Simulation, time: f64) -> LeapIndicator {
    sim.served.iter().find(|(t, ..)| *t >= time).map(|s| s.2).expect("a sample")
}

#[test]
fn a_leap_insertion_in_kernel_and_step_mode_is_announced_the_last_day_and_made_at_midnight() {
    for mode in [LeapMode::Kernel, LeapMode::Step] {
        let mut sim = leap_scenario(mode);
        sim.run_until(LEAP_AT + 3_600.0);
        // Warned during the last day only, as the servers did (from the first poll that saw it).
        assert_eq!(indicator_at(&sim, LEAP_AT - 86_400.0 - 600.0), LeapIndicator::NoWarning);
        let seen = LEAP_AT - 86_400.0 + LONGEST_POLL;
        assert_eq!(indicator_at(&sim, seen), LeapIndicator::InsertSecond, "{mode:?}");
        assert_eq!(indicator_at(&sim, LEAP_AT - 1.0), LeapIndicator::InsertSecond, "{mode:?}");
        assert_eq!(indicator_at(&sim, LEAP_AT + 10.0), LeapIndicator::NoWarning, "{mode:?}");
        // The clock went back one second at its midnight, once, and stayed with UTC.
        let stepped = sim.leap_stepped_at.expect("the leap step");
        assert!((stepped - LEAP_AT).abs() < 0.001, "{mode:?}: stepped at {stepped}");
        let error = served_error_outside(&sim, (LEAP_AT - 1.0, LEAP_AT + 1.0));
        println!("{mode:?}: served within {:.1} µs of UTC away from the leap", error * 1e6);
        assert!(error < 200e-6, "{mode:?}: served {error} s from UTC");
        assert!(matches!(sim.sync().state(), SyncState::Synchronised { .. }));
    }
}

#[test]
fn a_smeared_leap_is_never_announced_and_served_time_never_jumps() {
    let window = 7_200.0;
    let mut sim = leap_scenario(LeapMode::Smear { window });
    sim.run_until(LEAP_AT + window);
    let warned = |s: &&(f64, f64, LeapIndicator)| {
        matches!(s.2, LeapIndicator::InsertSecond | LeapIndicator::DeleteSecond)
    };
    assert!(!sim.served.iter().any(|s| warned(&s)), "a leap was announced");
    assert!(sim.leap_stepped_at.is_some(), "the kernel made the leap under the smear");
    // Outside the window: UTC; inside it, the smear (at most half a second, at the leap).
    let half = window / 2.0;
    let outside = served_error_outside(&sim, (LEAP_AT - half - 1.0, LEAP_AT + half + 1.0));
    assert!(outside < 200e-6, "served {outside} s from UTC outside the window");
    let inside = sim.served.iter().filter(|s| (s.0 - LEAP_AT).abs() <= half);
    let peak = inside.map(|s| s.1.abs()).fold(0.0, f64::max);
    assert!((peak - 0.5).abs() < 0.01, "the smear peaked at {peak} s");
    // Served time moves on at (window - 1) / window of real time, with no step back or forward.
    let rate = (window - 1.0) / window;
    for pair in sim.served.windows(2).filter(|p| p[0].0 > 1_000.0) {
        let utc_step = if pair[0].0 < LEAP_AT && pair[1].0 >= LEAP_AT { 0.0 } else { 1.0 };
        let served_step = utc_step + pair[1].1 - pair[0].1;
        let in_window = (pair[0].0 - LEAP_AT).abs() < half - 1.0;
        let expected = if in_window { rate } else { 1.0 };
        assert!(
            (served_step - expected).abs() < 1e-4
                || (!in_window && (served_step - rate).abs() < 1e-4),
            "at {}: served time moved {served_step} s in a second",
            pair[0].0
        );
    }
}

use syhub_ntp_sim::{PoolSpec, server_address};

#[test]
fn a_pool_member_that_dies_is_replaced_by_one_not_yet_used() {
    for seed in SEEDS {
        let mut scenario = Scenario::reference(seed);
        scenario.servers = vec![ServerSpec::reference(); 4];
        scenario.servers[0].outages = vec![(2_000.0, 1e9)];
        scenario.pool = Some(PoolSpec { max_sources: 3 });
        // At 64 s, so that eight unanswered polls take minutes, not hours.
        let mut sim = Simulation::new(anchor::fixed_poll(scenario, 6));
        sim.run_until(1_900.0);
        let dying = sim.server_id(0).expect("the first member is used");
        assert!(sim.server_id(3).is_none(), "seed {seed}: only three members at once");
        assert_eq!(sim.stratum(), 2);
        sim.run_until(5_000.0);
        // Eight unanswered polls, then the next upkeep drops it and resolves the name again.
        assert!(sim.stopped.iter().any(|(_, id)| *id == dying), "seed {seed}");
        assert!(sim.server_id(0).is_none(), "seed {seed}: the dead member is gone");
        assert!(sim.server_id(3).is_some(), "seed {seed}: the unused member took its place");
        let selection = sim.sync().selection().expect("a selection");
        assert!(!selection.survivors.contains(&dying));
        assert_eq!(sim.system().sources().len(), 3);
        let used: Vec<_> = sim.system().sources().iter().filter_map(|s| s.address).collect();
        assert!(!used.contains(&server_address(0)), "seed {seed}: {used:?}");
        let stats = sim.statistics();
        assert!(stats.max_offset < 200e-6, "seed {seed}: max {} µs", stats.max_offset * 1e6);
    }
}

#[test]
fn after_a_start_up_step_the_frequency_is_corrected_within_two_polls() {
    for seed in SEEDS {
        for error in [100.0, -100.0] {
            let mut scenario = anchor::reference(seed);
            scenario.initial_error = error;
            let mut sim = Simulation::new(scenario);
            sim.run_until(30.0);
            let steps = steps(&sim);
            assert_eq!(steps.len(), 1, "seed {seed}: {steps:?}");
            assert!(steps[0].2, "seed {seed}: at start-up");
            // The rest of the burst, after the step, gives a first frequency; the next two polls
            // a good one: 10 ppm is not left uncorrected until then.
            sim.run_until(160.0);
            // What the estimate says the clock needs against what it does (10 ppm slow down).
            let needed = sim.sync().discipline().estimate(sim.now()).frequency;
            let left = needed + 10e-6;
            assert!(left.abs() < 2e-6, "seed {seed}, {error} s: {:.2} ppm off", left * 1e6);
            sim.run_until(1_000.0);
            let stats = sim.statistics();
            assert!(stats.synchronised_at.is_some_and(|t| t < 160.0), "seed {seed}: {stats:?}");
        }
    }
}
