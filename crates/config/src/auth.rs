//! `[auth]`: the symmetric keys file (ntpd's format) and which of its keys are trusted.

use serde::Deserialize;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The keys file; `None` (`""`, the default): no keys, and signed requests get a crypto-NAK.
    #[serde(deserialize_with = "keys_file")]
    pub keys_file: Option<PathBuf>,
    /// Key ids trusted for serving and for sources; empty: every key in the file.
    #[serde(deserialize_with = "key_ids")]
    pub trusted_keys: Vec<u32>,
}

/// The system's account databases: the daemon reads its keys file as root, and an error about
/// such a file could show a line of it (a password hash), so naming one as the keys file is
/// refused outright. Any other file that is not a keys file is refused by its form when read.
const ACCOUNT_DATABASES: [&str; 4] = ["/etc/shadow", "/etc/gshadow", "/etc/passwd", "/etc/group"];

/// Whether `path` names one of the account databases or its backup (`/etc/shadow-`), however
/// it is spelt (`/etc//shadow`, `/etc/../etc/shadow`).
pub(crate) fn is_account_database(path: &Path) -> bool {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    let normal: PathBuf = std::iter::once(Path::new("/").as_os_str()).chain(parts).collect();
    let normal = normal.to_string_lossy();
    ACCOUNT_DATABASES
        .iter()
        .any(|database| normal == *database || normal.strip_suffix('-') == Some(database))
}

fn keys_file<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    let path = super::optional_path(d)?;
    match path {
        Some(path) if is_account_database(&path) => Err(serde::de::Error::custom(format!(
            "keys_file = {:?} is a system account database, not a keys file: name the ntpd \
             keys file, such as \"/etc/syhub-ntp/ntp.keys\" (`syhub-ntp keygen` writes one)",
            path.display().to_string()
        ))),
        other => Ok(other),
    }
}

fn key_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
    let ids = Vec::<i64>::deserialize(d)?;
    ids.into_iter()
        .map(|id| {
            u32::try_from(id).ok().filter(|id| (1..=65_534).contains(id)).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "key id {id} is out of range: expected 1 to 65534"
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_databases_are_recognised_however_spelt() {
        for path in
            ["/etc/shadow", "/etc//shadow", "/etc/../etc/gshadow", "/etc/passwd-", "/etc/./group"]
        {
            assert!(is_account_database(Path::new(path)), "{path}");
        }
        for path in
            ["/etc/syhub-ntp/ntp.keys", "/etc/ntp.keys", "/etc/shadowed", "/root/etc/shadow"]
        {
            assert!(!is_account_database(Path::new(path)), "{path}");
        }
    }
}
