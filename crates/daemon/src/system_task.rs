//! The system task: hands source reports, resolutions, heard broadcasts and timers to the protocol
//! core's `System`, and carries out what it decides (source tasks started and stopped, names
//! resolved, the clock stepped and slewed, the kernel told, PPS clocks fed, the drift file
//! written), then publishes what the server advertises and the status.

use crate::config::{Config, SourceConfig, SourceMode, nts_ke_target};
use crate::config::{NTP_PORT, Target as ConfigTarget, parse_target};
use crate::log_limit::{LogLimiter, held_back};
use crate::server::ServerCounters;
use crate::sources::{
    HeardBroadcast, NtsSetup, RefclockDriver, RefclockTaskSetup, Resolution, SourceCommands,
    SourceReport, SourceTaskSetup, recv_or_pending, resolve_in_background, spawn_refclock,
    spawn_source,
};
use crate::timebase::Timebase;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use syhub_ntp_clock::{Clock, ClockControl, ClockError, ObservingClock};
use syhub_ntp_proto::auth::KeyStore;
use syhub_ntp_proto::server::SystemSnapshot;
use syhub_ntp_proto::source::{
    NtpSource, RefclockConfig, RefclockSource, SourceConfig as PollConfig, SourceId,
};
use syhub_ntp_proto::sync::{DisciplineEvent, SyncState, Synchroniser};
use syhub_ntp_proto::system::{
    Action, EntryConfig, EntryKind, Notice, SourceEvent, System, SystemConfig, Target, Unresolved,
};
use syhub_ntp_proto::time::Monotonic;
use syhub_ntp_state::drift;
use syhub_ntp_state::leap_file::LeapFile;
use syhub_ntp_status::StatusSnapshot;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Refused answers in a row from one server after which a warning is logged.
const REFUSALS_TO_WARN: u32 = 3;
/// The same trouble with a source is logged at most once an hour.
const LOG_REPEAT_PERIOD: Duration = Duration::from_secs(3600);

/// What the daemon actually does to the system clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClockMode {
    Steering,
    Observing,
    /// Configured to steer, but the kernel refuses: serving as in observe mode.
    SteeringRefused(String),
}

impl std::fmt::Display for ClockMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Steering => write!(f, "steer"),
            Self::Observing => write!(f, "observe"),
            Self::SteeringRefused(_) => write!(f, "observe (steering refused by the kernel)"),
        }
    }
}

/// The clock offset went beyond the panic threshold after start-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Panic {
    pub offset: f64,
}

/// Everything the system task starts with.
pub(crate) struct SystemParts {
    pub config: Config,
    pub sync: Synchroniser,
    pub control: Box<dyn ClockControl>,
    pub clock_mode: ClockMode,
    pub clock: Arc<dyn Clock>,
    pub timebase: Timebase,
    pub publish: watch::Sender<SystemSnapshot>,
    pub status: watch::Sender<StatusSnapshot>,
    pub counters: Arc<ServerCounters>,
    /// The trusted keys, for sources that sign their requests.
    pub keys: Arc<KeyStore>,
    /// Broadcasts the serving loop heard, when a source listens for them.
    pub broadcasts: Option<mpsc::Receiver<HeardBroadcast>>,
    /// The reference clocks' drivers, opened before privileges were dropped.
    pub refclocks: Vec<OpenedRefclock>,
}

/// A reference clock's driver for the `[[source]]` at index `entry`.
pub(crate) struct OpenedRefclock {
    pub entry: usize,
    pub driver: Box<dyn RefclockDriver>,
}

/// The handles of a running source task.
struct SourceTask {
    cancel: CancellationToken,
    /// A broadcast source's feed of the broadcasts heard from its server.
    broadcasts: Option<mpsc::Sender<HeardBroadcast>>,
    /// A PPS clock's feed of its pair's offset.
    pair: Option<watch::Sender<Option<f64>>>,
}

pub(crate) struct SystemTask {
    config: Config,
    system: System,
    control: Box<dyn ClockControl>,
    clock_mode: ClockMode,
    clock: Arc<dyn Clock>,
    timebase: Timebase,
    tasks: HashMap<SourceId, SourceTask>,
    /// For each entry: an NTS source's TLS client.
    nts: Vec<Option<NtsSetup>>,
    /// For each entry: a reference clock's driver, until its task takes it.
    drivers: Vec<Option<Box<dyn RefclockDriver>>>,
    reports: (mpsc::Sender<SourceReport>, mpsc::Receiver<SourceReport>),
    resolutions: (mpsc::Sender<Resolution>, mpsc::Receiver<Resolution>),
    commands: watch::Sender<SourceCommands>,
    publish: watch::Sender<SystemSnapshot>,
    status: watch::Sender<StatusSnapshot>,
    counters: Arc<ServerCounters>,
    heard: Option<mpsc::Receiver<HeardBroadcast>>,
    drift_path: Option<PathBuf>,
    /// The start of the current spike was logged.
    spike_logged: bool,
    log_limiter: LogLimiter,
    /// `[clock] leap_file`, read again when it changes.
    leap_file: Option<LeapFile>,
}

impl SystemTask {
    pub(crate) fn new(parts: SystemParts) -> Self {
        let now = Monotonic::ZERO;
        let entries = parts
            .config
            .sources
            .iter()
            .map(|source| entry_config(source, &parts.config.sources, &parts.keys))
            .collect();
        let keeps_drift = parts.config.clock.drift_file.is_some();
        let poll = parts.sync.poll_exponent();
        let system = System::new(SystemConfig { keeps_drift }, entries, parts.sync, now);
        let mut drivers: Vec<Option<Box<dyn RefclockDriver>>> =
            parts.config.sources.iter().map(|_| None).collect();
        for opened in parts.refclocks {
            if let Some(slot) = drivers.get_mut(opened.entry) {
                *slot = Some(opened.driver);
            }
        }
        Self {
            nts: parts.config.sources.iter().map(nts_setup).collect(),
            drivers,
            drift_path: parts.config.clock.drift_file.clone(),
            leap_file: parts.config.clock.leap_file.clone().map(LeapFile::new),
            config: parts.config,
            system,
            control: parts.control,
            clock_mode: parts.clock_mode,
            clock: parts.clock,
            timebase: parts.timebase,
            tasks: HashMap::new(),
            reports: mpsc::channel(64),
            resolutions: mpsc::channel(16),
            commands: watch::channel(SourceCommands {
                poll,
                steps_total: 0.0,
                synchronised: false,
            })
            .0,
            publish: parts.publish,
            status: parts.status,
            counters: parts.counters,
            heard: parts.broadcasts,
            spike_logged: false,
            log_limiter: LogLimiter::new(LOG_REPEAT_PERIOD),
        }
    }

    fn now(&self) -> Monotonic {
        self.timebase.now()
    }

    /// Runs until cancelled (Ok) or until the clock is beyond the panic threshold (Err).
    pub(crate) async fn run(mut self, cancel: CancellationToken) -> Result<(), Panic> {
        let (now, local_now) = (self.now(), self.clock.now());
        let actions = self.system.start(now, local_now);
        let mut result = self.execute(actions);
        self.publish();
        while result.is_ok() {
            let (now, local_now) = (self.now(), self.clock.now());
            let wake = self.timebase.instant_at(self.system.next_wake(now, local_now));
            let actions = tokio::select! {
                _ = cancel.cancelled() => break,
                Some(report) = self.reports.1.recv() => self.on_report(report),
                Some(resolution) = self.resolutions.1.recv() => {
                    let now = self.now();
                    self.system.handle_resolution(resolution.entry, resolution.result, now)
                }
                Some(heard) = recv_or_pending(&mut self.heard) => self.on_broadcast(heard),
                _ = tokio::time::sleep_until(wake) => {
                    let (now, local_now) = (self.now(), self.clock.now());
                    self.system.handle_timer(now, local_now)
                }
            };
            result = self.execute(actions);
            self.publish();
        }
        let actions = self.system.stop(self.now());
        let (stops, drift): (Vec<Action>, Vec<Action>) =
            actions.into_iter().partition(|a| matches!(a, Action::StopSource { .. }));
        let _ = self.execute(stops);
        if result.is_ok() {
            let _ = self.execute(drift);
        }
        result
    }

    fn on_report(&mut self, report: SourceReport) -> Vec<Action> {
        let now = Instant::now();
        if let Some(source) = self.system.source(report.id) {
            let location = self.system.location(source);
            match &report.event {
                SourceEvent::Kiss(code) => {
                    if let Some(held) = self.log_limiter.allow(&format!("kiss {location}"), now) {
                        tracing::warn!(
                            "{location} sent kiss-o'-death {}{}",
                            code.display_for_stratum(0),
                            held_back(held)
                        );
                    }
                }
                // Answers refused now and then are noise; a run of them is a server whose time
                // we cannot use although it answers.
                SourceEvent::Unusable(reason)
                    if report.view.refused_in_a_row >= REFUSALS_TO_WARN =>
                {
                    if let Some(held) = self.log_limiter.allow(&format!("refused {location}"), now)
                    {
                        tracing::warn!(
                            "{location} answers, but its answers are refused: {reason} ({} in a \
                             row, {} since the start){}",
                            report.view.refused_in_a_row,
                            report.view.refused,
                            held_back(held)
                        );
                    }
                }
                SourceEvent::Failed(error) => {
                    // A reference clock has no address: its problem is reading its device.
                    let what = match source.address {
                        Some(_) => format!("send to {location}"),
                        None => format!("read {location}"),
                    };
                    if let Some(held) = self.log_limiter.allow(&what, now) {
                        tracing::warn!("cannot {what}: {error}{}", held_back(held));
                    }
                }
                _ => {}
            }
        }
        let (mono, local_now) = (self.now(), self.clock.now());
        if self.clock_mode != ClockMode::Steering
            && matches!(report.event, SourceEvent::Sample(_))
            && let Ok(applied) = self.control.frequency()
        {
            self.system.observe_kernel_frequency(mono, applied);
        }
        self.system.handle_report(report.id, report.view, report.event, mono, local_now)
    }

    /// A broadcast heard by the serving loop: to the source following its sender (started when
    /// this is the first).
    fn on_broadcast(&mut self, heard: HeardBroadcast) -> Vec<Action> {
        let now = self.now();
        let (id, actions) = self.system.handle_broadcast(heard.from, now);
        // Started first, so that the new task's feed exists.
        let mut actions = actions;
        if let Some(id) = id {
            let _ = self.execute(std::mem::take(&mut actions));
            if let Some(feed) = self.tasks.get(&id).and_then(|t| t.broadcasts.as_ref()) {
                // A full feed means the task is behind: losing a broadcast is harmless.
                let _ = feed.try_send(heard);
            }
        }
        actions
    }

    /// Carries out the core's actions in order; stops at a panic.
    fn execute(&mut self, actions: Vec<Action>) -> Result<(), Panic> {
        for action in actions {
            match action {
                Action::StartSource { id, entry, address, source } => {
                    self.start_source(id, entry, address, *source);
                }
                Action::StartRefclock { id, entry, source } => {
                    self.start_refclock(id, entry, *source);
                }
                Action::StopSource { id } => {
                    if let Some(task) = self.tasks.remove(&id) {
                        task.cancel.cancel();
                    }
                }
                Action::Resolve { entry, host, port } => {
                    resolve_in_background(entry, host, port, self.resolutions.0.clone());
                }
                Action::Panic { offset } => {
                    tracing::error!(
                        "the clock is {offset:+.3} s from its sources, beyond panic_threshold ({} s): \
                         refusing to follow. Check the sources and the clock, then restart (a \
                         restart may step any offset).",
                        self.config.clock.panic_threshold
                    );
                    return Err(Panic { offset });
                }
                Action::Step { offset } => match self.control.step(offset) {
                    Ok(()) => {
                        self.commands.send_modify(|c| c.steps_total += offset);
                        self.spike_logged = false;
                    }
                    Err(error) => self.steering_failed(error),
                },
                Action::LeapStep { offset } => match self.control.step(offset) {
                    Ok(()) => tracing::info!("leap second: stepped the clock by {offset:+} s"),
                    Err(error) => self.steering_failed(error),
                },
                Action::SetFrequency { frequency } => {
                    if let Err(error) = self.control.set_frequency(frequency) {
                        self.steering_failed(error);
                    }
                }
                Action::SetKernelStatus(status) => {
                    if self.clock_mode == ClockMode::Steering
                        && let Err(error) = self.control.set_sync_status(&status)
                    {
                        tracing::debug!(
                            "cannot update the kernel's synchronisation status: {error}"
                        );
                    }
                }
                Action::FeedPair { id, offset } => {
                    if let Some(feed) = self.tasks.get(&id).and_then(|t| t.pair.as_ref()) {
                        feed.send_replace(offset);
                    }
                }
                Action::WriteDrift { frequency_ppm } => self.write_drift(frequency_ppm),
                Action::RefreshLeapFile => {
                    let news = self.leap_file.as_mut().and_then(|f| f.refresh(self.clock.now()));
                    if let Some(table) = news {
                        let now = self.now();
                        let actions = self.system.set_leap_table(table, now, self.clock.now());
                        self.execute(actions)?;
                    }
                }
                Action::Notice(notice) => self.log(notice),
            }
        }
        Ok(())
    }

    /// Spawns the task of a network source (a broadcast source with its feed of broadcasts).
    fn start_source(&mut self, id: SourceId, entry: usize, address: SocketAddr, source: NtpSource) {
        let listens = self.config.sources[entry].mode == SourceMode::Broadcast;
        let (feed, heard) = listens.then(|| mpsc::channel(8)).unzip();
        let cancel = CancellationToken::new();
        spawn_source(SourceTaskSetup {
            id,
            address,
            source,
            nts: self.nts[entry].clone(),
            broadcasts: heard,
            clock: self.clock.clone(),
            timebase: self.timebase,
            reports: self.reports.0.clone(),
            commands: self.commands.subscribe(),
            cancel: cancel.clone(),
        });
        self.tasks.insert(id, SourceTask { cancel, broadcasts: feed, pair: None });
    }

    /// Spawns the task of a reference clock with the driver opened for it (a PPS clock with its
    /// feed of its pair's offset).
    fn start_refclock(&mut self, id: SourceId, entry: usize, source: RefclockSource) {
        let Some(driver) = self.drivers.get_mut(entry).and_then(Option::take) else {
            tracing::error!("reference clock {}: no driver", source_name(&self.config, entry));
            return;
        };
        let paired =
            matches!(self.system.entry(entry).kind, EntryKind::Refclock { pair: Some(_), .. });
        let (pair, offsets) = paired.then(|| watch::channel(None)).unzip();
        let cancel = CancellationToken::new();
        spawn_refclock(RefclockTaskSetup {
            id,
            driver,
            source,
            pair: offsets,
            clock: self.clock.clone(),
            timebase: self.timebase,
            reports: self.reports.0.clone(),
            commands: self.commands.subscribe(),
            cancel: cancel.clone(),
        });
        self.tasks.insert(id, SourceTask { cancel, broadcasts: None, pair });
    }

    fn write_drift(&self, frequency_ppm: f64) {
        let Some(path) = &self.drift_path else { return };
        match drift::write(path, frequency_ppm) {
            Ok(()) => tracing::debug!("wrote {frequency_ppm:.3} ppm to {}", path.display()),
            // Not again for an hour (the core's cadence): a read-only disk must not flood the log.
            Err(error) => tracing::warn!("{error}"),
        }
    }

    /// The kernel refused a change: say so once and carry on as in observe mode.
    fn steering_failed(&mut self, error: ClockError) {
        if self.clock_mode != ClockMode::Steering {
            return;
        }
        tracing::warn!(
            "cannot steer the system clock: {error}. Carrying on as in observe mode: the clock is \
             measured and reported, never changed."
        );
        self.clock_mode = ClockMode::SteeringRefused(error.to_string());
        self.control = Box::new(ObservingClock::new(kernel_sync_override()));
        let applied = self.control.frequency().unwrap_or(0.0);
        self.system.steering_refused(self.now(), applied);
    }

    fn log(&mut self, notice: Notice) {
        match notice {
            Notice::Discipline(event) => self.log_discipline(event),
            Notice::StateChanged => self.log_state(),
            Notice::Started { id } => {
                let Some(source) = self.system.source(id) else { return };
                let config = &self.config.sources[source.entry];
                match (&config.refclock, source.address) {
                    (Some(clock), _) => {
                        tracing::info!(
                            "using reference clock {} ({})",
                            config.address,
                            clock.refid
                        );
                    }
                    (None, Some(address)) => tracing::info!("using {} ({address})", config.address),
                    (None, None) => {}
                }
            }
            Notice::Dropped { entry, location, why } => tracing::info!(
                "dropping {} ({location}): {why}; looking for another",
                source_name(&self.config, entry),
            ),
            Notice::ResolveFailed { error, retry_in } => {
                tracing::warn!("{error}; retrying in {} s", retry_in.as_secs());
            }
            Notice::HeardBroadcaster { address } => {
                tracing::info!("heard broadcasts from {address}: measuring the delay to it");
            }
            Notice::LeapStepNotMade { offset } => tracing::info!(
                "leap second due: a {offset:+} s step is not made in {}",
                self.clock_mode
            ),
            Notice::EverySourceLost { unreachable, unresolved } => {
                tracing::warn!(
                    "every source is lost ({} configured): {}; {}",
                    self.config.sources.len(),
                    what_is_lost(&unreachable, &unresolved),
                    self.serving_now()
                );
            }
            Notice::SourceBack { id } => {
                let Some(source) = self.system.source(id) else { return };
                let name = source_name(&self.config, source.entry);
                let location = self.system.location(source);
                // A name that is the address already says it all.
                let who = match source.address {
                    Some(address) if name.parse().ok() == Some(address.ip()) => location,
                    _ => format!("{name} ({location})"),
                };
                tracing::info!(
                    "{who} answers again, the first source back since every one was lost"
                );
            }
        }
    }

    /// What clients are served now, in a few words.
    fn serving_now(&self) -> String {
        match self.system.sync().state() {
            SyncState::Synchronised { .. } => "still following the last selection".to_owned(),
            SyncState::LocalClock { .. } => {
                format!("serving the local clock at stratum {}", self.system.snapshot().stratum)
            }
            SyncState::Unsynchronised { .. } => "serving unsynchronised (stratum 16)".to_owned(),
        }
    }

    fn log_discipline(&mut self, event: DisciplineEvent) {
        match event {
            DisciplineEvent::Stepped { offset, at_start_up: true } => {
                tracing::info!("stepped the clock by {offset:+.6} s at start-up");
            }
            DisciplineEvent::Stepped { offset, at_start_up: false } => tracing::info!(
                "stepped the clock by {offset:+.6} s: the offset lasted {} s beyond step_threshold",
                self.config.clock.stepout
            ),
            DisciplineEvent::HoldingSpike { offset, .. } if !self.spike_logged => {
                self.spike_logged = true;
                tracing::warn!(
                    "the clock is {offset:+.6} s from its sources, beyond step_threshold ({} s): \
                     it will be stepped if this lasts {} s",
                    self.config.clock.step_threshold,
                    self.config.clock.stepout
                );
            }
            DisciplineEvent::HoldingSpike { .. } | DisciplineEvent::Panic { .. } => {}
            DisciplineEvent::EstimatorReset => {
                tracing::info!("the clock moved against its sources; estimate restarted");
            }
        }
    }

    fn log_state(&self) {
        let snapshot = self.system.snapshot();
        match self.system.sync().state() {
            SyncState::Synchronised { .. } => {
                let Some(peer) = self.system.peer() else { return };
                tracing::info!(
                    "synchronised to {} ({}), stratum {}, offset {:+.6} s",
                    source_name(&self.config, peer.entry),
                    self.system.location(peer),
                    snapshot.stratum,
                    self.system.sync().discipline().offset(self.now()),
                );
            }
            SyncState::LocalClock { reason } => {
                tracing::info!("serving the local clock at stratum {}: {reason}", snapshot.stratum);
            }
            SyncState::Unsynchronised { reason } => tracing::info!("unsynchronised: {reason}"),
        }
    }

    /// After every event: the sources' poll and whether the clock is trusted, what the server
    /// advertises, and the status.
    fn publish(&self) {
        let poll = self.system.sync().poll_exponent();
        let synchronised = self.system.has_selection();
        self.commands.send_if_modified(|c| {
            let newly_synchronised = synchronised && !c.synchronised;
            c.synchronised |= synchronised;
            std::mem::replace(&mut c.poll, poll) != poll || newly_synchronised
        });
        self.publish.send_if_modified(|current| {
            let snapshot = self.system.snapshot();
            std::mem::replace(current, snapshot) != snapshot
        });
        let status = crate::status::build(crate::status::StatusInputs {
            system: &self.system,
            config: &self.config,
            clock_mode: &self.clock_mode,
            leap_file: self.leap_file.as_ref().map(LeapFile::verdict),
            counters: &self.counters,
            now: self.now(),
            local_now: self.clock.now(),
        });
        self.status.send_replace(status);
    }
}

/// The sources that no longer answer and the names without a server, for the log line when every
/// source is lost: "2 unreachable (192.0.2.1:123, 192.0.2.2:123), pool.lan unresolved (cannot
/// resolve pool.lan: ...)".
fn what_is_lost(unreachable: &[String], unresolved: &[(String, Unresolved)]) -> String {
    let mut parts = Vec::new();
    match unreachable {
        [] => {}
        [one] => parts.push(format!("{one} unreachable")),
        many => parts.push(format!("{} unreachable ({})", many.len(), many.join(", "))),
    }
    for (name, why) in unresolved {
        parts.push(format!("{name} {} ({})", why.name(), why.reason()));
    }
    if parts.is_empty() { "no source left".to_owned() } else { parts.join(", ") }
}

/// A configured source's name, for logs.
fn source_name(config: &Config, entry: usize) -> &str {
    config.sources.get(entry).map_or("?", |s| s.address.as_str())
}

/// A `[[source]]` as the system core needs it.
fn entry_config(config: &SourceConfig, all: &[SourceConfig], keys: &KeyStore) -> EntryConfig {
    let target = || {
        // Validated with the config.
        let target = if config.mode == SourceMode::Nts {
            nts_ke_target(&config.address)
        } else {
            parse_target(&config.address)
                .unwrap_or(ConfigTarget::Name { host: config.address.clone(), port: NTP_PORT })
        };
        match target {
            ConfigTarget::Address(address) => Target::Address(address),
            ConfigTarget::Name { host, port } => Target::Name { host, port },
        }
    };
    // The config gives reference-clock settings to the reference-clock modes only.
    let kind = match (&config.refclock, config.mode) {
        (Some(settings), _) => {
            // Validated with the config: the pair is another reference clock's refid.
            let pair = settings.pair.as_ref().and_then(|refid| {
                all.iter().position(|e| e.refclock.as_ref().is_some_and(|r| &r.refid == refid))
            });
            EntryKind::Refclock {
                clock: RefclockConfig {
                    poll: settings.poll,
                    offset: settings.offset(),
                    precision: settings.precision,
                    stratum: settings.stratum,
                    reference_id: settings.reference_id(),
                },
                pair,
            }
        }
        (None, SourceMode::Pool) => EntryKind::Pool(target()),
        (None, SourceMode::Nts) => EntryKind::Nts(target()),
        (None, SourceMode::Broadcast) => {
            EntryKind::Broadcast { ipv4: matches!(target(), Target::Address(a) if a.is_ipv4()) }
        }
        (None, _) => EntryKind::Server(target()),
    };
    EntryConfig {
        name: config.address.clone(),
        kind,
        poll: PollConfig {
            minpoll: config.minpoll,
            maxpoll: config.maxpoll,
            iburst: config.iburst,
            burst_spacing: Duration::from_secs(2),
            key: config.key.and_then(|id| keys.key(id).copied()),
        },
        max_sources: config.max_sources,
        fallback: config.fallback,
        prefer: config.prefer,
    }
}

/// Tests fake the kernel's machine-wide synchronisation flag with `SYHUB_NTP_KERNEL_SYNC`
/// (`synchronised` or `unsynchronised`) rather than depend on what the host's own daemon did.
pub(crate) fn kernel_sync_override() -> Option<bool> {
    match std::env::var("SYHUB_NTP_KERNEL_SYNC").as_deref() {
        Ok("synchronised") => Some(true),
        Ok("unsynchronised") => Some(false),
        _ => None,
    }
}

/// The TLS client of an NTS source; `None` for other sources, or (logged) when it cannot be made.
fn nts_setup(config: &SourceConfig) -> Option<NtsSetup> {
    if config.mode != SourceMode::Nts {
        return None;
    }
    let host = match nts_ke_target(&config.address) {
        ConfigTarget::Name { host, .. } => host,
        ConfigTarget::Address(address) => address.ip().to_string(),
    };
    let clock_trusted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ignore_time = config.ignore_certificate_time.then(|| clock_trusted.clone());
    match crate::sources::nts::tls_config(config.ca_file.as_deref(), ignore_time) {
        Ok(tls) => Some(NtsSetup { tls, host, clock_trusted }),
        Err(error) => {
            tracing::error!("[[source]] {}: cannot set up NTS: {error}", config.address);
            None
        }
    }
}
