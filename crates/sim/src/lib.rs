//! Deterministic simulation of the syhub-ntp protocol core: virtual time, a local clock with a
//! frequency error and random walk, simulated servers (good, false, vanishing), pools, reference
//! clocks and a network with delay, jitter, asymmetry and loss. The core's `System` (the very
//! decisions the daemon carries out), its sources and synchroniser run unchanged; the simulation
//! only moves bytes and time and carries out the actions, as the daemon does on real sockets and
//! the kernel clock. Seeded, so every run reproduces.

#![forbid(unsafe_code)]

pub mod anchor;
mod clock;
mod rng;

pub use clock::SimClock;
pub use rng::Rng;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use syhub_ntp_proto::NtpTimestamp;
use syhub_ntp_proto::leap::LeapKind;
use syhub_ntp_proto::packet::{LeapIndicator, ReferenceId};
use syhub_ntp_proto::server::{Answer, SystemSnapshot, answer};
use syhub_ntp_proto::source::{
    NtpSource, RefclockConfig, RefclockSource, ResponseOutcome, SourceConfig, SourceId, SourceView,
    pps_offset,
};
use syhub_ntp_proto::sync::{
    DisciplineConfig, DisciplineEvent, FrequencyStart, LeapMode, LocalMode, SyncConfig, SyncState,
    Synchroniser,
};
use syhub_ntp_proto::system::{
    Action, EntryConfig, EntryKind, Notice, SourceEvent, System, SystemConfig, Target,
};
use syhub_ntp_proto::time::{Monotonic, NtpDuration};

/// Unix time of the simulation's start, for the timestamps on the wire.
const EPOCH_UNIX: i64 = 1_764_000_000;
/// Precision of every simulated clock, log2 seconds.
const PRECISION: i8 = -24;
/// The name a simulated pool is configured by.
pub const POOL_NAME: &str = "pool.sim.example";
/// How long a simulated name resolution takes.
const RESOLVE_TIME: f64 = 0.05;

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
    /// Its clock's precision, log2 seconds, as it advertises it.
    pub precision: i8,
    /// Seconds between receiving a request and stamping the answer.
    pub processing: f64,
    /// Fills the bits of its timestamps below its precision with random bits, as chronyd does:
    /// its transmit time then often reads before its receive time.
    pub random_low_bits: bool,
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
            precision: PRECISION,
            processing: 5e-6,
            random_low_bits: false,
        }
    }

    /// A fast chronyd: precision 2^-23 s with random bits below it, no processing time.
    pub fn chrony_like() -> Self {
        Self { precision: -23, processing: 0.0, random_low_bits: true, ..Self::reference() }
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
    /// Intervals of true time during which it delivers nothing.
    pub outages: Vec<(f64, f64)>,
}

/// The servers configured as one pool, by name, instead of one by one.
#[derive(Debug, Clone, Copy)]
pub struct PoolSpec {
    /// Servers used at once; the name resolves to every server of the scenario.
    pub max_sources: u8,
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
    /// When set, the servers are one pool's members rather than configured each.
    pub pool: Option<PoolSpec>,
    pub source: SourceConfig,
    pub discipline: DisciplineConfig,
    pub local_stratum: Option<u8>,
    pub local_mode: LocalMode,
    /// Statistics count from this time on.
    pub statistics_from: f64,
    /// The drift file's frequency correction, if any (s/s).
    pub drift: Option<f64>,
    /// Reference clocks, configured after the servers.
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
            pool: None,
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

    /// The configured sources, as the daemon would make them of its config: the servers (or
    /// their pool), then the reference clocks.
    fn entries(&self) -> Vec<EntryConfig> {
        let server_entries = if self.pool.is_some() { 1 } else { self.servers.len() };
        let network = match self.pool {
            Some(pool) => vec![EntryConfig {
                name: POOL_NAME.to_owned(),
                kind: EntryKind::Pool(Target::Name { host: POOL_NAME.to_owned(), port: 123 }),
                poll: self.source,
                max_sources: pool.max_sources,
                fallback: false,
                prefer: false,
            }],
            None => self
                .servers
                .iter()
                .enumerate()
                .map(|(index, spec)| EntryConfig {
                    name: server_address(index).to_string(),
                    kind: EntryKind::Server(Target::Address(server_address(index))),
                    poll: self.source,
                    max_sources: 1,
                    fallback: spec.fallback,
                    prefer: false,
                })
                .collect(),
        };
        let refclocks = self.refclocks.iter().map(|spec| EntryConfig {
            name: spec.config.reference_id.display_for_stratum(0),
            kind: EntryKind::Refclock {
                clock: spec.config,
                pair: match spec.kind {
                    RefclockKind::Pps { pair, .. } => Some(server_entries + pair),
                    RefclockKind::Coarse { .. } => None,
                },
            },
            poll: self.source,
            max_sources: 1,
            fallback: spec.fallback,
            prefer: spec.prefer,
        });
        network.into_iter().chain(refclocks).collect()
    }
}

/// The address of the scenario's server `index`.
pub fn server_address(index: usize) -> SocketAddr {
    let [high, low] = (index as u16 + 1).to_be_bytes();
    SocketAddr::from(([198, 18, high, low], 123))
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
    /// From this time on |offset| stayed within 100 µs.
    pub within_100us_at: Option<f64>,
    /// Mean time between requests to one server after `statistics_from`, seconds (the whole
    /// window when none was sent).
    pub mean_request_interval: f64,
    pub samples: usize,
}

struct InFlight {
    arrive: f64,
    source: SourceId,
    server: usize,
    to_server: bool,
    bytes: Vec<u8>,
}

/// A network source and the simulated server it polls.
struct SimSource {
    source: NtpSource,
    server: usize,
    /// True time before which it sends nothing: sources started together do not all send at
    /// the same instant, as in a real daemon.
    not_before: f64,
}

/// A reference clock's core state, its spec, and the offset of its pair as last fed.
struct SimRefclock {
    source: RefclockSource,
    spec: usize,
    pair_offset: Option<f64>,
}

/// The next thing to happen, in the order ties are broken.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Next {
    Sample,
    KernelLeap,
    Disturbance,
    Delivery,
    Resolution,
    SystemTimer,
    Second,
    Reading,
    RefclockPoll(SourceId),
    Poll(SourceId),
}

/// A running simulation.
pub struct Simulation {
    scenario: Scenario,
    rng: Rng,
    pub clock: SimClock,
    time: f64,
    system: System,
    sources: BTreeMap<SourceId, SimSource>,
    refclocks: BTreeMap<SourceId, SimRefclock>,
    /// For each server, how long after the start its first source waits to send (< 0.5 s).
    start_delays: Vec<f64>,
    /// Name resolutions under way: (true time of the answer, entry).
    resolutions: Vec<(f64, usize)>,
    /// What the kernel was last told to make at the end of the day.
    kernel_leap: Option<LeapKind>,
    /// Driver deliveries due: (true time, refclock, local clock reading at the event).
    deliveries: Vec<(f64, SourceId, NtpTimestamp)>,
    /// The next true second at which the reference clocks' events are drawn.
    next_second: f64,
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
    /// Every panic the core declared: (true time, offset). The daemon would have stopped.
    pub panics: Vec<(f64, f64)>,
    /// Every drift-file write the core asked for: (true time, ppm).
    pub drift_writes: Vec<(f64, f64)>,
    /// Every source the core stopped: (true time, source).
    pub stopped: Vec<(f64, SourceId)>,
    /// Every request sent: (true time, server).
    pub requests: Vec<(f64, usize)>,
    /// For each server, whether a source of it ever survived selection.
    pub ever_selected: Vec<bool>,
}

impl Simulation {
    pub fn new(scenario: Scenario) -> Self {
        let mut rng = Rng::new(scenario.seed);
        let start_delays = scenario.servers.iter().map(|_| rng.uniform() * 0.5).collect();
        let mut clock =
            SimClock::new(scenario.initial_error, scenario.frequency_error, scenario.wander);
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
        if scenario.discipline.steer {
            clock.set_frequency(scenario.drift.unwrap_or(0.0));
        }
        let system = System::new(
            SystemConfig { keeps_drift: true },
            scenario.entries(),
            sync,
            Monotonic::ZERO,
        );
        let mut simulation = Self {
            scenario,
            rng,
            clock,
            time: 0.0,
            system,
            sources: BTreeMap::new(),
            refclocks: BTreeMap::new(),
            start_delays,
            resolutions: Vec::new(),
            kernel_leap: None,
            deliveries: Vec::new(),
            next_second: 1.0,
            in_flight: Vec::new(),
            next_sample: 0.0,
            samples: Vec::new(),
            disturbances: Vec::new(),
            events: Vec::new(),
            states: Vec::new(),
            measurement_errors: Vec::new(),
            leap_stepped_at: None,
            served: Vec::new(),
            panics: Vec::new(),
            drift_writes: Vec::new(),
            stopped: Vec::new(),
            requests: Vec::new(),
            ever_selected: Vec::new(),
        };
        simulation.ever_selected = vec![false; simulation.scenario.servers.len()];
        let local = simulation.local_timestamp();
        let actions = simulation.system.start(Monotonic::ZERO, local);
        simulation.execute(actions);
        simulation
    }

    /// At true time `at`, something else moves the local clock by `error` seconds.
    pub fn disturb_at(&mut self, at: f64, error: f64) {
        self.disturbances.push((at, error));
    }

    pub fn time(&self) -> f64 {
        self.time
    }

    /// The system core, as the daemon would hold it.
    pub fn system(&self) -> &System {
        &self.system
    }

    pub fn sync(&self) -> &Synchroniser {
        self.system.sync()
    }

    /// The network sources running now, for inspecting their state.
    pub fn sources(&self) -> impl Iterator<Item = &NtpSource> {
        self.sources.values().map(|s| &s.source)
    }

    /// The source polling server `index` now, if one does.
    pub fn server_id(&self, index: usize) -> Option<SourceId> {
        self.sources.iter().find(|(_, s)| s.server == index).map(|(id, _)| *id)
    }

    /// The source of reference clock `index` (of [`Scenario::refclocks`]).
    pub fn refclock_id(&self, index: usize) -> Option<SourceId> {
        self.refclocks.iter().find(|(_, r)| r.spec == index).map(|(id, _)| *id)
    }

    /// The core state of reference clock `index` (of [`Scenario::refclocks`]).
    pub fn refclock(&self, index: usize) -> Option<&RefclockSource> {
        self.refclocks.values().find(|r| r.spec == index).map(|r| &r.source)
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

    /// True time at which the kernel, armed by the core, makes its leap: when the local clock
    /// reads the leap's midnight (an insertion) or a second before it (a deletion).
    fn kernel_leap_at(&self) -> f64 {
        let (Some(kind), None) = (self.kernel_leap, self.leap_stepped_at) else {
            return f64::INFINITY;
        };
        let Some(leap) = self.system.sync().leap().current() else { return f64::INFINITY };
        let early = if kind == LeapKind::Delete { 1.0 } else { 0.0 };
        let until = (leap.at - self.local_timestamp()).to_seconds_f64() - early;
        self.time + until.max(0.0)
    }

    fn kernel_makes_leap(&mut self) {
        let Some(kind) = self.kernel_leap else { return };
        let step = match kind {
            LeapKind::Insert => -1.0,
            LeapKind::Delete => 1.0,
        };
        // A leap leaves the sources' samples alone: the servers leap too.
        self.clock.step(step);
        self.leap_stepped_at = Some(self.time);
    }

    /// The core's monotonic time: the oscillator's own, as the daemon reads CLOCK_MONOTONIC_RAW.
    pub fn now(&self) -> Monotonic {
        Monotonic::from_seconds_f64(self.clock.raw())
    }

    /// The earliest event and its true time.
    fn next_event(&self) -> (f64, Next) {
        let earliest = |times: &mut dyn Iterator<Item = f64>| times.fold(f64::INFINITY, f64::min);
        // The core's times are the oscillator's; events happen in true time.
        let at = |m: Monotonic| self.clock.true_time_at_raw(m.seconds_since(Monotonic::ZERO));
        let system_wake = at(self.system.next_wake(self.now(), self.local_timestamp()));
        let poll = self
            .sources
            .iter()
            .map(|(id, s)| (at(s.source.next_poll_at()).max(s.not_before), Next::Poll(*id)))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let refclock_poll = self
            .refclocks
            .iter()
            .map(|(id, r)| (at(r.source.next_poll_at()), Next::RefclockPoll(*id)))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let second = if self.refclocks.is_empty() { f64::INFINITY } else { self.next_second };
        let leap_watch = if self.scenario.leap_insertion.is_some() {
            self.kernel_leap_at()
        } else {
            f64::INFINITY
        };
        let candidates = [
            (self.next_sample, Next::Sample),
            (leap_watch, Next::KernelLeap),
            (earliest(&mut self.disturbances.iter().map(|d| d.0)), Next::Disturbance),
            (earliest(&mut self.in_flight.iter().map(|p| p.arrive)), Next::Delivery),
            (earliest(&mut self.resolutions.iter().map(|r| r.0)), Next::Resolution),
            (system_wake, Next::SystemTimer),
            (second, Next::Second),
            (earliest(&mut self.deliveries.iter().map(|d| d.0)), Next::Reading),
        ];
        candidates
            .into_iter()
            .chain(refclock_poll)
            .chain(poll)
            .fold((f64::INFINITY, Next::Sample), |best, c| if c.0 < best.0 { c } else { best })
    }

    /// Runs until true time `end`.
    pub fn run_until(&mut self, end: f64) {
        loop {
            let (next, what) = self.next_event();
            if next > end {
                self.clock.advance(end, &mut self.rng);
                self.time = end;
                return;
            }
            self.clock.advance(next, &mut self.rng);
            self.time = self.time.max(next);
            match what {
                Next::Sample => {
                    self.samples.push((
                        self.time,
                        self.clock.error(),
                        self.clock.frequency_error(),
                    ));
                    self.next_sample += 1.0;
                    if self.scenario.leap_insertion.is_some() {
                        self.record_served();
                    }
                }
                Next::KernelLeap => self.kernel_makes_leap(),
                Next::Disturbance => {
                    let index = self.disturbances.iter().position(|d| d.0 == next).unwrap_or(0);
                    let (_, error) = self.disturbances.remove(index);
                    self.clock.disturb(error);
                }
                Next::Delivery => {
                    let index = self.in_flight.iter().position(|p| p.arrive == next).unwrap_or(0);
                    let packet = self.in_flight.remove(index);
                    self.deliver(packet);
                }
                Next::Resolution => {
                    let index = self.resolutions.iter().position(|r| r.0 == next).unwrap_or(0);
                    let (_, entry) = self.resolutions.remove(index);
                    let addresses = (0..self.scenario.servers.len()).map(server_address).collect();
                    let actions = self.system.handle_resolution(entry, Ok(addresses), self.now());
                    self.execute(actions);
                }
                Next::SystemTimer => {
                    let actions = self.system.handle_timer(self.now(), self.local_timestamp());
                    self.execute(actions);
                }
                Next::Second => {
                    self.draw_refclock_events();
                    self.next_second += 1.0;
                }
                Next::Reading => {
                    let index = self.deliveries.iter().position(|d| d.0 == next).unwrap_or(0);
                    let (_, refclock, local) = self.deliveries.remove(index);
                    self.read_refclock(refclock, local);
                }
                Next::RefclockPoll(id) => {
                    let now = self.now();
                    let Some(refclock) = self.refclocks.get_mut(&id) else { continue };
                    let event = match refclock.source.poll(now) {
                        Some(measurement) => SourceEvent::Sample(measurement),
                        None => SourceEvent::Polled,
                    };
                    let view = refclock.source.view();
                    self.report(id, view, event);
                }
                Next::Poll(id) => self.poll(id),
            }
        }
    }

    /// Carries out the core's actions, as the daemon's system task does.
    fn execute(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::StartSource { id, address, source, .. } => {
                    let server = (0..self.scenario.servers.len())
                        .find(|&index| server_address(index) == address);
                    if let Some(server) = server {
                        // Only the first source of a server waits (the daemon's start).
                        let delay = std::mem::take(&mut self.start_delays[server]);
                        let not_before = self.time + delay;
                        self.sources.insert(id, SimSource { source: *source, server, not_before });
                    }
                }
                Action::StartRefclock { id, entry, source } => {
                    let servers =
                        if self.scenario.pool.is_some() { 1 } else { self.scenario.servers.len() };
                    let spec = entry - servers;
                    self.refclocks
                        .insert(id, SimRefclock { source: *source, spec, pair_offset: None });
                }
                Action::StopSource { id } => {
                    self.sources.remove(&id);
                    self.refclocks.remove(&id);
                    self.stopped.push((self.time, id));
                }
                Action::Resolve { entry, .. } => {
                    self.resolutions.push((self.time + RESOLVE_TIME, entry));
                }
                Action::Panic { offset } => self.panics.push((self.time, offset)),
                Action::Step { offset } => {
                    self.clock.step(offset);
                    for sim in self.sources.values_mut() {
                        sim.source.clock_stepped(offset);
                    }
                    for refclock in self.refclocks.values_mut() {
                        refclock.source.clock_stepped(offset);
                    }
                }
                Action::LeapStep { offset } => {
                    // A leap step leaves the sources' samples alone: the servers leap too.
                    self.clock.step(offset);
                    self.leap_stepped_at = Some(self.time);
                }
                Action::SetFrequency { frequency } => self.clock.set_frequency(frequency),
                Action::SetKernelStatus(status) => self.kernel_leap = status.leap,
                Action::FeedPair { id, offset } => {
                    if let Some(refclock) = self.refclocks.get_mut(&id) {
                        refclock.pair_offset = offset;
                    }
                }
                Action::WriteDrift { frequency_ppm } => {
                    self.drift_writes.push((self.time, frequency_ppm));
                }
                Action::RefreshLeapFile => {}
                Action::Notice(Notice::Discipline(event)) => self.events.push((self.time, event)),
                Action::Notice(Notice::StateChanged) => {
                    self.states.push((self.time, self.system.sync().state().clone()));
                }
                Action::Notice(_) => {}
            }
        }
        // As the daemon tells its source tasks after every event.
        let poll = self.system.sync().poll_exponent();
        for sim in self.sources.values_mut() {
            sim.source.set_system_poll(poll);
        }
    }

    /// A source's report to the core.
    fn report(&mut self, id: SourceId, view: SourceView, event: SourceEvent) {
        let (now, local) = (self.now(), self.local_timestamp());
        let actions = self.system.handle_report(id, view, event, now, local);
        self.execute(actions);
        if let Some(selection) = self.system.sync().selection() {
            for id in &selection.survivors {
                if let Some(sim) = self.sources.get(id) {
                    self.ever_selected[sim.server] = true;
                }
            }
        }
    }

    /// At a true second: each reference clock's event, read on the local clock when it happens.
    fn draw_refclock_events(&mut self) {
        let second = self.next_second;
        let ids: Vec<(SourceId, usize)> =
            self.refclocks.iter().map(|(id, r)| (*id, r.spec)).collect();
        for (id, spec) in ids {
            let spec = &self.scenario.refclocks[spec];
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
            self.deliveries.push((at.max(self.time), id, local));
        }
    }

    /// A reference clock's driver delivers: a coarse sample names the true second before it; a
    /// PPS edge is numbered by the offset of its pair that the core fed it.
    fn read_refclock(&mut self, id: SourceId, local: NtpTimestamp) {
        let now = self.now();
        let named = self.epoch() + NtpDuration::from_seconds_f64(self.time.floor());
        let Some(refclock) = self.refclocks.get_mut(&id) else { return };
        match self.scenario.refclocks[refclock.spec].kind {
            RefclockKind::Coarse { .. } => {
                let offset = (named - local).to_seconds_f64();
                refclock.source.add_sample(now, offset, LeapIndicator::NoWarning);
            }
            RefclockKind::Pps { .. } => {
                if let Some(offset) = refclock.pair_offset.and_then(|c| pps_offset(local, c)) {
                    refclock.source.add_sample(now, offset, LeapIndicator::NoWarning);
                }
            }
        }
    }

    /// Served time against UTC now, as a client would see it.
    fn record_served(&mut self) {
        let snapshot = self.system.snapshot();
        let stepped = self.leap_stepped_at.is_some();
        let served = snapshot.served_time(self.local_timestamp(), || stepped);
        let error = (served - self.utc(self.time)).to_seconds_f64();
        self.served.push((self.time, error, snapshot.leap));
    }

    fn poll(&mut self, id: SourceId) {
        let cookie = NtpTimestamp::from_bits(self.rng.next_u64());
        let jitter = self.rng.uniform();
        let (now, local) = (self.now(), self.local_timestamp());
        let Some(sim) = self.sources.get_mut(&id) else { return };
        let request = sim.source.poll(now, cookie, jitter);
        sim.source.sent(local);
        let (server, view) = (sim.server, sim.source.view());
        self.requests.push((self.time, server));
        let path = self.scenario.servers[server].to_server;
        if self.rng.uniform() >= path.loss {
            let delay = path.base + path.jitter * self.rng.exponential();
            self.in_flight.push(InFlight {
                arrive: self.time + delay,
                source: id,
                server,
                to_server: true,
                bytes: request.to_vec(),
            });
        }
        self.report(id, view, SourceEvent::Polled);
    }

    fn deliver(&mut self, packet: InFlight) {
        if packet.to_server {
            self.serve(packet);
            return;
        }
        let id = packet.source;
        let (now, t4) = (self.now(), self.local_timestamp());
        let Some(sim) = self.sources.get_mut(&id) else { return };
        let outcome = sim.source.handle_response(now, &packet.bytes, t4);
        let view = sim.source.view();
        let event = match outcome {
            ResponseOutcome::Sample { measurement, .. } => {
                let variance = self.system.sync().measurement_variance(&view, measurement.delay);
                let error = measurement.offset + self.clock.error();
                self.measurement_errors.push((error, variance));
                SourceEvent::Sample(measurement)
            }
            ResponseOutcome::Unusable { reason, .. } => SourceEvent::Unusable(reason),
            ResponseOutcome::Kiss(code) => SourceEvent::Kiss(code),
            ResponseOutcome::NotOurs(_) => return,
        };
        self.report(id, view, event);
    }

    /// A simulated server answers a request (unless it is in an outage).
    fn serve(&mut self, packet: InFlight) {
        let server = self.scenario.servers[packet.server].clone();
        if server.outages.iter().any(|&(from, to)| self.time >= from && self.time < to) {
            return;
        }
        let server_time = self.server_timestamp(packet.server);
        let mut snapshot = SystemSnapshot::local_clock(
            server.stratum,
            server.precision,
            server_time - NtpDuration::from_seconds(1),
        );
        snapshot.reference_id = ReferenceId::from_bytes(*b"GPS\0");
        snapshot.leap = self.server_leap();
        let mut low_bits = || {
            if server.random_low_bits {
                NtpDuration::from_log2_seconds(server.precision).to_seconds_f64()
                    * self.rng.uniform()
            } else {
                0.0
            }
        };
        let received = server_time + NtpDuration::from_seconds_f64(low_bits());
        let transmit = server_time + NtpDuration::from_seconds_f64(server.processing + low_bits());
        let mut reply = [0u8; 64];
        if let Answer::Reply(prepared) = answer(&packet.bytes, received, &snapshot, &mut reply) {
            prepared.stamp_transmit_time(&mut reply, transmit);
            let path = server.to_client;
            if self.rng.uniform() >= path.loss {
                let delay = server.processing + path.base + path.jitter * self.rng.exponential();
                self.in_flight.push(InFlight {
                    arrive: self.time + delay,
                    source: packet.source,
                    server: packet.server,
                    to_server: false,
                    bytes: reply[..prepared.len].to_vec(),
                });
            }
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
        let within = |limit: f64| match self.samples.iter().rposition(|s| s.1.abs() > limit) {
            None => self.samples.first().map(|s| s.0),
            Some(last_bad) => self.samples.get(last_bad + 1).map(|s| s.0),
        };
        let window = (self.time - from).max(0.0);
        let servers = self.scenario.servers.len().max(1) as f64;
        let requests = self.requests.iter().filter(|r| r.0 >= from).count() as f64;
        Statistics {
            rms_offset,
            max_offset,
            rms_frequency,
            synchronised_at: within(0.001),
            within_100us_at: within(100e-6),
            mean_request_interval: if requests > 0.0 {
                window * servers / requests
            } else {
                window
            },
            samples: counted.len(),
        }
    }

    /// The stratum the system advertises now.
    pub fn stratum(&self) -> u8 {
        self.system.snapshot().stratum
    }
}
