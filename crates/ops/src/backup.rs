//! `backup` and `restore`: the config, keys and drift file in a tar.gz with a manifest of their
//! paths, modes and SHA-256 sums. A restore checks everything (format, sums, that the config and
//! keys parse) before it replaces anything, keeps each replaced file beside it as
//! `*.before-restore`, and puts the new ones in place by rename.

use crate::host::Host;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use syhub_ntp_config::Config;

const FORMAT: &str = "syhub-ntp-backup";
const MANIFEST: &str = "manifest.json";
/// Largest archive read: far above three small text files.
const MAX_ARCHIVE: u64 = 16 << 20;
/// Where restored files may go.
const ALLOWED_DIRS: [&str; 2] = ["/etc/syhub-ntp/", "/var/lib/syhub-ntp/"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BackupEntry {
    /// Name inside the archive.
    pub name: String,
    /// Where it came from and goes back to.
    pub path: String,
    pub mode: u32,
    pub sha256: String,
}

/// A file from an archive, with its manifest entry.
pub type BackupFile = (BackupEntry, Vec<u8>);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BackupManifest {
    pub format: String,
    pub version: u32,
    pub created_unix: u64,
    pub syhub_ntp: String,
    pub files: Vec<BackupEntry>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The files a backup holds for `config` (loaded from `config_path` under the host's root).
fn backed_up_paths(config_path: &str, config: &Config) -> Vec<(String, String)> {
    let mut paths = vec![("config.toml".to_owned(), config_path.to_owned())];
    if let Some(keys) = &config.auth.keys_file {
        paths.push(("keys".to_owned(), keys.display().to_string()));
    }
    if let Some(drift) = &config.clock.drift_file {
        paths.push(("drift".to_owned(), drift.display().to_string()));
    }
    paths
}

/// Writes a backup of the config at `config_path` (and its keys and drift file, when present)
/// to `archive` (mode 0600: it may hold keys). Returns what it holds.
pub fn backup(
    host: &Host,
    config_path: &str,
    archive: &std::path::Path,
) -> Result<BackupManifest, String> {
    let text = String::from_utf8(
        host.read(config_path).map_err(|e| format!("cannot read {config_path}: {e}"))?,
    )
    .map_err(|_| format!("{config_path} is not text"))?;
    let config = Config::parse(&text, config_path).map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    let mut contents = Vec::new();
    for (name, path) in backed_up_paths(config_path, &config) {
        let Ok(bytes) = host.read(&path) else { continue };
        let mode = std::fs::metadata(host.path(&path))
            .map(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.permissions().mode() & 0o7777
            })
            .unwrap_or(0o600);
        files.push(BackupEntry { name: name.clone(), path, mode, sha256: sha256_hex(&bytes) });
        contents.push((name, bytes));
    }
    let manifest = BackupManifest {
        format: FORMAT.into(),
        version: 1,
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        syhub_ntp: env!("CARGO_PKG_VERSION").into(),
        files,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    let created = manifest.created_unix;
    let result = (|| {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(encoder);
        let members = std::iter::once((MANIFEST, json.as_slice(), 0o644))
            .chain(contents.iter().map(|(name, bytes)| (name.as_str(), bytes.as_slice(), 0o600)));
        for (name, bytes, mode) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(mode);
            header.set_mtime(created);
            header.set_cksum();
            tar.append_data(&mut header, name, bytes)?;
        }
        tar.into_inner()?.finish()
    })();
    let bytes = result.map_err(|e| format!("cannot build the archive: {e}"))?;
    syhub_ntp_state::atomic_file::write(archive, &bytes, 0o600)
        .map_err(|e| format!("cannot write {}: {e}", archive.display()))?;
    Ok(manifest)
}

/// Reads and checks an archive whole: the manifest first, then every file it lists, present
/// once, with its sum, going under syhub-ntp's own directories; nothing else in it.
pub fn read_archive(bytes: &[u8]) -> Result<(BackupManifest, Vec<BackupFile>), String> {
    let not_ours = |why: String| format!("not a syhub-ntp backup, or damaged: {why}");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in archive.entries().map_err(|e| not_ours(e.to_string()))? {
        let mut entry = entry.map_err(|e| not_ours(e.to_string()))?;
        if !entry.header().entry_type().is_file() {
            return Err(not_ours("it holds something other than plain files".into()));
        }
        let name =
            entry.path().map_err(|e| not_ours(e.to_string()))?.to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry
            .by_ref()
            .take(MAX_ARCHIVE)
            .read_to_end(&mut data)
            .map_err(|e| not_ours(e.to_string()))?;
        if members.iter().any(|(n, _)| *n == name) {
            return Err(not_ours(format!("{name} appears twice")));
        }
        members.push((name, data));
    }
    let (_, json) = members
        .iter()
        .find(|(n, _)| n == MANIFEST)
        .ok_or_else(|| not_ours("no manifest.json".into()))?;
    let manifest: BackupManifest =
        serde_json::from_slice(json).map_err(|e| not_ours(format!("manifest: {e}")))?;
    if manifest.format != FORMAT || manifest.version != 1 {
        return Err(not_ours(format!("format {:?} version {}", manifest.format, manifest.version)));
    }
    if members.len() != manifest.files.len() + 1 {
        return Err(not_ours("its files do not match its manifest".into()));
    }
    let mut files = Vec::new();
    for entry in &manifest.files {
        let (_, data) = members
            .iter()
            .find(|(n, _)| *n == entry.name)
            .ok_or_else(|| not_ours(format!("{} is missing", entry.name)))?;
        if sha256_hex(data) != entry.sha256 {
            return Err(not_ours(format!("{} does not match its checksum", entry.name)));
        }
        let allowed = ALLOWED_DIRS.iter().any(|dir| entry.path.starts_with(dir))
            && !entry.path.split('/').any(|part| part == "..");
        if !allowed {
            return Err(not_ours(format!(
                "{} would go to {}, outside syhub-ntp's directories",
                entry.name, entry.path
            )));
        }
        files.push((entry.clone(), data.clone()));
    }
    Ok((manifest, files))
}

/// Restores `archive`: every check first, then each file replaced by rename, the old one kept as
/// `*.before-restore`. Nothing is changed when a check fails.
pub fn restore(host: &mut Host, archive: &std::path::Path) -> Result<BackupManifest, String> {
    let size = std::fs::metadata(archive)
        .map_err(|e| format!("cannot read {}: {e}", archive.display()))?
        .len();
    if size > MAX_ARCHIVE {
        return Err(format!(
            "{} is {size} bytes: too large to be a syhub-ntp backup",
            archive.display()
        ));
    }
    let bytes =
        std::fs::read(archive).map_err(|e| format!("cannot read {}: {e}", archive.display()))?;
    let (manifest, files) = read_archive(&bytes)?;
    // The contents must be usable before anything is replaced.
    for (entry, data) in &files {
        let text = std::str::from_utf8(data)
            .map_err(|_| format!("{} in the backup is not text", entry.name))?;
        match entry.name.as_str() {
            "config.toml" => {
                Config::parse(text, &format!("{} (in the backup)", entry.path))
                    .map_err(|e| e.to_string())?;
            }
            "keys" => {
                syhub_ntp_proto::auth::KeyStore::parse(text)
                    .map_err(|e| format!("the keys in the backup: {e}"))?;
            }
            "drift" => {
                text.trim()
                    .parse::<f64>()
                    .map_err(|_| "the drift file in the backup is not a number".to_owned())?;
            }
            other => return Err(format!("unknown file {other} in the backup")),
        }
    }
    // Keep what is there, then put the new files in place; if one cannot be, the ones already
    // replaced are put back as they were.
    let mut previous = Vec::new();
    for (entry, _) in &files {
        let old = host.read(&entry.path).ok();
        if let Some(old) = &old {
            let kept = format!("{}.before-restore", entry.path);
            host.write(&kept, old, 0o600)
                .map_err(|e| format!("cannot keep {}: {e}", entry.path))?;
        }
        let mode = std::fs::metadata(host.path(&entry.path)).map_or(0o600, |m| {
            use std::os::unix::fs::PermissionsExt;
            m.permissions().mode() & 0o7777
        });
        previous.push((old, mode));
    }
    for (index, (entry, data)) in files.iter().enumerate() {
        if let Err(error) = host.write(&entry.path, data, entry.mode & 0o7777) {
            for ((done, _), (old, mode)) in files.iter().zip(&previous).take(index) {
                let _ = match old {
                    Some(old) => host.write(&done.path, old, *mode),
                    None => host.remove_file(&done.path),
                };
            }
            return Err(format!(
                "cannot restore {}: {error}; the files already restored were put back",
                entry.path
            ));
        }
    }
    Ok(manifest)
}
