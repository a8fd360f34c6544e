//! `[[source]]`: the upstream servers and pools the hub takes its time from.

use serde::Deserialize;

/// One `[[source]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawSource")]
pub struct SourceConfig {
    pub mode: SourceMode,
    /// Name or address, with an optional port: `pool.ntp.org`, `192.0.2.1:123`, `[2001:db8::1]`.
    pub address: String,
    pub iburst: bool,
    /// Poll interval bounds, log2 seconds.
    pub minpoll: i8,
    pub maxpoll: i8,
    /// For a pool: how many of its servers to use at once.
    pub max_sources: u8,
    /// Used only while no other source is selectable, never combined with them.
    pub fallback: bool,
    /// Sign requests with this key from `[auth] keys_file` and accept only answers it signed.
    pub key: Option<u32>,
    /// Broadcast mode: follow broadcasts that carry no MAC (anyone on the LAN can forge them).
    pub insecure_unauthenticated: bool,
    /// Broadcast mode: the interface to join a multicast group on (the routing table decides
    /// when unset).
    pub interface: Option<String>,
    /// NTS mode: a PEM file of CA certificates to trust for the NTS-KE server, instead of the
    /// system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// NTS mode: accept the server's certificate outside its validity dates (chrony's
    /// `nocerttimecheck`), for a hub that boots with a wrong clock and no real-time clock.
    pub ignore_certificate_time: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceMode {
    /// One server (a name resolving to one address is used as that one address).
    Server,
    /// A DNS name standing for many servers: up to `max_sources` of them are used and replaced
    /// when they fail.
    Pool,
    /// Listen for broadcasts to `address` (an IPv4 broadcast address or a multicast group) and
    /// follow up to `max_sources` servers heard there, each measured once by client exchanges.
    Broadcast,
    /// Network Time Security: `address` is the NTS-KE server (port 4460 unless given), whose
    /// certificate must be valid; time comes authenticated from the NTP server it names.
    Nts,
}

/// Poll exponent bounds: 1 s to 36 hours.
const POLL_RANGE: (i8, i8) = (0, 17);
/// The public NTP pool asks for no more than one query a minute.
const POOL_MINPOLL: i8 = 6;

/// A name in the public NTP pool (including vendor zones), which must be polled gently.
fn is_public_pool(address: &str) -> bool {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host).trim_end_matches('.');
    host == "pool.ntp.org" || host.ends_with(".pool.ntp.org")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    mode: SourceMode,
    address: String,
    #[serde(default = "default_true")]
    iburst: bool,
    minpoll: Option<i64>,
    maxpoll: Option<i64>,
    max_sources: Option<i64>,
    #[serde(default)]
    fallback: bool,
    key: Option<i64>,
    #[serde(default)]
    insecure_unauthenticated: bool,
    interface: Option<String>,
    ca_file: Option<String>,
    #[serde(default)]
    ignore_certificate_time: bool,
}

fn default_true() -> bool {
    true
}

impl TryFrom<RawSource> for SourceConfig {
    type Error = String;
    fn try_from(raw: RawSource) -> Result<Self, String> {
        let address = raw.address.trim().to_owned();
        crate::query::parse_target(&address).map_err(|e| format!("address: {e}"))?;
        if (raw.ca_file.is_some() || raw.ignore_certificate_time) && raw.mode != SourceMode::Nts {
            return Err("ca_file and ignore_certificate_time apply to mode = \"nts\" only".into());
        }
        if raw.mode == SourceMode::Nts && raw.key.is_some() {
            return Err("an NTS source authenticates with NTS: key does not apply".into());
        }
        if raw.mode == SourceMode::Broadcast {
            check_broadcast(&raw, &address)?;
        } else if raw.insecure_unauthenticated || raw.interface.is_some() {
            return Err(
                "insecure_unauthenticated and interface apply to mode = \"broadcast\" only".into(),
            );
        }
        let poll = |name: &str, value: Option<i64>, default: i8| -> Result<i8, String> {
            match value {
                None => Ok(default),
                Some(v) if (i64::from(POLL_RANGE.0)..=i64::from(POLL_RANGE.1)).contains(&v) => {
                    Ok(v as i8)
                }
                Some(v) => Err(format!(
                    "{name} = {v}: expected {} to {} (log2 seconds: 6 is 64 s, 10 is 1024 s)",
                    POLL_RANGE.0, POLL_RANGE.1
                )),
            }
        };
        let minpoll = poll("minpoll", raw.minpoll, 6)?;
        let maxpoll = poll("maxpoll", raw.maxpoll, 10.max(minpoll))?;
        if minpoll > maxpoll {
            return Err(format!("minpoll ({minpoll}) is above maxpoll ({maxpoll})"));
        }
        if raw.mode == SourceMode::Pool && is_public_pool(&address) && minpoll < POOL_MINPOLL {
            return Err(format!(
                "minpoll = {minpoll} for {address}: the NTP pool asks for at most one query a minute \
                 (minpoll 6 or more)"
            ));
        }
        let max_sources = match (raw.mode, raw.max_sources) {
            (SourceMode::Server | SourceMode::Nts, Some(_)) => {
                return Err("max_sources applies to mode = \"pool\" only".into());
            }
            (SourceMode::Server | SourceMode::Nts, None) => 1,
            (SourceMode::Pool | SourceMode::Broadcast, None) => 4,
            (SourceMode::Pool | SourceMode::Broadcast, Some(n @ 1..=16)) => n as u8,
            (SourceMode::Pool | SourceMode::Broadcast, Some(n)) => {
                return Err(format!("max_sources = {n}: expected 1 to 16"));
            }
        };
        let key = match raw.key {
            None => None,
            Some(id @ 1..=65_534) => Some(id as u32),
            Some(id) => return Err(format!("key = {id}: expected a key id from 1 to 65534")),
        };
        Ok(Self {
            key,
            insecure_unauthenticated: raw.insecure_unauthenticated,
            ca_file: raw.ca_file.filter(|p| !p.is_empty()).map(std::path::PathBuf::from),
            ignore_certificate_time: raw.ignore_certificate_time,
            interface: raw.interface.filter(|name| !name.is_empty()),
            mode: raw.mode,
            address,
            iburst: raw.iburst,
            minpoll,
            maxpoll,
            max_sources,
            fallback: raw.fallback,
        })
    }
}

/// A broadcast source listens on a broadcast address or multicast group, and must be signed
/// unless the user says otherwise.
fn check_broadcast(raw: &RawSource, address: &str) -> Result<(), String> {
    let ip: std::net::IpAddr = address.parse().map_err(|_| {
        format!(
            "address {address:?}: a broadcast source listens on an address, such as \"192.168.1.255\", \
             \"224.0.1.1\" or \"ff05::101\" (no name, no port: broadcasts go to port 123)"
        )
    })?;
    if let std::net::IpAddr::V6(v6) = ip
        && !v6.is_multicast()
    {
        return Err(format!(
            "address {ip}: IPv6 has no broadcast; use a multicast group such as ff05::101"
        ));
    }
    if raw.key.is_none() && !raw.insecure_unauthenticated {
        return Err("a broadcast source needs key = N: anyone on the LAN can send a broadcast. \
                    To follow unsigned broadcasts anyway, set insecure_unauthenticated = true"
            .into());
    }
    Ok(())
}

/// The sources of the embedded default: the NTP pool, with NIST and Google as fallbacks.
pub fn default_sources() -> Vec<SourceConfig> {
    let source = |mode, address: &str, fallback| SourceConfig {
        mode,
        address: address.to_owned(),
        iburst: true,
        minpoll: 6,
        maxpoll: 10,
        max_sources: if mode == SourceMode::Pool { 4 } else { 1 },
        fallback,
        key: None,
        insecure_unauthenticated: false,
        interface: None,
        ca_file: None,
        ignore_certificate_time: false,
    };
    vec![
        source(SourceMode::Pool, "pool.ntp.org", false),
        source(SourceMode::Server, "time.nist.gov", true),
        source(SourceMode::Server, "time.google.com", true),
    ]
}

/// The NTS-KE server of an NTS source's address: its port, or 4460 when none is given.
pub fn nts_ke_target(address: &str) -> crate::query::Target {
    use crate::query::Target;
    let explicit_port =
        address.starts_with('[') && address.contains("]:") || address.matches(':').count() == 1;
    match crate::query::parse_target(address) {
        Ok(Target::Address(socket)) if !explicit_port => {
            Target::Address(std::net::SocketAddr::new(socket.ip(), syhub_ntp_proto::nts::KE_PORT))
        }
        Ok(Target::Name { host, .. }) if !explicit_port => {
            Target::Name { host, port: syhub_ntp_proto::nts::KE_PORT }
        }
        Ok(target) => target,
        Err(_) => Target::Name { host: address.to_owned(), port: syhub_ntp_proto::nts::KE_PORT },
    }
}
