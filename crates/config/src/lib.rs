//! The daemon's configuration: TOML with every key checked, the embedded default, and errors that
//! name the file, line, column and what was expected. Shared by the daemon, which runs from it,
//! and by the commands and operations that read it (install, backup, `syhub-ntp test`).
#![forbid(unsafe_code)]

mod auth;
mod broadcast;
mod clients;
mod clock;
mod control;
mod file;
mod local;
mod monitor;
mod nts;
mod server;
mod source;
mod target;

pub use auth::AuthConfig;
pub use broadcast::BroadcastConfig;
pub use clients::ClientsConfig;
pub use clock::{ClockConfig, ClockMode, DEFAULT_DRIFT_FILE, DEFAULT_LEAP_FILE, LeapMode};
pub use control::{ControlConfig, DEFAULT_CONTROL_SOCKET};
pub use file::{ConfigError, ConfigSource, DEFAULT_CONFIG_PATH, DEFAULT_CONFIG_TOML, LoadedConfig};
pub use local::{LocalConfig, LocalMode, LocalStratum};
pub use monitor::{Broker, HttpConfig, MqttConfig};
pub use nts::{DEFAULT_NTS_KEYS, NtsConfig};
pub use server::{
    AccessRule, DEFAULT_ALLOW, DEFAULT_RECEIVE_BUFFER, DEFAULT_USER, ListenAddresses,
    RateLimitConfig, Refusal, ServerConfig,
};
pub use source::{RefclockSettings, SourceConfig, SourceMode, default_sources, nts_ke_target};
pub use target::{BadTarget, NTP_PORT, Target, parse_target};

use serde::Deserialize;

/// The whole configuration. Every section and key has a default, so an empty file is valid.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[[source]]` tables; `source = []` for none.
    #[serde(rename = "source")]
    pub sources: Vec<SourceConfig>,
    pub server: ServerConfig,
    /// `[[broadcast]]` tables: none by default.
    #[serde(rename = "broadcast")]
    pub broadcasts: Vec<BroadcastConfig>,
    pub clock: ClockConfig,
    pub local: LocalConfig,
    pub control: ControlConfig,
    pub http: HttpConfig,
    pub mqtt: MqttConfig,
    pub auth: AuthConfig,
    pub nts: NtsConfig,
    pub clients: ClientsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            sources: default_sources(),
            server: ServerConfig::default(),
            broadcasts: Vec::new(),
            clock: ClockConfig::default(),
            local: LocalConfig::default(),
            control: ControlConfig::default(),
            http: HttpConfig::default(),
            mqtt: MqttConfig::default(),
            auth: AuthConfig::default(),
            nts: NtsConfig::default(),
            clients: ClientsConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests;

/// A path that may be `""`, meaning none.
fn optional_path<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::path::PathBuf>, D::Error> {
    let path = String::deserialize(d)?;
    Ok((!path.is_empty()).then(|| std::path::PathBuf::from(path)))
}
