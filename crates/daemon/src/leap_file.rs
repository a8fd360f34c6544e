//! Reading `[clock] leap_file` (the IERS/NIST leap-seconds list): checked whole, its expiry
//! reported, and read again when it changes on disk.

use std::path::{Path, PathBuf};
use std::time::SystemTime;
use syhub_ntp_proto::NtpTimestamp;
use syhub_ntp_proto::leap::LeapTable;
use syhub_ntp_proto::sync::civil_date;

/// The leap file and what was last made of it.
pub struct LeapFile {
    path: PathBuf,
    /// Modification time and size of the version last read (`None`: missing), to notice a new one.
    seen: Option<Option<(SystemTime, u64)>>,
    table: Option<LeapTable>,
}

impl LeapFile {
    pub fn new(path: PathBuf) -> Self {
        Self { path, seen: None, table: None }
    }

    /// Reads the file the first time, when it changed on disk, or when the table just expired:
    /// `Some(table)` (`Some(None)` when it is missing, damaged or expired, which is logged) when
    /// there is news, `None` when nothing changed.
    pub fn refresh(&mut self, now: NtpTimestamp) -> Option<Option<LeapTable>> {
        let version = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        let expired = self.table.as_ref().is_some_and(|t| t.is_expired(now));
        if self.seen == Some(version) && !expired {
            return None;
        }
        self.seen = Some(version);
        let table = match read(&self.path, now) {
            Ok(table) => {
                let (year, month, day) = civil_date(table.expires());
                tracing::info!(
                    "leap seconds from {}: TAI-UTC {} s, valid until {year:04}-{month:02}-{day:02}",
                    self.path.display(),
                    table.entries().last().map_or(0, |e| e.tai_offset),
                );
                Some(table)
            }
            Err(error) => {
                tracing::warn!("{error}; leap seconds come from the sources' warnings alone");
                None
            }
        };
        self.table = table.clone();
        Some(table)
    }
}

/// Reads and checks the list; an expired one is an error (it no longer says whether a leap comes).
pub fn read(path: &Path, now: NtpTimestamp) -> Result<LeapTable, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let table = LeapTable::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if table.is_expired(now) {
        let (year, month, day) = civil_date(table.expires());
        return Err(format!(
            "{}: expired on {year:04}-{month:02}-{day:02}: install a newer tzdata (or a fresh \
             list from the IERS)",
            path.display()
        ));
    }
    Ok(table)
}
