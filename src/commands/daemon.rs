//! What the commands that talk to the running daemon share: finding its control socket, and
//! saying clearly (exit code 2) when it cannot be reached.

use crate::output::{errln, outln};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use syhub_ntp_client::{ClientError, request_status};
use syhub_ntp_config::Config;
use syhub_ntp_status::StatusSnapshot;

/// Exit code when the daemon cannot be reached.
pub(crate) const EXIT_UNREACHABLE: u8 = 2;

#[derive(Debug, Args)]
pub(crate) struct DaemonArgs {
    /// Config file whose [control] socket to use [default: /etc/syhub-ntp/config.toml, or the embedded default]
    #[arg(long, short, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Control socket to use (overrides the config)
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

impl DaemonArgs {
    /// The control socket, or the exit code for a config that cannot be read.
    pub(crate) fn socket(&self) -> Result<PathBuf, ExitCode> {
        match &self.socket {
            Some(socket) => Ok(socket.clone()),
            None => Config::load(self.config.as_deref())
                .map(|loaded| loaded.config.control.socket)
                .map_err(super::fail),
        }
    }
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    // A current-thread runtime cannot fail to build short of running out of memory.
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

/// Reports that the daemon could not be reached, as text or JSON, with exit code 2.
pub(crate) fn fail_unreachable(error: ClientError, json: bool) -> ExitCode {
    if json {
        outln!("{}", serde_json::json!({ "error": error.to_string() }));
    } else {
        errln!("syhub-ntp: {error}");
    }
    ExitCode::from(EXIT_UNREACHABLE)
}

/// The daemon's status, or the exit code to stop with.
pub(crate) fn status_or_exit(args: &DaemonArgs, json: bool) -> Result<StatusSnapshot, ExitCode> {
    let socket = args.socket()?;
    runtime().block_on(request_status(&socket)).map_err(|error| fail_unreachable(error, json))
}
