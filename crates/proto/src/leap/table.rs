//! The table of TAI-UTC offsets a leap-seconds.list gives, valid until the file's expiry, and the
//! next leap second it foretells. The caller reads the file and passes its text and the time.

use super::LeapFileError;
use super::file::{self, DataLine};
use crate::time::{NtpTimestamp, UNIX_EPOCH_IN_NTP_SECONDS};

/// Every list starts where UTC began whole-second steps: 1972-01-01 00:00 UTC, TAI-UTC 10 s.
const FIRST_NTP_SECONDS: i64 = 2_272_060_800;
const FIRST_TAI_OFFSET: i32 = 10;
const SECONDS_PER_DAY: i64 = 86_400;

/// From `at` on, TAI - UTC is `tai_offset` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeapEntry {
    /// The instant the new offset starts: 00:00:00 UTC of the first day of a month, right after
    /// the leap second (if any) at the end of the previous day.
    pub at: NtpTimestamp,
    /// TAI - UTC in seconds.
    pub tai_offset: i32,
}

/// Whether the last minute before a leap has 61 or 59 seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeapKind {
    /// 23:59:60 exists: TAI-UTC grows by one second.
    Insert,
    /// 23:59:59 is skipped: TAI-UTC shrinks by one second.
    Delete,
}

/// A leap second still to come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leap {
    /// 00:00:00 UTC right after the leap, when the new TAI-UTC offset starts.
    pub at: NtpTimestamp,
    pub kind: LeapKind,
}

/// A checked leap-seconds.list: its entries in time order and its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeapTable {
    entries: Vec<LeapEntry>,
    /// Unix seconds of each entry's `at`, so that comparisons need no era guess.
    starts_unix: Vec<i64>,
    expires: NtpTimestamp,
    /// Unix seconds of the expiry; also the pivot that places a caller's `now` in its era.
    expires_unix: i64,
}

impl LeapTable {
    /// Parses the text of a leap-seconds.list (IERS or NIST format, as tzdata ships it).
    ///
    /// Refuses the whole file if its hash does not match, a line is malformed, or the entries are
    /// not a leap second history: starting at 1972-01-01 with 10 s, strictly increasing in time,
    /// each at midnight UTC and each changing TAI-UTC by exactly one second.
    pub fn parse(text: &str) -> Result<Self, LeapFileError> {
        let file = file::read(text)?;
        let first = file.data.first().ok_or(LeapFileError::NoEntries)?;
        if first.ntp_seconds != FIRST_NTP_SECONDS || first.tai_offset != FIRST_TAI_OFFSET {
            return Err(LeapFileError::BadFirstEntry {
                line: first.line,
                ntp_seconds: first.ntp_seconds,
                tai_offset: first.tai_offset,
            });
        }
        for entry in &file.data {
            if entry.ntp_seconds % SECONDS_PER_DAY != 0 {
                return Err(LeapFileError::BadLine {
                    line: entry.line,
                    text: entry.text.to_string(),
                    reason: "a new TAI-UTC offset starts at 00:00:00 UTC, so its NTP time must \
                             be a multiple of 86400",
                });
            }
        }
        for pair in file.data.windows(2) {
            check_step(&pair[0], &pair[1])?;
        }
        let starts_unix: Vec<i64> =
            file.data.iter().map(|entry| entry.ntp_seconds - UNIX_EPOCH_IN_NTP_SECONDS).collect();
        let entries = file
            .data
            .iter()
            .zip(&starts_unix)
            .map(|(entry, &unix)| LeapEntry {
                at: NtpTimestamp::from_unix(unix, 0),
                tai_offset: entry.tai_offset,
            })
            .collect();
        let expires_unix = file.expires - UNIX_EPOCH_IN_NTP_SECONDS;
        Ok(Self {
            entries,
            starts_unix,
            expires: NtpTimestamp::from_unix(expires_unix, 0),
            expires_unix,
        })
    }

    /// The instant after which the file must no longer be trusted (its `#@` line).
    pub fn expires(&self) -> NtpTimestamp {
        self.expires
    }

    /// Whether `now` is at or past the expiry: time to fetch a new file.
    pub fn is_expired(&self, now: NtpTimestamp) -> bool {
        self.unix(now) >= (self.expires_unix, 0)
    }

    /// All entries, oldest first; the first is 10 s at 1972-01-01.
    pub fn entries(&self) -> &[LeapEntry] {
        &self.entries
    }

    /// The first leap second after `now`, if the file foretells one and has not expired. An
    /// expired file says nothing, since a leap may have been scheduled after it was written.
    pub fn next_leap(&self, now: NtpTimestamp) -> Option<Leap> {
        if self.is_expired(now) {
            return None;
        }
        let now = self.unix(now);
        // The first entry is where the table starts, not a leap.
        let index = (1..self.entries.len()).find(|&i| (self.starts_unix[i], 0) > now)?;
        let kind = if self.entries[index].tai_offset > self.entries[index - 1].tai_offset {
            LeapKind::Insert
        } else {
            LeapKind::Delete
        };
        Some(Leap { at: self.entries[index].at, kind })
    }

    /// `now` as Unix `(seconds, nanoseconds)`, in the era nearest the file's expiry.
    fn unix(&self, now: NtpTimestamp) -> (i64, u32) {
        now.to_unix_near(self.expires_unix)
    }
}

/// Checks that `later` follows `earlier` by a one-second change of TAI-UTC.
fn check_step(earlier: &DataLine<'_>, later: &DataLine<'_>) -> Result<(), LeapFileError> {
    if later.ntp_seconds <= earlier.ntp_seconds {
        return Err(LeapFileError::OutOfOrder {
            line: later.line,
            ntp_seconds: later.ntp_seconds,
            previous: earlier.ntp_seconds,
        });
    }
    if (i64::from(later.tai_offset) - i64::from(earlier.tai_offset)).abs() != 1 {
        return Err(LeapFileError::BadOffsetStep {
            line: later.line,
            previous: earlier.tai_offset,
            tai_offset: later.tai_offset,
        });
    }
    Ok(())
}
