//! `syhub-ntp peers`: one line per source, like `ntpq -p` with a count of the answers refused;
//! pools show their member servers; a name without a server yet shows as a `.POOL.` or `.DNS.`
//! row, and why under the table.

use super::daemon::{DaemonArgs, status_or_exit};
use crate::output::{Colour, Table, age, millis, outln};
use clap::Args;
use std::process::ExitCode;
use syhub_ntp_status::SourceStatus;

#[derive(Debug, Args)]
pub(crate) struct PeersArgs {
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Print the sources as JSON
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: PeersArgs) -> ExitCode {
    let status = match status_or_exit(&args.daemon, args.json) {
        Ok(status) => status,
        Err(code) => return code,
    };
    if args.json {
        outln!("{}", serde_json::to_string(&status.peers).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let mut table = Table::new(
        &[
            " remote", "refid", "st", "t", "when", "poll", "reach", "delay", "offset", "jitter",
            "refused",
        ],
        &["st", "when", "poll", "reach", "delay", "offset", "jitter", "refused"],
    );
    let mut pools_shown: Vec<&str> = Vec::new();
    for peer in &status.peers {
        if peer.kind == "pool" && !pools_shown.contains(&peer.name.as_str()) {
            pools_shown.push(&peer.name);
            let poll = format!("{}", 1u64 << peer.poll_log2.clamp(0, 40));
            table.row(
                vec![
                    format!(" {}", peer.name),
                    ".POOL.".into(),
                    "16".into(),
                    "p".into(),
                    "-".into(),
                    poll,
                    "0".into(),
                    "0.000".into(),
                    "0.000".into(),
                    "0.000".into(),
                    "0".into(),
                ],
                Some(Colour::Dim),
            );
        }
        // A pool without members is its `.POOL.` row alone.
        if peer.has_server() || peer.kind != "pool" {
            table.row(row(peer), colour(peer));
        }
    }
    table.print();
    if status.peers.is_empty() {
        outln!("(no sources)");
    }
    for peer in status.peers.iter().filter(|p| !p.has_server()) {
        let reason = peer.detail.as_deref().unwrap_or("no reason given");
        println!("{} {}: {reason}", peer.name, peer.state);
    }
    ExitCode::SUCCESS
}

fn row(peer: &SourceStatus) -> Vec<String> {
    let address = peer
        .address
        .rsplit_once(':')
        .map_or(peer.address.as_str(), |(host, _)| host)
        .trim_matches(['[', ']']);
    // Servers show their configured name; pool members, which share the pool's, their address.
    let remote = if (peer.kind == "pool" && peer.has_server())
        || peer.name.parse::<std::net::IpAddr>().is_ok()
    {
        address
    } else {
        peer.name.as_str()
    };
    let refid = match (&peer.reference_id, peer.stratum) {
        (Some(id), Some(0 | 1)) => format!(".{id}."),
        (Some(id), _) => id.clone(),
        (None, _) => ".INIT.".into(),
    };
    vec![
        format!("{}{}", peer.tally, remote),
        refid,
        peer.stratum.map_or("16".into(), |s| s.to_string()),
        "u".into(),
        age(peer.last_sample_seconds_ago),
        format!("{}", 1u64 << peer.poll_log2.clamp(0, 40)),
        peer.reach.clone(),
        millis(peer.delay_seconds),
        millis(peer.offset_seconds),
        millis(peer.jitter_seconds),
        peer.refused_answers.to_string(),
    ]
}

fn colour(peer: &SourceStatus) -> Option<Colour> {
    match peer.tally.as_str() {
        "*" => Some(Colour::Green),
        "x" => Some(Colour::Red),
        " " => Some(Colour::Dim),
        _ => None,
    }
}
