//! systemd units through `systemctl`: offline under another root (`--root`), and also started and
//! stopped on a running system booted with systemd.

use crate::host::Host;
use crate::manifest::Change;

/// Time services that would fight syhub-ntp over the clock and port 123.
pub const CONFLICTING: [&str; 4] =
    ["systemd-timesyncd.service", "ntp.service", "ntpsec.service", "chrony.service"];

/// Whether units can be started and stopped: the live system, booted with systemd.
pub fn systemd_running(host: &Host) -> bool {
    host.is_live() && std::path::Path::new("/run/systemd/system").exists()
}

pub fn is_enabled(host: &Host, unit: &str) -> bool {
    host.query_rooted("systemctl", &["is-enabled", unit])
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "enabled")
}

pub fn is_active(host: &Host, unit: &str) -> bool {
    systemd_running(host)
        && host
            .query("systemctl", &["is-active", unit])
            .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "active")
}

/// Enables `unit`, and starts it on a running system.
pub fn enable(host: &mut Host, unit: &str) -> std::io::Result<Change> {
    host.run_rooted("systemctl", &["enable", unit])?;
    let started = systemd_running(host);
    if started {
        host.run("systemctl", &["daemon-reload"])?;
        host.run("systemctl", &["restart", unit])?;
    }
    Ok(Change::Enabled { unit: unit.to_owned(), started })
}

/// Stops (when running) and disables `unit`.
pub fn disable(host: &mut Host, unit: &str) -> std::io::Result<Change> {
    let was_active = is_active(host, unit);
    if was_active {
        host.run("systemctl", &["stop", unit])?;
    }
    host.run_rooted("systemctl", &["disable", unit])?;
    Ok(Change::Disabled { unit: unit.to_owned(), was_active })
}

/// Undoes `enable`.
pub fn undo_enable(host: &mut Host, unit: &str, started: bool) -> std::io::Result<()> {
    if started && systemd_running(host) {
        host.run("systemctl", &["stop", unit])?;
    }
    host.run_rooted("systemctl", &["disable", unit])
}

/// Undoes `disable`: enabled again, and started again if it was running.
pub fn undo_disable(host: &mut Host, unit: &str, was_active: bool) -> std::io::Result<()> {
    host.run_rooted("systemctl", &["enable", unit])?;
    if was_active && systemd_running(host) {
        host.run("systemctl", &["start", unit])?;
    }
    Ok(())
}
