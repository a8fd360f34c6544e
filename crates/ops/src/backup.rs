//! `backup` and `restore`: the config and every file it names that is the hub's own (keys, drift,
//! NTS certificate and key, MQTT password) in a tar.gz with a manifest of their paths, modes and
//! SHA-256 sums. A restore reads the archive within fixed bounds, checks everything (format, sums,
//! that each file is what its name says and goes where the backed-up config puts it) before it
//! replaces anything, keeps each replaced file beside it as `*.before-restore`, and puts the new
//! ones in place by rename, each with the owner and mode syhub-ntp gives that file (never the
//! archive's), never through a symbolic link.

use crate::host::Host;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use syhub_ntp_config::Config;
use syhub_ntp_state::service_account::{ACCOUNT, files_read};

const FORMAT: &str = "syhub-ntp-backup";
const MANIFEST: &str = "manifest.json";
/// Largest archive read: far above a few small text files.
const MAX_ARCHIVE: u64 = 4 << 20;
/// Largest member, and largest sum of members, read out of it.
const MAX_MEMBER: u64 = 1 << 20;
const MAX_UNPACKED: u64 = 4 << 20;
/// The most members: the manifest and one per kind of file.
const MAX_MEMBERS: usize = 1 + BACKED_UP.len() + 1;
/// The files a backup holds besides the config, by the names [`files_read`] gives them.
const BACKED_UP: [&str; 5] = ["keys", "drift", "nts-certificate", "nts-key", "mqtt-password"];
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
    let named = files_read(config).into_iter().filter(|(name, _)| BACKED_UP.contains(name));
    std::iter::once(("config.toml".to_owned(), config_path.to_owned()))
        .chain(named.map(|(name, path)| (name.to_owned(), path.display().to_string())))
        .collect()
}

/// How syhub-ntp writes each kind of file, whatever mode the archive records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// 0644, owner root: the config, a certificate.
    Public,
    /// Read by the service, changed by no one else: 0640 root:syhub-ntp (0600 without the account).
    Secret,
    /// Written by the service: 0644, owner syhub-ntp.
    ServiceState,
}

impl Access {
    /// The mode the file is written with, when the service's group exists or not.
    pub fn mode(self, with_group: bool) -> u32 {
        match self {
            Access::Public | Access::ServiceState => 0o644,
            Access::Secret if with_group => 0o640,
            Access::Secret => 0o600,
        }
    }
}

/// What a member named `name` must be: its access, and whether `text` is that.
fn check_kind(name: &str, text: &str) -> Result<Access, String> {
    let bad = |what: &str| Err(format!("the {name} file in the backup is not {what}"));
    match name {
        "config.toml" => Ok(Access::Public),
        "keys" => match syhub_ntp_proto::auth::KeyStore::parse(text) {
            Ok(_) => Ok(Access::Secret),
            Err(error) => Err(format!("the keys in the backup: {error}")),
        },
        "drift" if text.trim().parse::<f64>().is_ok_and(f64::is_finite) => Ok(Access::ServiceState),
        "drift" => bad("a number"),
        "nts-certificate" if text.contains("-----BEGIN CERTIFICATE-----") => Ok(Access::Public),
        "nts-certificate" => bad("a PEM certificate"),
        "nts-key" if text.contains("PRIVATE KEY-----") => Ok(Access::Secret),
        "nts-key" => bad("a PEM private key"),
        "mqtt-password" if !text.trim().is_empty() && text.lines().count() <= 1 => {
            Ok(Access::Secret)
        }
        "mqtt-password" => bad("one line"),
        other => Err(format!("unknown file {other} in the backup")),
    }
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
        if name == "keys" {
            // Not copied into an archive unless it is one (it could be an account database
            // under another name); the refusal does not quote it.
            let text = std::str::from_utf8(&bytes).map_err(|_| format!("{path} is not text"))?;
            syhub_ntp_proto::auth::KeyStore::parse(text)
                .map_err(|error| format!("{path} (keys_file) is not a keys file: {error}"))?;
        }
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

/// The manifest of a backup, from its JSON; refused unless it is one we can read.
pub fn parse_manifest(json: &[u8]) -> Result<BackupManifest, String> {
    let manifest: BackupManifest =
        serde_json::from_slice(json).map_err(|e| format!("manifest: {e}"))?;
    if manifest.format != FORMAT || manifest.version != 1 {
        return Err(format!("format {:?} version {}", manifest.format, manifest.version));
    }
    Ok(manifest)
}

/// Reads and checks an archive whole: the manifest first, then every file it lists, present
/// once, with its sum, going under syhub-ntp's own directories; nothing else in it.
pub fn read_archive(bytes: &[u8]) -> Result<(BackupManifest, Vec<BackupFile>), String> {
    let not_ours = |why: String| format!("not a syhub-ntp backup, or damaged: {why}");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    let mut unpacked = 0u64;
    for entry in archive.entries().map_err(|e| not_ours(e.to_string()))? {
        let mut entry = entry.map_err(|e| not_ours(e.to_string()))?;
        if !entry.header().entry_type().is_file() {
            return Err(not_ours("it holds something other than plain files".into()));
        }
        let name =
            entry.path().map_err(|e| not_ours(e.to_string()))?.to_string_lossy().into_owned();
        if members.len() == MAX_MEMBERS {
            return Err(not_ours(format!("it holds more than {MAX_MEMBERS} files")));
        }
        // Bounded by what is read, not by what the header claims.
        let mut data = Vec::new();
        entry
            .by_ref()
            .take(MAX_MEMBER + 1)
            .read_to_end(&mut data)
            .map_err(|e| not_ours(e.to_string()))?;
        unpacked += data.len() as u64;
        if data.len() as u64 > MAX_MEMBER || unpacked > MAX_UNPACKED {
            return Err(not_ours(format!("{name} is larger than any file of a hub's")));
        }
        if members.iter().any(|(n, _)| *n == name) {
            return Err(not_ours(format!("{name} appears twice")));
        }
        members.push((name, data));
    }
    let (_, json) = members
        .iter()
        .find(|(n, _)| n == MANIFEST)
        .ok_or_else(|| not_ours("no manifest.json".into()))?;
    let manifest = parse_manifest(json).map_err(not_ours)?;
    if members.len() != manifest.files.len() + 1 {
        return Err(not_ours("its files do not match its manifest".into()));
    }
    let mut files: Vec<BackupFile> = Vec::new();
    for entry in &manifest.files {
        if files.iter().any(|(e, _)| e.name == entry.name || e.path == entry.path) {
            return Err(not_ours(format!("{} or {} is listed twice", entry.name, entry.path)));
        }
        let (_, data) = members
            .iter()
            .find(|(n, _)| *n == entry.name)
            .ok_or_else(|| not_ours(format!("{} is missing", entry.name)))?;
        if sha256_hex(data) != entry.sha256 {
            return Err(not_ours(format!("{} does not match its checksum", entry.name)));
        }
        if !entry.path.starts_with('/') || entry.path.split('/').any(|part| part == "..") {
            return Err(not_ours(format!("{} would go to {}", entry.name, entry.path)));
        }
        files.push((entry.clone(), data.clone()));
    }
    Ok((manifest, files))
}

/// A member's contents as text.
fn text_of((entry, data): &BackupFile) -> Result<&str, String> {
    std::str::from_utf8(data).map_err(|_| format!("{} in the backup is not text", entry.name))
}

/// The daemon reads its keys file as root, before it drops privileges: a keys file the archive
/// does not put in place (none in it, or one outside syhub-ntp's directories, left alone) must
/// already be one where the config names it, by its form, so that a config naming another file
/// (`/etc/shadow` under another name) is not restored. The refusal never quotes the file.
fn check_keys_in_place(host: &Host, config: &Config, files: &[BackupFile]) -> Result<(), String> {
    let Some(path) = &config.auth.keys_file else { return Ok(()) };
    let path = path.display().to_string();
    let restored = ALLOWED_DIRS.iter().any(|dir| path.starts_with(dir))
        && files.iter().any(|(entry, _)| entry.name == "keys" && entry.path == path);
    if restored {
        return Ok(());
    }
    let refuse = |why: String| {
        Err(format!(
            "the config in the backup names keys_file = {path:?}, which {why}: restore the keys \
             file too, or fix keys_file"
        ))
    };
    let on_host = host.path(&path);
    match std::fs::metadata(&on_host) {
        Err(_) => return Ok(()),
        Ok(metadata) if !metadata.is_file() => return refuse("is not a regular file".into()),
        Ok(_) => {}
    }
    let mut bytes = Vec::new();
    let read = std::fs::File::open(&on_host)
        .and_then(|file| file.take(MAX_MEMBER + 1).read_to_end(&mut bytes));
    if let Err(error) = read {
        return refuse(format!("cannot be read ({error})"));
    }
    if bytes.len() as u64 > MAX_MEMBER {
        return refuse("is far larger than a keys file".into());
    }
    let Ok(text) = std::str::from_utf8(&bytes) else { return refuse("is not text".into()) };
    match syhub_ntp_proto::auth::KeyStore::parse(text) {
        Ok(_) => Ok(()),
        Err(error) => refuse(format!("is not a keys file as it stands ({error})")),
    }
}

/// What a restore of checked files would do, decided before anything is written.
#[derive(Debug)]
pub struct RestorePlan<'a> {
    /// The files to write, each with how.
    pub writes: Vec<(&'a BackupEntry, &'a [u8], Access)>,
    /// Files the config names outside syhub-ntp's directories: left for the admin.
    pub left_alone: Vec<&'a BackupEntry>,
    /// The backed-up config, parsed.
    pub config: Config,
}

/// The checks of a restore that need no file system, on the files [`read_archive`] returned: a
/// config that goes under /etc/syhub-ntp/ and parses, and every other file what its name says and
/// where that config puts it.
pub fn plan_restore(files: &[BackupFile]) -> Result<RestorePlan<'_>, String> {
    // The config decides where every other file goes.
    let config_file = files
        .iter()
        .find(|(entry, _)| entry.name == "config.toml")
        .ok_or("the backup holds no config.toml")?;
    let config_path = &config_file.0.path;
    if !(config_path.starts_with(ALLOWED_DIRS[0]) && config_path.ends_with(".toml")) {
        return Err(format!(
            "config.toml would go to {config_path}, outside syhub-ntp's directories"
        ));
    }
    let config = Config::parse(text_of(config_file)?, &format!("{config_path} (in the backup)"))
        .map_err(|e| e.to_string())?;
    let expected = files_read(&config);
    // The contents must be usable, and go where the config says, before anything is replaced.
    let mut writes = Vec::new();
    let mut left_alone = Vec::new();
    for file in files {
        let (entry, data) = file;
        let access = check_kind(&entry.name, text_of(file)?)?;
        if entry.name != "config.toml" {
            let place = expected.iter().find(|(name, _)| *name == entry.name).map(|(_, p)| *p);
            if place != Some(std::path::Path::new(&entry.path)) {
                return Err(format!(
                    "{} would go to {}, which is not where the config in the backup puts it",
                    entry.name, entry.path
                ));
            }
        }
        if ALLOWED_DIRS.iter().any(|dir| entry.path.starts_with(dir)) {
            writes.push((entry, data.as_slice(), access));
        } else {
            left_alone.push(entry);
        }
    }
    Ok(RestorePlan { writes, left_alone, config })
}

/// Restores `archive`: every check first, then each file replaced by rename, the old one kept as
/// `*.before-restore`. Nothing is changed when a check fails. A file the config names outside
/// syhub-ntp's directories (a certificate under /etc/letsencrypt) is left alone and said so.
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
    let (mut manifest, files) = read_archive(&bytes)?;
    let RestorePlan { writes: plan, left_alone, config } = plan_restore(&files)?;
    check_keys_in_place(host, &config, &files)?;
    for (entry, _, _) in &plan {
        if let Some(link) = host.link_on_the_way(&entry.path) {
            return Err(format!(
                "{} is a symbolic link: restore does not write through links",
                link.display()
            ));
        }
    }
    for entry in left_alone {
        host.report.push(format!(
            "left {} alone: outside syhub-ntp's directories; restore it from the archive's {} \
             yourself",
            entry.path, entry.name
        ));
    }
    // Keep what is there, then put the new files in place; if one cannot be, the ones already
    // replaced are put back as they were.
    let mut previous = Vec::new();
    for (entry, _, _) in &plan {
        let old = host.read(&entry.path).ok();
        if let Some(old) = &old {
            let kept = format!("{}.before-restore", entry.path);
            host.write(&kept, old, 0o600)
                .map_err(|e| format!("cannot keep {}: {e}", entry.path))?;
        }
        let mode = std::fs::metadata(host.path(&entry.path)).map_or(0o600, |m| {
            use std::os::unix::fs::PermissionsExt;
            m.permissions().mode() & 0o777
        });
        previous.push((old, mode));
    }
    let group = host.id_of("/etc/group", ACCOUNT);
    let account = host.id_of("/etc/passwd", ACCOUNT).and(group);
    let mut written = Vec::new();
    for (index, (entry, data, access)) in plan.iter().enumerate() {
        let mode = access.mode(group.is_some());
        let result = match access {
            Access::Secret if group.is_some() => {
                host.write_with_group(&entry.path, data, mode, group)
            }
            Access::ServiceState => host.write(&entry.path, data, mode).and_then(|()| {
                if account.is_some() {
                    host.chown(&entry.path, ACCOUNT)?;
                }
                Ok(())
            }),
            Access::Public | Access::Secret => host.write(&entry.path, data, mode),
        };
        match result {
            Ok(()) => written.push(BackupEntry { mode, ..(*entry).clone() }),
            Err(error) => {
                for ((done, _, _), (old, mode)) in plan.iter().zip(&previous).take(index) {
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
    }
    manifest.files = written;
    Ok(manifest)
}
