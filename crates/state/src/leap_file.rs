//! Reading `[clock] leap_file` (the IERS/NIST leap-seconds list): checked whole, its expiry
//! reported, and read again when it changes on disk.

use std::path::{Path, PathBuf};
use std::time::SystemTime;
use syhub_ntp_proto::NtpTimestamp;
use syhub_ntp_proto::leap::LeapTable;
use syhub_ntp_proto::time::utc_date;

/// The leap file and what was last made of it.
pub struct LeapFile {
    path: PathBuf,
    /// Modification time and size of the version last read (`None`: missing), to notice a new one.
    seen: Option<Option<(SystemTime, u64)>>,
    /// When the list last read expires, to drop it then.
    expires: Option<NtpTimestamp>,
    /// What the last reading came to, for the status.
    verdict: String,
}

impl LeapFile {
    pub fn new(path: PathBuf) -> Self {
        Self { path, seen: None, expires: None, verdict: "not read yet".into() }
    }

    /// "valid until 2026-06-28", or why the list is not used.
    pub fn verdict(&self) -> &str {
        &self.verdict
    }

    /// Reads the file the first time, when it changed on disk, or when the table just expired:
    /// `Some(table)` (`Some(None)` when it is missing, damaged or expired, which is logged) when
    /// there is news, `None` when nothing changed.
    pub fn refresh(&mut self, now: NtpTimestamp) -> Option<Option<LeapTable>> {
        let version = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        let expired = self.expires.is_some_and(|expires| (now - expires).to_seconds_f64() >= 0.0);
        if self.seen == Some(version) && !expired {
            return None;
        }
        self.seen = Some(version);
        let table = match read(&self.path, now) {
            Ok(table) => {
                self.verdict = format!("valid until {}", utc_date(table.expires()));
                tracing::info!(
                    "leap seconds from {}: TAI-UTC {} s, {}",
                    self.path.display(),
                    table.entries().last().map_or(0, |e| e.tai_offset),
                    self.verdict
                );
                Some(table)
            }
            Err(error) => {
                tracing::warn!("{error}; leap seconds come from the sources' warnings alone");
                self.verdict = format!("not used: {error}");
                None
            }
        };
        self.expires = table.as_ref().map(LeapTable::expires);
        Some(table)
    }
}

/// Reads and checks the list; an expired one is an error (it no longer says whether a leap comes).
pub fn read(path: &Path, now: NtpTimestamp) -> Result<LeapTable, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let table = LeapTable::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if table.is_expired(now) {
        return Err(format!(
            "{}: expired on {}: install a newer tzdata (or a fresh list from the IERS)",
            path.display(),
            utc_date(table.expires())
        ));
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSTEM_LIST: &str = "/usr/share/zoneinfo/leap-seconds.list";

    fn day(unix: i64) -> NtpTimestamp {
        NtpTimestamp::from_unix(unix, 0)
    }

    /// 2026-01-01: before the expiry of any list shipped since 2025.
    const JAN_2026: i64 = 1_767_225_600;
    /// 2040-01-01: after the expiry of any list there is.
    const JAN_2040: i64 = 2_208_988_800;

    fn system_list() -> Option<String> {
        let text = std::fs::read_to_string(SYSTEM_LIST).ok();
        if text.is_none() {
            println!("{SYSTEM_LIST} is missing (tzdata): skipped");
        }
        text
    }

    /// An empty directory of this test's own.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("syhub-leap-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_system_list_is_read_and_an_expired_one_refused() {
        let Some(_) = system_list() else { return };
        let table = read(Path::new(SYSTEM_LIST), day(JAN_2026)).unwrap();
        assert!(table.entries().last().unwrap().tai_offset >= 37);
        let error = read(Path::new(SYSTEM_LIST), day(JAN_2040)).unwrap_err();
        assert!(error.contains("expired on") && error.contains("tzdata"), "{error}");
    }

    #[test]
    fn a_damaged_or_missing_list_is_refused_with_the_reason() {
        let Some(text) = system_list() else { return };
        let dir = scratch("damaged");
        let path = dir.join("leap-seconds.list");
        // The last digit of the expiry changed: the hash no longer matches.
        let damaged: String = text
            .lines()
            .map(|line| match line.strip_prefix("#@") {
                Some(rest) => {
                    let mut digits: Vec<char> = rest.chars().collect();
                    let last = digits.last_mut().expect("an expiry");
                    *last = if *last == '9' { '0' } else { (*last as u8 + 1) as char };
                    format!("#@{}\n", digits.into_iter().collect::<String>())
                }
                None => format!("{line}\n"),
            })
            .collect();
        assert_ne!(damaged, text);
        std::fs::write(&path, &damaged).unwrap();
        let error = read(&path, day(JAN_2026)).unwrap_err();
        assert!(error.contains(path.to_str().unwrap()) && error.contains("hash"), "{error}");
        let missing = read(&dir.join("none"), day(JAN_2026)).unwrap_err();
        assert!(missing.contains("No such file"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_list_is_read_again_only_when_it_changes() {
        let Some(text) = system_list() else { return };
        let dir = scratch("refresh");
        let path = dir.join("leap-seconds.list");
        std::fs::write(&path, &text).unwrap();
        let mut file = LeapFile::new(path.clone());
        assert!(matches!(file.refresh(day(JAN_2026)), Some(Some(_))));
        assert!(file.refresh(day(JAN_2026)).is_none(), "unchanged: no news");
        // Replaced by a damaged copy (another size): news, and no table.
        std::fs::write(&path, format!("{text}garbage\n")).unwrap();
        assert!(matches!(file.refresh(day(JAN_2026)), Some(None)));
        assert!(file.refresh(day(JAN_2026)).is_none());
        // A good table that expires meanwhile is dropped once.
        std::fs::write(&path, &text).unwrap();
        assert!(matches!(file.refresh(day(JAN_2026)), Some(Some(_))));
        assert!(matches!(file.refresh(day(JAN_2040)), Some(None)));
        assert!(file.refresh(day(JAN_2040)).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
