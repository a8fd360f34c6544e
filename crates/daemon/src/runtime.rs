//! Starting and stopping the daemon: ordered start (clock, sockets, tasks), one cancellation token,
//! and a clean stop in reverse on SIGTERM or SIGINT.

use crate::config::{ClockMode, Config};
use crate::net::{BindError, TimestampedSocket, bind_server_socket};
use crate::server::{ServerCounters, serve};
use crate::system::{LocalReference, run_system_task};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use syhub_ntp_clock::{Clock, SteerPermission, SystemClock, measure_precision, steer_permission};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What the daemon actually does to the system clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockControl {
    Steering,
    Observing,
    /// Configured to steer, but the kernel refuses (no CAP_SYS_TIME): serving as in observe mode.
    SteeringRefused(String),
}

impl ClockControl {
    fn resolve(mode: ClockMode, permission: SteerPermission) -> Self {
        match (mode, permission) {
            (ClockMode::Observe, _) => Self::Observing,
            (ClockMode::Steer, SteerPermission::Permitted) => Self::Steering,
            (ClockMode::Steer, SteerPermission::Refused(why)) => Self::SteeringRefused(why),
        }
    }
}

impl fmt::Display for ClockControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Steering => write!(f, "steer"),
            Self::Observing => write!(f, "observe"),
            Self::SteeringRefused(_) => write!(f, "observe (steering refused by the kernel)"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("no socket could be opened for [server] listen")]
    NothingBound,
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Runs the daemon on a single-threaded runtime until SIGTERM or SIGINT.
pub fn run_blocking(config: Config) -> Result<(), RunError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    runtime.block_on(run(config))
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config: Config) -> Result<(), RunError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let precision = measure_precision(clock.as_ref());
    let clock_control = ClockControl::resolve(config.clock.mode, steer_permission());
    if let ClockControl::SteeringRefused(why) = &clock_control {
        tracing::warn!(
            "[clock] mode is \"steer\" but the kernel will not let us steer the system clock: {why}. \
             Serving as in observe mode: the clock is measured and reported, never changed."
        );
    }

    let sockets = bind_all(config.server.listen.as_slice())?;
    let addresses: Vec<String> =
        sockets.iter().filter_map(|s| s.local_addr().ok()).map(|a| a.to_string()).collect();

    let cancel = CancellationToken::new();
    let reference = LocalReference::from_config(&config, precision);
    let (publish, system) = watch::channel(reference.snapshot(clock.as_ref()));
    let counters = Arc::new(ServerCounters::default());
    let mut tasks = JoinSet::new();
    tasks.spawn(run_system_task(reference, clock.clone(), publish, cancel.clone()));
    for socket in sockets {
        tasks.spawn(serve(socket, system.clone(), clock.clone(), counters.clone(), cancel.clone()));
    }
    let snapshot = *system.borrow();
    tracing::info!(
        "serving NTP on {}; stratum {}, reference {}, clock mode {clock_control}, precision 2^{precision} s",
        if addresses.is_empty() { "no address".to_owned() } else { addresses.join(", ") },
        snapshot.stratum,
        snapshot.reference_id.display_for_stratum(snapshot.stratum),
    );

    wait_for_shutdown_signal().await;
    cancel.cancel();
    while tasks.join_next().await.is_some() {}
    tracing::info!(
        received = counters.received.load(Ordering::Relaxed),
        answered = counters.answered.load(Ordering::Relaxed),
        ignored = counters.ignored.load(Ordering::Relaxed),
        "stopped"
    );
    Ok(())
}

/// Binds every listen address. Permission and address-in-use errors stop the start; an address or
/// family this host lacks (no IPv6) is skipped with a warning as long as something else is bound.
fn bind_all(addresses: &[std::net::SocketAddr]) -> Result<Vec<TimestampedSocket>, RunError> {
    let mut sockets = Vec::new();
    let mut skipped = 0;
    for &address in addresses {
        match bind_server_socket(address) {
            Ok(socket) => sockets.push(socket),
            Err(error @ BindError::Unavailable { .. }) => {
                tracing::warn!("{error}; skipping it");
                skipped += 1;
            }
            Err(error) => return Err(error.into()),
        }
    }
    if sockets.is_empty() && skipped > 0 {
        return Err(RunError::NothingBound);
    }
    Ok(sockets)
}

async fn wait_for_shutdown_signal() {
    let (Ok(mut terminate), Ok(mut interrupt)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    let which = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    tracing::info!("{which} received, shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steer_falls_back_to_observe_when_refused() {
        let refused = SteerPermission::Refused("no CAP_SYS_TIME".into());
        assert_eq!(
            ClockControl::resolve(ClockMode::Steer, refused.clone()),
            ClockControl::SteeringRefused("no CAP_SYS_TIME".into())
        );
        assert_eq!(ClockControl::resolve(ClockMode::Observe, refused), ClockControl::Observing);
        assert_eq!(
            ClockControl::resolve(ClockMode::Steer, SteerPermission::Permitted),
            ClockControl::Steering
        );
    }
}
