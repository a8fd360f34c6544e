//! `syhub-ntp install` and `uninstall`: set the hub up as a service, and take it down again
//! exactly as far as the install manifest says.

use crate::output::outln;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use syhub_ntp_ops::Host;
use syhub_ntp_ops::install::{InstallOptions, install, uninstall};

#[derive(Debug, Args)]
pub(crate) struct InstallArgs {
    /// Install into this directory instead of / (for images and tests)
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Print each action without taking it
    #[arg(long)]
    dry_run: bool,
    /// Leave other time services (systemd-timesyncd, ntp, ntpsec, chrony) enabled and running
    #[arg(long)]
    keep_others: bool,
    /// Do not open the served ports (UDP 123; NTS-KE's and HTTP's when configured) in the firewall
    #[arg(long, conflicts_with = "firewall")]
    no_firewall: bool,
    /// Open the served ports in this network namespace's firewall even with --root
    #[arg(long)]
    firewall: bool,
    /// Set up as the Debian package's first configure does: no binary, units or enabling (dpkg
    /// and deb-systemd-helper do those), and no firewall change in a chroot
    #[arg(long)]
    from_package: bool,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UninstallArgs {
    /// Uninstall from this directory instead of /
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Print each action without taking it
    #[arg(long)]
    dry_run: bool,
    /// Also remove the config, keys and drift file
    #[arg(long)]
    purge: bool,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

fn finish(host: &Host, result: Result<(), String>, json: bool) -> ExitCode {
    if json {
        let value = serde_json::json!({
            "ok": result.is_ok(),
            "dry_run": host.is_dry_run(),
            "actions": host.report,
            "error": result.as_ref().err(),
        });
        outln!("{value}");
    } else {
        for line in &host.report {
            outln!("{line}");
        }
        if host.report.is_empty() {
            outln!("nothing to do");
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if json => {
            let _ = error;
            ExitCode::from(super::EXIT_FAILURE)
        }
        Err(error) => super::fail(error),
    }
}

pub(crate) fn run_install(args: InstallArgs) -> ExitCode {
    let mut host = Host::new(&args.root, args.dry_run);
    let binary = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("syhub-ntp"));
    let options = InstallOptions {
        keep_others: args.keep_others,
        firewall: if host.is_live() { !args.no_firewall } else { args.firewall },
        binary,
        local_networks: syhub_ntp_sys::interfaces::networks()
            .iter()
            .map(ToString::to_string)
            .collect(),
        from_package: args.from_package,
        interface_addresses: syhub_ntp_sys::interfaces::named_addresses(),
    };
    let result = install(&mut host, &options).map(drop).map_err(|e| e.to_string());
    finish(&host, result, args.json)
}

pub(crate) fn run_uninstall(args: UninstallArgs) -> ExitCode {
    let mut host = Host::new(&args.root, args.dry_run);
    let result = uninstall(&mut host, args.purge).map_err(|e| e.to_string());
    finish(&host, result, args.json)
}
