//! `[auth]`: the symmetric keys file (ntpd's format) and which of its keys are trusted.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The keys file; `None` (`""`, the default): no keys, and signed requests get a crypto-NAK.
    #[serde(deserialize_with = "super::optional_path")]
    pub keys_file: Option<PathBuf>,
    /// Key ids trusted for serving and for sources; empty: every key in the file.
    #[serde(deserialize_with = "key_ids")]
    pub trusted_keys: Vec<u32>,
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
