//! One module per subcommand.

pub mod backup;
pub mod clients;
pub mod clients_config;
pub mod config;
pub mod daemon;
pub mod diagnose;
pub mod install;
pub mod keygen;
pub mod nts_certificate;
pub mod peers;
pub mod query;
pub mod run;
pub mod status;
pub mod sync_check;

use std::process::ExitCode;

/// Exit code for a failure (see the exit codes in `--help`).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of `query` when the server answered without usable time.
pub const EXIT_NO_USABLE_TIME: u8 = 3;

/// Prints an error the way every subcommand does and returns the failure exit code.
pub fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("syhub-ntp: {message}");
    ExitCode::from(EXIT_FAILURE)
}
