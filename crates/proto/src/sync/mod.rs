//! System synchronisation: selects among the sources, feeds the discipline, and decides what the
//! server advertises — synchronised to a peer, holding over on the local clock, or honestly
//! unsynchronised. No I/O: the daemon passes sources in and applies what comes out.

mod discipline;
mod estimator;
mod leap;
mod selection;

pub use discipline::{Discipline, DisciplineConfig, DisciplineEvent, FrequencyStart, Steering};
pub use estimator::{ClockEstimate, Estimator, Measured};
pub use leap::{LeapMode, LeapWatch};
pub use selection::{Candidate, Selection, select};

use crate::leap::LeapKind;
use crate::packet::{LeapIndicator, ReferenceId};
use crate::server::SystemSnapshot;
use crate::source::{Measurement, PHI, SourceId, SourceView};
use crate::time::{Monotonic, NtpDuration, NtpTimestamp};

/// Root dispersion advertised while holding over on the local clock never exceeds this, so NTP
/// clients with no other source (ntpd's limit is 1.5 s) keep following the hub through a long
/// outage, with an error bar that says how stale it is.
pub const MAX_HOLDOVER_DISPERSION: f64 = 1.0;

/// The least queueing noise assumed on a path, as a fraction of its delay.
const PATH_NOISE_FRACTION: f64 = 0.05;
/// How many samples' worth the prior "all of the delay may be queueing" counts for.
const PRIOR_SAMPLES: f64 = 1.0;

/// A sample this many standard deviations from the estimate is a surprise.
const SURPRISE_SIGMAS: f64 = 5.0;

/// Latest samples of a source that must agree before a jump of the clock is believed.
const JUMP_SAMPLES: usize = 3;

/// When the local clock may be served with no selectable source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalMode {
    /// Only once the clock has been synchronised since boot (by us, or the kernel says so).
    Holdover,
    /// Always: for air-gapped hubs with a good real-time clock.
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyncConfig {
    pub discipline: DisciplineConfig,
    /// Stratum to serve the local clock at; `None` never serves it.
    pub local_stratum: Option<u8>,
    pub local_mode: LocalMode,
    /// Precision of the local clock, log2 seconds.
    pub precision: i8,
    pub leap_mode: LeapMode,
}

/// A source as the synchroniser sees it.
#[derive(Debug, Clone, Copy)]
pub struct SourceInput {
    pub id: SourceId,
    pub view: SourceView,
    /// Used only while no other source is selectable, never combined with them.
    pub fallback: bool,
    /// Preferred: when it survives selection it is the system peer and its offset alone is
    /// followed (RFC 5905's prefer peer), e.g. a PPS clock among network servers.
    pub prefer: bool,
    /// Never selected: only watched (the coarse clock that numbers a PPS clock's seconds).
    pub noselect: bool,
}

/// Where the system's time comes from now.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncState {
    /// Following the selected sources, `peer` first among them.
    Synchronised { peer: SourceId },
    /// No selectable source: serving the local clock.
    LocalClock { reason: String },
    /// Serving nothing trustworthy (leap 3, stratum 16).
    Unsynchronised { reason: String },
}

/// What the daemon should do after an update.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncUpdate {
    pub steering: Steering,
    pub event: Option<DisciplineEvent>,
    /// The state changed (for a log line).
    pub state_changed: bool,
}

pub struct Synchroniser {
    config: SyncConfig,
    discipline: Discipline,
    selection: Option<Selection>,
    /// The selection is from fallback sources.
    on_fallback: bool,
    state: SyncState,
    snapshot: SystemSnapshot,
    /// The clock has been synchronised since boot (by us, or by someone the kernel believed).
    synchronised_since_boot: bool,
    /// The last synchronised snapshot, for holdover.
    last_synchronised: Option<SystemSnapshot>,
    started: bool,
    leap: LeapWatch,
    /// The leap the selected sources last warned of.
    warned: Option<LeapKind>,
}

impl Synchroniser {
    /// `frequency`: what is known of the clock's frequency; `kernel_synchronised`: the kernel says
    /// the clock was synchronised (by whoever) before we started.
    pub fn new(config: SyncConfig, frequency: FrequencyStart, kernel_synchronised: bool) -> Self {
        let reason = "no source has been selected yet".to_owned();
        let mut synchroniser = Self {
            config,
            discipline: Discipline::new(config.discipline, frequency),
            selection: None,
            on_fallback: false,
            state: SyncState::Unsynchronised { reason: reason.clone() },
            snapshot: SystemSnapshot::unsynchronised(config.precision),
            synchronised_since_boot: kernel_synchronised,
            last_synchronised: None,
            started: false,
            leap: LeapWatch::new(config.leap_mode, None),
            warned: None,
        };
        synchroniser.fall_back(NtpTimestamp::ZERO, reason);
        synchroniser
    }

    pub fn state(&self) -> &SyncState {
        &self.state
    }

    /// What the server advertises now.
    pub fn snapshot(&self) -> SystemSnapshot {
        self.snapshot
    }

    pub fn selection(&self) -> Option<&Selection> {
        self.selection.as_ref()
    }

    /// The leap second in hand and what the leap mode asks for.
    pub fn leap(&self) -> &LeapWatch {
        &self.leap
    }

    pub fn leap_mut(&mut self) -> &mut LeapWatch {
        &mut self.leap
    }

    pub fn discipline(&self) -> &Discipline {
        &self.discipline
    }

    /// Poll exponent advised to every source.
    pub fn poll_exponent(&self) -> i8 {
        self.discipline.poll_exponent()
    }

    /// When [`Synchroniser::tick`] must next be called (a slew ends), if sooner than the
    /// caller's own schedule.
    pub fn next_tick_at(&self) -> Option<Monotonic> {
        self.discipline.next_update_at()
    }

    /// A source changed (polled, answered, went quiet): re-select. When it brought a new
    /// measurement, `sample` carries it with its source's identity.
    pub fn update(
        &mut self,
        now: Monotonic,
        local_now: NtpTimestamp,
        sources: &[SourceInput],
        sample: Option<(SourceId, &Measurement)>,
    ) -> SyncUpdate {
        let previous_state = self.state.clone();
        let previous_peer = self.selection.as_ref().map(|s| s.system_peer);
        // A sample from a source we follow that is far from the estimate: poll often again until
        // it is understood (a jump of the clock, a change of path).
        if let Some((id, measurement)) = sample
            && self.selection.as_ref().is_some_and(|s| s.survivors.contains(&id))
            && let Some(source) = input(sources, id)
            && self.far_from_estimate(&source.view, measurement)
        {
            self.discipline.surprised();
        }
        let system_poll = self.poll_exponent();
        let candidates = |fallback: bool| -> Vec<Candidate> {
            sources
                .iter()
                .filter(|s| {
                    !s.noselect
                        && s.fallback == fallback
                        && s.view.unfit_reason(now, system_poll).is_none()
                })
                .filter_map(|s| {
                    let filter = s.view.filter?;
                    Some(Candidate {
                        id: s.id,
                        offset: filter.offset,
                        root_distance: s.view.root_distance(now)?,
                        jitter: filter.jitter,
                        merit: s.view.merit(now),
                    })
                })
                .collect()
        };
        let primary = candidates(false);
        let (selection, on_fallback) = if primary.is_empty() {
            (select(&candidates(true), previous_peer.filter(|_| self.on_fallback)), true)
        } else {
            (select(&primary, previous_peer.filter(|_| !self.on_fallback)), false)
        };
        self.on_fallback = on_fallback;
        // Only a majority of the sources that may answer, fit yet or not, is believed: a lone
        // early source (a falseticker among servers still in their first burst) is not.
        let countable = countable_in(sources, on_fallback);
        let (selection, minority) = match selection {
            Some(s) if 2 * (s.survivors.len() + s.outliers.len()) <= countable => {
                (None, Some(s.survivors.len() + s.outliers.len()))
            }
            selection => (selection, None),
        };
        self.selection = selection.map(|selection| prefer(selection, sources));
        self.warned = self.selection.as_ref().and_then(|s| majority_leap(sources, &s.survivors));
        self.leap.update(local_now, self.warned);

        let threshold = self.config.discipline.step_threshold;
        let mut result =
            SyncUpdate { steering: Steering::default(), event: None, state_changed: false };
        // Jumps are judged among the primary sources while any may answer, else the fallbacks.
        let primary_answers = countable_in(sources, false) > 0;
        if let Some(jump) = self.jump_evidence(sources, !primary_answers) {
            // The clock is far from what the sources say now, whatever their filters still hold:
            // step, hold, or refuse, as the discipline decides; never advertise it.
            let (steering, event) = self.discipline.update(now, jump, &[]);
            self.started = true;
            if let Some(step) = steering.step {
                self.shift_for_step(step);
            }
            result.steering = steering;
            result.event = event;
            self.snapshot = SystemSnapshot::unsynchronised(self.config.precision);
            self.state = SyncState::Unsynchronised {
                reason: format!(
                    "the clock is {jump:+.3} s from its sources, beyond the step threshold{}",
                    if steering.step.is_some() { "; stepped" } else { "" }
                ),
            };
            result.state_changed = previous_state != self.state;
            return result;
        }
        match self.selection.clone() {
            None => {
                let reasons: Vec<&str> =
                    sources.iter().filter_map(|s| s.view.unfit_reason(now, system_poll)).collect();
                let reason = if sources.is_empty() {
                    "no sources are configured".to_owned()
                } else if let Some(agreeing) = minority {
                    format!(
                        "waiting for a majority of the sources: {agreeing} of {countable} agree \
                         so far"
                    )
                } else if reasons.is_empty() {
                    "the sources disagree: no majority of them agrees on the time".to_owned()
                } else {
                    format!("no selectable source ({})", summarise(&reasons))
                };
                self.fall_back(local_now, reason);
            }
            Some(selection) if !agree_on_a_step(&selection, sources, countable, threshold) => {
                // Far off, but the sources that say so do not agree with one another yet (a
                // falseticker whose wide early interval still overlaps): never step on that, and
                // select nothing until they do.
                self.selection = None;
                self.snapshot = SystemSnapshot::unsynchronised(self.config.precision);
                self.state = SyncState::Unsynchronised {
                    reason: format!(
                        "the sources put the clock {:+.3} s off but disagree by more than the step \
                         threshold; waiting for a majority to agree",
                        selection.offset
                    ),
                };
            }
            Some(selection) => {
                let measurements = match sample.and_then(|(id, _)| input(sources, id)) {
                    Some(source) if selection.survivors.contains(&source.id) => {
                        self.new_measurements(&source.view)
                    }
                    _ => Vec::new(),
                };
                if !measurements.is_empty() || !self.started {
                    self.started = true;
                    let (steering, event) =
                        self.discipline.update(now, selection.offset, &measurements);
                    if let Some(step) = steering.step {
                        self.shift_for_step(step);
                    }
                    result.steering = steering;
                    result.event = event;
                }
                self.advertise(now, local_now, sources, &selection);
            }
        }
        result.state_changed = previous_state != self.state;
        result
    }

    /// The kernel refused to let us steer: estimate only, the clock running at `applied`.
    pub fn stop_steering(&mut self, now: Monotonic, applied: f64) {
        self.config.discipline.steer = false;
        self.discipline.stop_steering(now, applied);
    }

    /// Observe mode: the kernel's frequency correction now (see
    /// [`Discipline::observe_applied`]).
    pub fn observe_applied(&mut self, now: Monotonic, applied: f64) {
        self.discipline.observe_applied(now, applied);
    }

    /// Called at [`Synchroniser::next_tick_at`].
    pub fn tick(&mut self, now: Monotonic) -> Steering {
        self.discipline.tick(now)
    }

    /// An offset beyond the step threshold that a majority of the sources of the group (primary
    /// or `fallback`) that may answer agree on in their latest samples: the clock jumped, or was far off from the
    /// start. Their clock filters may still hold older samples that make them unselectable for
    /// minutes; this does not wait. Sources that have not said enough yet count against it, so
    /// one source alone among several never moves the clock.
    fn jump_evidence(&self, sources: &[SourceInput], fallback: bool) -> Option<f64> {
        let threshold = self.config.discipline.step_threshold;
        let countable = countable_in(sources, fallback);
        let mut votes: Vec<f64> = Vec::new();
        for source in sources {
            let view = &source.view;
            let usable = view.server.is_some_and(|s| s.leap != LeapIndicator::Unsynchronised)
                && view.denied.is_none()
                && !source.noselect
                && source.fallback == fallback;
            let latest: Vec<f64> =
                view.recent.iter().take(JUMP_SAMPLES).flatten().map(|s| s.offset).collect();
            if !usable || latest.len() < JUMP_SAMPLES || view.reach == 0 {
                continue;
            }
            let newest = latest[0];
            let agree =
                latest.iter().all(|o| o.abs() > threshold && (o - newest).abs() < threshold / 2.0);
            if agree {
                votes.push(newest);
            }
        }
        if votes.is_empty() || 2 * votes.len() <= countable {
            return None;
        }
        votes.sort_by(f64::total_cmp);
        Some(votes[votes.len() / 2])
    }

    /// Whether `measurement` lies beyond five standard deviations of the estimate (its own
    /// uncertainty and the measurement's together).
    fn far_from_estimate(&self, view: &SourceView, measurement: &Measurement) -> bool {
        if !self.discipline.has_estimate() {
            return false;
        }
        let estimate = self.discipline.estimate(measurement.time);
        let variance =
            estimate.offset_variance + self.measurement_variance(view, measurement.delay);
        (measurement.offset - estimate.offset).powi(2) > SURPRISE_SIGMAS.powi(2) * variance
    }

    /// The source's samples the estimator has not seen, oldest first, with their variances: all
    /// of the filter when a source is first selected (the start-up burst), else the newest.
    fn new_measurements(&self, view: &SourceView) -> Vec<(Monotonic, f64, f64)> {
        let seen = self.discipline.last_measured();
        let mut fresh: Vec<(Monotonic, f64, f64)> = view
            .recent
            .iter()
            .flatten()
            .filter(|s| seen.is_none_or(|seen| s.time > seen))
            .map(|s| (s.time, s.offset, self.measurement_variance(view, s.delay)))
            .collect();
        fresh.sort_by_key(|m| m.0);
        fresh
    }

    /// The variance of a measurement. Queueing delay splits unevenly between the two directions,
    /// and an uneven split of an excess delay `e` errs by up to `e / 2`: uniformly, variance
    /// `e² / 12`. The excess is counted from the least delay the filter holds, which is itself
    /// above the path's true minimum by a fraction of the typical excess.
    pub fn measurement_variance(&self, view: &SourceView, delay: f64) -> f64 {
        let min_delay = view.path_delay.or(view.min_delay).unwrap_or(delay).min(delay);
        let delays: Vec<f64> = view.recent.iter().flatten().map(|s| s.delay).collect();
        let mean_excess =
            delays.iter().map(|d| d - min_delay).sum::<f64>() / delays.len().max(1) as f64;
        // The least delay's own excess, which shrinks as more samples are seen; uncertain, so its
        // spread counts too. Excesses measured from the least of `n` samples look smaller than
        // they are, by (n − 1) / n when queueing is exponential, and of the first few nothing is
        // known but that all of the delay may be queueing: that prior counts as one sample, so
        // the start-up burst is not trusted beyond what it shows. A few lucky samples may show
        // little spread: queueing grows with the path, so a fraction of its delay is the least
        // excess assumed.
        let seen = f64::from(view.samples_seen.max(1));
        let spread = if seen < 2.0 { 0.0 } else { mean_excess * seen / (seen - 1.0) };
        let typical_excess = ((seen * spread + PRIOR_SAMPLES * min_delay) / (seen + PRIOR_SAMPLES))
            .max(PATH_NOISE_FRACTION * min_delay);
        let hidden = typical_excess / seen.sqrt();
        let excess = (delay - min_delay).max(0.0) + hidden;
        let precision = NtpDuration::from_log2_seconds(self.config.precision).to_seconds_f64();
        // A reference clock has no path: its noise is its own precision.
        let device = match (view.reference_clock, view.server) {
            (true, Some(server)) => server.precision_seconds().powi(2),
            _ => 0.0,
        };
        precision * precision + 1e-12 + device + (excess * excess + hidden * hidden) / 12.0
    }

    fn shift_for_step(&mut self, step: f64) {
        if let Some(selection) = self.selection.as_mut() {
            selection.offset -= step;
        }
    }

    /// Synchronised: advertise the peer's stratum + 1, its reference, and the root delay and
    /// dispersion to the primary reference through it (RFC 5905 clock_update).
    fn advertise(
        &mut self,
        now: Monotonic,
        local_now: NtpTimestamp,
        sources: &[SourceInput],
        selection: &Selection,
    ) {
        let Some(peer) = input(sources, selection.system_peer).map(|s| &s.view) else { return };
        let (Some(filter), Some(server)) = (peer.filter, peer.server) else { return };
        let estimate = self.discipline.estimate(now);
        let spike = self.discipline.spike_since().is_some();
        let limit = self.config.discipline.step_threshold;
        if spike || estimate.offset.abs() > limit {
            // Known to be wrong: not even the local clock may be served.
            let offset = if spike { selection.offset } else { estimate.offset };
            self.snapshot = SystemSnapshot::unsynchronised(self.config.precision);
            self.state = SyncState::Unsynchronised {
                reason: format!(
                    "the clock is {offset:+.3} s from the selected sources, beyond the step threshold"
                ),
            };
            return;
        }
        let root_dispersion = server.root_dispersion
            + filter.dispersion
            + selection.jitter
            + PHI * now.seconds_since(filter.time).max(0.0)
            + estimate.offset.abs();
        self.snapshot = SystemSnapshot {
            leap: self.leap.indicator(local_now),
            stratum: server.stratum.saturating_add(1).min(16),
            precision: self.config.precision,
            reference_id: peer.reference_id,
            reference_time: local_now,
            root_delay: NtpDuration::from_seconds_f64(server.root_delay + filter.delay),
            root_dispersion: NtpDuration::from_seconds_f64(root_dispersion),
            max_root_dispersion: NtpDuration::from_seconds(16),
            smear: self.leap.smear(),
        };
        self.synchronised_since_boot = true;
        self.last_synchronised = Some(self.snapshot);
        self.state = SyncState::Synchronised { peer: selection.system_peer };
    }

    /// No selectable source: serve the local clock if allowed, else be honestly unsynchronised.
    fn fall_back(&mut self, local_now: NtpTimestamp, reason: String) {
        let refusal = match (self.config.local_stratum, self.config.local_mode) {
            (None, _) => Some("the local clock is disabled ([local] enabled = false)"),
            (Some(_), LocalMode::Holdover) if !self.synchronised_since_boot => Some(
                "the local clock is served only once it has been synchronised since boot \
                 ([local] mode = \"holdover\")",
            ),
            _ => None,
        };
        match (refusal, self.config.local_stratum) {
            (None, Some(stratum)) => {
                self.snapshot = match self.last_synchronised {
                    // Holding over: the error bar keeps growing from the last synchronisation.
                    Some(last) => SystemSnapshot {
                        leap: LeapIndicator::NoWarning,
                        stratum,
                        reference_id: ReferenceId::LOCAL,
                        max_root_dispersion: NtpDuration::from_seconds_f64(MAX_HOLDOVER_DISPERSION),
                        ..last
                    },
                    None => SystemSnapshot::local_clock(stratum, self.config.precision, local_now),
                };
                self.state = SyncState::LocalClock { reason };
            }
            _ => {
                self.snapshot = SystemSnapshot::unsynchronised(self.config.precision);
                let why = refusal.unwrap_or_default();
                self.state = SyncState::Unsynchronised { reason: format!("{reason}; {why}") };
            }
        }
    }

    /// Follows the leap second between updates (the warning starts and the smear ends on time, not
    /// at the next poll): the leap in hand and what a synchronised server advertises of it.
    pub fn refresh_leap(&mut self, local_now: NtpTimestamp) {
        self.leap.update(local_now, self.warned);
        if matches!(self.state, SyncState::Synchronised { .. }) {
            self.snapshot.leap = self.leap.indicator(local_now);
            self.snapshot.smear = self.leap.smear();
        }
    }

    /// Keeps the never-synchronised local-clock reference fresh (air-gapped `always` mode).
    pub fn refresh_local(&mut self, local_now: NtpTimestamp) {
        if matches!(self.state, SyncState::LocalClock { .. }) && self.last_synchronised.is_none() {
            self.snapshot.reference_time = local_now;
        }
    }
}

/// Whether a selection whose offset is beyond the step threshold is agreed on: a majority of
/// the sources that may answer (`countable`) lie within half the threshold of it. Offsets within
/// the threshold need no such agreement: they are slewed, and the next selections refine them.
fn agree_on_a_step(
    selection: &Selection,
    sources: &[SourceInput],
    countable: usize,
    threshold: f64,
) -> bool {
    if selection.offset.abs() <= threshold {
        return true;
    }
    let agreeing = selection
        .survivors
        .iter()
        .chain(&selection.outliers)
        .filter_map(|&id| input(sources, id)?.view.filter)
        .filter(|f| (f.offset - selection.offset).abs() < threshold / 2.0)
        .count();
    2 * agreeing > countable
}

/// How many sources of the group in use (primary or fallback) may give time: a majority of
/// these is needed to select or to step.
fn countable_in(sources: &[SourceInput], fallback: bool) -> usize {
    sources
        .iter()
        .filter(|s| !s.noselect && s.fallback == fallback && s.view.may_give_time())
        .count()
}

/// The input of source `id`.
fn input(sources: &[SourceInput], id: SourceId) -> Option<&SourceInput> {
    sources.iter().find(|s| s.id == id)
}

/// A preferred survivor becomes the system peer, and its filtered offset alone is followed.
fn prefer(mut selection: Selection, sources: &[SourceInput]) -> Selection {
    let preferred =
        selection.survivors.iter().filter_map(|&id| input(sources, id)).find(|s| s.prefer);
    if let Some(source) = preferred
        && let Some(filter) = source.view.filter
    {
        selection.system_peer = source.id;
        selection.offset = filter.offset;
        selection.jitter = filter.jitter;
    }
    selection
}

/// The leap a majority of the survivors warn of.
fn majority_leap(sources: &[SourceInput], survivors: &[SourceId]) -> Option<LeapKind> {
    let count = |leap: LeapIndicator| {
        survivors
            .iter()
            .filter_map(|&id| input(sources, id))
            .filter(|s| s.view.server.is_some_and(|s| s.leap == leap))
            .count()
    };
    [
        (LeapIndicator::InsertSecond, LeapKind::Insert),
        (LeapIndicator::DeleteSecond, LeapKind::Delete),
    ]
    .into_iter()
    .find(|(leap, _)| 2 * count(*leap) > survivors.len())
    .map(|(_, kind)| kind)
}

/// "unreachable ×3, no answer yet" from a list of reasons.
fn summarise(reasons: &[&str]) -> String {
    let mut counted: Vec<(&str, usize)> = Vec::new();
    for reason in reasons {
        match counted.iter_mut().find(|(r, _)| r == reason) {
            Some((_, n)) => *n += 1,
            None => counted.push((reason, 1)),
        }
    }
    counted
        .iter()
        .map(|(r, n)| if *n > 1 { format!("{r} ×{n}") } else { (*r).to_owned() })
        .collect::<Vec<_>>()
        .join(", ")
}
