//! `[[source]]`: the upstream servers and pools the hub takes its time from.

use crate::target::{Target, parse_target};
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
    /// Broadcast mode: the interface to join a multicast group on (every interface that can
    /// carry multicast, as they come and go, when unset).
    pub interface: Option<String>,
    /// NTS mode: a PEM file of CA certificates to trust for the NTS-KE server, instead of the
    /// system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// NTS mode: accept the server's certificate outside its validity dates (chrony's
    /// `nocerttimecheck`), for a hub that boots with a wrong clock and no real-time clock.
    pub ignore_certificate_time: bool,
    /// Follow this source alone whenever it survives selection (RFC 5905's prefer peer).
    pub prefer: bool,
    /// The reference-clock modes' settings (`gpsd-shm`, `sock`, `pps`).
    pub refclock: Option<RefclockSettings>,
}

/// How a reference clock (`mode = "gpsd-shm"`, `"sock"` or `"pps"`) is read and counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefclockSettings {
    /// gpsd-shm: the segment's unit (0 and 1 are gpsd's first device; key 0x4E545030 + unit).
    pub unit: u32,
    /// sock: the Unix socket gpsd sends to (`/run/chrony.<device>.sock`); pps: the device.
    pub path: Option<std::path::PathBuf>,
    /// Seconds added to every sample (how late the device's timestamps are), in nanoseconds so
    /// the settings stay comparable.
    pub offset_nanos: i64,
    /// log2 seconds.
    pub precision: i8,
    pub stratum: u8,
    /// Up to four ASCII characters: `GPS`, `PPS`.
    pub refid: String,
    /// pps (and sock, for gpsd's PPS samples): the reference id of the source that numbers the
    /// seconds (another `[[source]]`'s `refid`, such as the gpsd-shm clock's `GPS`).
    pub pair: Option<String>,
    /// log2 seconds between reductions of the samples (default 4: 16 s).
    pub poll: i8,
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
    /// A reference clock read from gpsd's NTP shared-memory segment `unit`.
    #[serde(rename = "gpsd-shm")]
    GpsdShm,
    /// A reference clock whose samples gpsd sends to a Unix socket at `path` (chrony's SOCK
    /// protocol).
    Sock,
    /// A pulse-per-second device (`path`, such as /dev/pps0); `pair` names the source that
    /// numbers the seconds.
    Pps,
}

impl SourceMode {
    /// As the config spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Pool => "pool",
            Self::Broadcast => "broadcast",
            Self::Nts => "nts",
            Self::GpsdShm => "gpsd-shm",
            Self::Sock => "sock",
            Self::Pps => "pps",
        }
    }

    /// A reference clock rather than a network server.
    pub fn is_refclock(self) -> bool {
        matches!(self, Self::GpsdShm | Self::Sock | Self::Pps)
    }
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
    #[serde(default)]
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
    #[serde(default)]
    prefer: bool,
    unit: Option<i64>,
    path: Option<String>,
    offset: Option<f64>,
    precision: Option<i64>,
    stratum: Option<i64>,
    refid: Option<String>,
    pair: Option<String>,
    poll: Option<i64>,
}

impl RawSource {
    /// The first reference-clock setting given, by name.
    fn refclock_setting(&self) -> Option<&'static str> {
        [
            ("unit", self.unit.is_some()),
            ("path", self.path.is_some()),
            ("offset", self.offset.is_some()),
            ("precision", self.precision.is_some()),
            ("stratum", self.stratum.is_some()),
            ("refid", self.refid.is_some()),
            ("pair", self.pair.is_some()),
            ("poll", self.poll.is_some()),
        ]
        .into_iter()
        .find_map(|(name, given)| given.then_some(name))
    }
}

/// Checks a reference clock's settings; `address` becomes its display name.
fn refclock_settings(raw: &RawSource) -> Result<RefclockSettings, String> {
    // Each message starts with the key it is about, so the error points at that key's value.
    let network_only = [
        ("key", raw.key.is_some()),
        ("minpoll", raw.minpoll.is_some()),
        ("maxpoll", raw.maxpoll.is_some()),
        ("max_sources", raw.max_sources.is_some()),
    ];
    if let Some((name, _)) = network_only.iter().find(|(_, given)| *given) {
        return Err(format!(
            "{name} does not apply to a reference clock (key, minpoll, maxpoll and max_sources \
             are for network sources; a reference clock's poll is `poll`)"
        ));
    }
    let broadcast_or_nts = [
        ("insecure_unauthenticated", raw.insecure_unauthenticated),
        ("interface", raw.interface.is_some()),
        ("ca_file", raw.ca_file.is_some()),
    ];
    if let Some((name, _)) = broadcast_or_nts.iter().find(|(_, given)| *given) {
        return Err(format!(
            "{name} does not apply to a reference clock: it is a broadcast or NTS setting"
        ));
    }
    let unit = match (raw.mode, raw.unit) {
        (SourceMode::GpsdShm, None) => 0,
        (SourceMode::GpsdShm, Some(unit @ 0..=255)) => unit as u32,
        (SourceMode::GpsdShm, Some(unit)) => {
            return Err(format!(
                "unit = {unit}: expected 0 to 255 (gpsd uses 0 and 1 for its first device)"
            ));
        }
        (_, Some(_)) => return Err("unit applies to mode = \"gpsd-shm\" only".into()),
        (_, None) => 0,
    };
    let path = match (raw.mode, raw.path.as_deref().map(str::trim)) {
        (SourceMode::GpsdShm, Some(_)) => {
            return Err("path does not apply to mode = \"gpsd-shm\" (it uses unit)".into());
        }
        (SourceMode::GpsdShm, None) => None,
        (SourceMode::Server | SourceMode::Pool | SourceMode::Broadcast | SourceMode::Nts, None) => {
            None
        }
        (SourceMode::Sock, None) => {
            return Err("mode = \"sock\" needs path, the socket gpsd sends to, such as \
                        \"/run/chrony.ttyAMA0.sock\""
                .into());
        }
        (SourceMode::Pps, None) => {
            return Err("mode = \"pps\" needs path, the PPS device, such as \"/dev/pps0\"".into());
        }
        (_, Some(path)) if !path.starts_with('/') => {
            return Err(format!("path = {path:?}: expected an absolute path"));
        }
        (_, Some(path)) => Some(std::path::PathBuf::from(path)),
    };
    let offset = raw.offset.unwrap_or(0.0);
    if !offset.is_finite() || offset.abs() > 1.0 {
        return Err(format!("offset = {offset}: expected seconds between -1 and 1"));
    }
    let precision = match raw.precision {
        None if raw.mode == SourceMode::Pps => -20,
        None => -10,
        Some(p @ -30..=0) => p as i8,
        Some(p) => return Err(format!("precision = {p}: expected log2 seconds from -30 to 0")),
    };
    let stratum = match raw.stratum {
        None => 0,
        Some(s @ 0..=15) => s as u8,
        Some(s) => {
            return Err(format!("stratum = {s}: expected 0 to 15 (0: the hub serves stratum 1)"));
        }
    };
    let refid = raw
        .refid
        .clone()
        .unwrap_or_else(|| if raw.mode == SourceMode::Pps { "PPS" } else { "GPS" }.to_owned());
    if refid.is_empty() || refid.len() > 4 || !refid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "refid = {refid:?}: expected 1 to 4 ASCII letters or digits, such as \"GPS\""
        ));
    }
    let pair = match (raw.mode, raw.pair.clone()) {
        (SourceMode::Pps, None) => {
            return Err("mode = \"pps\" needs pair, the refid of the source that numbers the \
                        seconds, such as \"GPS\" for a gpsd-shm clock"
                .into());
        }
        (SourceMode::Pps, Some(pair)) => Some(pair),
        // gpsd's PPS samples over SOCK (/run/chrony.pps0.sock) are pulses to number too.
        (SourceMode::Sock, pair) => pair,
        (_, Some(_)) => return Err("pair applies to mode = \"pps\" and \"sock\" only".into()),
        (_, None) => None,
    };
    let poll = match raw.poll {
        None => 4,
        Some(p @ 0..=10) => p as i8,
        Some(p) => return Err(format!("poll = {p}: expected 0 to 10 (log2 seconds: 4 is 16 s)")),
    };
    Ok(RefclockSettings {
        unit,
        path,
        offset_nanos: (offset * 1e9).round() as i64,
        precision,
        stratum,
        refid,
        pair,
        poll,
    })
}

impl RefclockSettings {
    /// The fixed correction, seconds.
    pub fn offset(&self) -> f64 {
        self.offset_nanos as f64 / 1e9
    }

    /// The reference id to advertise while following this clock: the ASCII `refid`,
    /// zero-padded (RFC 5905 for stratum-1 references; validated as 1 to 4 characters).
    pub fn reference_id(&self) -> syhub_ntp_proto::packet::ReferenceId {
        let mut bytes = [0u8; 4];
        let refid = &self.refid.as_bytes()[..self.refid.len().min(4)];
        bytes[..refid.len()].copy_from_slice(refid);
        syhub_ntp_proto::packet::ReferenceId::from_bytes(bytes)
    }

    /// What the source is called where no address is given.
    fn default_name(&self, mode: SourceMode) -> String {
        match (mode, &self.path) {
            (SourceMode::GpsdShm, _) => format!("SHM({})", self.unit),
            (_, Some(path)) => path.display().to_string(),
            (_, None) => self.refid.clone(),
        }
    }
}

fn default_true() -> bool {
    true
}

impl TryFrom<RawSource> for SourceConfig {
    type Error = String;
    fn try_from(raw: RawSource) -> Result<Self, String> {
        if raw.mode.is_refclock() {
            let settings = refclock_settings(&raw)?;
            let address = match raw.address.trim() {
                "" => settings.default_name(raw.mode),
                name => name.to_owned(),
            };
            return Ok(Self {
                mode: raw.mode,
                address,
                iburst: false,
                minpoll: settings.poll,
                maxpoll: settings.poll,
                max_sources: 1,
                fallback: raw.fallback,
                key: None,
                insecure_unauthenticated: false,
                interface: None,
                ca_file: None,
                ignore_certificate_time: false,
                prefer: raw.prefer,
                refclock: Some(settings),
            });
        }
        if let Some(name) = raw.refclock_setting() {
            return Err(format!(
                "{name} applies to reference clocks only (mode = \"gpsd-shm\", \"sock\" or \
                 \"pps\"), as do unit, path, offset, precision, stratum, refid, pair and poll"
            ));
        }
        if raw.address.trim().is_empty() {
            return Err("address is missing: the server's name or address".into());
        }
        let address = raw.address.trim().to_owned();
        parse_target(&address).map_err(|e| format!("address: {e}"))?;
        if raw.mode != SourceMode::Nts {
            let nts_only = [
                ("ca_file", raw.ca_file.is_some()),
                ("ignore_certificate_time", raw.ignore_certificate_time),
            ];
            if let Some((name, _)) = nts_only.iter().find(|(_, given)| *given) {
                return Err(format!(
                    "{name} applies to mode = \"nts\" only (ca_file and ignore_certificate_time)"
                ));
            }
        }
        if raw.mode == SourceMode::Nts && raw.key.is_some() {
            return Err("key does not apply to an NTS source: it authenticates with NTS".into());
        }
        if raw.mode == SourceMode::Broadcast {
            check_broadcast(&raw, &address)?;
        } else if let Some(name) = [
            ("insecure_unauthenticated", raw.insecure_unauthenticated),
            ("interface", raw.interface.is_some()),
        ]
        .into_iter()
        .find_map(|(name, given)| given.then_some(name))
        {
            return Err(format!(
                "{name} applies to mode = \"broadcast\" only (insecure_unauthenticated and \
                 interface)"
            ));
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
            (SourceMode::GpsdShm | SourceMode::Sock | SourceMode::Pps, _) => 1,
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
            prefer: raw.prefer,
            refclock: None,
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
        prefer: false,
        refclock: None,
    };
    vec![
        source(SourceMode::Pool, "pool.ntp.org", false),
        source(SourceMode::Server, "time.nist.gov", true),
        source(SourceMode::Server, "time.google.com", true),
    ]
}

/// The NTS-KE server of an NTS source's address: its port, or 4460 when none is given.
pub fn nts_ke_target(address: &str) -> Target {
    let explicit_port =
        address.starts_with('[') && address.contains("]:") || address.matches(':').count() == 1;
    match parse_target(address) {
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
