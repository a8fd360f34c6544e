//! Simulated scenarios of the whole protocol core, in virtual time: accuracy against chrony's
//! reference scenario, falsetickers, steps, panics, holdover and recovery.

use syhub_ntp_sim::{Scenario, Simulation};

const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];

#[test]
fn reference_scenario_accuracy() {
    let mut worst = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for seed in SEEDS {
        let mut sim = Simulation::new(Scenario::reference(seed));
        sim.run_until(10_000.0);
        let stats = sim.statistics();
        println!(
            "seed {seed}: synchronised at {:?} s, RMS offset {:.1} µs, max {:.1} µs, RMS frequency {:.3} ppm, poll 2^{}",
            stats.synchronised_at,
            stats.rms_offset * 1e6,
            stats.max_offset * 1e6,
            stats.rms_frequency * 1e6,
            sim.sync.poll_exponent(),
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
