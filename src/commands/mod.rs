//! One module per subcommand.

pub(crate) mod backup;
pub(crate) mod clients;
pub(crate) mod clients_config;
pub(crate) mod config;
pub(crate) mod daemon;
pub(crate) mod diagnose;
pub(crate) mod install;
pub(crate) mod keygen;
pub(crate) mod nts_certificate;
pub(crate) mod peers;
pub(crate) mod query;
pub(crate) mod run;
pub(crate) mod status;
pub(crate) mod sync_check;

use crate::output::errln;
use std::process::ExitCode;

/// Exit code for a failure (see the exit codes in `--help`).
pub(crate) const EXIT_FAILURE: u8 = 1;
/// Exit code of `query` when the server answered without usable time.
pub(crate) const EXIT_NO_USABLE_TIME: u8 = 3;

/// Prints an error the way every subcommand does and returns the failure exit code.
pub(crate) fn fail(message: impl std::fmt::Display) -> ExitCode {
    errln!("syhub-ntp: {message}");
    ExitCode::from(EXIT_FAILURE)
}
