//! Logging to stderr through tracing: plain text, colour only on a terminal, and no timestamps of
//! our own under systemd (the journal stamps every line itself).

use std::io::IsTerminal;
use tracing::level_filters::LevelFilter;

/// Sends log lines at `level` and above to stderr.
pub(crate) fn init(level: LevelFilter) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(level)
        .with_target(false);
    // systemd sets JOURNAL_STREAM when stderr goes to the journal.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().init();
    } else {
        builder.init();
    }
}
