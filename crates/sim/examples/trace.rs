//! Prints a trace of one simulated run (for tuning): time, true offset, frequency error, estimate.
use syhub_ntp_proto::time::Monotonic;
use syhub_ntp_sim::{Scenario, Simulation};

fn main() {
    let seed: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let end: f64 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(2000.0);
    let step: f64 = std::env::args().nth(3).and_then(|s| s.parse().ok()).unwrap_or(10.0);
    let mut scenario = Scenario::reference(seed);
    if std::env::var("LOSSY").is_ok() {
        let path = syhub_ntp_sim::Path { base: 0.010, jitter: 0.001, loss: 0.1 };
        scenario.servers[0].to_server = path;
        scenario.servers[0].to_client = path;
    }
    if let Ok(e) = std::env::var("INITIAL") {
        scenario.initial_error = e.parse().unwrap();
    }
    let mut sim = Simulation::new(scenario);
    if let Ok(d) = std::env::var("DISTURB") {
        let (at, by) = d.split_once(',').unwrap();
        sim.disturb_at(at.parse().unwrap(), by.parse().unwrap());
    }
    let mut t = 0.0;
    while t < end {
        t += step;
        sim.run_until(t);
        let e = sim.sync().discipline().estimate(sim.now());
        println!(
            "{t:7.0} err {:+10.1}us  ferr {:+8.3}ppm  est_off {:+10.1}us sd {:8.1}us est_f {:+8.3}ppm sdf {:.3}ppm poll {} upd {}",
            sim.clock.error() * 1e6,
            sim.clock.frequency_error() * 1e6,
            e.offset * 1e6,
            e.offset_variance.sqrt() * 1e6,
            e.frequency * 1e6,
            e.frequency_variance.sqrt() * 1e6,
            sim.sync().poll_exponent(),
            sim.sync().discipline().updates(),
        );
        if std::env::var("SOURCES").is_ok() {
            for s in sim.sources() {
                let v = s.view();
                println!(
                    "        reach {:08b} poll {} samples {} next {:.0} filter {:?}",
                    v.reach,
                    v.poll,
                    v.samples,
                    s.next_poll_at().seconds_since(Monotonic::ZERO),
                    v.filter.map(|f| (f.offset, f.delay, f.dispersion, f.jitter))
                );
            }
        }
    }
    for (t, ev) in &sim.events {
        println!("event {t:.1} {ev:?}");
    }
    for (t, st) in &sim.states {
        println!("state {t:.1} {st:?}");
    }
}
