//! The scenarios in which chronyd 4.3 was measured beside syhub-ntp (issue 17: the same
//! simulated clock and network, 20 000 s, statistics after 2 000 s, seeds 1–5), with chronyd's
//! figures, the anchor our targets are set against.

use crate::{Path, Scenario, ServerSpec, Simulation, Statistics};
use syhub_ntp_proto::sync::DisciplineEvent;

/// How long each run lasts, seconds.
pub const DURATION: f64 = 20_000.0;
/// Statistics count from here on, seconds.
pub const STATISTICS_FROM: f64 = 2_000.0;
/// The seeds chronyd was measured with.
pub const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];

/// The reference: a chrony-like server 100 µs + 100 µs × Exp(1) away each way, a clock 0.1 s off
/// and 10 ppm fast with a 1e-9 random walk of its frequency, default polling (2^6 to 2^10 s).
pub fn reference(seed: u64) -> Scenario {
    let mut scenario = Scenario::reference(seed);
    scenario.frequency_error = 10e-6;
    scenario.servers = vec![ServerSpec::chrony_like()];
    scenario.statistics_from = STATISTICS_FROM;
    scenario
}

/// `scenario` polled at 2^`poll` s only (minpoll = maxpoll).
pub fn fixed_poll(mut scenario: Scenario, poll: i8) -> Scenario {
    scenario.source.minpoll = poll;
    scenario.source.maxpoll = poll;
    scenario.discipline.minpoll = poll;
    scenario.discipline.maxpoll = poll;
    scenario
}

/// The reference with 1 ms + 1 ms × Exp(1) each way, at 64 s.
pub fn large_jitter(seed: u64) -> Scenario {
    let mut scenario = fixed_poll(reference(seed), 6);
    let path = Path { base: 1e-3, jitter: 1e-3, loss: 0.0 };
    for server in &mut scenario.servers {
        server.to_server = path;
        server.to_client = path;
    }
    scenario
}

/// The reference with a clock `ppm` fast.
pub fn frequency(seed: u64, ppm: f64) -> Scenario {
    let mut scenario = reference(seed);
    scenario.frequency_error = ppm * 1e-6;
    scenario
}

/// The reference with a frequency random walk of 1e-7 per second, at 64 s.
pub fn wander(seed: u64) -> Scenario {
    let mut scenario = fixed_poll(reference(seed), 6);
    scenario.wander = 1e-7;
    scenario
}

/// Four chrony-like servers, the one at `wrong` 1 s ahead of the others.
pub fn falseticker(seed: u64, wrong: usize) -> Scenario {
    let mut scenario = reference(seed);
    scenario.servers = vec![ServerSpec::chrony_like(); 4];
    scenario.servers[wrong].offset = 1.0;
    scenario
}

/// chronyd 4.3's figures in a scenario, seeds 1–5 (µs and s).
#[derive(Debug, Clone, Copy)]
pub struct ChronyFigures {
    pub rms_us: (f64, f64),
    pub max_us: (f64, f64),
    pub sync_1ms_s: Option<(f64, f64)>,
    pub mean_interval_s: Option<(f64, f64)>,
}

/// What chronyd did in the reference at default polling.
pub const CHRONY_REFERENCE_DEFAULT: ChronyFigures = ChronyFigures {
    rms_us: (88.0, 135.0),
    max_us: (212.0, 340.0),
    sync_1ms_s: Some((130.0, 132.0)),
    mean_interval_s: Some((290.0, 440.0)),
};
/// chronyd's mean request interval over the five seeds at default polling.
pub const CHRONY_REFERENCE_DEFAULT_MEAN_INTERVAL: f64 = 389.0;
/// In the reference at 64 s (also 0.06–0.13 ppm RMS frequency, sync to 100 µs in 130–267 s).
pub const CHRONY_REFERENCE_64: ChronyFigures = ChronyFigures {
    rms_us: (19.6, 31.4),
    max_us: (49.0, 85.0),
    sync_1ms_s: Some((130.0, 132.0)),
    mean_interval_s: None,
};
pub const CHRONY_REFERENCE_64_RMS_FREQUENCY_PPM: f64 = 0.13;
pub const CHRONY_REFERENCE_64_SYNC_100US_S: (f64, f64) = (130.0, 267.0);
/// RMS in the large-jitter scenario, seeds 1–3.
pub const CHRONY_LARGE_JITTER_RMS_US: [f64; 3] = [70.0, 140.0, 99.0];
/// RMS at 500 ppm and 64 s, seeds 1–3, and its sync to 1 ms.
pub const CHRONY_500PPM_RMS_US: [f64; 3] = [25.0, 20.0, 23.0];
pub const CHRONY_500PPM_SYNC_1MS_S: f64 = 133.0;
/// RMS with a 1e-7 wander at 64 s.
pub const CHRONY_WANDER_RMS_US: (f64, f64) = (137.0, 145.0);
/// RMS with a 5000 ppm clock at default polling.
pub const CHRONY_5000PPM_RMS_US: (f64, f64) = (88.0, 127.0);

/// One scenario run for [`DURATION`], and what came of it.
pub struct Outcome {
    pub stats: Statistics,
    /// Answers refused by the sources running at the end.
    pub refused: u32,
    /// Every step of the clock, seconds.
    pub steps: Vec<f64>,
    /// The finished simulation, for anything else.
    pub simulation: Simulation,
}

/// Runs `scenario` for [`DURATION`].
pub fn run(scenario: Scenario) -> Outcome {
    let mut simulation = Simulation::new(scenario);
    simulation.run_until(DURATION);
    let steps = simulation
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            DisciplineEvent::Stepped { offset, .. } => Some(*offset),
            _ => None,
        })
        .collect();
    Outcome {
        stats: simulation.statistics(),
        refused: simulation.sources().map(|s| s.view().refused).sum(),
        steps,
        simulation,
    }
}
