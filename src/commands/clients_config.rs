//! `syhub-ntp clients-config`: settings to paste into each kind of client, filled with the hub's
//! LAN address.

use crate::output::{out, outln};
use clap::Args;
use std::process::ExitCode;
use syhub_ntp_ops::clients_config::{HubAddress, default_address, settings};

#[derive(Debug, Args)]
pub(crate) struct ClientsConfigArgs {
    /// The hub's address or host name as clients reach it [default: its private IPv4 address on
    /// the LAN, container and VM bridges and VPNs left out]
    #[arg(long, value_name = "ADDRESS_OR_NAME")]
    address: Option<HubAddress>,
    /// Only this kind of client (chrony, ntpd, timesyncd, windows, arduino-esp32, esp-idf,
    /// arduino-ntpclient, docker, dnsmasq)
    #[arg(long)]
    only: Option<String>,
    /// Print as JSON
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ClientsConfigArgs) -> ExitCode {
    let address = match args.address.or_else(|| {
        default_address(&syhub_ntp_sys::interfaces::named_addresses()).map(HubAddress::Ip)
    }) {
        Some(address) => address,
        None => return super::fail("no LAN address found on this hub: give one with --address"),
    };
    let mut chosen = settings(&address);
    if let Some(only) = &args.only {
        chosen.retain(|s| s.key == only);
        if chosen.is_empty() {
            return super::fail(format!("no client kind {only:?}: see --help for the list"));
        }
    }
    if args.json {
        let list: Vec<_> = chosen
            .iter()
            .map(|s| serde_json::json!({ "key": s.key, "title": s.title, "where": s.where_, "text": s.text }))
            .collect();
        outln!("{}", serde_json::json!({ "address": address.to_string(), "clients": list }));
        return ExitCode::SUCCESS;
    }
    for (index, setting) in chosen.iter().enumerate() {
        if index > 0 {
            outln!();
        }
        outln!("== {} ({})", setting.title, setting.key);
        outln!("-- {}", setting.where_);
        out!("{}", setting.text);
    }
    ExitCode::SUCCESS
}
