//! Loading the symmetric keys file: private permissions, every line valid, trusted keys present,
//! and every key a source names there. Read once at start, before privileges are dropped.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use syhub_ntp_config::Config;
use syhub_ntp_proto::auth::KeyStore;

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("cannot read the keys file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "the keys file {} has mode {mode:04o}: it must be private (0600, or 0640 for the service's \
         group); run `chmod 600 {}`", path.display(), path.display()
    )]
    NotPrivate { path: PathBuf, mode: u32 },
    #[error("the keys file {}: {source}", path.display())]
    Invalid { path: PathBuf, source: syhub_ntp_proto::auth::KeysFileError },
    #[error("[auth] trusted_keys names key {id}, which is not in {}", path.display())]
    MissingTrusted { path: PathBuf, id: u32 },
    #[error("{user} uses key {id}, which is not a trusted key in {}", path.display())]
    MissingKey { path: PathBuf, user: String, id: u32 },
    #[error("{user} uses key {id}, but [auth] keys_file is not set")]
    NoKeysFile { user: String, id: u32 },
}

/// Every key the config names, and where: `[[source]]` and `[[broadcast]]` tables.
fn key_users(config: &Config) -> Vec<(String, u32)> {
    let sources = config
        .sources
        .iter()
        .filter_map(|s| s.key.map(|id| (format!("[[source]] {}", s.address), id)));
    let broadcasts = config
        .broadcasts
        .iter()
        .filter_map(|b| b.key.map(|id| (format!("[[broadcast]] {}", b.address), id)));
    sources.chain(broadcasts).collect()
}

/// The keys the config asks for: empty without `[auth] keys_file`.
pub fn load(config: &Config) -> Result<KeyStore, KeysError> {
    let users = key_users(config);
    let Some(path) = &config.auth.keys_file else {
        if let Some((user, id)) = users.into_iter().next() {
            return Err(KeysError::NoKeysFile { user, id });
        }
        return Ok(KeyStore::EMPTY);
    };
    let mut keys = read(path)?;
    if !config.auth.trusted_keys.is_empty() {
        keys.trust_only(&config.auth.trusted_keys)
            .map_err(|id| KeysError::MissingTrusted { path: path.clone(), id })?;
    }
    if let Some((user, id)) = users.into_iter().find(|(_, id)| keys.key(*id).is_none()) {
        return Err(KeysError::MissingKey { path: path.clone(), user, id });
    }
    Ok(keys)
}

/// Reads and parses a keys file that only its owner (and at most its group, read-only) can read.
pub fn read(path: &Path) -> Result<KeyStore, KeysError> {
    let error = |source| KeysError::Read { path: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(error)?;
    let mode = file.metadata().map_err(error)?.mode() & 0o7777;
    if mode & 0o037 != 0 {
        return Err(KeysError::NotPrivate { path: path.to_owned(), mode });
    }
    let text = std::io::read_to_string(file).map_err(error)?;
    KeyStore::parse(&text).map_err(|source| KeysError::Invalid { path: path.to_owned(), source })
}
