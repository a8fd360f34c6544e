//! `syhub-ntp config check|default`: validate a config file, or print the embedded default.

use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use syhub_ntp_config::{Config, DEFAULT_CONFIG_TOML};

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
            print!("{DEFAULT_CONFIG_TOML}");
            ExitCode::SUCCESS
        }
        ConfigCommand::Check(args) => match Config::load(args.config.as_deref())
            .map_err(|error| error.to_string())
            .and_then(|loaded| {
                // The keys file is part of the config: check it as the daemon will.
                syhub_ntp_state::keys::load(&loaded.config).map_err(|error| error.to_string())?;
                Ok(loaded)
            }) {
            Ok(loaded) if args.json => {
                println!(
                    "{}",
                    serde_json::json!({ "valid": true, "source": loaded.source.to_string() })
                );
                ExitCode::SUCCESS
            }
            Ok(loaded) => {
                println!("config OK: {}", loaded.source);
                ExitCode::SUCCESS
            }
            Err(error) if args.json => {
                println!("{}", serde_json::json!({ "valid": false, "error": error.to_string() }));
                ExitCode::from(super::EXIT_FAILURE)
            }
            Err(error) => super::fail(error),
        },
    }
}
