//! The drift file: the clock's frequency correction in ppm as plain text, as ntpd writes it (so an
//! existing ntpd drift file is read), written atomically so a crash never leaves half a file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Largest frequency correction a drift file may claim, ppm.
const MAX_PPM: f64 = 500.0;

#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error("cannot read drift file {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("drift file {} does not hold a frequency in ppm ({content:?}); ignoring it", path.display())]
    Invalid { path: PathBuf, content: String },
    #[error("cannot write drift file {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// Reads the frequency correction (ppm) from `path`. `Ok(None)` when there is no file yet.
///
/// Accepts ntpd's and NTPsec's format (one number) and chrony's (frequency, then skew).
pub fn read(path: &Path) -> Result<Option<f64>, DriftError> {
    let content = match fs::read_to_string(path) {
        Ok(content) => content,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(DriftError::Read { path: path.to_owned(), source }),
    };
    let invalid = || DriftError::Invalid {
        path: path.to_owned(),
        content: content.chars().take(40).collect(),
    };
    let ppm: f64 =
        content.split_whitespace().next().ok_or_else(invalid)?.parse().map_err(|_| invalid())?;
    if !ppm.is_finite() || ppm.abs() > MAX_PPM {
        return Err(invalid());
    }
    Ok(Some(ppm))
}

/// Writes `ppm` to `path` atomically: a temporary file beside it, flushed to disk, renamed over
/// the old one, and the directory synced, so the file is always whole, old or new.
pub fn write(path: &Path, ppm: f64) -> Result<(), DriftError> {
    crate::atomic_file::write(path, format!("{ppm:.3}\n").as_bytes(), 0o644)
        .map_err(|source| DriftError::Write { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("syhub-drift-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir.join("drift")
    }

    #[test]
    fn reads_ntpd_and_chrony_formats() {
        let path = scratch("formats");
        fs::write(&path, "-12.345\n").unwrap();
        assert_eq!(read(&path).unwrap(), Some(-12.345));
        fs::write(&path, "           4.250000             0.004522\n").unwrap();
        assert_eq!(read(&path).unwrap(), Some(4.25));
        assert_eq!(read(&path.with_file_name("absent")).unwrap(), None);
    }

    #[test]
    fn refuses_garbage_and_impossible_values() {
        let path = scratch("garbage");
        for content in ["", "fast", "NaN", "inf", "9000", "\u{0}\u{1}"] {
            fs::write(&path, content).unwrap();
            assert!(matches!(read(&path), Err(DriftError::Invalid { .. })), "{content:?}");
        }
    }

    #[test]
    fn writes_whole_files_and_leaves_no_temporary() {
        let path = scratch("write");
        write(&path, 7.25).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "7.250\n");
        write(&path, -0.5).unwrap();
        assert_eq!(read(&path).unwrap(), Some(-0.5));
        let names: Vec<_> =
            fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("drift")]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let path = scratch("readonly");
        write(&path, 1.0).unwrap();
        // A directory where the temporary file should go makes the write fail half-way.
        fs::create_dir_all(path.with_file_name("drift.tmp")).unwrap();
        assert!(write(&path, 2.0).is_err());
        assert_eq!(read(&path).unwrap(), Some(1.0));
    }
}
