//! Deterministic simulation of the syhub-ntp protocol core: virtual time, a local clock with a
//! frequency error and random walk, simulated servers (good, false, vanishing) and a network with
//! delay, jitter, asymmetry and loss. The core's sources and synchroniser run unchanged; the
//! simulation only moves bytes and time. Seeded, so every run reproduces.

#![forbid(unsafe_code)]

mod clock;
mod rng;

pub use clock::SimClock;
pub use rng::Rng;

use std::time::Duration;
use syhub_ntp_proto::NtpTimestamp;
use syhub_ntp_proto::packet::LeapIndicator;
use syhub_ntp_proto::packet::ReferenceId;
use syhub_ntp_proto::server::{Answer, SystemSnapshot, answer};
use syhub_ntp_proto::source::{
    NtpSource, RefclockConfig, RefclockSource, ResponseOutcome, SourceConfig, pps_offset,
};
use syhub_ntp_proto::sync::{
    DisciplineConfig, DisciplineEvent, FrequencyStart, LeapMode, LocalMode, SourceInput, Steering,
    SyncConfig, SyncState, Synchroniser,
};
use syhub_ntp_proto::time::{Monotonic, NtpDuration};

/// Unix time of the simulation's start, for the timestamps on the wire.
const EPOCH_UNIX: i64 = 1_764_000_000;
/// Precision of every simulated clock, log2 seconds.
const PRECISION: i8 = -24;

/// One direction of the network path: a fixed delay plus an exponential extra delay, and loss.
#[derive(Debug, Clone, Copy)]
pub struct Path {
    pub base: f64,
    /// Mean of the exponential extra delay.
    pub jitter: f64,
    pub loss: f64,
}

impl Path {
    /// chrony's default simulation: 100 µs + 100 µs × Exp(1).
    pub const REFERENCE: Self = Self { base: 100e-6, jitter: 100e-6, loss: 0.0 };
}

/// A simulated server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// Server clock minus true time: non-zero for a falseticker.
    pub offset: f64,
    pub stratum: u8,
    pub to_server: Path,
    pub to_client: Path,
    /// Intervals of true time during which it does not answer.
    pub outages: Vec<(f64, f64)>,
    pub fallback: bool,
}

impl ServerSpec {
    pub fn reference() -> Self {
        Self {
            offset: 0.0,
            stratum: 1,
            to_server: Path::REFERENCE,
            to_client: Path::REFERENCE,
            outages: Vec::new(),
            fallback: false,
        }
    }
}

/// What a simulated reference clock delivers once a true second.
#[derive(Debug, Clone, Copy)]
pub enum RefclockKind {
    /// A time sample (NMEA through gpsd) naming each true second, read on the local clock
    /// `delay` + `jitter` × Exp(1) seconds after the second began.
    Coarse { delay: f64, jitter: f64 },
    /// A PPS edge at each true second, ± `jitter` (uniform), numbered by the reference clock at
    /// index `pair` of [`Scenario::refclocks`].
    Pps { jitter: f64, pair: usize },
}

/// A simulated reference clock.
#[derive(Debug, Clone)]
pub struct RefclockSpec {
    pub kind: RefclockKind,
    pub config: RefclockConfig,
    pub prefer: bool,
    pub fallback: bool,
    /// Only numbers a PPS clock's seconds, never selected itself.
    pub noselect: bool,
    /// Intervals of true time during which it delivers nothing.
    pub outages: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    /// Local minus true time at the start.
    pub initial_error: f64,
    /// Natural frequency error, s/s.
    pub frequency_error: f64,
    /// Random-walk step of the frequency per second.
    pub wander: f64,
    pub servers: Vec<ServerSpec>,
    pub source: SourceConfig,
    pub discipline: DisciplineConfig,
    pub local_stratum: Option<u8>,
    pub local_mode: LocalMode,
    /// Statistics count from this time on.
    pub statistics_from: f64,
    /// The drift file's frequency correction, if any (s/s).
    pub drift: Option<f64>,
    /// Reference clocks, after the servers in the synchroniser's list of sources.
    pub refclocks: Vec<RefclockSpec>,
    /// Unix time of the simulation's start (the timestamps on the wire).
    pub epoch_unix: i64,
    /// True time (seconds since the start) of a leap second insertion: the servers repeat the
    /// second before it on the wire and warn of it through their leap indicator for the last day.
    pub leap_insertion: Option<f64>,
    pub leap_mode: LeapMode,
}

impl Scenario {
    /// chrony's reference scenario: initial offset 0.1 s, 100 ppm frequency error with a 1e-9
    /// random walk, one server at 100 µs + 100 µs × Exp(1) each way, default polling, statistics
    /// from 210 s.
    pub fn reference(seed: u64) -> Self {
        Self {
            seed,
            initial_error: 0.1,
            frequency_error: 100e-6,
            wander: 1e-9,
            servers: vec![ServerSpec::reference()],
            source: SourceConfig::default(),
            discipline: DisciplineConfig::default(),
            local_stratum: Some(10),
            local_mode: LocalMode::Holdover,
            statistics_from: 210.0,
            drift: None,
            refclocks: Vec::new(),
            epoch_unix: EPOCH_UNIX,
            leap_insertion: None,
            leap_mode: LeapMode::Kernel,
        }
    }
}

/// Accuracy of a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Statistics {
    /// RMS and largest |local − true| after `statistics_from`, seconds.
    pub rms_offset: f64,
    pub max_offset: f64,
    /// RMS frequency error after `statistics_from`, s/s.
    pub rms_frequency: f64,
    /// From this time on |offset| stayed within 1 ms (None: never, or not at the end).
    pub synchronised_at: Option<f64>,
    pub samples: usize,
}

struct InFlight {
    arrive: f64,
    source: usize,
    to_server: bool,
    bytes: Vec<u8>,
}

/// A running simulation.
pub struct Simulation {
    scenario: Scenario,
    rng: Rng,
    pub clock: SimClock,
    time: f64,
    sources: Vec<NtpSource>,
    refclocks: Vec<RefclockSource>,
    /// Driver deliveries due: (true time, refclock index, local clock reading at the event).
    deliveries: Vec<(f64, usize, NtpTimestamp)>,
    /// The next true second at which the reference clocks' events are drawn.
    next_second: f64,
    pub sync: Synchroniser,
    /// True time of the next look at the leap second.
    next_leap_check: f64,
    in_flight: Vec<InFlight>,
    next_sample: f64,
    /// (true time, local − true, frequency error)
    samples: Vec<(f64, f64, f64)>,
    disturbances: Vec<(f64, f64)>,
    /// Every discipline event with its time.
    pub events: Vec<(f64, DisciplineEvent)>,
    /// Every change of synchronisation state with its time.
    pub states: Vec<(f64, SyncState)>,
    /// Each measurement's true error and the variance the core gave it (for tuning the model).
    pub measurement_errors: Vec<(f64, f64)>,
    /// The local clock has made its leap step (by the kernel, or by the daemon in step mode).
    pub leap_stepped_at: Option<f64>,
    /// Every second: (true time, served time minus UTC, the leap indicator served).
    pub served: Vec<(f64, f64, LeapIndicator)>,
}

impl Simulation {
    pub fn new(scenario: Scenario) -> Self {
        let mut rng = Rng::new(scenario.seed);
        let clock =
            SimClock::new(scenario.initial_error, scenario.frequency_error, scenario.wander);
        let sources = scenario
            .servers
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let first_poll = Monotonic::from_seconds_f64(rng.uniform() * 0.5);
                let id = ReferenceId::from_bytes([192, 0, 2, i as u8 + 1]);
                let mut config = scenario.source;
                if scenario.servers[i].fallback {
                    config.burst_spacing = config.burst_spacing.max(Duration::from_secs(4));
                }
                NtpSource::new(config, id, PRECISION, first_poll)
            })
            .collect();
        let sync = Synchroniser::new(
            SyncConfig {
                discipline: scenario.discipline,
                local_stratum: scenario.local_stratum,
                local_mode: scenario.local_mode,
                precision: PRECISION,
                leap_mode: scenario.leap_mode,
            },
            FrequencyStart {
                frequency: scenario.drift.unwrap_or(0.0),
                known: scenario.drift.is_some(),
                applied: if scenario.discipline.steer {
                    scenario.drift.unwrap_or(0.0)
                } else {
                    0.0
                },
            },
            false,
        );
        let refclocks = scenario
            .refclocks
            .iter()
            .map(|spec| RefclockSource::new(spec.config, Monotonic::ZERO))
            .collect();
        let mut clock = clock;
        if scenario.discipline.steer {
            clock.set_frequency(scenario.drift.unwrap_or(0.0));
        }
        Self {
            scenario,
            rng,
            clock,
            time: 0.0,
            sources,
            refclocks,
            deliveries: Vec::new(),
            next_second: 1.0,
            sync,
            next_leap_check: 0.0,
            in_flight: Vec::new(),
            next_sample: 0.0,
            samples: Vec::new(),
            disturbances: Vec::new(),
            events: Vec::new(),
            states: Vec::new(),
            measurement_errors: Vec::new(),
            leap_stepped_at: None,
            served: Vec::new(),
        }
    }

    /// At true time `at`, something else moves the local clock by `error` seconds.
    pub fn disturb_at(&mut self, at: f64, error: f64) {
        self.disturbances.push((at, error));
    }

    pub fn time(&self) -> f64 {
        self.time
    }

    /// The sources, for inspecting their state.
    pub fn sources(&self) -> &[NtpSource] {
        &self.sources
    }

    fn epoch(&self) -> NtpTimestamp {
        NtpTimestamp::from_unix(self.scenario.epoch_unix, 0)
    }

    fn local_timestamp(&self) -> NtpTimestamp {
        self.epoch() + NtpDuration::from_seconds_f64(self.clock.local())
    }

    /// UTC at true time `time`: true time less the leap second once it has been inserted (the
    /// inserted second repeats the one before it in NTP time).
    fn utc(&self, time: f64) -> NtpTimestamp {
        let leaps = match self.scenario.leap_insertion {
            Some(at) if time >= at => 1.0,
            _ => 0.0,
        };
        self.epoch() + NtpDuration::from_seconds_f64(time - leaps)
    }

    fn server_timestamp(&self, server: usize) -> NtpTimestamp {
        let offset = self.scenario.servers[server].offset;
        self.utc(self.time) + NtpDuration::from_seconds_f64(offset)
    }

    /// What a server warns of at true time `time`: an insertion during the last day before it.
    fn server_leap(&self) -> LeapIndicator {
        match self.scenario.leap_insertion {
            Some(at) if self.time < at && at - self.time <= 86_400.0 => LeapIndicator::InsertSecond,
            _ => LeapIndicator::NoWarning,
        }
    }

    /// Where the local clock is in its leap: the kernel (armed by the synchroniser in kernel and
    /// smear modes) steps it back a second when it reads the leap's midnight; in step mode the
    /// synchroniser asks for the step. Returns true time at which to look again.
    fn follow_leap(&mut self) -> f64 {
        let local = self.local_timestamp();
        self.sync.refresh_leap(local);
        // Like the daemon's upkeep: a look every 16 s, and at the leap itself.
        let Some(leap) = self.sync.leap().current() else { return self.time + 16.0 };
        let until = (leap.at - local).to_seconds_f64();
        if self.leap_stepped_at.is_none() {
            let step = match self.scenario.leap_mode {
                LeapMode::Step => self.sync.leap_mut().step_due(local),
                // The kernel was armed during the last day (the daemon tells it at every update).
                LeapMode::Kernel | LeapMode::Smear { .. } => {
                    let armed = self.sync.leap().kernel_leap(local - NtpDuration::from_seconds(1));
                    (armed.is_some() && until <= 0.0).then_some(-1.0)
                }
            };
            if let Some(step) = step {
                // A leap step leaves the sources' samples alone: the servers leap too.
                self.clock.step(step);
                self.leap_stepped_at = Some(self.time);
                return self.time + 1.0;
            }
        }
        if until > 0.0 { self.time + until.clamp(1e-6, 16.0) } else { self.time + 1.0 }
    }

    fn now(&self) -> Monotonic {
        Monotonic::from_seconds_f64(self.time)
    }

    /// Runs until true time `end`.
    pub fn run_until(&mut self, end: f64) {
        loop {
            let next_poll = self
                .sources
                .iter()
                .map(|s| s.next_poll_at().seconds_since(Monotonic::ZERO))
                .fold(f64::INFINITY, f64::min);
            let next_delivery =
                self.in_flight.iter().map(|p| p.arrive).fold(f64::INFINITY, f64::min);
            let next_tick = self
                .sync
                .next_tick_at()
                .map_or(f64::INFINITY, |t| t.seconds_since(Monotonic::ZERO));
            let next_disturbance =
                self.disturbances.iter().map(|d| d.0).fold(f64::INFINITY, f64::min);
            let next_refclock_poll = self
                .refclocks
                .iter()
                .map(|s| s.next_poll_at().seconds_since(Monotonic::ZERO))
                .fold(f64::INFINITY, f64::min);
            let next_reading = self.deliveries.iter().map(|d| d.0).fold(f64::INFINITY, f64::min);
            let next_second =
                if self.refclocks.is_empty() { f64::INFINITY } else { self.next_second };
            let next_leap = if self.scenario.leap_insertion.is_some() {
                self.next_leap_check
            } else {
                f64::INFINITY
            };
            let next = next_poll
                .min(next_leap)
                .min(next_refclock_poll)
                .min(next_reading)
                .min(next_second)
                .min(next_delivery)
                .min(next_tick)
                .min(next_disturbance)
                .min(self.next_sample);
            if next > end {
                self.clock.advance(end, &mut self.rng);
                self.time = end;
                return;
            }
            self.clock.advance(next, &mut self.rng);
            self.time = next;
            if next == self.next_sample {
                self.samples.push((self.time, self.clock.error(), self.clock.frequency_error()));
                self.next_sample += 1.0;
                if self.scenario.leap_insertion.is_some() {
                    self.record_served();
                }
            } else if next == next_leap {
                self.next_leap_check = self.follow_leap().max(self.time + 1e-6);
            } else if next == next_disturbance {
                let index = self.disturbances.iter().position(|d| d.0 == next).unwrap_or(0);
                let (_, error) = self.disturbances.remove(index);
                self.clock.disturb(error);
            } else if next == next_delivery {
                let index = self.in_flight.iter().position(|p| p.arrive == next).unwrap_or(0);
                let packet = self.in_flight.remove(index);
                self.deliver(packet);
            } else if next == next_tick {
                let steering = self.sync.tick(self.now());
                self.apply(steering);
            } else if next == next_second {
                self.draw_refclock_events();
                self.next_second += 1.0;
            } else if next == next_reading {
                let index = self.deliveries.iter().position(|d| d.0 == next).unwrap_or(0);
                let (_, refclock, local) = self.deliveries.remove(index);
                self.read_refclock(refclock, local);
            } else if next == next_refclock_poll {
                let index = self
                    .refclocks
                    .iter()
                    .position(|s| s.next_poll_at().seconds_since(Monotonic::ZERO) == next)
                    .unwrap_or(0);
                let now = self.now();
                let measurement = self.refclocks[index].poll(now);
                let sample = measurement.map(|m| (self.sources.len() + index, m));
                self.update_system(sample);
            } else {
                let index = self
                    .sources
                    .iter()
                    .position(|s| s.next_poll_at().seconds_since(Monotonic::ZERO) == next)
                    .unwrap_or(0);
                self.poll(index);
            }
        }
    }

    /// At a true second: each reference clock's event, read on the local clock when it happens.
    fn draw_refclock_events(&mut self) {
        let second = self.next_second;
        for index in 0..self.scenario.refclocks.len() {
            let spec = &self.scenario.refclocks[index];
            if spec.outages.iter().any(|&(from, to)| second >= from && second < to) {
                continue;
            }
            let at = match spec.kind {
                RefclockKind::Coarse { delay, jitter } => {
                    second + delay + jitter * self.rng.exponential()
                }
                RefclockKind::Pps { jitter, .. } => {
                    second + jitter * (2.0 * self.rng.uniform() - 1.0)
                }
            };
            // The local clock's reading at `at`, from its error now (it moves by ppm in between).
            let local = self.epoch() + NtpDuration::from_seconds_f64(at + self.clock.error());
            self.deliveries.push((at.max(self.time), index, local));
        }
    }

    /// A reference clock's driver delivers: a coarse sample names the true second before it; a
    /// PPS edge is numbered by its pair's current offset.
    fn read_refclock(&mut self, index: usize, local: NtpTimestamp) {
        let now = self.now();
        match self.scenario.refclocks[index].kind {
            RefclockKind::Coarse { .. } => {
                let named = self.epoch() + NtpDuration::from_seconds_f64(self.time.floor());
                let offset = (named - local).to_seconds_f64();
                self.refclocks[index].add_sample(now, offset, LeapIndicator::NoWarning);
            }
            RefclockKind::Pps { pair, .. } => {
                let view = self.refclocks[pair].view();
                let coarse = view.filter.filter(|_| view.reach != 0).map(|f| f.offset);
                if let Some(offset) = coarse.and_then(|c| pps_offset(local, c)) {
                    self.refclocks[index].add_sample(now, offset, LeapIndicator::NoWarning);
                }
            }
        }
    }

    /// Served time against UTC now, as a client would see it.
    fn record_served(&mut self) {
        let snapshot = self.sync.snapshot();
        let stepped = self.leap_stepped_at.is_some();
        let served = snapshot.served_time(self.local_timestamp(), || stepped);
        let error = (served - self.utc(self.time)).to_seconds_f64();
        self.served.push((self.time, error, snapshot.leap));
    }

    /// The reference clocks, for inspecting their state.
    pub fn refclocks(&self) -> &[RefclockSource] {
        &self.refclocks
    }

    fn poll(&mut self, index: usize) {
        let cookie = NtpTimestamp::from_bits(self.rng.next_u64());
        let jitter = self.rng.uniform();
        let (now, local) = (self.now(), self.local_timestamp());
        let request = self.sources[index].poll(now, cookie, jitter);
        self.sources[index].sent(local);
        let server = &self.scenario.servers[index];
        let path = server.to_server;
        if self.rng.uniform() >= path.loss {
            let delay = path.base + path.jitter * self.rng.exponential();
            self.in_flight.push(InFlight {
                arrive: self.time + delay,
                source: index,
                to_server: true,
                bytes: request.to_vec(),
            });
        }
        self.update_system(None);
    }

    fn deliver(&mut self, packet: InFlight) {
        let index = packet.source;
        if packet.to_server {
            let server = self.scenario.servers[index].clone();
            if server.outages.iter().any(|&(from, to)| self.time >= from && self.time < to) {
                return;
            }
            let server_time = self.server_timestamp(index);
            let mut snapshot = SystemSnapshot::local_clock(
                server.stratum,
                PRECISION,
                server_time - NtpDuration::from_seconds(1),
            );
            snapshot.reference_id = ReferenceId::from_bytes(*b"GPS\0");
            snapshot.leap = self.server_leap();
            let mut reply = [0u8; 64];
            if let Answer::Reply(prepared) =
                answer(&packet.bytes, server_time, &snapshot, &mut reply)
            {
                prepared
                    .stamp_transmit_time(&mut reply, server_time + NtpDuration::from_nanos(5_000));
                let path = server.to_client;
                if self.rng.uniform() >= path.loss {
                    let delay = 5e-6 + path.base + path.jitter * self.rng.exponential();
                    self.in_flight.push(InFlight {
                        arrive: self.time + delay,
                        source: index,
                        to_server: false,
                        bytes: reply[..prepared.len].to_vec(),
                    });
                }
            }
        } else {
            let (now, t4) = (self.now(), self.local_timestamp());
            let outcome = self.sources[index].handle_response(now, &packet.bytes, t4);
            if let ResponseOutcome::Sample { measurement, .. } = outcome {
                let variance =
                    self.sync.measurement_variance(&self.sources[index].view(), measurement.delay);
                let error = measurement.offset + self.clock.error();
                self.measurement_errors.push((error, variance));
                self.update_system(Some((index, measurement)));
            }
        }
    }

    fn update_system(&mut self, sample: Option<(usize, syhub_ntp_proto::source::Measurement)>) {
        let inputs: Vec<SourceInput> = self
            .sources
            .iter()
            .zip(&self.scenario.servers)
            .map(|(s, spec)| SourceInput {
                view: s.view(),
                fallback: spec.fallback,
                prefer: false,
                noselect: false,
            })
            .chain(self.refclocks.iter().zip(&self.scenario.refclocks).map(|(s, spec)| {
                SourceInput {
                    view: s.view(),
                    fallback: spec.fallback,
                    prefer: spec.prefer,
                    noselect: spec.noselect,
                }
            }))
            .collect();
        let local = self.local_timestamp();
        let update =
            self.sync.update(self.now(), local, &inputs, sample.as_ref().map(|(i, m)| (*i, m)));
        if let Some(event) = update.event {
            self.events.push((self.time, event));
        }
        if update.state_changed {
            self.states.push((self.time, self.sync.state().clone()));
        }
        self.apply(update.steering);
        let poll = self.sync.poll_exponent();
        for source in &mut self.sources {
            source.set_system_poll(poll);
        }
    }

    fn apply(&mut self, steering: Steering) {
        if !self.scenario.discipline.steer {
            return;
        }
        if let Some(step) = steering.step {
            self.clock.step(step);
            for source in &mut self.sources {
                source.clock_stepped(step);
            }
            for refclock in &mut self.refclocks {
                refclock.clock_stepped(step);
            }
        }
        if let Some(frequency) = steering.frequency {
            self.clock.set_frequency(frequency);
        }
    }

    /// Accuracy over the run so far.
    pub fn statistics(&self) -> Statistics {
        let from = self.scenario.statistics_from;
        let counted: Vec<&(f64, f64, f64)> = self.samples.iter().filter(|s| s.0 >= from).collect();
        let n = counted.len().max(1) as f64;
        let rms_offset = (counted.iter().map(|s| s.1 * s.1).sum::<f64>() / n).sqrt();
        let max_offset = counted.iter().map(|s| s.1.abs()).fold(0.0, f64::max);
        let rms_frequency = (counted.iter().map(|s| s.2 * s.2).sum::<f64>() / n).sqrt();
        let synchronised_at = match self.samples.iter().rposition(|s| s.1.abs() > 0.001) {
            None => self.samples.first().map(|s| s.0),
            Some(last_bad) => self.samples.get(last_bad + 1).map(|s| s.0),
        };
        Statistics {
            rms_offset,
            max_offset,
            rms_frequency,
            synchronised_at,
            samples: counted.len(),
        }
    }

    /// The stratum the system advertises now.
    pub fn stratum(&self) -> u8 {
        self.sync.snapshot().stratum
    }
}
