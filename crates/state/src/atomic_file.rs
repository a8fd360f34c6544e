//! Writing a file whole or not at all: a temporary file beside it, created with the final
//! permissions, flushed to disk, renamed over the old one, and the directory synced.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes `contents` to `path` atomically with permission bits `mode` (such as 0o600): a reader
/// sees the old file or the new one, never part of either, and a secret is never readable by
/// others, even for a moment. The directory is created if missing.
pub fn write(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    write_with_group(path, contents, mode, None)
}

/// [`write`], with the file given to group `group` (when some) before it is readable by that
/// group. The mode is exactly `mode`, whatever the umask.
pub fn write_with_group(
    path: &Path,
    contents: &[u8],
    mode: u32,
    group: Option<u32>,
) -> io::Result<()> {
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(directory)?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    // A temporary left by a crash may have other permissions: start afresh.
    let _ = fs::remove_file(&temporary);
    let result = (|| {
        // Created for its owner alone, then given its group, then its mode.
        let mut file =
            OpenOptions::new().write(true).create_new(true).mode(mode & 0o600).open(&temporary)?;
        if let Some(group) = group {
            std::os::unix::fs::fchown(&file, None, Some(group))?;
        }
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        File::open(directory)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}
