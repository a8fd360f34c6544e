//! `syhub-ntp sync-check`: `ntpstat` for this daemon: one line, exit 0 synchronised, 1 not,
//! 2 daemon not reachable.

use super::daemon::{DaemonArgs, status_or_exit};
use crate::output::{outln, paint, state_colour};
use clap::Args;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use syhub_ntp_client::request_status;
use syhub_ntp_status::StatusSnapshot;

/// Exit code when the daemon is not synchronised.
const NOT_SYNCHRONISED: u8 = 1;

#[derive(Debug, Args)]
pub(crate) struct SyncCheckArgs {
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
    /// Wait up to this many seconds for synchronisation (and for the daemon to come up) before
    /// answering, like `chronyc waitsync`; what systemd's time-sync.target waits on
    #[arg(long, value_name = "SECONDS")]
    wait: Option<u64>,
}

pub(crate) fn run(args: SyncCheckArgs) -> ExitCode {
    let status = match args.wait {
        Some(seconds) => wait_for_sync(&args, Duration::from_secs(seconds)),
        None => status_or_exit(&args.daemon, args.json),
    };
    let status = match status {
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
        outln!("{json}");
    } else if status.synchronised {
        let to =
            peer.map_or(status.reference_id.clone(), |p| format!("{} ({})", p.address, p.name));
        outln!(
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
        outln!("{}: {reason}", paint(&word, state_colour(&status.status)));
    }
    if status.synchronised { ExitCode::SUCCESS } else { ExitCode::from(NOT_SYNCHRONISED) }
}

/// Asks once a second until the daemon is synchronised or `limit` has passed; the last answer
/// (or, if the daemon never answered, its error) decides.
fn wait_for_sync(args: &SyncCheckArgs, limit: Duration) -> Result<StatusSnapshot, ExitCode> {
    let socket = args.daemon.socket()?;
    let runtime = super::daemon::runtime();
    let deadline = Instant::now() + limit;
    loop {
        let answer = runtime.block_on(request_status(&socket));
        let done = answer.as_ref().is_ok_and(|status| status.synchronised);
        if done || Instant::now() >= deadline {
            return answer.map_err(|error| super::daemon::fail_unreachable(error, args.json));
        }
        std::thread::sleep(Duration::from_secs(1).min(deadline - Instant::now()));
    }
}
