//! The daemon's configuration: TOML with every key checked, the embedded default, and errors that
//! name the file, line, column and what was expected.

mod file;

pub use file::{ConfigError, ConfigSource, DEFAULT_CONFIG_PATH, DEFAULT_CONFIG_TOML, LoadedConfig};

use serde::Deserialize;
use std::net::SocketAddr;

/// The whole configuration. Every section and key has a default, so an empty file is valid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub clock: ClockConfig,
    pub local: LocalConfig,
}

/// `[server]`: where and how to serve time.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// UDP addresses to listen on; no duplicates.
    pub listen: ListenAddresses,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: ListenAddresses(vec![
                SocketAddr::from(([0, 0, 0, 0], 123)),
                SocketAddr::from(([0u16; 8], 123)),
            ]),
        }
    }
}

/// A list of socket addresses with no address given twice.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<SocketAddr>")]
pub struct ListenAddresses(Vec<SocketAddr>);

impl ListenAddresses {
    pub fn as_slice(&self) -> &[SocketAddr] {
        &self.0
    }
}

impl TryFrom<Vec<SocketAddr>> for ListenAddresses {
    type Error = String;
    fn try_from(addresses: Vec<SocketAddr>) -> Result<Self, String> {
        for (i, address) in addresses.iter().enumerate() {
            if addresses[..i].contains(address) {
                return Err(format!("address {address} is listed twice"));
            }
        }
        Ok(Self(addresses))
    }
}

/// `[clock]`: what the daemon may do to the system clock.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockConfig {
    pub mode: ClockMode,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    /// Discipline the system clock (needs CAP_SYS_TIME).
    #[default]
    Steer,
    /// Compute and report; never touch the system clock.
    Observe,
}

/// `[local]`: the local-clock fallback.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalConfig {
    pub enabled: bool,
    pub stratum: LocalStratum,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            stratum: LocalStratum(10),
        }
    }
}

/// A stratum a server may announce for its local clock: 1 to 15.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct LocalStratum(u8);

impl LocalStratum {
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for LocalStratum {
    type Error = String;
    fn try_from(stratum: i64) -> Result<Self, String> {
        match u8::try_from(stratum) {
            Ok(s @ 1..=15) => Ok(Self(s)),
            _ => Err(format!(
                "stratum {stratum} is out of range: expected 1 to 15"
            )),
        }
    }
}

#[cfg(test)]
mod tests;
