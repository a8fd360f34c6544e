//! Runs the reference scenario over many seeds and prints the spread of the results (for tuning).
//!
//!   cargo run -p syhub-ntp-sim --release --example sweep [SEEDS]
//!
//! `RELAY=1` runs the accuracy benchmark's path instead (`MAXPOLL=N` caps its poll), and
//! `WINDOW=FROM,TO` (seconds) is where the estimate's error is measured.
use syhub_ntp_sim::{Scenario, Simulation};

fn main() {
    let seeds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(20);
    let mut rms = Vec::new();
    let mut max = Vec::new();
    let mut freq = Vec::new();
    let mut sync = Vec::new();
    let mut polls = Vec::new();
    let mut est = Vec::new();
    let mut wanders = Vec::new();
    let mut zs = Vec::new();
    let mut raw = Vec::new();
    for seed in 1..=seeds {
        let mut scenario = Scenario::reference(seed);
        if std::env::var("RELAY").is_ok() {
            // The accuracy benchmark's path: 1 ms + 1 ms × Exp(1) each way, polled 2^4..2^6 s,
            // observed, not steered, with a clock that is already right.
            let path = syhub_ntp_sim::Path { base: 0.001, jitter: 0.001, loss: 0.0 };
            scenario.servers[0].to_server = path;
            scenario.servers[0].to_client = path;
            scenario.source.minpoll = 4;
            scenario.source.maxpoll = 6;
            scenario.discipline.minpoll = 4;
            scenario.discipline.maxpoll = 6;
            scenario.discipline.steer = false;
            scenario.initial_error = 0.0;
            scenario.frequency_error = 0.0;
            if let Some(maxpoll) = std::env::var("MAXPOLL").ok().and_then(|p| p.parse().ok()) {
                scenario.source.maxpoll = maxpoll;
                scenario.discipline.maxpoll = maxpoll;
            }
        }
        let mut sim = Simulation::new(scenario);
        let (from, to): (f64, f64) = std::env::var("WINDOW")
            .ok()
            .and_then(|w| w.split_once(',').map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap())))
            .unwrap_or((210.0, 10_000.0));
        let mut t = 0.0;
        let (mut sum, mut n) = (0.0, 0.0);
        while t < to {
            t += 2.0;
            sim.run_until(t);
            if t >= from {
                let estimate = sim.sync().discipline().estimate(sim.now());
                let error = estimate.offset + sim.clock.error();
                sum += error * error;
                n += 1.0;
            }
        }
        est.push((sum / n).sqrt() * 1e6);
        let s = sim.statistics();
        rms.push(s.rms_offset * 1e6);
        max.push(s.max_offset * 1e6);
        freq.push(s.rms_frequency * 1e6);
        sync.push(s.synchronised_at.unwrap_or(f64::INFINITY));
        polls.push(sim.sync().poll_exponent());
        let z2: Vec<f64> = sim.measurement_errors.iter().skip(20).map(|(e, v)| e * e / v).collect();
        let errors: Vec<f64> =
            sim.measurement_errors.iter().skip(20).map(|(e, _)| e.abs()).collect();
        zs.push(z2.iter().sum::<f64>() / z2.len() as f64);
        raw.push((errors.iter().map(|e| e * e).sum::<f64>() / errors.len() as f64).sqrt() * 1e6);
        wanders.push(sim.sync().discipline().wander());
    }
    let summary = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        format!("mean {:.2} median {:.2} worst {:.2}", mean, v[v.len() / 2], v[v.len() - 1])
    };
    println!("rms offset µs: {}", summary(&mut rms));
    println!("rms estimate error µs: {}", summary(&mut est));
    println!("max offset µs: {}", summary(&mut max));
    println!("rms freq ppm:  {}", summary(&mut freq));
    println!("sync at s:     {}", summary(&mut sync));
    println!("final polls:   {polls:?}");
    println!("mean z² of measurements (1 = variances right): {}", summary(&mut zs));
    println!("rms raw measurement error µs: {}", summary(&mut raw));
    println!("final wander:  {:?}", wanders.iter().map(|w| format!("{w:.1e}")).collect::<Vec<_>>());
}
