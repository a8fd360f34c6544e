//! Runs the reference scenario over many seeds and prints the spread of the results (for tuning).
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
    for seed in 1..=seeds {
        let mut sim = Simulation::new(Scenario::reference(seed));
        let mut t = 0.0;
        let (mut sum, mut n) = (0.0, 0.0);
        while t < 10_000.0 {
            t += 10.0;
            sim.run_until(t);
            if t >= 210.0 {
                let estimate = sim
                    .sync
                    .discipline()
                    .estimate(syhub_ntp_proto::time::Monotonic::from_seconds_f64(t));
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
        polls.push(sim.sync.poll_exponent());
        wanders.push(sim.sync.discipline().wander());
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
    println!("final wander:  {:?}", wanders.iter().map(|w| format!("{w:.1e}")).collect::<Vec<_>>());
}
