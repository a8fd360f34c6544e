//! `[clients]`: the devices view: when a device counts as in sync or silent, whether its clock is
//! read from its requests, and the names shown for addresses.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientsConfig {
    /// Read each device's clock from its requests' transmit timestamps.
    pub clock_error: bool,
    /// A device whose clock is within this many seconds of ours is in sync.
    #[serde(deserialize_with = "in_sync_within")]
    pub in_sync_within: f64,
    /// A device is silent after 3 of its usual intervals without a request, but never sooner
    /// than this many seconds.
    #[serde(deserialize_with = "silent_after")]
    pub silent_after: f64,
    /// Names shown for addresses.
    #[serde(deserialize_with = "names")]
    pub names: BTreeMap<IpAddr, String>,
    /// A DHCP server's leases file (dnsmasq's or ISC dhcpd's) whose host names are shown.
    #[serde(deserialize_with = "super::optional_path")]
    pub leases_file: Option<PathBuf>,
}

impl Default for ClientsConfig {
    fn default() -> Self {
        Self {
            clock_error: true,
            in_sync_within: 0.1,
            silent_after: 3600.0,
            names: BTreeMap::new(),
            leases_file: None,
        }
    }
}

fn in_sync_within<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let seconds = f64::deserialize(d)?;
    if seconds > 0.0 && seconds <= 86_400.0 {
        Ok(seconds)
    } else {
        Err(serde::de::Error::custom(format!(
            "in_sync_within = {seconds} is out of range: expected seconds above 0, at most 86400"
        )))
    }
}

fn silent_after<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let seconds = f64::deserialize(d)?;
    if (1.0..=31_536_000.0).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(serde::de::Error::custom(format!(
            "silent_after = {seconds} is out of range: expected 1 to 31536000 seconds"
        )))
    }
}

fn names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<IpAddr, String>, D::Error> {
    let raw = BTreeMap::<String, String>::deserialize(d)?;
    raw.into_iter()
        .map(|(address, name)| {
            let parsed = address.parse::<IpAddr>().map_err(|_| {
                serde::de::Error::custom(format!(
                    "names: {address:?} is not an IP address (such as \"192.168.1.40\")"
                ))
            })?;
            let clean =
                !name.is_empty() && name.len() <= 64 && name.chars().all(|c| !c.is_control());
            if !clean {
                return Err(serde::de::Error::custom(format!(
                    "names: the name for {address} must be 1 to 64 printable characters"
                )));
            }
            Ok((parsed, name))
        })
        .collect()
}
