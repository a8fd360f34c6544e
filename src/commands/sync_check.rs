//! `syhub-ntp sync-check`: `ntpstat` for this daemon: one line, exit 0 synchronised, 1 not,
//! 2 daemon not reachable.

use super::daemon::{DaemonArgs, status_or_exit};
use crate::output::{paint, state_colour};
use clap::Args;
use std::process::ExitCode;

/// Exit code when the daemon is not synchronised.
const NOT_SYNCHRONISED: u8 = 1;

#[derive(Debug, Args)]
pub struct SyncCheckArgs {
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(args: SyncCheckArgs) -> ExitCode {
    let status = match status_or_exit(&args.daemon, args.json) {
        Ok(status) => status,
        Err(code) => return code,
    };
    let peer = status.peers.iter().find(|p| p.state == "system peer");
    let within = status.root_delay_seconds / 2.0 + status.root_dispersion_seconds;
    let poll = 1u64 << status.poll_log2.clamp(0, 40);
    if args.json {
        let json = serde_json::json!({
            "synchronised": status.synchronised,
            "status": status.status,
            "reason": status.reason,
            "stratum": status.stratum,
            "reference": peer.map(|p| p.address.clone()),
            "within_seconds": status.synchronised.then_some(within),
            "poll_seconds": poll,
        });
        println!("{json}");
    } else if status.synchronised {
        let to =
            peer.map_or(status.reference_id.clone(), |p| format!("{} ({})", p.address, p.name));
        println!(
            "{} to {to} at stratum {}, time correct to within {:.0} ms, polling every {poll} s",
            paint("synchronised", state_colour(&status.status)),
            status.stratum,
            (within * 1e3).ceil()
        );
    } else {
        let reason = status.reason.as_deref().unwrap_or("no reason given");
        let word = if status.status == "local clock" {
            format!("unsynchronised (serving the local clock at stratum {})", status.stratum)
        } else {
            "unsynchronised".to_owned()
        };
        println!("{}: {reason}", paint(&word, state_colour(&status.status)));
    }
    if status.synchronised { ExitCode::SUCCESS } else { ExitCode::from(NOT_SYNCHRONISED) }
}
