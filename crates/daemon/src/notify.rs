//! systemd's notification protocol, for `Type=notify` units: `READY=1` once the daemon serves,
//! `WATCHDOG=1` while its serving thread lives, a `STATUS=` line that follows synchronisation, and
//! `STOPPING=1` at the end. Without `$NOTIFY_SOCKET` (not started by systemd) it does nothing.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use syhub_ntp_status::{StatusSnapshot, status_line};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Where notifications go, read once from the environment at start.
#[derive(Debug)]
pub(crate) struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    /// systemd's watchdog timeout, when it asks for pings.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket) and `$WATCHDOG_USEC`
    /// (honoured when `$WATCHDOG_PID` is unset or ours).
    pub(crate) fn from_environment() -> Self {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let path = path.to_string_lossy().into_owned();
            let address = match path.strip_prefix('@') {
                Some(name) => abstract_address(name)?,
                None => SocketAddr::from_pathname(&path).ok()?,
            };
            Some((UnixDatagram::unbound().ok()?, address))
        });
        let ours = std::env::var("WATCHDOG_PID")
            .map_or(true, |pid| pid.trim() == std::process::id().to_string());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|usec| usec.trim().parse::<u64>().ok())
            .filter(|&usec| usec > 0 && ours)
            .map(Duration::from_micros);
        Self { target, watchdog }
    }

    /// Sends one notification (`KEY=value` lines); failures are ignored, as systemd's own
    /// client does.
    pub(crate) fn notify(&self, state: &str) {
        if let Some((socket, address)) = &self.target {
            let _ = socket.send_to_addr(state.as_bytes(), address);
        }
    }

    pub(crate) fn is_active(&self) -> bool {
        self.target.is_some()
    }
}

#[cfg(target_os = "linux")]
fn abstract_address(name: &str) -> Option<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name.as_bytes()).ok()
}

/// Keeps systemd informed until cancelled: a watchdog ping at half the timeout while the serving
/// thread is `alive` (a dead serving thread stops the pings, and systemd restarts the daemon), and
/// a `STATUS=` line whenever the synchronisation state or reference changes.
pub(crate) async fn keep_informed(
    notifier: Arc<Notifier>,
    alive: Arc<AtomicBool>,
    mut status: watch::Receiver<StatusSnapshot>,
    cancel: CancellationToken,
) {
    if !notifier.is_active() {
        return;
    }
    let ping_every = notifier.watchdog.map(|timeout| timeout / 2);
    let mut ping = tokio::time::interval(ping_every.unwrap_or(Duration::from_secs(3600)));
    let mut last_line = String::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ping.tick() => {
                if ping_every.is_some() && alive.load(Ordering::Relaxed) {
                    notifier.notify("WATCHDOG=1");
                }
            }
            changed = status.changed() => {
                if changed.is_err() {
                    return;
                }
                let line = status_line(&status.borrow_and_update());
                if line != last_line {
                    notifier.notify(&format!("STATUS={line}"));
                    last_line = line;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("syhub-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            target: Some((
                UnixDatagram::unbound().unwrap(),
                SocketAddr::from_pathname(&path).unwrap(),
            )),
            watchdog: None,
        };
        notifier.notify("READY=1");
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_a_socket_nothing_happens() {
        let notifier = Notifier { target: None, watchdog: None };
        notifier.notify("READY=1");
        assert!(!notifier.is_active());
    }
}
