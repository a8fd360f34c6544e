//! The system core: the set of running sources (keyed by `SourceId`), pool membership and
//! replacement, name resolution with backoff (and the names still without a server), broadcast
//! servers taken on when heard, PPS pairing, the leap second, the drift file's cadence, the
//! kernel's status and whether any source still answers, around the synchroniser.
//! It takes time as arguments and returns actions; the daemon carries them out on real sockets
//! and the kernel clock, the simulator on virtual ones, so both run these same decisions.

mod entry;
mod event;
mod state;
#[cfg(test)]
mod tests;

pub use entry::{EntryConfig, EntryKind, Target, Unresolved, UnresolvedEntry};
pub use event::{Action, DropReason, KernelSyncStatus, Notice, Problem, SourceEvent};
pub use state::SourceState;

use crate::leap::LeapTable;
use crate::packet::ReferenceId;
use crate::server::SystemSnapshot;
use crate::source::{NtpSource, RefclockSource, SourceId, SourceView};
use crate::sync::{SourceInput, Steering, SyncState, SyncUpdate, Synchroniser};
use crate::time::{Monotonic, NtpTimestamp};
use std::net::SocketAddr;
use std::time::Duration;

/// How often pools, resolution, holdover, the leap second and the kernel status are looked after.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(16);
/// The drift file is written no more often than this.
const DRIFT_WRITE_INTERVAL: Duration = Duration::from_secs(3600);
/// First wait before resolving a name again after a failure; doubles up to the second.
const RESOLVE_BACKOFF: (Duration, Duration) = (Duration::from_secs(16), Duration::from_secs(3600));
/// Polls without an answer after which a replaceable source is replaced.
const UNREACHABLE_POLLS: u32 = 8;
/// Selections in a row as a falseticker after which a replaceable source is replaced.
const FALSETICKER_SELECTIONS: u32 = 8;
/// Requests of a burst to servers that ask for gentleness (fallbacks such as NIST) are this far
/// apart at least; others 2 s.
const GENTLE_BURST_SPACING: Duration = Duration::from_secs(4);
/// A dropped server is taken again before others its name gives only after this long.
const DROPPED_QUARANTINE: Duration = Duration::from_secs(3600);
/// Dropped servers remembered per configured source.
const DROPPED_REMEMBERED: usize = 16;
/// Broadcasts come to port 123 from the server's own NTP port.
const NTP_PORT: u16 = 123;

/// What the core needs besides the sources.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SystemConfig {
    /// A drift file is kept: say when to write it.
    pub keeps_drift: bool,
}

/// A configured source and the state of its name resolution.
#[derive(Debug, Clone)]
struct Entry {
    config: EntryConfig,
    resolving: bool,
    next_resolve: Monotonic,
    backoff: Duration,
    /// The last resolution failure, reported once until it changes.
    last_error: Option<String>,
    /// A resolution has succeeded at least once.
    answered: bool,
    /// A reference clock that only numbers a PPS clock's seconds: watched, never selected.
    numbers_pps: bool,
    /// Servers recently dropped, and when: a name that gives them again gives others first.
    dropped: Vec<(SocketAddr, Monotonic)>,
}

/// A running source as the system knows it: what its task last reported.
#[derive(Debug, Clone)]
pub struct ActiveSource {
    pub id: SourceId,
    /// The configured source it belongs to (an index into the entries given at the start).
    pub entry: usize,
    /// The server's address; a reference clock has none.
    pub address: Option<SocketAddr>,
    pub view: SourceView,
    pub last_sample_at: Option<Monotonic>,
    pub problem: Option<Problem>,
    falseticker_streak: u32,
    /// A PPS clock (`Some`): the offset of its pair last fed to it.
    fed: Option<Option<f64>>,
}

/// Whether any source answers, as last seen: for the notices when every one is lost and when
/// one is back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reachability {
    /// No source has answered since the start.
    NeverReached,
    /// At least one source answers.
    Reached,
    /// Sources answered before; none does now.
    AllLost,
}

/// The system state machine. See the module documentation.
pub struct System {
    config: SystemConfig,
    entries: Vec<Entry>,
    sources: Vec<ActiveSource>,
    next_id: SourceId,
    sync: Synchroniser,
    next_maintenance: Monotonic,
    drift_written: Option<Monotonic>,
    last_update: Option<Monotonic>,
    reachability: Reachability,
}

impl System {
    /// `entries` are the configured sources in order (their indices name them in actions).
    pub fn new(
        config: SystemConfig,
        entries: Vec<EntryConfig>,
        sync: Synchroniser,
        now: Monotonic,
    ) -> Self {
        let pairs: Vec<usize> = entries
            .iter()
            .filter_map(|e| match e.kind {
                EntryKind::Refclock { pair, .. } => pair,
                _ => None,
            })
            .collect();
        let entries = entries
            .into_iter()
            .enumerate()
            .map(|(index, config)| Entry {
                numbers_pps: config.kind.is_refclock() && pairs.contains(&index),
                config,
                resolving: false,
                next_resolve: now,
                backoff: RESOLVE_BACKOFF.0,
                last_error: None,
                answered: false,
                dropped: Vec::new(),
            })
            .collect();
        Self {
            config,
            entries,
            sources: Vec::new(),
            next_id: SourceId::new(0),
            sync,
            next_maintenance: now,
            drift_written: None,
            last_update: None,
            reachability: Reachability::NeverReached,
        }
    }

    /// Starts the reference clocks and the first upkeep (servers given by address start at
    /// once, names are resolved).
    pub fn start(&mut self, now: Monotonic, local_now: NtpTimestamp) -> Vec<Action> {
        let mut actions = vec![Action::Notice(Notice::StateChanged)];
        for entry in 0..self.entries.len() {
            if let EntryKind::Refclock { clock, .. } = self.entries[entry].config.kind {
                let source = RefclockSource::new(clock, now);
                let id = self.add(entry, None, source.view());
                actions.push(Action::StartRefclock { id, entry, source: Box::new(source) });
                actions.push(Action::Notice(Notice::Started { id }));
            }
        }
        self.maintain(now, local_now, &mut actions);
        actions
    }

    /// A source's task reports its latest view and what happened.
    pub fn handle_report(
        &mut self,
        id: SourceId,
        view: SourceView,
        event: SourceEvent,
        now: Monotonic,
        local_now: NtpTimestamp,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some(source) = self.sources.iter_mut().find(|s| s.id == id) else { return actions };
        source.view = view;
        let sample = match event {
            SourceEvent::Sample(measurement) => {
                source.last_sample_at = Some(now);
                source.problem = None;
                Some(measurement)
            }
            SourceEvent::Unusable(reason) => {
                source.problem = Some(Problem::Unusable(reason));
                None
            }
            SourceEvent::Kiss(code) => {
                source.problem = Some(Problem::Kiss(code));
                None
            }
            SourceEvent::Failed(error) => {
                source.problem = Some(Problem::Failed(error));
                None
            }
            SourceEvent::Polled => None,
        };
        let inputs = self.inputs();
        let update = self.sync.update(now, local_now, &inputs, sample.as_ref().map(|m| (id, m)));
        if sample.is_some() {
            self.last_update = Some(now);
            self.count_falsetickers();
        }
        self.after_update(update, now, local_now, &mut actions);
        self.watch_reachability(&mut actions);
        actions
    }

    /// The outcome of resolving configured source `entry`'s name.
    pub fn handle_resolution(
        &mut self,
        entry: usize,
        result: Result<Vec<SocketAddr>, String>,
        now: Monotonic,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some(state) = self.entries.get_mut(entry) else { return actions };
        state.resolving = false;
        match result {
            Err(error) => {
                if state.last_error.as_ref() != Some(&error) {
                    actions.push(Action::Notice(Notice::ResolveFailed {
                        error: error.clone(),
                        retry_in: state.backoff,
                    }));
                }
                state.last_error = Some(error);
                self.back_off(entry, now);
            }
            Ok(addresses) => {
                state.last_error = None;
                state.answered = true;
                state.backoff = RESOLVE_BACKOFF.0;
                state
                    .dropped
                    .retain(|(_, at)| now.seconds_since(*at) < DROPPED_QUARANTINE.as_secs_f64());
                let wanted = usize::from(state.config.max_sources);
                // Servers not dropped lately first (a stable answer would otherwise give back
                // the dead member for ever), then those if nothing else is to be had.
                let (fresh, dropped): (Vec<SocketAddr>, Vec<SocketAddr>) =
                    addresses.into_iter().partition(|a| !state.dropped.iter().any(|(d, _)| d == a));
                for address in fresh.into_iter().chain(dropped) {
                    if self.members(entry) >= wanted {
                        break;
                    }
                    if self.sources.iter().any(|s| s.address == Some(address)) {
                        continue;
                    }
                    self.add_server(entry, address, now, &mut actions);
                }
                if self.members(entry) < wanted {
                    // The name gave too few new servers: ask again later.
                    self.back_off(entry, now);
                }
            }
        }
        actions
    }

    /// A broadcast arrived from `from`: the source following that server, started now when it
    /// is the first heard and a broadcast entry of its family has room. `None`: no source wants
    /// it.
    pub fn handle_broadcast(
        &mut self,
        from: SocketAddr,
        now: Monotonic,
    ) -> (Option<SourceId>, Vec<Action>) {
        let mut actions = Vec::new();
        let server = SocketAddr::new(from.ip(), NTP_PORT);
        let entry = self.entries.iter().position(
            |e| matches!(e.config.kind, EntryKind::Broadcast { ipv4 } if ipv4 == server.is_ipv4()),
        );
        let Some(entry) = entry else { return (None, actions) };
        if let Some(known) =
            self.sources.iter().find(|s| s.entry == entry && s.address == Some(server))
        {
            return (Some(known.id), actions);
        }
        if self.members(entry) >= usize::from(self.entries[entry].config.max_sources) {
            return (None, actions);
        }
        actions.push(Action::Notice(Notice::HeardBroadcaster { address: server }));
        let id = self.add_server(entry, server, now, &mut actions);
        (Some(id), actions)
    }

    /// When [`System::handle_timer`] must next be called: the next upkeep, the end of a slew, or
    /// the leap second's next moment, whichever comes first.
    pub fn next_wake(&self, now: Monotonic, local_now: NtpTimestamp) -> Monotonic {
        let mut wake = self.next_maintenance;
        if let Some(tick) = self.sync.next_tick_at() {
            wake = wake.min(tick);
        }
        if let Some(seconds) = self.sync.leap().seconds_until_due(local_now)
            && seconds < MAINTENANCE_INTERVAL.as_secs_f64()
        {
            wake = wake.min(now + Duration::from_secs_f64(seconds.max(1e-6)));
        }
        wake
    }

    /// Called at [`System::next_wake`] (earlier or later does no harm): ends a slew, follows
    /// the leap second, and does the periodic upkeep when it is due.
    pub fn handle_timer(&mut self, now: Monotonic, local_now: NtpTimestamp) -> Vec<Action> {
        let mut actions = Vec::new();
        let steering = self.sync.tick(now);
        if self.apply(steering, &mut actions) {
            return actions;
        }
        if now >= self.next_maintenance {
            self.maintain(now, local_now, &mut actions);
        } else {
            self.follow_leap(now, local_now, &mut actions);
        }
        actions
    }

    /// A new leap-seconds table (`None`: the list is missing, damaged or expired).
    pub fn set_leap_table(
        &mut self,
        table: Option<LeapTable>,
        now: Monotonic,
        local_now: NtpTimestamp,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        self.sync.leap_mut().set_table(table);
        self.follow_leap(now, local_now, &mut actions);
        actions
    }

    /// The kernel refused to let us steer: from `now` on only estimate, the clock running at
    /// `applied` (s/s).
    pub fn steering_refused(&mut self, now: Monotonic, applied: f64) {
        self.sync.stop_steering(now, applied);
    }

    /// Observe mode: the frequency correction the kernel has now (s/s), set by whoever steers
    /// the clock, told before each report so that the estimate (and the drift file) stays the
    /// correction the clock needs in total.
    pub fn observe_kernel_frequency(&mut self, now: Monotonic, applied: f64) {
        self.sync.observe_applied(now, applied);
    }

    /// Stops every source, and writes the drift file if one is due.
    pub fn stop(&mut self, now: Monotonic) -> Vec<Action> {
        let mut actions: Vec<Action> =
            self.sources.drain(..).map(|s| Action::StopSource { id: s.id }).collect();
        actions.extend(self.drift_due(now));
        actions
    }

    pub fn sync(&self) -> &Synchroniser {
        &self.sync
    }

    /// What the server advertises now.
    pub fn snapshot(&self) -> SystemSnapshot {
        self.sync.snapshot()
    }

    /// The running sources, in the order they started.
    pub fn sources(&self) -> &[ActiveSource] {
        &self.sources
    }

    pub fn source(&self, id: SourceId) -> Option<&ActiveSource> {
        self.sources.iter().find(|s| s.id == id)
    }

    /// Configured source `entry`, as given at the start.
    pub fn entry(&self, entry: usize) -> &EntryConfig {
        &self.entries[entry].config
    }

    /// The source the system follows first, while synchronised.
    pub fn peer(&self) -> Option<&ActiveSource> {
        match self.sync.state() {
            SyncState::Synchronised { peer } => self.source(*peer),
            _ => None,
        }
    }

    /// When a source's sample last updated the system.
    pub fn last_update(&self) -> Option<Monotonic> {
        self.last_update
    }

    /// Whether the system follows selected sources now.
    pub fn has_selection(&self) -> bool {
        self.sync.selection().is_some()
    }

    /// A source's part in the latest selection.
    pub fn source_state(&self, source: &ActiveSource) -> SourceState {
        let in_list = |list: &[SourceId]| list.contains(&source.id);
        match self.sync.selection() {
            Some(s) if s.system_peer == source.id => SourceState::SystemPeer,
            Some(s) if in_list(&s.survivors) => SourceState::Candidate,
            Some(s) if in_list(&s.outliers) => SourceState::Outlier,
            Some(s) if in_list(&s.falsetickers) => SourceState::Falseticker,
            _ if source.view.reach == 0 => SourceState::Unreachable,
            _ if self.entries[source.entry].numbers_pps => SourceState::NumbersPps,
            _ => SourceState::Unusable,
        }
    }

    /// What is wrong with a source that cannot be used, for the status.
    pub fn source_problem(&self, source: &ActiveSource, now: Monotonic) -> Option<String> {
        if !self.source_state(source).has_problem() {
            return None;
        }
        source
            .problem
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| source.view.unfit_reason(now, self.sync.poll_exponent()).map(str::to_owned))
    }

    /// Where a source's time comes from: the server's address, or the clock's configured name.
    pub fn location(&self, source: &ActiveSource) -> String {
        match source.address {
            Some(address) => address.to_string(),
            None => self.entries[source.entry].config.name.clone(),
        }
    }

    /// The configured pool and server names (NTS servers' too) that have no server in use now,
    /// in the order configured, and why: what the status shows in place of their servers.
    /// Reference clocks, broadcast listeners and servers given by address never appear.
    pub fn unresolved_entries(&self) -> Vec<UnresolvedEntry<'_>> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(index, entry)| {
                matches!(entry.config.kind.target(), Some(Target::Name { .. }))
                    && self.members(*index) == 0
            })
            .map(|(index, entry)| {
                let why = match &entry.last_error {
                    Some(error) => Unresolved::Failed(error.clone()),
                    None if entry.resolving || !entry.answered => Unresolved::Resolving,
                    None => Unresolved::ServersTaken,
                };
                UnresolvedEntry { entry: index, config: &entry.config, why }
            })
            .collect()
    }

    /// What the kernel should be told now, while we steer.
    pub fn kernel_status(&self, now: Monotonic, local_now: NtpTimestamp) -> KernelSyncStatus {
        let snapshot = self.sync.snapshot();
        let estimate = self.sync.discipline().estimate(now);
        KernelSyncStatus {
            synchronised: matches!(self.sync.state(), SyncState::Synchronised { .. }),
            max_error: snapshot.root_delay.to_seconds_f64() / 2.0
                + snapshot.root_dispersion.to_seconds_f64(),
            estimated_error: estimate.offset_variance.sqrt(),
            leap: self.sync.leap().kernel_leap(local_now),
        }
    }

    fn steering(&self) -> bool {
        self.sync.discipline().config().steer
    }

    fn members(&self, entry: usize) -> usize {
        self.sources.iter().filter(|s| s.entry == entry).count()
    }

    fn back_off(&mut self, entry: usize, now: Monotonic) {
        let state = &mut self.entries[entry];
        state.next_resolve = now + state.backoff;
        state.backoff = (state.backoff * 2).min(RESOLVE_BACKOFF.1);
    }

    fn inputs(&self) -> Vec<SourceInput> {
        self.sources
            .iter()
            .map(|s| {
                let entry = &self.entries[s.entry];
                SourceInput {
                    id: s.id,
                    view: s.view,
                    fallback: entry.config.fallback,
                    prefer: entry.config.prefer,
                    noselect: entry.numbers_pps,
                }
            })
            .collect()
    }

    /// Takes a new source into the set.
    fn add(&mut self, entry: usize, address: Option<SocketAddr>, view: SourceView) -> SourceId {
        let id = self.next_id;
        self.next_id = id.next();
        let pairs =
            matches!(self.entries[entry].config.kind, EntryKind::Refclock { pair: Some(_), .. });
        self.sources.push(ActiveSource {
            id,
            entry,
            address,
            view,
            last_sample_at: None,
            problem: None,
            falseticker_streak: 0,
            // The task starts knowing no offset of its pair.
            fed: pairs.then_some(None),
        });
        id
    }

    /// Starts polling `address` for `entry`.
    fn add_server(
        &mut self,
        entry: usize,
        address: SocketAddr,
        now: Monotonic,
        actions: &mut Vec<Action>,
    ) -> SourceId {
        let config = &self.entries[entry].config;
        let mut poll = config.poll;
        if config.fallback {
            poll.burst_spacing = poll.burst_spacing.max(GENTLE_BURST_SPACING);
        }
        if matches!(config.kind, EntryKind::Broadcast { .. }) {
            // The burst measures the delay; broadcasts bring the time, and a rare poll
            // re-measures.
            poll.minpoll = poll.maxpoll;
            poll.iburst = true;
        }
        let source = NtpSource::new(
            poll,
            ReferenceId::for_server(address.ip()),
            self.sync.snapshot().precision,
            now,
        );
        let id = self.add(entry, Some(address), source.view());
        actions.push(Action::StartSource { id, entry, address, source: Box::new(source) });
        actions.push(Action::Notice(Notice::Started { id }));
        id
    }

    /// Says once when the last source that answered stops (or is dropped), having had one, and
    /// once when one answers again; never while the sources stay as they are. A source answers
    /// while its reach register is not zero, reference clocks included.
    fn watch_reachability(&mut self, actions: &mut Vec<Action>) {
        if matches!(actions.last(), Some(Action::Panic { .. })) {
            return;
        }
        let answering = self.sources.iter().find(|s| s.view.reach != 0).map(|s| s.id);
        match (self.reachability, answering) {
            (Reachability::Reached, None) => {
                self.reachability = Reachability::AllLost;
                let unreachable = self.sources.iter().map(|s| self.location(s)).collect();
                let unresolved = self
                    .unresolved_entries()
                    .into_iter()
                    .map(|e| (e.config.name.clone(), e.why))
                    .collect();
                actions.push(Action::Notice(Notice::EverySourceLost { unreachable, unresolved }));
            }
            (Reachability::AllLost, Some(id)) => {
                self.reachability = Reachability::Reached;
                actions.push(Action::Notice(Notice::SourceBack { id }));
            }
            (Reachability::NeverReached, Some(_)) => self.reachability = Reachability::Reached,
            _ => {}
        }
    }

    fn count_falsetickers(&mut self) {
        let falsetickers =
            self.sync.selection().map(|s| s.falsetickers.clone()).unwrap_or_default();
        for source in &mut self.sources {
            if falsetickers.contains(&source.id) {
                source.falseticker_streak += 1;
            } else {
                source.falseticker_streak = 0;
            }
        }
    }

    /// Carries out what an update of the synchroniser asks, then feeds the PPS clocks.
    fn after_update(
        &mut self,
        update: SyncUpdate,
        now: Monotonic,
        local_now: NtpTimestamp,
        actions: &mut Vec<Action>,
    ) {
        if let Some(event) = update.event {
            actions.push(Action::Notice(Notice::Discipline(event)));
        }
        if self.apply(update.steering, actions) {
            return;
        }
        if update.state_changed {
            actions.push(Action::Notice(Notice::StateChanged));
            self.tell_kernel(now, local_now, actions);
        }
        self.feed_pairs(actions);
    }

    /// The steering as actions; true when it is a panic (nothing may follow it).
    fn apply(&mut self, steering: Steering, actions: &mut Vec<Action>) -> bool {
        if let Some(offset) = steering.panic {
            actions.push(Action::Panic { offset });
            return true;
        }
        if let Some(offset) = steering.step {
            actions.push(Action::Step { offset });
        }
        if let Some(frequency) = steering.frequency {
            actions.push(Action::SetFrequency { frequency });
        }
        false
    }

    /// Tells each PPS clock the offset of the clock that numbers its seconds, when it changed.
    fn feed_pairs(&mut self, actions: &mut Vec<Action>) {
        for index in 0..self.sources.len() {
            let source = &self.sources[index];
            let Some(fed) = source.fed else { continue };
            let EntryKind::Refclock { pair: Some(pair), .. } =
                self.entries[source.entry].config.kind
            else {
                continue;
            };
            let offset = self
                .sources
                .iter()
                .find(|s| s.entry == pair && s.view.reach != 0)
                .and_then(|s| s.view.filter.map(|f| f.offset));
            if fed != offset {
                let id = source.id;
                self.sources[index].fed = Some(offset);
                actions.push(Action::FeedPair { id, offset });
            }
        }
    }

    fn tell_kernel(&self, now: Monotonic, local_now: NtpTimestamp, actions: &mut Vec<Action>) {
        if self.steering() {
            actions.push(Action::SetKernelStatus(self.kernel_status(now, local_now)));
        }
    }

    /// Periodic upkeep: replace failing members, resolve names that are due, refresh the local
    /// reference, the leap second and the kernel status, write the drift file when due.
    fn maintain(&mut self, now: Monotonic, local_now: NtpTimestamp, actions: &mut Vec<Action>) {
        self.next_maintenance = now + MAINTENANCE_INTERVAL;
        let mut dropped = false;
        let mut index = 0;
        while index < self.sources.len() {
            let source = &self.sources[index];
            let entry = &self.entries[source.entry];
            let unreachable = source.view.reach == 0 && source.view.polls >= UNREACHABLE_POLLS;
            let why = if source.view.denied.is_some() {
                Some(DropReason::Refused)
            } else if unreachable {
                Some(DropReason::Unreachable)
            } else if source.falseticker_streak >= FALSETICKER_SELECTIONS {
                Some(DropReason::Falseticker)
            } else if source.view.refused_in_a_row >= UNREACHABLE_POLLS {
                source.view.last_refusal.map(DropReason::AnswersUnusable)
            } else {
                None
            };
            match why.filter(|_| entry.config.kind.replaceable()) {
                Some(why) => {
                    let location = self.location(source);
                    let source = self.sources.remove(index);
                    actions.push(Action::StopSource { id: source.id });
                    actions.push(Action::Notice(Notice::Dropped {
                        entry: source.entry,
                        location,
                        why,
                    }));
                    let entry = &mut self.entries[source.entry];
                    entry.next_resolve = entry.next_resolve.min(now);
                    if let Some(address) = source.address {
                        if entry.dropped.len() >= DROPPED_REMEMBERED {
                            entry.dropped.remove(0);
                        }
                        entry.dropped.push((address, now));
                    }
                    dropped = true;
                }
                None => index += 1,
            }
        }
        if dropped {
            // Select again among those left, so nothing refers to a source that is gone.
            let inputs = self.inputs();
            let update = self.sync.update(now, local_now, &inputs, None);
            self.after_update(update, now, local_now, actions);
            if matches!(actions.last(), Some(Action::Panic { .. })) {
                return;
            }
        }
        for entry in 0..self.entries.len() {
            let state = &self.entries[entry];
            if state.resolving
                || state.next_resolve > now
                || self.members(entry) >= usize::from(state.config.max_sources)
            {
                continue;
            }
            // Broadcast servers start when heard, reference clocks at the start.
            match state.config.kind.target().cloned() {
                Some(Target::Address(address)) => {
                    self.add_server(entry, address, now, actions);
                }
                Some(Target::Name { host, port }) => {
                    self.entries[entry].resolving = true;
                    actions.push(Action::Resolve { entry, host, port });
                }
                None => {}
            }
        }
        // After the names due are asked again, so a lost pool reads as resolving.
        self.watch_reachability(actions);
        self.sync.refresh_local(local_now);
        actions.push(Action::RefreshLeapFile);
        self.follow_leap(now, local_now, actions);
        self.tell_kernel(now, local_now, actions);
        actions.extend(self.drift_due(now));
    }

    /// Brings the leap second in hand up to date: what is advertised of it, the kernel's leap
    /// flag, and in step mode the step itself.
    fn follow_leap(&mut self, now: Monotonic, local_now: NtpTimestamp, actions: &mut Vec<Action>) {
        let before = self.sync.snapshot();
        self.sync.refresh_leap(local_now);
        if let Some(offset) = self.sync.leap_mut().step_due(local_now) {
            actions.push(if self.steering() {
                Action::LeapStep { offset }
            } else {
                Action::Notice(Notice::LeapStepNotMade { offset })
            });
        }
        if self.sync.snapshot() != before {
            self.tell_kernel(now, local_now, actions);
        }
    }

    /// The drift file's write, when the clock has been synchronised a while and the last write
    /// is an hour old.
    fn drift_due(&mut self, now: Monotonic) -> Option<Action> {
        if !self.config.keeps_drift {
            return None;
        }
        let discipline = self.sync.discipline();
        let estimate = discipline.estimate(now);
        let settled = discipline.updates() >= 16 && estimate.frequency_variance.sqrt() < 1e-6;
        let due = self
            .drift_written
            .is_none_or(|t| now.seconds_since(t) >= DRIFT_WRITE_INTERVAL.as_secs_f64());
        if !settled || !due {
            return None;
        }
        self.drift_written = Some(now);
        Some(Action::WriteDrift { frequency_ppm: estimate.frequency * 1e6 })
    }
}
