//! `[server]`: the addresses the server listens on (checked so that each can really be bound),
//! whom it answers, how often, and the user it runs as.

use serde::Deserialize;
use std::net::SocketAddr;
use syhub_ntp_proto::server::{Prefix, RateLimit};

/// `[server]`: where and how to serve time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// UDP addresses to listen on; no duplicates.
    pub listen: ListenAddresses,
    /// Who may ask: prefixes, plus `local` for the hub's own on-link subnets.
    pub allow: Vec<AccessRule>,
    pub deny: Vec<AccessRule>,
    /// What a denied client gets.
    pub deny_action: Refusal,
    pub rate_limit: RateLimitConfig,
    /// The account to run as once the sockets are bound; "" keeps the one started as.
    pub user: String,
    /// Serving threads (each with its own socket) per listen address.
    pub threads: Threads,
    /// Kernel memory for requests queued on each socket, bytes, as SO_RCVBUF reads it back.
    pub receive_buffer: ReceiveBuffer,
}

/// Serving threads per listen address: 0 in the file means one per CPU core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct Threads(usize);

impl Threads {
    /// Most threads per address: beyond the cores of any hub, and a bound on memory.
    pub const MAX: usize = 64;

    pub fn get(self) -> usize {
        if self.0 == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get()).min(Self::MAX)
        } else {
            self.0
        }
    }
}

impl TryFrom<i64> for Threads {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, String> {
        match usize::try_from(value) {
            Ok(n) if n <= Self::MAX => Ok(Self(n)),
            _ => Err(format!(
                "threads = {value}: expected 1 to {} (or 0 for one per CPU core)",
                Self::MAX
            )),
        }
    }
}

/// Receive buffer asked for on each server socket unless `receive_buffer` says otherwise, bytes.
pub const DEFAULT_RECEIVE_BUFFER: usize = 4 << 20;

/// Socket receive buffer, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct ReceiveBuffer(pub usize);

impl Default for ReceiveBuffer {
    fn default() -> Self {
        Self(DEFAULT_RECEIVE_BUFFER)
    }
}

impl TryFrom<i64> for ReceiveBuffer {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, String> {
        match usize::try_from(value) {
            Ok(n @ 4096..=268_435_456) => Ok(Self(n)),
            _ => Err(format!("receive_buffer = {value}: expected 4096 to 268435456 bytes")),
        }
    }
}

/// The account the daemon switches to when started as root and it exists.
pub const DEFAULT_USER: &str = "syhub-ntp";

/// Who is answered by default: loopback, the private IPv4 ranges, link-local, IPv6 ULA, and the
/// hub's own subnets.
pub const DEFAULT_ALLOW: [&str; 9] = [
    "127.0.0.0/8",
    "::1",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "fc00::/7",
    "fe80::/10",
    "local",
];

impl Default for ServerConfig {
    fn default() -> Self {
        let allow = DEFAULT_ALLOW;
        Self {
            listen: ListenAddresses(vec![
                SocketAddr::from(([0, 0, 0, 0], 123)),
                SocketAddr::from(([0u16; 8], 123)),
            ]),
            allow: allow.iter().filter_map(|rule| rule.parse().ok()).collect(),
            deny: Vec::new(),
            deny_action: Refusal::Drop,
            rate_limit: RateLimitConfig::default(),
            user: DEFAULT_USER.into(),
            threads: Threads::default(),
            receive_buffer: ReceiveBuffer::default(),
        }
    }
}

/// An access rule: an address prefix, or `local` for the subnets on the hub's own interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum AccessRule {
    Prefix(Prefix),
    LocalNetworks,
}

impl std::str::FromStr for AccessRule {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if text == "local" { Ok(Self::LocalNetworks) } else { text.parse().map(Self::Prefix) }
    }
}

impl TryFrom<String> for AccessRule {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

/// What a refused client gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Refusal {
    /// Nothing.
    #[default]
    Drop,
    /// A kiss-o'-death, at most one per client every 8 s.
    Kod,
}

/// `[server.rate_limit]`: per-client limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawRateLimit")]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub limit: RateLimit,
    /// What a client over its limit gets.
    pub action: Refusal,
    /// Client addresses remembered; the least recently seen make room.
    pub clients: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { enabled: true, limit: RateLimit::default(), action: Refusal::Kod, clients: 65_536 }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    enabled: Option<bool>,
    average: Option<f64>,
    minimum: Option<f64>,
    burst: Option<f64>,
    action: Option<Refusal>,
    clients: Option<i64>,
}

impl TryFrom<RawRateLimit> for RateLimitConfig {
    type Error = String;
    fn try_from(raw: RawRateLimit) -> Result<Self, String> {
        let default = Self::default();
        let seconds = |name: &str, value: Option<f64>, fallback: f64| match value {
            None => Ok(fallback),
            Some(v) if v.is_finite() && (0.0..=3600.0).contains(&v) => Ok(v),
            Some(v) => Err(format!("{name} = {v}: expected 0 to 3600 seconds")),
        };
        let average = seconds("average", raw.average, default.limit.average)?.max(1e-3);
        let minimum = seconds("minimum", raw.minimum, default.limit.minimum)?;
        let burst = match raw.burst {
            None => default.limit.burst,
            Some(b) if b.is_finite() && (1.0..=1000.0).contains(&b) => b,
            Some(b) => return Err(format!("burst = {b}: expected 1 to 1000 requests")),
        };
        let clients = match raw.clients {
            None => default.clients,
            Some(n @ 16..=4_194_304) => n as usize,
            Some(n) => return Err(format!("clients = {n}: expected 16 to 4194304 addresses")),
        };
        Ok(Self {
            enabled: raw.enabled.unwrap_or(default.enabled),
            limit: RateLimit { average, minimum, burst },
            action: raw.action.unwrap_or(default.action),
            clients,
        })
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
                    return Err(format!("{address} is listed twice"));
                }
                let same_family = earlier.is_ipv4() == address.is_ipv4();
                let wildcard = earlier.ip().is_unspecified() || address.ip().is_unspecified();
                if same_family && wildcard && earlier.port() == address.port() {
                    return Err(format!(
                        "{address} overlaps {earlier}: a wildcard address already covers every \
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
