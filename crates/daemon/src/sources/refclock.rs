//! One reference clock: reads its driver (gpsd's shared memory, a SOCK socket, a PPS device)
//! once a second, feeds the samples to its protocol-core state, and reports each poll to the
//! system task like a network source.

use super::task::{SourceCommands, SourceReport, StepsSeen};
use crate::timebase::Timebase;
use std::sync::Arc;
use std::time::Duration;
use syhub_ntp_clock::Clock;
use syhub_ntp_proto::NtpTimestamp;
use syhub_ntp_proto::packet::LeapIndicator;
use syhub_ntp_proto::source::{RefclockSource, SourceId, pps_offset};
use syhub_ntp_proto::system::SourceEvent;
use syhub_ntp_proto::time::Monotonic;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// How often the drivers are read. Every sample carries its own local timestamp, so reading late
/// costs no accuracy; gpsd delivers one sample a second.
const READ_INTERVAL: Duration = Duration::from_secs(1);

/// What a driver delivered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Reading {
    /// A time sample: reference minus local clock at `local`.
    Sample { local: NtpTimestamp, offset: f64, leap: LeapIndicator },
    /// A PPS edge at `local` on the local clock: the start of some true second.
    Edge { local: NtpTimestamp },
}

/// A reference clock's input, opened (with whatever privilege it needs) before the daemon drops
/// its privileges.
pub(crate) trait RefclockDriver: Send {
    /// Everything delivered since the last call, without waiting. An error is reported as the
    /// source's problem; the driver is asked again a second later.
    fn read(&mut self) -> Result<Vec<Reading>, String>;
}

/// Everything a reference clock's task starts with.
pub(crate) struct RefclockTaskSetup {
    pub id: SourceId,
    pub driver: Box<dyn RefclockDriver>,
    pub source: RefclockSource,
    /// For a PPS clock: the offset of the source that numbers its seconds (`None` while that
    /// source has none).
    pub pair: Option<watch::Receiver<Option<f64>>>,
    pub clock: Arc<dyn Clock>,
    /// The time base of the core's monotonic time.
    pub timebase: Timebase,
    pub reports: mpsc::Sender<SourceReport>,
    pub commands: watch::Receiver<SourceCommands>,
    /// Stops the task.
    pub cancel: CancellationToken,
}

/// Starts the task of a reference clock. It stops when `setup.cancel` fires.
pub(crate) fn spawn_refclock(setup: RefclockTaskSetup) {
    let RefclockTaskSetup { id, driver, source, pair, clock, timebase, reports, commands, cancel } =
        setup;
    let mut task = RefclockTask {
        id,
        driver,
        source,
        pair,
        clock,
        timebase,
        reports,
        steps_seen: StepsSeen::at_start(&commands),
        commands,
        unpaired_told: false,
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = task.run() => {}
        }
    });
}

struct RefclockTask {
    id: SourceId,
    driver: Box<dyn RefclockDriver>,
    source: RefclockSource,
    pair: Option<watch::Receiver<Option<f64>>>,
    clock: Arc<dyn Clock>,
    timebase: Timebase,
    reports: mpsc::Sender<SourceReport>,
    commands: watch::Receiver<SourceCommands>,
    steps_seen: StepsSeen,
    /// Pulses arrived with no pair to number them: said once.
    unpaired_told: bool,
}

impl RefclockTask {
    fn now(&self) -> Monotonic {
        self.timebase.now()
    }

    async fn run(&mut self) {
        let mut reads = tokio::time::interval(READ_INTERVAL);
        reads.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut problem: Option<String> = None;
        loop {
            let due = self.timebase.instant_at(self.source.next_poll_at());
            tokio::select! {
                _ = reads.tick() => {
                    let now = self.now();
                    match self.driver.read() {
                        Ok(readings) => {
                            problem = None;
                            self.take(now, &readings);
                        }
                        Err(error) => problem = Some(error),
                    }
                }
                _ = tokio::time::sleep_until(due) => {
                    let measurement = self.source.poll(self.now());
                    let event = match (measurement, &problem) {
                        (Some(measurement), _) => SourceEvent::Sample(measurement),
                        (None, Some(error)) => SourceEvent::Failed(error.clone()),
                        (None, None) => SourceEvent::Polled,
                    };
                    let report = SourceReport { id: self.id, view: self.source.view(), event };
                    if self.reports.send(report).await.is_err() {
                        return;
                    }
                }
                changed = self.commands.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let commands = *self.commands.borrow_and_update();
                    if let Some(step) = self.steps_seen.unseen(&commands) {
                        self.source.clock_stepped(step);
                    }
                }
            }
        }
    }

    /// Hands the readings to the core, each placed in monotonic time by its age on the clock.
    fn take(&mut self, now: Monotonic, readings: &[Reading]) {
        let local_now = self.clock.now();
        let coarse = self.pair.as_ref().and_then(|pair| *pair.borrow());
        for reading in readings {
            let (local, offset, leap) = match *reading {
                Reading::Sample { local, offset, leap } => (local, offset, leap),
                Reading::Edge { .. } if self.pair.is_none() => {
                    if !self.unpaired_told {
                        self.unpaired_told = true;
                        tracing::warn!(
                            "reference clock {}: pulses arrive but nothing numbers their seconds: \
                             set pair = \"<refid of the GPS source>\"",
                            self.source.config().reference_id.display_for_stratum(0)
                        );
                    }
                    continue;
                }
                Reading::Edge { local } => match coarse.and_then(|c| pps_offset(local, c)) {
                    Some(offset) => (local, offset, LeapIndicator::NoWarning),
                    None => continue,
                },
            };
            let age = (local_now - local).to_seconds_f64().clamp(0.0, 60.0);
            let at = now - Duration::from_secs_f64(age);
            self.source.add_sample(at, offset, leap);
        }
    }
}
