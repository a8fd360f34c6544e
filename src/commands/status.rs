//! `syhub-ntp status`: the running daemon's synchronisation status, read over its control socket.

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use syhub_ntp_daemon::config::Config;
use syhub_ntp_daemon::control::request_status;
use syhub_ntp_daemon::status::StatusSnapshot;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Config file whose [control] socket to use [default: /etc/syhub-ntp/config.toml, or the embedded default]
    #[arg(long, short, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Control socket to use (overrides the config)
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print the status as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(args: StatusArgs) -> ExitCode {
    let socket = match args.socket {
        Some(socket) => socket,
        None => match Config::load(args.config.as_deref()) {
            Ok(loaded) => loaded.config.control.socket,
            Err(error) => return super::fail(error),
        },
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return super::fail(format!("cannot start the runtime: {error}")),
    };
    match runtime.block_on(request_status(&socket)) {
        Ok(status) => {
            if args.json {
                println!("{}", serde_json::to_string(&status).unwrap_or_default());
            } else {
                print_status(&status);
            }
            ExitCode::SUCCESS
        }
        Err(error) => super::fail(error),
    }
}

fn print_status(status: &StatusSnapshot) {
    let state = match &status.reason {
        Some(reason) => format!("{} ({reason})", status.state),
        None => status.state.clone(),
    };
    println!("state            {state}");
    println!("stratum          {}", status.stratum);
    println!("reference        {}", status.reference_id);
    println!(
        "offset           {:+.6} s ± {:.6} s",
        status.offset_seconds, status.offset_uncertainty_seconds
    );
    println!("frequency        {:+.3} ppm", status.frequency_ppm);
    println!("jitter           {:.6} s", status.jitter_seconds);
    println!("root delay       {:.6} s", status.root_delay_seconds);
    println!("root dispersion  {:.6} s", status.root_dispersion_seconds);
    println!("leap             {}", status.leap);
    println!("poll interval    {} s", 1u64 << status.poll_log2.clamp(0, 20));
    match status.last_update_seconds_ago {
        Some(ago) => println!("last update      {ago:.0} s ago"),
        None => println!("last update      never"),
    }
    println!("clock mode       {}", status.clock_mode);
    println!("uptime           {:.0} s", status.uptime_seconds);
    println!(
        "requests served  {} of {} received",
        status.requests.answered, status.requests.received
    );
    for source in &status.sources {
        let offset = source.offset_seconds.map_or("-".to_owned(), |o| format!("{o:+.6} s"));
        let detail = source.detail.as_deref().map_or(String::new(), |d| format!(" ({d})"));
        println!(
            "source           {} {} {}: {offset}{detail}",
            source.name, source.address, source.state
        );
    }
}
