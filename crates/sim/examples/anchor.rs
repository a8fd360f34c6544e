//! Prints our figures in the scenarios chronyd 4.3 was measured in (issue 17), seed by seed, with
//! chronyd's figures and the targets beside them:
//!
//!   cargo run -p syhub-ntp-sim --release --example anchor [SEEDS] [SCENARIO]
//!
//! SEEDS (default 5) runs seeds 1..=SEEDS; SCENARIO picks one row by its name's start.

use syhub_ntp_sim::Scenario;
use syhub_ntp_sim::anchor::{self, ChronyFigures, Outcome};

/// One run's figures, and where the falseticker was.
struct Run {
    outcome: Outcome,
    wrong: Option<usize>,
}

impl Run {
    fn falseticker_selected(&self) -> bool {
        self.wrong.is_some_and(|w| self.outcome.simulation.ever_selected[w])
    }
}

fn opt(value: Option<f64>) -> String {
    value.map_or("never".into(), |v| format!("{v:.0}"))
}

fn print_row(name: &str, seed: u64, run: &Run) {
    let s = &run.outcome.stats;
    println!(
        "| {name} | {seed} | {:.1} | {:.1} | {:.3} | {} | {} | {:.0} | {} | {} |",
        s.rms_offset * 1e6,
        s.max_offset * 1e6,
        s.rms_frequency * 1e6,
        opt(s.synchronised_at),
        opt(s.within_100us_at),
        s.mean_request_interval,
        run.outcome.refused,
        if run.outcome.steps.is_empty() {
            "none".to_owned()
        } else {
            run.outcome.steps.iter().map(|o| format!("{o:+.3}")).collect::<Vec<_>>().join(" ")
        },
    );
}

fn range(values: &[f64]) -> (f64, f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max, values.iter().sum::<f64>() / values.len().max(1) as f64)
}

fn summary(runs: &[Run], chrony: Option<ChronyFigures>) {
    let rms: Vec<f64> = runs.iter().map(|r| r.outcome.stats.rms_offset * 1e6).collect();
    let max: Vec<f64> = runs.iter().map(|r| r.outcome.stats.max_offset * 1e6).collect();
    let sync: Vec<f64> =
        runs.iter().map(|r| r.outcome.stats.synchronised_at.unwrap_or(f64::INFINITY)).collect();
    let interval: Vec<f64> = runs.iter().map(|r| r.outcome.stats.mean_request_interval).collect();
    let (rms, max, sync, interval) = (range(&rms), range(&max), range(&sync), range(&interval));
    print!(
        "  us: RMS {:.1}–{:.1} (mean {:.1}) µs, max {:.0}–{:.0} µs, sync to 1 ms {:.0}–{:.0} s, \
         mean interval {:.0}–{:.0} s (mean {:.0})",
        rms.0, rms.1, rms.2, max.0, max.1, sync.0, sync.1, interval.0, interval.1, interval.2
    );
    if let Some(c) = chrony {
        print!(
            "\n  chronyd: RMS {:.1}–{:.1} µs, max {:.0}–{:.0} µs",
            c.rms_us.0, c.rms_us.1, c.max_us.0, c.max_us.1
        );
        if let Some((a, b)) = c.sync_1ms_s {
            print!(", sync to 1 ms {a:.0}–{b:.0} s");
        }
        if let Some((a, b)) = c.mean_interval_s {
            print!(", mean interval {a:.0}–{b:.0} s");
        }
    }
    println!();
}

fn main() {
    let seeds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let only = std::env::args().nth(2);
    type Make = Box<dyn Fn(u64) -> (Scenario, Option<usize>)>;
    let scenarios: Vec<(&str, Make, Option<ChronyFigures>)> = vec![
        (
            "reference, default polling",
            Box::new(|seed| (anchor::reference(seed), None)),
            Some(anchor::CHRONY_REFERENCE_DEFAULT),
        ),
        (
            "reference, 64 s",
            Box::new(|seed| (anchor::fixed_poll(anchor::reference(seed), 6), None)),
            Some(anchor::CHRONY_REFERENCE_64),
        ),
        ("large jitter, 64 s", Box::new(|seed| (anchor::large_jitter(seed), None)), None),
        (
            "500 ppm, 64 s",
            Box::new(|seed| (anchor::fixed_poll(anchor::frequency(seed, 500.0), 6), None)),
            None,
        ),
        ("wander 1e-7, 64 s", Box::new(|seed| (anchor::wander(seed), None)), None),
        (
            "5000 ppm, default polling",
            Box::new(|seed| (anchor::frequency(seed, 5000.0), None)),
            None,
        ),
        (
            "falseticker 1 s off among four (each position)",
            Box::new(|seed| {
                let wrong = (seed % 4) as usize;
                (anchor::falseticker(seed, wrong), Some(wrong))
            }),
            None,
        ),
    ];
    println!(
        "| scenario | seed | RMS µs | max µs | RMS freq ppm | sync 1 ms s | sync 100 µs s | mean \
         interval s | refused | steps |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut notes = Vec::new();
    for (name, make, chrony) in &scenarios {
        if only.as_ref().is_some_and(|o| !name.starts_with(o.as_str())) {
            continue;
        }
        let runs: Vec<Run> = (1..=seeds)
            .map(|seed| {
                let (scenario, wrong) = make(seed);
                let run = Run { outcome: anchor::run(scenario), wrong };
                print_row(name, seed, &run);
                run
            })
            .collect();
        let toward = runs
            .iter()
            .filter(|r| {
                r.falseticker_selected()
                    || (r.wrong.is_some() && r.outcome.steps.iter().any(|s| *s > 0.5))
            })
            .count();
        notes.push((name.to_string(), runs, *chrony, toward));
    }
    println!();
    for (name, runs, chrony, toward) in &notes {
        println!("{name}:");
        summary(runs, *chrony);
        if runs.iter().any(|r| r.wrong.is_some()) {
            println!(
                "  runs that stepped toward or selected the falseticker: {toward} of {}",
                runs.len()
            );
        }
    }
}
