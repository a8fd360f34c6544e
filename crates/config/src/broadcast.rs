//! `[[broadcast]]`: announcing the hub's time to the whole LAN by IPv4 broadcast or multicast, or
//! IPv6 multicast, for clients that listen rather than ask.

use serde::Deserialize;
use std::net::IpAddr;

/// One `[[broadcast]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawBroadcast")]
pub struct BroadcastConfig {
    /// An IPv4 broadcast address (`192.168.1.255`, or `255.255.255.255`, which needs a route) or
    /// an IPv4 or IPv6 multicast group (`224.0.1.1`, `ff05::101`). Sent to port 123.
    pub address: IpAddr,
    /// Seconds between broadcasts.
    pub interval: u32,
    /// Hop limit of multicast packets (1: this LAN segment only).
    pub ttl: u8,
    /// Sign with this key from `[auth] keys_file`.
    pub key: Option<u32>,
    /// The interface multicast leaves by (every interface that can carry multicast when unset).
    pub interface: Option<String>,
}

impl BroadcastConfig {
    /// The poll exponent announced in the packets: log2 of the interval, rounded.
    pub fn poll_exponent(&self) -> i8 {
        f64::from(self.interval).log2().round().clamp(0.0, 17.0) as i8
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBroadcast {
    address: String,
    interval: Option<i64>,
    ttl: Option<i64>,
    key: Option<i64>,
    interface: Option<String>,
}

impl TryFrom<RawBroadcast> for BroadcastConfig {
    type Error = String;
    fn try_from(raw: RawBroadcast) -> Result<Self, String> {
        let address: IpAddr = raw.address.trim().parse().map_err(|_| {
            format!(
                "address {:?}: expected an IP address such as \"192.168.1.255\", \"224.0.1.1\" or \"ff05::101\"",
                raw.address
            )
        })?;
        match address {
            IpAddr::V6(v6) if !v6.is_multicast() => {
                return Err(format!(
                    "address {address}: IPv6 has no broadcast; use a multicast group such as ff05::101"
                ));
            }
            _ if address.is_unspecified() || address.is_loopback() => {
                return Err(format!("address {address}: not a broadcast or multicast address"));
            }
            _ => {}
        }
        let interval = match raw.interval {
            None => 64,
            Some(seconds @ 1..=65_536) => seconds as u32,
            Some(other) => return Err(format!("interval = {other}: expected 1 to 65536 seconds")),
        };
        let ttl = match raw.ttl {
            None => 1,
            Some(ttl @ 1..=255) => ttl as u8,
            Some(other) => return Err(format!("ttl = {other}: expected 1 to 255")),
        };
        let key = match raw.key {
            None => None,
            Some(id @ 1..=65_534) => Some(id as u32),
            Some(id) => return Err(format!("key = {id}: expected a key id from 1 to 65534")),
        };
        let interface = raw.interface.filter(|name| !name.is_empty());
        Ok(Self { address, interval, ttl, key, interface })
    }
}
