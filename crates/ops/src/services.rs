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

/// `args` for systemctl, offline under the host's root when it is not the live system.
fn offline_args(host: &Host, args: &[&str]) -> Vec<String> {
    let mut full = Vec::new();
    if !host.is_live() {
        full.push("--root".to_owned());
        full.push(host.root().to_string_lossy().into_owned());
    }
    full.extend(args.iter().map(|a| (*a).to_owned()));
    full
}

fn run_systemctl(host: &mut Host, args: &[&str]) -> std::io::Result<()> {
    let full = offline_args(host, args);
    let refs: Vec<&str> = full.iter().map(String::as_str).collect();
    host.run("systemctl", &refs)
}

pub fn is_enabled(host: &Host, unit: &str) -> bool {
    let full = offline_args(host, &["is-enabled", unit]);
    let refs: Vec<&str> = full.iter().map(String::as_str).collect();
    host.query("systemctl", &refs)
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
    run_systemctl(host, &["enable", unit])?;
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
    run_systemctl(host, &["disable", unit])?;
    Ok(Change::Disabled { unit: unit.to_owned(), was_active })
}

/// Undoes `enable`.
pub fn undo_enable(host: &mut Host, unit: &str, started: bool) -> std::io::Result<()> {
    if started && systemd_running(host) {
        host.run("systemctl", &["stop", unit])?;
    }
    run_systemctl(host, &["disable", unit])
}

/// Undoes `disable`: enabled again, and started again if it was running.
pub fn undo_disable(host: &mut Host, unit: &str, was_active: bool) -> std::io::Result<()> {
    run_systemctl(host, &["enable", unit])?;
    if was_active && systemd_running(host) {
        host.run("systemctl", &["start", unit])?;
    }
    Ok(())
}
