//! `syhub-ntp config check|default`: validate a config file, or print the embedded default.

use crate::output::{out, outln};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use syhub_ntp_config::{Config, ConfigSource, DEFAULT_CONFIG_TOML, LoadedConfig};
use syhub_ntp_state::service_account::{ServiceAccount, files_read};

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate the config and exit non-zero with the reason when it is invalid.
    Check(CheckArgs),
    /// Print the embedded default config, with a comment on every key.
    Default,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Config file [default: /etc/syhub-ntp/config.toml, or the embedded default when it does not exist]
    #[arg(long, short, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print the verdict as JSON: {"valid": true, "source": ...} or {"valid": false, "error": ...}
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(command: ConfigCommand) -> ExitCode {
    match command {
        ConfigCommand::Default => {
            out!("{DEFAULT_CONFIG_TOML}");
            ExitCode::SUCCESS
        }
        ConfigCommand::Check(args) => match Config::load(args.config.as_deref())
            .map_err(|error| error.to_string())
            .and_then(|loaded| {
                // The keys file is part of the config: check it as the daemon will.
                syhub_ntp_state::keys::load(&loaded.config).map_err(|error| error.to_string())?;
                service_can_read(&loaded)?;
                Ok(loaded)
            }) {
            Ok(loaded) if args.json => {
                outln!(
                    "{}",
                    serde_json::json!({ "valid": true, "source": loaded.source.to_string() })
                );
                ExitCode::SUCCESS
            }
            Ok(loaded) => {
                outln!("config OK: {}", loaded.source);
                ExitCode::SUCCESS
            }
            Err(error) if args.json => {
                outln!("{}", serde_json::json!({ "valid": false, "error": error.to_string() }));
                ExitCode::from(super::EXIT_FAILURE)
            }
            Err(error) => super::fail(error),
        },
    }
}

/// The service runs as its own account: every file the config names that the daemon reads must
/// be readable by that account, whoever runs the check. Skipped where the account does not exist.
fn service_can_read(loaded: &LoadedConfig) -> Result<(), String> {
    let Some(account) = ServiceAccount::under(Path::new("/")) else { return Ok(()) };
    let config_file = match &loaded.source {
        ConfigSource::File(path) => Some(path.as_path()),
        ConfigSource::Embedded => None,
    };
    let files =
        config_file.into_iter().chain(files_read(&loaded.config).into_iter().map(|(_, p)| p));
    let problems: Vec<String> = files.filter_map(|path| account.cannot_read(path)).collect();
    if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
}
