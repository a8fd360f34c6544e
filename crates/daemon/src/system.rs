//! The system task: gathers source reports, runs selection and the discipline (the protocol
//! core's synchroniser), steers the clock, keeps the drift file, resolves and maintains pools,
//! and publishes what the server advertises and the status snapshot.

use crate::config::{Config, SourceConfig, SourceMode, nts_ke_target};
use crate::config::{NTP_PORT, Target, parse_target};
use crate::log_limit::{LogLimiter, held_back};
use crate::server::ServerCounters;
use crate::sources::{
    HeardBroadcast, NtsSetup, RefclockDriver, Resolution, SourceCommands, SourceEvent, SourceId,
    SourceReport, recv_or_pending, resolve_in_background, spawn_refclock, spawn_source,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use syhub_ntp_clock::{Clock, ClockControl, ClockError, KernelSyncStatus, ObservingClock};
use syhub_ntp_proto::auth::{KeyStore, SymmetricKey};
use syhub_ntp_proto::leap::LeapKind;
use syhub_ntp_proto::packet::{LeapIndicator, ReferenceId};
use syhub_ntp_proto::server::SystemSnapshot;
use syhub_ntp_proto::source::{
    NtpSource, RefclockConfig, RefclockSource, SourceConfig as PollConfig, SourceView,
};
use syhub_ntp_proto::sync::{
    DisciplineEvent, LeapMode as CoreLeapMode, SourceInput, Steering, SyncState, SyncUpdate,
    Synchroniser,
};
use syhub_ntp_proto::time::{Monotonic, utc_date};
use syhub_ntp_state::drift;
use syhub_ntp_state::leap_file::LeapFile;
use syhub_ntp_status::{SourceStatus, StatusSnapshot};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often pools, resolution, holdover and the kernel status are looked after.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(16);
/// The drift file is written no more often than this.
const DRIFT_WRITE_INTERVAL: Duration = Duration::from_secs(3600);
/// First wait before resolving a name again after a failure; doubles up to the next.
const RESOLVE_BACKOFF: (Duration, Duration) = (Duration::from_secs(16), Duration::from_secs(3600));
/// The same trouble with a source is logged at most once an hour.
const LOG_REPEAT_PERIOD: Duration = Duration::from_secs(3600);
/// Polls without an answer after which a pool member is replaced.
const UNREACHABLE_POLLS: u32 = 8;
/// Selections in a row as a falseticker after which a pool member is replaced.
const FALSETICKER_SELECTIONS: u32 = 8;

/// What the daemon actually does to the system clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockMode {
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
pub struct Panic {
    pub offset: f64,
}

/// One configured `[[source]]`.
struct Entry {
    config: SourceConfig,
    /// The key named by `config.key`, looked up in the keys file at start.
    key: Option<SymmetricKey>,
    /// For an NTS source: the TLS client and the name its server's certificate must show.
    nts: Option<NtsSetup>,
    target: Target,
    resolving: bool,
    next_resolve: Instant,
    backoff: Duration,
    /// The last resolution failure, reported once until it changes.
    last_error: Option<String>,
    /// A reference clock that only numbers a PPS clock's seconds: watched, never selected.
    numbers_pps: bool,
}

/// A running source task.
struct ActiveSource {
    id: SourceId,
    entry: usize,
    /// The server's address; a reference clock has none.
    address: Option<SocketAddr>,
    view: SourceView,
    cancel: CancellationToken,
    falseticker_streak: u32,
    last_sample_at: Option<Instant>,
    problem: Option<String>,
    /// A broadcast source's feed of the broadcasts heard from its server.
    broadcasts: Option<mpsc::Sender<HeardBroadcast>>,
}

/// Everything the system task starts with.
pub struct SystemParts {
    pub config: Config,
    pub sync: Synchroniser,
    pub control: Box<dyn ClockControl>,
    pub clock_mode: ClockMode,
    pub clock: Arc<dyn Clock>,
    pub origin: Instant,
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
pub struct OpenedRefclock {
    pub entry: usize,
    pub driver: Box<dyn RefclockDriver>,
}

pub struct SystemTask {
    config: Config,
    sync: Synchroniser,
    control: Box<dyn ClockControl>,
    clock_mode: ClockMode,
    clock: Arc<dyn Clock>,
    origin: Instant,
    entries: Vec<Entry>,
    sources: Vec<ActiveSource>,
    next_id: SourceId,
    reports: (mpsc::Sender<SourceReport>, mpsc::Receiver<SourceReport>),
    resolutions: (mpsc::Sender<Resolution>, mpsc::Receiver<Resolution>),
    commands: watch::Sender<SourceCommands>,
    publish: watch::Sender<SystemSnapshot>,
    status: watch::Sender<StatusSnapshot>,
    counters: Arc<ServerCounters>,
    heard: Option<mpsc::Receiver<HeardBroadcast>>,
    drift_path: Option<PathBuf>,
    drift_written: Option<Instant>,
    last_update: Option<Instant>,
    /// The start of the current spike was logged.
    spike_logged: bool,
    log_limiter: LogLimiter,
    /// Reference clocks not started yet (they start with the task).
    refclocks: Vec<OpenedRefclock>,
    /// For each PPS clock: the entry of the clock that numbers its seconds, and the feed of that
    /// clock's offset.
    pairs: Vec<(usize, watch::Sender<Option<f64>>)>,
    /// `[clock] leap_file`, read again when it changes.
    leap_file: Option<LeapFile>,
}

impl SystemTask {
    pub fn new(parts: SystemParts) -> Self {
        let now = Instant::now();
        let entries = parts
            .config
            .sources
            .iter()
            .map(|config| Entry {
                config: config.clone(),
                key: config.key.and_then(|id| parts.keys.key(id).copied()),
                nts: nts_setup(config),
                // Validated with the config.
                target: if config.mode == SourceMode::Nts {
                    nts_ke_target(&config.address)
                } else {
                    parse_target(&config.address)
                        .unwrap_or(Target::Name { host: config.address.clone(), port: NTP_PORT })
                },
                resolving: false,
                next_resolve: now,
                backoff: RESOLVE_BACKOFF.0,
                last_error: None,
                numbers_pps: config.refclock.as_ref().is_some_and(|clock| {
                    parts.config.sources.iter().any(|other| {
                        other.refclock.as_ref().and_then(|o| o.pair.as_ref()) == Some(&clock.refid)
                    })
                }),
            })
            .collect();
        let poll = parts.sync.poll_exponent();
        let leap_file = parts.config.clock.leap_file.clone().map(LeapFile::new);
        Self {
            drift_path: parts.config.clock.drift_file.clone(),
            config: parts.config,
            sync: parts.sync,
            control: parts.control,
            clock_mode: parts.clock_mode,
            clock: parts.clock,
            origin: parts.origin,
            entries,
            sources: Vec::new(),
            next_id: 0,
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
            drift_written: None,
            last_update: None,
            spike_logged: false,
            log_limiter: LogLimiter::new(LOG_REPEAT_PERIOD),
            refclocks: parts.refclocks,
            pairs: Vec::new(),
            leap_file,
        }
    }

    pub fn clock_mode(&self) -> &ClockMode {
        &self.clock_mode
    }

    fn monotonic(&self, at: Instant) -> Monotonic {
        Monotonic::from_duration(at.saturating_duration_since(self.origin))
    }

    /// Runs until cancelled (Ok) or until the clock is beyond the panic threshold (Err).
    pub async fn run(mut self, cancel: CancellationToken) -> Result<(), Panic> {
        for refclock in std::mem::take(&mut self.refclocks) {
            self.start_refclock(refclock);
        }
        self.log_state();
        self.maintain(Instant::now());
        self.publish_status();
        let mut next_maintenance = Instant::now() + MAINTENANCE_INTERVAL;
        let result = loop {
            let slew_end = self.sync.next_tick_at().map(|t| self.origin + t.since_origin());
            let leap_due = self.leap_due_at();
            let wake =
                [slew_end, leap_due].into_iter().flatten().fold(next_maintenance, Instant::min);
            tokio::select! {
                _ = cancel.cancelled() => break Ok(()),
                Some(report) = self.reports.1.recv() => {
                    if let Err(panic) = self.on_report(report) {
                        break Err(panic);
                    }
                }
                Some(resolution) = self.resolutions.1.recv() => self.on_resolution(resolution),
                Some(heard) = recv_or_pending(&mut self.heard) => self.on_broadcast(heard),
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    let steering = self.sync.tick(self.monotonic(now));
                    if let Err(panic) = self.apply(steering) {
                        break Err(panic);
                    }
                    if now >= next_maintenance {
                        self.maintain(now);
                        next_maintenance = now + MAINTENANCE_INTERVAL;
                    } else if leap_due.is_some_and(|due| now >= due) {
                        self.follow_leap();
                    }
                    self.publish_status();
                }
            }
        };
        for source in &self.sources {
            source.cancel.cancel();
        }
        if result.is_ok() {
            self.write_drift(Instant::now(), true);
        }
        result
    }

    fn inputs(&self) -> Vec<SourceInput> {
        self.sources
            .iter()
            .map(|s| SourceInput {
                view: s.view,
                fallback: self.entries[s.entry].config.fallback,
                prefer: self.entries[s.entry].config.prefer,
                noselect: self.entries[s.entry].numbers_pps,
            })
            .collect()
    }

    fn on_report(&mut self, report: SourceReport) -> Result<(), Panic> {
        let now = Instant::now();
        let Some(index) = self.sources.iter().position(|s| s.id == report.id) else {
            return Ok(());
        };
        let location = self.location(&self.sources[index]);
        let source = &mut self.sources[index];
        source.view = report.view;
        let sample = match report.event {
            SourceEvent::Sample(measurement) => {
                source.last_sample_at = Some(now);
                source.problem = None;
                Some(measurement)
            }
            SourceEvent::Unusable(reason) => {
                source.problem = Some(reason.to_owned());
                None
            }
            SourceEvent::Kiss(code) => {
                if let Some(held) = self.log_limiter.allow(&format!("kiss {location}"), now) {
                    tracing::warn!("{location} sent kiss-o'-death {code}{}", held_back(held));
                }
                source.problem = Some(format!("kiss-o'-death {code}"));
                None
            }
            SourceEvent::SendFailed(error) => {
                // A reference clock has no address: its problem is reading its device.
                let what = match source.address {
                    Some(_) => format!("send to {location}"),
                    None => format!("read {location}"),
                };
                if let Some(held) = self.log_limiter.allow(&what, now) {
                    tracing::warn!("cannot {what}: {error}{}", held_back(held));
                }
                source.problem = Some(error);
                None
            }
            SourceEvent::Polled => None,
        };
        let inputs = self.inputs();
        let local_now = self.clock.now();
        let update = self.sync.update(
            self.monotonic(now),
            local_now,
            &inputs,
            sample.as_ref().map(|m| (index, m)),
        );
        if sample.is_some() {
            self.last_update = Some(now);
            self.count_falsetickers();
        }
        self.feed_pairs();
        self.after_update(update)
    }

    /// Where a source's time comes from, for logs and the status: the server's address, or the
    /// reference clock's name.
    fn location(&self, source: &ActiveSource) -> String {
        match source.address {
            Some(address) => address.to_string(),
            None => self.entries[source.entry].config.address.clone(),
        }
    }

    /// Tells each PPS clock the offset of the clock that numbers its seconds.
    fn feed_pairs(&self) {
        for (entry, feed) in &self.pairs {
            let offset = self
                .sources
                .iter()
                .find(|s| s.entry == *entry && s.view.reach != 0)
                .and_then(|s| s.view.filter.map(|f| f.offset));
            feed.send_if_modified(|current| {
                let changed = *current != offset;
                *current = offset;
                changed
            });
        }
    }

    /// Starts a reference clock's task with its opened driver.
    fn start_refclock(&mut self, refclock: OpenedRefclock) {
        let entry = refclock.entry;
        let config = &self.entries[entry].config;
        let Some(settings) = config.refclock.clone() else { return };
        let now = Instant::now();
        let source = RefclockSource::new(
            RefclockConfig {
                poll: settings.poll,
                offset: settings.offset(),
                precision: settings.precision,
                stratum: settings.stratum,
                reference_id: settings.reference_id(),
            },
            self.monotonic(now),
        );
        // Validated with the config: the pair is another reference clock's refid.
        let paired = settings.pair.as_ref().and_then(|refid| {
            self.entries
                .iter()
                .position(|e| e.config.refclock.as_ref().is_some_and(|r| &r.refid == refid))
        });
        let pair = paired.map(|paired| {
            let (feed, offsets) = watch::channel(None);
            self.pairs.push((paired, feed));
            offsets
        });
        let id = self.next_id;
        self.next_id += 1;
        let cancel = CancellationToken::new();
        tracing::info!("using reference clock {} ({})", config.address, settings.refid);
        self.sources.push(ActiveSource {
            id,
            entry,
            address: None,
            view: source.view(),
            cancel: cancel.clone(),
            falseticker_streak: 0,
            last_sample_at: None,
            problem: None,
            broadcasts: None,
        });
        spawn_refclock(
            id,
            refclock.driver,
            source,
            pair,
            self.clock.clone(),
            self.origin,
            self.reports.0.clone(),
            self.commands.subscribe(),
            cancel,
        );
    }

    fn count_falsetickers(&mut self) {
        let falsetickers =
            self.sync.selection().map(|s| s.falsetickers.clone()).unwrap_or_default();
        for (index, source) in self.sources.iter_mut().enumerate() {
            if falsetickers.contains(&index) {
                source.falseticker_streak += 1;
            } else {
                source.falseticker_streak = 0;
            }
        }
    }

    fn after_update(&mut self, update: SyncUpdate) -> Result<(), Panic> {
        if let Some(event) = update.event {
            self.log_event(event);
        }
        self.apply(update.steering)?;
        if update.state_changed {
            self.log_state();
            self.tell_kernel();
        }
        let poll = self.sync.poll_exponent();
        let synchronised = self.sync.selection().is_some();
        self.commands.send_if_modified(|c| {
            let newly_synchronised = synchronised && !c.synchronised;
            c.synchronised |= synchronised;
            std::mem::replace(&mut c.poll, poll) != poll || newly_synchronised
        });
        self.publish.send_replace(self.sync.snapshot());
        self.publish_status();
        Ok(())
    }

    fn apply(&mut self, steering: Steering) -> Result<(), Panic> {
        if let Some(offset) = steering.panic {
            tracing::error!(
                "the clock is {offset:+.3} s from its sources, beyond panic_threshold ({} s): refusing \
                 to follow. Check the sources and the clock, then restart (a restart may step any offset).",
                self.config.clock.panic_threshold
            );
            return Err(Panic { offset });
        }
        if let Some(step) = steering.step {
            match self.control.step(step) {
                Ok(()) => {
                    self.commands.send_modify(|c| c.steps_total += step);
                    self.spike_logged = false;
                }
                Err(error) => self.steering_failed(error),
            }
        }
        if let Some(frequency) = steering.frequency
            && let Err(error) = self.control.set_frequency(frequency)
        {
            self.steering_failed(error);
        }
        Ok(())
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
        self.sync.stop_steering(self.monotonic(Instant::now()), applied);
    }

    fn log_event(&mut self, event: DisciplineEvent) {
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
        let snapshot = self.sync.snapshot();
        match self.sync.state() {
            SyncState::Synchronised { peer } => {
                let source = &self.sources[*peer];
                tracing::info!(
                    "synchronised to {} ({}), stratum {}, offset {:+.6} s",
                    self.entries[source.entry].config.address,
                    self.location(source),
                    snapshot.stratum,
                    self.sync.discipline().offset(self.monotonic(Instant::now())),
                );
            }
            SyncState::LocalClock { reason } => {
                tracing::info!("serving the local clock at stratum {}: {reason}", snapshot.stratum);
            }
            SyncState::Unsynchronised { reason } => tracing::info!("unsynchronised: {reason}"),
        }
    }

    /// Steering: tell the kernel whether the clock is synchronised and how well.
    fn tell_kernel(&self) {
        if self.clock_mode != ClockMode::Steering {
            return;
        }
        let snapshot = self.sync.snapshot();
        let estimate = self.sync.discipline().estimate(self.monotonic(Instant::now()));
        let status = KernelSyncStatus {
            synchronised: matches!(self.sync.state(), SyncState::Synchronised { .. }),
            max_error: snapshot.root_delay.to_seconds_f64() / 2.0
                + snapshot.root_dispersion.to_seconds_f64(),
            estimated_error: estimate.offset_variance.sqrt(),
            leap: self.sync.leap().kernel_leap(self.clock.now()),
        };
        if let Err(error) = self.control.set_sync_status(&status) {
            tracing::debug!("cannot update the kernel's synchronisation status: {error}");
        }
    }

    fn on_resolution(&mut self, resolution: Resolution) {
        let now = Instant::now();
        let index = resolution.entry;
        let entry = &mut self.entries[index];
        entry.resolving = false;
        match resolution.result {
            Err(error) => {
                if entry.last_error.as_ref() != Some(&error) {
                    tracing::warn!("{error}; retrying in {} s", entry.backoff.as_secs());
                }
                entry.last_error = Some(error);
                entry.next_resolve = now + entry.backoff;
                entry.backoff = (entry.backoff * 2).min(RESOLVE_BACKOFF.1);
            }
            Ok(addresses) => {
                entry.last_error = None;
                entry.backoff = RESOLVE_BACKOFF.0;
                let wanted = usize::from(entry.config.max_sources);
                let mut added = 0;
                for address in addresses {
                    let members = self.sources.iter().filter(|s| s.entry == index).count();
                    if members >= wanted {
                        break;
                    }
                    if self.sources.iter().any(|s| s.address == Some(address)) {
                        continue;
                    }
                    self.add_source(index, address);
                    added += 1;
                }
                let members = self.sources.iter().filter(|s| s.entry == index).count();
                if members < wanted {
                    // The name gave too few new servers: ask again later.
                    let entry = &mut self.entries[index];
                    entry.next_resolve = now + entry.backoff;
                    entry.backoff = (entry.backoff * 2).min(RESOLVE_BACKOFF.1);
                }
                if added > 0 {
                    self.publish_status();
                }
            }
        }
    }

    /// A broadcast from `heard.from`: to its source, started when this is its first and the
    /// broadcast entry has room.
    fn on_broadcast(&mut self, heard: HeardBroadcast) {
        let server = SocketAddr::new(heard.from.ip(), NTP_PORT);
        let entry = self.entries.iter().position(|e| {
            e.config.mode == SourceMode::Broadcast
                && matches!(e.target, Target::Address(a) if a.is_ipv4() == server.is_ipv4())
        });
        let Some(entry) = entry else { return };
        let known = self.sources.iter().position(|s| s.entry == entry && s.address == Some(server));
        let index = match known {
            Some(index) => index,
            None => {
                let members = self.sources.iter().filter(|s| s.entry == entry).count();
                if members >= usize::from(self.entries[entry].config.max_sources) {
                    return;
                }
                tracing::info!("heard broadcasts from {server}: measuring the delay to it");
                self.add_source(entry, server);
                self.sources.len() - 1
            }
        };
        if let Some(feed) = &self.sources[index].broadcasts {
            // A full feed means the task is behind: losing a broadcast is harmless.
            let _ = feed.try_send(heard);
        }
    }

    fn add_source(&mut self, entry: usize, address: SocketAddr) {
        let config = &self.entries[entry].config;
        let mut poll = PollConfig {
            minpoll: config.minpoll,
            maxpoll: config.maxpoll,
            iburst: config.iburst,
            burst_spacing: Duration::from_secs(2),
            key: self.entries[entry].key,
        };
        if config.fallback {
            // NIST asks for no more than one query per 4 s.
            poll.burst_spacing = Duration::from_secs(4);
        }
        let broadcast = config.mode == SourceMode::Broadcast;
        if broadcast {
            // The burst measures the delay; broadcasts bring the time, and a rare poll re-measures.
            poll.minpoll = config.maxpoll;
            poll.iburst = true;
        }
        let (feed, heard) = if broadcast {
            let (feed, heard) = mpsc::channel(8);
            (Some(feed), Some(heard))
        } else {
            (None, None)
        };
        let now = Instant::now();
        let source = NtpSource::new(
            poll,
            ReferenceId::for_server(address.ip()),
            self.sync.snapshot().precision,
            self.monotonic(now),
        );
        let id = self.next_id;
        self.next_id += 1;
        let cancel = CancellationToken::new();
        tracing::info!("using {} ({address})", config.address);
        self.sources.push(ActiveSource {
            id,
            entry,
            address: Some(address),
            view: source.view(),
            cancel: cancel.clone(),
            falseticker_streak: 0,
            last_sample_at: None,
            problem: None,
            broadcasts: feed,
        });
        spawn_source(
            id,
            address,
            source,
            self.entries[entry].nts.clone(),
            heard,
            self.clock.clone(),
            self.origin,
            self.reports.0.clone(),
            self.commands.subscribe(),
            cancel,
        );
    }

    /// Periodic upkeep: replace failing pool members, resolve names that are due, refresh the
    /// local reference and the kernel status, write the drift file when due.
    fn maintain(&mut self, now: Instant) {
        let mut removed = Vec::new();
        for (index, source) in self.sources.iter().enumerate() {
            let entry = &self.entries[source.entry];
            let unreachable = source.view.reach == 0 && source.view.polls >= UNREACHABLE_POLLS;
            let why = if source.view.denied.is_some() {
                Some("it refused us (kiss-o'-death)")
            } else if unreachable {
                Some("it stopped answering")
            } else if source.falseticker_streak >= FALSETICKER_SELECTIONS {
                Some("it disagrees with the other servers (falseticker)")
            } else {
                None
            };
            if let Some(why) = why
                && !entry.config.mode.is_refclock()
                && (entry.config.mode != SourceMode::Server
                    || matches!(entry.target, Target::Name { .. }))
            {
                removed.push((index, why));
            }
        }
        for (index, why) in removed.into_iter().rev() {
            let source = self.sources.remove(index);
            source.cancel.cancel();
            let location = self.location(&source);
            let entry = &mut self.entries[source.entry];
            tracing::info!(
                "dropping {} ({location}): {why}; looking for another",
                entry.config.address,
            );
            entry.next_resolve = entry.next_resolve.min(now);
        }
        for index in 0..self.entries.len() {
            let entry = &self.entries[index];
            let members = self.sources.iter().filter(|s| s.entry == index).count();
            // Broadcast sources start when their server is heard.
            if entry.resolving
                || entry.config.mode == SourceMode::Broadcast
                || entry.config.mode.is_refclock()
                || members >= usize::from(entry.config.max_sources)
                || entry.next_resolve > now
            {
                continue;
            }
            match entry.target.clone() {
                Target::Address(address) => self.add_source(index, address),
                Target::Name { host, port } => {
                    self.entries[index].resolving = true;
                    resolve_in_background(index, host, port, self.resolutions.0.clone());
                }
            }
        }
        self.sync.refresh_local(self.clock.now());
        if let Some(news) = self.leap_file.as_mut().and_then(|f| f.refresh(self.clock.now())) {
            self.sync.leap_mut().set_table(news);
        }
        self.follow_leap();
        self.publish.send_replace(self.sync.snapshot());
        self.tell_kernel();
        self.write_drift(now, false);
    }

    /// When the leap second in hand next needs the task (the warning starts, a step is due, the
    /// smear ends), if within the next maintenance interval.
    fn leap_due_at(&self) -> Option<Instant> {
        let seconds = self.sync.leap().seconds_until_due(self.clock.now())?;
        (seconds < MAINTENANCE_INTERVAL.as_secs_f64())
            .then(|| Instant::now() + Duration::from_secs_f64(seconds.max(0.001)))
    }

    /// Brings the leap second in hand up to date: what is advertised of it, the kernel's leap
    /// flag, and in step mode the step itself. A leap step leaves the sources' samples alone: the
    /// servers' time leaps with ours.
    fn follow_leap(&mut self) {
        let now = self.clock.now();
        let before = self.sync.snapshot();
        self.sync.refresh_leap(now);
        if let Some(step) = self.sync.leap_mut().step_due(now) {
            if self.clock_mode == ClockMode::Steering {
                match self.control.step(step) {
                    Ok(()) => tracing::info!("leap second: stepped the clock by {step:+} s"),
                    Err(error) => self.steering_failed(error),
                }
            } else {
                tracing::info!(
                    "leap second due: a {step:+} s step is not made in {}",
                    self.clock_mode
                );
            }
        }
        if self.sync.snapshot() != before {
            self.publish.send_replace(self.sync.snapshot());
            self.tell_kernel();
        }
    }

    /// Writes the frequency estimate when the clock has been synchronised a while and the last
    /// write is an hour old (or, at shutdown, if none was written in the last hour).
    fn write_drift(&mut self, now: Instant, at_shutdown: bool) {
        let Some(path) = self.drift_path.clone() else { return };
        let discipline = self.sync.discipline();
        let estimate = discipline.estimate(self.monotonic(now));
        let settled = discipline.updates() >= 16 && estimate.frequency_variance.sqrt() < 1e-6;
        let due = self.drift_written.is_none_or(|t| now.duration_since(t) >= DRIFT_WRITE_INTERVAL);
        if !settled
            || !due
            || (at_shutdown
                && self.drift_written.is_some_and(|t| now.duration_since(t) < DRIFT_WRITE_INTERVAL))
        {
            return;
        }
        match drift::write(&path, estimate.frequency * 1e6) {
            Ok(()) => {
                self.drift_written = Some(now);
                tracing::debug!("wrote {:.3} ppm to {}", estimate.frequency * 1e6, path.display());
            }
            Err(error) => {
                // Not again for an hour: a read-only disk must not flood the log.
                self.drift_written = Some(now);
                tracing::warn!("{error}");
            }
        }
    }

    fn publish_status(&self) {
        self.status.send_replace(self.build_status(Instant::now()));
    }

    fn build_status(&self, now: Instant) -> StatusSnapshot {
        let snapshot = self.sync.snapshot();
        let mono = self.monotonic(now);
        let estimate = self.sync.discipline().estimate(mono);
        let selection = self.sync.selection();
        let (state, reason) = match self.sync.state() {
            SyncState::Synchronised { .. } => ("synchronised", None),
            SyncState::LocalClock { reason } => ("local clock", Some(reason.clone())),
            SyncState::Unsynchronised { reason } => ("unsynchronised", Some(reason.clone())),
        };
        let sources = self
            .sources
            .iter()
            .enumerate()
            .map(|(index, source)| {
                let entry = &self.entries[source.entry];
                let view = &source.view;
                let unfit = view.unfit_reason(mono, self.sync.poll_exponent());
                let state = match selection {
                    Some(s) if s.system_peer == index => "system peer",
                    Some(s) if s.survivors.contains(&index) => "candidate",
                    Some(s) if s.outliers.contains(&index) => "outlier",
                    Some(s) if s.falsetickers.contains(&index) => "falseticker",
                    _ if view.reach == 0 => "unreachable",
                    _ if entry.numbers_pps => "numbers PPS seconds",
                    _ => "unusable",
                };
                let detail = match state {
                    "unusable" | "unreachable" => {
                        source.problem.clone().or(unfit.map(str::to_owned))
                    }
                    _ => None,
                };
                SourceStatus {
                    name: entry.config.address.clone(),
                    address: self.location(source),
                    kind: entry.config.mode.name().into(),
                    fallback: entry.config.fallback,
                    state: state.into(),
                    tally: match state {
                        "system peer" => "*",
                        "candidate" => "+",
                        "outlier" => "-",
                        "falseticker" => "x",
                        _ => " ",
                    }
                    .into(),
                    detail,
                    reach: format!("{:o}", view.reach),
                    stratum: view.server.map(|s| s.stratum),
                    reference_id: view
                        .server
                        .map(|s| s.reference_id.display_for_stratum(s.stratum)),
                    poll_log2: view.poll,
                    delay_seconds: view.filter.map(|f| f.delay),
                    offset_seconds: view.filter.map(|f| f.offset),
                    jitter_seconds: view.filter.map(|f| f.jitter),
                    last_sample_seconds_ago: source
                        .last_sample_at
                        .map(|t| now.duration_since(t).as_secs_f64()),
                }
            })
            .collect();
        StatusSnapshot {
            version: env!("CARGO_PKG_VERSION").into(),
            synchronised: state == "synchronised",
            status: state.into(),
            reason,
            stratum: snapshot.stratum,
            reference_id: snapshot.reference_id.display_for_stratum(snapshot.stratum),
            leap: leap_name(snapshot.leap).into(),
            leap_second: self.sync.leap().current().map(|leap| {
                let kind = match leap.kind {
                    LeapKind::Insert => "insert",
                    LeapKind::Delete => "delete",
                };
                let how = match self.sync.leap().mode() {
                    CoreLeapMode::Kernel => "by the kernel".to_owned(),
                    CoreLeapMode::Step => "by a step".to_owned(),
                    CoreLeapMode::Smear { window } => format!("smeared over {window} s"),
                };
                format!("{kind} before {} 00:00:00 UTC, {how}", utc_date(leap.at))
            }),
            leap_file: self.leap_file.as_ref().map(|f| f.verdict().to_owned()),
            offset_seconds: estimate.offset,
            offset_uncertainty_seconds: estimate.offset_variance.sqrt().min(1e6),
            frequency_ppm: estimate.frequency * 1e6,
            jitter_seconds: selection.map_or(0.0, |s| s.jitter),
            root_delay_seconds: snapshot.root_delay.to_seconds_f64(),
            root_dispersion_seconds: snapshot.root_dispersion_at(self.clock.now()).to_seconds_f64(),
            poll_log2: self.sync.poll_exponent(),
            clock_mode: self.clock_mode.to_string(),
            last_update_seconds_ago: self.last_update.map(|t| now.duration_since(t).as_secs_f64()),
            uptime_seconds: now.duration_since(self.origin).as_secs_f64(),
            requests: self.counters.read(),
            peers: sources,
        }
    }
}

/// Tests fake the kernel's machine-wide synchronisation flag with `SYHUB_NTP_KERNEL_SYNC`
/// (`synchronised` or `unsynchronised`) rather than depend on what the host's own daemon did.
pub fn kernel_sync_override() -> Option<bool> {
    match std::env::var("SYHUB_NTP_KERNEL_SYNC").as_deref() {
        Ok("synchronised") => Some(true),
        Ok("unsynchronised") => Some(false),
        _ => None,
    }
}

pub fn leap_name(leap: LeapIndicator) -> &'static str {
    match leap {
        LeapIndicator::NoWarning => "none",
        LeapIndicator::InsertSecond => "insert second",
        LeapIndicator::DeleteSecond => "delete second",
        LeapIndicator::Unsynchronised => "unsynchronised",
    }
}

/// The TLS client of an NTS source; `None` for other sources, or (logged) when it cannot be made.
fn nts_setup(config: &SourceConfig) -> Option<NtsSetup> {
    if config.mode != SourceMode::Nts {
        return None;
    }
    let host = match nts_ke_target(&config.address) {
        Target::Name { host, .. } => host,
        Target::Address(address) => address.ip().to_string(),
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
