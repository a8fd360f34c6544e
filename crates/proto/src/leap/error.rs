//! Why a leap-seconds.list text was refused, worded so that the reader knows what to fix.

/// A leap-seconds.list file that cannot be trusted, and why. Line numbers count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeapFileError {
    #[error(
        "no `#$` line with the time of the last update: the file is incomplete; \
         fetch a fresh leap-seconds.list (from the IERS or the tzdata package)"
    )]
    MissingUpdateTime,
    #[error(
        "no `#@` line with the expiry time: without it nobody can tell whether the table is \
         still valid; fetch a fresh leap-seconds.list (from the IERS or the tzdata package)"
    )]
    MissingExpiry,
    #[error(
        "no `#h` line with the file's SHA-1 hash: the file is incomplete or not a \
         leap-seconds.list; fetch a fresh copy (from the IERS or the tzdata package)"
    )]
    MissingHash,
    #[error(
        "line {line}: a `#h` line holds a SHA-1 hash as five groups of up to 8 hex digits, \
         found {text:?}"
    )]
    BadHash { line: usize, text: String },
    #[error(
        "the contents do not match the file's `#h` hash (the file says {expected}, its contents \
         give {computed}): it was damaged or edited; fetch a fresh copy"
    )]
    HashMismatch { expected: String, computed: String },
    #[error("line {line}: {reason}: {text:?}")]
    BadLine { line: usize, text: String, reason: &'static str },
    #[error("no entries: the file holds no `NTP_SECONDS TAI_MINUS_UTC` lines")]
    NoEntries,
    #[error(
        "line {line}: the first entry must be TAI-UTC 10 s from 1972-01-01 (NTP second \
         2272060800), found {tai_offset} s from NTP second {ntp_seconds}; the file is truncated \
         or not a leap-seconds.list"
    )]
    BadFirstEntry { line: usize, ntp_seconds: i64, tai_offset: i32 },
    #[error(
        "line {line}: the entry at NTP second {ntp_seconds} is not later than the one before \
         it (NTP second {previous}); entries must be in strictly increasing time order"
    )]
    OutOfOrder { line: usize, ntp_seconds: i64, previous: i64 },
    #[error(
        "line {line}: TAI-UTC goes from {previous} s to {tai_offset} s; each leap second \
         changes it by exactly one second"
    )]
    BadOffsetStep { line: usize, previous: i32, tai_offset: i32 },
}
