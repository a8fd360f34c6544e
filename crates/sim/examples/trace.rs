//! Prints a trace of one simulated run (for tuning): time, true offset, frequency error, estimate.
use syhub_ntp_proto::time::Monotonic;
use syhub_ntp_sim::{Scenario, Simulation};

fn main() {
    let seed: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let end: f64 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(2000.0);
    let step: f64 = std::env::args().nth(3).and_then(|s| s.parse().ok()).unwrap_or(10.0);
    let mut sim = Simulation::new(Scenario::reference(seed));
    let mut t = 0.0;
    while t < end {
        t += step;
        sim.run_until(t);
        let e = sim.sync.discipline().estimate(Monotonic::from_seconds_f64(t));
        println!(
            "{t:7.0} err {:+10.1}us  ferr {:+8.3}ppm  est_off {:+10.1}us sd {:8.1}us est_f {:+8.3}ppm sdf {:.3}ppm poll {} upd {}",
            sim.clock.error() * 1e6,
            sim.clock.frequency_error() * 1e6,
            e.offset * 1e6,
            e.offset_variance.sqrt() * 1e6,
            e.frequency * 1e6,
            e.frequency_variance.sqrt() * 1e6,
            sim.sync.poll_exponent(),
            sim.sync.discipline().updates(),
        );
    }
    for (t, ev) in &sim.events {
        println!("event {t:.1} {ev:?}");
    }
}
