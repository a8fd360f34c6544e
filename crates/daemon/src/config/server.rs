//! `[server]`: the addresses the server listens on, checked so that each can really be bound.

use serde::Deserialize;
use std::net::SocketAddr;

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
