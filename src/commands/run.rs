//! `syhub-ntp run`: load and check the config, make the monitoring surfaces ready, then run the
//! daemon in the foreground with them beside it.

use crate::logging;
use crate::monitoring::Monitoring;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use syhub_ntp_config::Config;
use syhub_ntp_daemon::runtime::{EXIT_PANIC, RunError, run_blocking};
use tracing::level_filters::LevelFilter;

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Config file [default: /etc/syhub-ntp/config.toml, or the embedded default when it does not exist]
    #[arg(long, short, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Least severe log level to print
    #[arg(long, value_enum, default_value_t = LogLevel::Info)]
    log_level: LogLevel,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl From<LogLevel> for LevelFilter {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Trace => LevelFilter::TRACE,
        }
    }
}

pub(crate) fn run(args: RunArgs) -> ExitCode {
    logging::init(args.log_level.into());
    let loaded = match Config::load(args.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(error) => return super::fail(error),
    };
    tracing::info!(
        "syhub-ntp {} starting with config from {}",
        env!("CARGO_PKG_VERSION"),
        loaded.source
    );
    // Before the daemon drops privileges: the HTTP ports may be below 1024 and the MQTT password
    // readable by root only.
    let monitoring = Monitoring::prepare(&loaded.config);
    match run_blocking(loaded.config, |feed| monitoring.start(feed)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ RunError::Panic { .. }) => {
            tracing::error!("{error}");
            ExitCode::from(EXIT_PANIC)
        }
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::from(super::EXIT_FAILURE)
        }
    }
}
