//! `syhub-ntp clients`: the hub's devices from the daemon's bounded client log: which keep time,
//! which are off and by how much, which stopped asking, and how each asks — the local, safe
//! replacement for ntpd's monlist.

use super::daemon::{DaemonArgs, fail_unreachable, runtime};
use crate::output::{Colour, Table, age, duration, outln};
use clap::Args;
use std::process::ExitCode;
use syhub_ntp_client::request_clients;
use syhub_ntp_status::{ClientStatus, DevicesSummary};

#[derive(Debug, Args)]
pub(crate) struct ClientsArgs {
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Print the devices as JSON (sorted as the table: off, silent, unknown, in sync)
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ClientsArgs) -> ExitCode {
    let socket = match args.daemon.socket() {
        Ok(socket) => socket,
        Err(code) => return code,
    };
    let clients = match runtime().block_on(request_clients(&socket)) {
        Ok(clients) => clients,
        Err(error) => return fail_unreachable(error, args.json),
    };
    if args.json {
        outln!("{}", serde_json::to_string(&clients).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    if clients.is_empty() {
        outln!("(no clients yet)");
        return ExitCode::SUCCESS;
    }
    let summary = DevicesSummary::of(&clients);
    let counts: Vec<String> =
        summary.by_state().iter().map(|(state, count)| format!("{count} {state}")).collect();
    outln!("{} device(s): {}", summary.devices, counts.join(", "));
    let mut table = Table::new(
        &["device", "state", "clock", "last seen", "every", "v/mode", "requests", "limited"],
        &["last seen", "every", "requests", "limited"],
    );
    for client in &clients {
        table.row(row(client), Some(colour(&client.state)));
    }
    table.print();
    outln!(
        "clock: the device's clock as seen here (its request's transmit time against ours); it \
         includes the one-way network delay"
    );
    ExitCode::SUCCESS
}

fn row(client: &ClientStatus) -> Vec<String> {
    let device = match &client.name {
        Some(name) => format!("{name} ({})", client.address),
        None => client.address.clone(),
    };
    let state = match (client.state.as_str(), client.describe_error()) {
        ("off", Some(error)) => format!("off by {error}"),
        (state, _) => state.to_owned(),
    };
    let clock = client.describe_error().unwrap_or_else(|| "-".to_owned());
    let every = if client.interval_seconds > 0.0 {
        duration(client.interval_seconds)
    } else {
        "once".to_owned()
    };
    vec![
        device,
        state,
        clock,
        age(Some(f64::from(client.last_seen_seconds_ago))),
        every,
        format!("{}/{}", client.version, mode_name(client.mode)),
        client.requests.to_string(),
        client.rate_limited.to_string(),
    ]
}

fn mode_name(mode: u8) -> &'static str {
    match mode {
        1 => "sym-active",
        2 => "sym-passive",
        3 => "client",
        4 => "server",
        6 => "control",
        7 => "private",
        _ => "other",
    }
}

fn colour(state: &str) -> Colour {
    match state {
        "in sync" => Colour::Green,
        "off" => Colour::Red,
        "silent" => Colour::Yellow,
        _ => Colour::Dim,
    }
}
