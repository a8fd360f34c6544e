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
            check_listen_address(address)?;
            for earlier in &addresses[..i] {
                if earlier == address {
                    return Err(format!("address {address} is listed twice"));
                }
                let same_family = earlier.is_ipv4() == address.is_ipv4();
                let wildcard = earlier.ip().is_unspecified() || address.ip().is_unspecified();
                if same_family && wildcard && earlier.port() == address.port() {
                    return Err(format!(
                        "{earlier} and {address} overlap: a wildcard address already covers every \
                         address of its family on that port"
                    ));
                }
            }
        }
        Ok(Self(addresses))
    }
}

/// Refuses addresses a server cannot usefully listen on.
fn check_listen_address(address: &SocketAddr) -> Result<(), String> {
    let ip = address.ip();
    let problem = if address.port() == 0 {
        "port 0 would be a random port no client knows"
    } else if ip.is_multicast() {
        "a multicast address cannot be listened on here (see [[broadcast]])"
    } else if ip == std::net::Ipv4Addr::BROADCAST {
        "the broadcast address cannot be listened on"
    } else if let std::net::IpAddr::V6(v6) = ip
        && v6.to_ipv4_mapped().is_some()
    {
        "an IPv4-mapped IPv6 address never matches (IPv6 sockets are IPv6-only): use the IPv4 form"
    } else {
        return Ok(());
    };
    Err(format!("{address}: {problem}"))
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
        Self { enabled: true, stratum: LocalStratum(10) }
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
            _ => Err(format!("stratum {stratum} is out of range: expected 1 to 15")),
        }
    }
}

#[cfg(test)]
mod tests;
