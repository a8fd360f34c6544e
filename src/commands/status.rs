//! `syhub-ntp status`: the running daemon's synchronisation state in plain words, like
//! `chronyc tracking` or `ntpq -c rv`.

use super::daemon::{DaemonArgs, status_or_exit};
use crate::output::{duration, outln, paint, state_colour};
use clap::Args;
use std::process::ExitCode;
use syhub_ntp_status::{StatusSnapshot, offset_text};

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Print the status as JSON
    #[arg(long)]
    json: bool,
}

/// The service's state as systemd sees it, on a system booted with systemd.
fn service_state() -> Option<String> {
    if !std::path::Path::new("/run/systemd/system").exists() {
        return None;
    }
    let output = std::process::Command::new("systemctl")
        .args(["is-active", "syhub-ntp.service"])
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

pub(crate) fn run(args: StatusArgs) -> ExitCode {
    let service = service_state();
    if let Some(service) = service.as_ref().filter(|_| !args.json) {
        outln!("{:16} {service} (systemd)", "service");
    }
    let status = match status_or_exit(&args.daemon, args.json) {
        Ok(status) => status,
        Err(code) => return code,
    };
    if args.json {
        let mut value = serde_json::to_value(&status).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert("service".into(), service.into());
        }
        outln!("{value}");
    } else {
        print_status(&status);
    }
    ExitCode::SUCCESS
}

fn print_status(status: &StatusSnapshot) {
    let state = paint(&status.status, state_colour(&status.status));
    let state = match &status.reason {
        Some(reason) => format!("{state} ({reason})"),
        None => state,
    };
    let peer = status.peers.iter().find(|p| p.state == "system peer");
    let lines = [
        ("state", state),
        ("stratum", status.stratum.to_string()),
        (
            "reference",
            match peer {
                // The configured name when it is one; an address says it all already.
                Some(peer) if peer.name.parse::<std::net::IpAddr>().is_err() => {
                    format!("{} ({})", status.reference_id, peer.name)
                }
                _ => status.reference_id.clone(),
            },
        ),
        ("system offset", offset_text(status)),
        ("jitter", format!("{:.6} s", status.jitter_seconds)),
        ("frequency", format!("{:+.3} ppm", status.frequency_ppm)),
        ("root delay", format!("{:.6} s", status.root_delay_seconds)),
        ("root dispersion", format!("{:.6} s", status.root_dispersion_seconds)),
        (
            "leap",
            match &status.leap_second {
                Some(next) => format!("{}; next: {next}", status.leap),
                None => status.leap.clone(),
            },
        ),
        ("leap-seconds list", status.leap_file.clone().unwrap_or_else(|| "none".into())),
        ("poll interval", format!("{} s", 1u64 << status.poll_log2.clamp(0, 40))),
        (
            "last update",
            status
                .last_update_seconds_ago
                .map_or("never".into(), |s| format!("{} ago", duration(s))),
        ),
        ("clock mode", status.clock_mode.clone()),
        ("uptime", duration(status.uptime_seconds)),
        (
            "requests",
            format!(
                "{} answered of {} received ({} ignored, {} denied, {} rate-limited)",
                status.requests.answered,
                status.requests.received,
                status.requests.ignored,
                status.requests.denied,
                status.requests.rate_limited
            ),
        ),
    ];
    for (label, value) in lines {
        outln!("{label:<16} {value}");
    }
}
