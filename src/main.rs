//! The `syhub-ntp` binary: parses the command line and hands each subcommand to its module.

#![forbid(unsafe_code)]

mod commands;
mod logging;
mod monitoring;
mod output;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit codes:
  0  success (for `query`: a synchronised server answered)
  1  failure: invalid config, a socket that cannot be bound, no answer, a network error
  2  bad command-line arguments; for `status`, `peers`, `sync-check`, `clients`: the daemon
     cannot be reached (`sync-check` exits 1 when it is reachable but not synchronised)
  3  `query` only: the server answered but is unsynchronised or refused us (kiss-o'-death)
  4  `run` only: the clock was beyond [clock] panic_threshold from its sources after start-up;
     the daemon refused to follow (systemd does not restart it)";

/// A time server for IoT hubs: serves NTP/SNTP to the LAN, synchronises from the internet, and
/// keeps serving its own clock when the internet is gone.
#[derive(Debug, Parser)]
#[command(name = "syhub-ntp", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon in the foreground (logs to stderr; SIGTERM or SIGINT stops it).
    Run(commands::run::RunArgs),
    /// Ask an NTP server for the time once, like `ntpdate -q`, and print offset, delay and its state.
    Query(commands::query::QueryArgs),
    /// Show the running daemon's synchronisation status (like `chronyc tracking`).
    Status(commands::status::StatusArgs),
    /// List the upstream sources, one line each (like `ntpq -p`).
    Peers(commands::peers::PeersArgs),
    /// Say in one line whether time is synchronised (like `ntpstat`): exit 0 yes, 1 no, 2 daemon unreachable.
    SyncCheck(commands::sync_check::SyncCheckArgs),
    /// List the hub's devices: in sync, off by how much, unknown, silent.
    Clients(commands::clients::ClientsArgs),
    /// Check or print the configuration.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// Write a new symmetric keys file (mode 0600) and print the lines clients need.
    Keygen(commands::keygen::KeygenArgs),
    /// Make a self-signed certificate and key for serving NTS under a LAN name or address.
    NtsCertificate(commands::nts_certificate::NtsCertificateArgs),
    /// Set this hub up: config, account, systemd units, firewall; other time services stopped.
    Install(commands::install::InstallArgs),
    /// Check the hub end to end: one line per check, PASS/WARN/FAIL, a fix for each failure.
    Test(commands::diagnose::TestArgs),
    /// Versions, paths, sources, clients and counters, for a support request.
    Info(commands::diagnose::InfoArgs),
    /// Save the config, keys and drift file in a tar.gz with checksums.
    Backup(commands::backup::BackupArgs),
    /// Put a backup back: all of it checked first, the replaced files kept as *.before-restore.
    Restore(commands::backup::RestoreArgs),
    /// Settings to paste into clients (chrony, ntpd, timesyncd, Windows, ESP32/Arduino, Docker, DHCP).
    ClientsConfig(commands::clients_config::ClientsConfigArgs),
    /// Undo what `install` did, as its manifest records (config, keys and drift kept unless --purge).
    Uninstall(commands::install::UninstallArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = run(cli.command);
    // A reader that went away (`| head`) is not a failure; stdout failing otherwise is.
    match output::stdout_error() {
        Some(error) => commands::fail(format!("cannot write the output: {error}")),
        None => code,
    }
}

fn run(command: Command) -> ExitCode {
    match command {
        Command::Run(args) => commands::run::run(args),
        Command::Query(args) => commands::query::run(args),
        Command::Status(args) => commands::status::run(args),
        Command::Peers(args) => commands::peers::run(args),
        Command::SyncCheck(args) => commands::sync_check::run(args),
        Command::Clients(args) => commands::clients::run(args),
        Command::Config(command) => commands::config::run(command),
        Command::Keygen(args) => commands::keygen::run(args),
        Command::Install(args) => commands::install::run_install(args),
        Command::NtsCertificate(args) => commands::nts_certificate::run(args),
        Command::Backup(args) => commands::backup::run_backup(args),
        Command::Restore(args) => commands::backup::run_restore(args),
        Command::ClientsConfig(args) => commands::clients_config::run(args),
        Command::Test(args) => commands::diagnose::run_test(args),
        Command::Info(args) => commands::diagnose::run_info(args),
        Command::Uninstall(args) => commands::install::run_uninstall(args),
    }
}
