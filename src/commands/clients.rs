//! `syhub-ntp clients`: the busiest clients served recently, from the daemon's bounded table —
//! the local, safe replacement for ntpd's monlist.

use super::daemon::{DaemonArgs, fail_unreachable, runtime};
use crate::output::{Table, age};
use clap::Args;
use std::process::ExitCode;
use syhub_ntp_client::request_clients;

#[derive(Debug, Args)]
pub(crate) struct ClientsArgs {
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Print the clients as JSON
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
        println!("{}", serde_json::to_string(&clients).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let mut table = Table::new(
        &["address", "requests", "rate-limited", "last seen", "first seen"],
        &["requests", "rate-limited", "last seen", "first seen"],
    );
    for client in &clients {
        table.row(
            vec![
                client.address.clone(),
                client.requests.to_string(),
                client.rate_limited.to_string(),
                age(Some(f64::from(client.last_seen_seconds_ago))),
                age(Some(f64::from(client.first_seen_seconds_ago))),
            ],
            None,
        );
    }
    table.print();
    if clients.is_empty() {
        println!("(no clients yet)");
    }
    ExitCode::SUCCESS
}
