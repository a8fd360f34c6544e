//! The system state the server advertises, published to the serving tasks through a watch channel,
//! and the task that keeps the local-clock reference fresh.

use crate::config::Config;
use std::sync::Arc;
use std::time::Duration;
use syhub_ntp_clock::Clock;
use syhub_ntp_proto::server::SystemSnapshot;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the local clock is re-declared as the reference while it is served, which bounds the
/// root dispersion clients see (16 s at 15 ppm: 240 µs).
const LOCAL_REFRESH_INTERVAL: Duration = Duration::from_secs(16);

/// What the system serves from until upstream synchronisation exists: the local clock when enabled,
/// else honestly nothing.
#[derive(Debug, Clone, Copy)]
pub struct LocalReference {
    /// `None` when `[local] enabled = false`.
    pub stratum: Option<u8>,
    pub precision: i8,
}

impl LocalReference {
    pub fn from_config(config: &Config, precision: i8) -> Self {
        Self { stratum: config.local.enabled.then(|| config.local.stratum.get()), precision }
    }

    /// The snapshot to serve at `clock`'s current time.
    pub fn snapshot(&self, clock: &dyn Clock) -> SystemSnapshot {
        match self.stratum {
            Some(stratum) => SystemSnapshot::local_clock(stratum, self.precision, clock.now()),
            None => SystemSnapshot::unsynchronised(self.precision),
        }
    }
}

/// Keeps the published snapshot current until cancelled.
pub async fn run_system_task(
    reference: LocalReference,
    clock: Arc<dyn Clock>,
    publish: watch::Sender<SystemSnapshot>,
    cancel: CancellationToken,
) {
    if reference.stratum.is_none() {
        // Nothing changes while unsynchronised with no local clock.
        cancel.cancelled().await;
        return;
    }
    let mut ticks = tokio::time::interval(LOCAL_REFRESH_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticks.tick() => { publish.send_replace(reference.snapshot(clock.as_ref())); }
        }
    }
}
