//! The targets of issue 17, in the scenarios chronyd 4.3 was measured in (`anchor`): at default
//! polling no more packets than chrony and better time; at a fixed poll better time; a
//! falseticker never followed; a clock 5000 ppm off locked; a wandering one tracked. chronyd's
//! figures come from another simulator, seed for seed not the same draws as ours, so each
//! scenario compares our mean over seeds 1–5 with 0.8 × chronyd's mean, and no seed of ours may
//! be worse than chronyd's worst.

use syhub_ntp_proto::sync::DisciplineEvent;
use syhub_ntp_sim::anchor::{self, Outcome as Run, SEEDS, run};
use syhub_ntp_sim::{Scenario, Statistics};

fn runs(make: impl Fn(u64) -> Scenario) -> Vec<Run> {
    SEEDS.iter().map(|&seed| run(make(seed))).collect()
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let values: Vec<f64> = values.collect();
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

fn micros(runs: &[Run], figure: impl Fn(&Statistics) -> f64) -> Vec<f64> {
    runs.iter().map(|r| figure(&r.stats) * 1e6).collect()
}

/// Our mean at most `ratio` × chrony's mean, and no seed beyond chrony's worst.
fn beats(name: &str, ours: &[f64], chrony: (f64, f64), chrony_mean: f64, ratio: f64) {
    let our_mean = mean(ours.iter().copied());
    assert!(
        our_mean <= ratio * chrony_mean,
        "{name}: our mean {our_mean:.1} against chronyd's {chrony_mean:.1} (×{ratio}): {ours:.1?}"
    );
    assert!(
        ours.iter().all(|&v| v <= chrony.1),
        "{name}: a seed beyond chronyd's worst {:.1}: {ours:.1?}",
        chrony.1
    );
}

fn midpoint((low, high): (f64, f64)) -> f64 {
    (low + high) / 2.0
}

#[test]
fn at_default_polling_no_more_packets_than_chrony_and_better_time() {
    let runs = runs(anchor::reference);
    let chrony = anchor::CHRONY_REFERENCE_DEFAULT;
    let intervals: Vec<f64> = runs.iter().map(|r| r.stats.mean_request_interval).collect();
    println!("mean request intervals {intervals:.0?} s");
    assert!(
        mean(intervals.iter().copied()) >= 0.8 * anchor::CHRONY_REFERENCE_DEFAULT_MEAN_INTERVAL,
        "{intervals:?}"
    );
    assert!(
        intervals.iter().all(|&i| i >= chrony.mean_interval_s.unwrap().0 * 0.8),
        "{intervals:?}"
    );
    beats("RMS", &micros(&runs, |s| s.rms_offset), chrony.rms_us, 109.0, 0.8);
    beats("max", &micros(&runs, |s| s.max_offset), chrony.max_us, midpoint(chrony.max_us), 0.8);
    for run in &runs {
        let sync = run.stats.synchronised_at.expect("synchronised");
        assert!(sync <= chrony.sync_1ms_s.unwrap().1, "synchronised to 1 ms at {sync} s");
        assert_eq!(run.refused, 0, "a chrony-like server's answers are all used");
        assert!(run.steps.is_empty(), "0.1 s is slewed: {:?}", run.steps);
    }
}

#[test]
fn at_64_s_better_time_than_chrony_and_as_steady_a_frequency() {
    let runs = runs(|seed| anchor::fixed_poll(anchor::reference(seed), 6));
    let chrony = anchor::CHRONY_REFERENCE_64;
    beats("RMS", &micros(&runs, |s| s.rms_offset), chrony.rms_us, 25.4, 0.8);
    beats("max", &micros(&runs, |s| s.max_offset), chrony.max_us, midpoint(chrony.max_us), 0.8);
    let frequency = micros(&runs, |s| s.rms_frequency);
    assert!(
        frequency.iter().all(|&f| f <= anchor::CHRONY_REFERENCE_64_RMS_FREQUENCY_PPM),
        "RMS frequency {frequency:.3?} ppm"
    );
    for run in &runs {
        let sync_1ms = run.stats.synchronised_at.expect("synchronised to 1 ms");
        let sync_100us = run.stats.within_100us_at.expect("synchronised to 100 µs");
        assert!(sync_1ms <= chrony.sync_1ms_s.unwrap().0, "to 1 ms at {sync_1ms} s");
        assert!(
            sync_100us <= anchor::CHRONY_REFERENCE_64_SYNC_100US_S.1,
            "to 100 µs at {sync_100us} s"
        );
    }
}

#[test]
fn on_a_path_with_a_millisecond_of_jitter_better_time_than_chrony() {
    let runs = runs(anchor::large_jitter);
    let chrony = anchor::CHRONY_LARGE_JITTER_RMS_US;
    let worst = chrony.iter().copied().fold(0.0, f64::max);
    let chrony_mean = mean(chrony.iter().copied());
    beats("RMS", &micros(&runs, |s| s.rms_offset), (0.0, worst), chrony_mean, 0.8);
}

#[test]
fn a_clock_500_ppm_off_is_followed_better_than_chrony_does() {
    let runs = runs(|seed| anchor::fixed_poll(anchor::frequency(seed, 500.0), 6));
    let chrony = anchor::CHRONY_500PPM_RMS_US;
    let worst = chrony.iter().copied().fold(0.0, f64::max);
    beats("RMS", &micros(&runs, |s| s.rms_offset), (0.0, worst), mean(chrony.iter().copied()), 0.8);
    for run in &runs {
        let sync = run.stats.synchronised_at.expect("synchronised");
        assert!(sync <= anchor::CHRONY_500PPM_SYNC_1MS_S, "synchronised to 1 ms at {sync} s");
    }
}

#[test]
fn a_clock_5000_ppm_off_is_locked_in_every_seed() {
    for seed in 1..=20 {
        let run = run(anchor::frequency(seed, 5000.0));
        let stats = run.stats;
        // 0.1 s off and gaining 5 ms a second, it may be beyond the step threshold (0.128 s) by
        // the end of the first burst and be stepped at start-up; never after.
        assert!(run.steps.len() <= 1, "seed {seed}: {:?}", run.steps);
        let late_steps = run
            .simulation
            .events
            .iter()
            .filter(|(_, e)| matches!(e, DisciplineEvent::Stepped { at_start_up: false, .. }))
            .count();
        assert_eq!(late_steps, 0, "seed {seed}: {:?}", run.simulation.events);
        assert!(stats.synchronised_at.is_some_and(|t| t < 300.0), "seed {seed}: {stats:?}");
        assert!(
            stats.rms_offset * 1e6 <= anchor::CHRONY_5000PPM_RMS_US.1,
            "seed {seed}: RMS {:.1} µs",
            stats.rms_offset * 1e6
        );
        assert!(stats.rms_frequency < 0.5e-6, "seed {seed}: {stats:?}");
    }
}

#[test]
fn a_clock_whose_frequency_wanders_is_tracked_better_than_chrony_does() {
    let runs = runs(anchor::wander);
    let chrony = anchor::CHRONY_WANDER_RMS_US;
    beats("RMS", &micros(&runs, |s| s.rms_offset), chrony, midpoint(chrony), 0.8);
    // Tracked in every one of 20 seeds: never a millisecond and a half off.
    for seed in 1..=20 {
        let stats = run(anchor::wander(seed)).stats;
        assert!(stats.max_offset < 1.5e-3, "seed {seed}: {stats:?}");
    }
}

#[test]
fn a_falseticker_a_second_off_among_four_is_never_stepped_to_nor_selected() {
    for seed in 1..=20 {
        for wrong in 0..4 {
            let run = run(anchor::falseticker(seed, wrong));
            assert!(run.steps.is_empty(), "seed {seed}, wrong {wrong}: stepped {:?}", run.steps);
            assert!(!run.simulation.ever_selected[wrong], "seed {seed}, wrong {wrong}: selected");
            assert!(run.stats.synchronised_at.is_some(), "seed {seed}, wrong {wrong}");
            // No worse than chronyd's worst with one good server.
            let worst = anchor::CHRONY_REFERENCE_DEFAULT.max_us.1 * 1e-6;
            assert!(run.stats.max_offset < worst, "seed {seed}, wrong {wrong}: {:?}", run.stats);
        }
    }
}
