//! Logging to stderr through tracing: plain text, colour only on a terminal.

use std::io::IsTerminal;
use tracing::level_filters::LevelFilter;

/// Sends log lines at `level` and above to stderr.
pub fn init(level: LevelFilter) {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(level)
        .with_target(false)
        .init();
}
