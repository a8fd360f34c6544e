//! Broadcast and multicast: sending the hub's mode-5 announcements (`[[broadcast]]`), and joining
//! the groups that broadcast sources listen on. Broadcasts leave from the server's own port-123
//! socket, as ntpd's do, so listeners that expect that source port accept them; they reach
//! listeners through their server socket too, which hears every broadcast to port 123. Multicast
//! with no `interface` named uses every interface `multicast.rs` follows.

use crate::config::{BroadcastConfig, Config, SourceMode};
use crate::log_limit::{LogLimiter, held_back};
use crate::multicast::{InterfaceFollower, Interfaces, Membership, join};
use socket2::SockRef;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;
use syhub_ntp_clock::Clock;
use syhub_ntp_proto::auth::{KeyStore, SymmetricKey};
use syhub_ntp_proto::packet::HEADER_LEN;
use syhub_ntp_proto::packet::MAX_MAC_LEN;
use syhub_ntp_proto::server::{SystemSnapshot, broadcast_packet};
use syhub_ntp_sys::interfaces;
use syhub_ntp_sys::net::options::set_multicast_interface_v4;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const NTP_PORT: u16 = 123;

#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    #[error(
        "a broadcast source listening on {address} needs an {family} [server] listen address on \
         port 123 (such as \"{example}\"): broadcasts arrive there"
    )]
    NoListener { address: IpAddr, family: &'static str, example: &'static str },
    #[error(
        "interface {name:?} ({what}) does not exist; leave interface unset to use every \
         interface that can carry multicast"
    )]
    NoInterface { name: String, what: String },
    #[error(
        "cannot join the multicast group {group} on {interface:?}: {source}; leave interface \
         unset to use every interface that can carry multicast"
    )]
    Join { group: IpAddr, interface: String, source: std::io::Error },
    #[error("cannot open a socket to broadcast to {address}: {source}")]
    Socket { address: IpAddr, source: std::io::Error },
    #[error("cannot share the server socket to listen on {group}: {source}")]
    Share { group: IpAddr, source: std::io::Error },
}

/// What broadcasting needs at run time: the senders, and the interfaces multicast follows.
pub(crate) struct Broadcasting {
    targets: Vec<BroadcastTarget>,
    interfaces: InterfaceFollower,
}

impl Broadcasting {
    /// Whether there is anything to send or to follow.
    pub(crate) fn is_active(&self) -> bool {
        !self.targets.is_empty() || self.interfaces.is_needed()
    }
}

/// One `[[broadcast]]`, ready to send.
pub(crate) struct BroadcastTarget {
    config: BroadcastConfig,
    socket: UdpSocket,
    /// The interface index multicast leaves by; `None`: every interface that can carry it.
    interface: Option<u32>,
    key: Option<SymmetricKey>,
}

fn interface_index(name: &str, what: &str) -> Result<u32, BroadcastError> {
    interfaces::index_of(name)
        .map_err(|_| BroadcastError::NoInterface { name: name.to_owned(), what: what.to_owned() })
}

/// The server sockets of `address`'s family on port 123, wildcard ones first.
fn server_sockets_for(address: IpAddr, sockets: &[UdpSocket]) -> Vec<&UdpSocket> {
    let mut matching: Vec<&UdpSocket> = sockets
        .iter()
        .filter(|s| {
            s.local_addr().is_ok_and(|l| l.port() == NTP_PORT && l.is_ipv4() == address.is_ipv4())
        })
        .collect();
    matching.sort_by_key(|s| s.local_addr().map(|l| !l.ip().is_unspecified()).unwrap_or(true));
    matching
}

/// Makes the server sockets hear what broadcast sources listen for: checks that a port-123
/// socket of the right family exists, joins multicast groups on a named interface now, and
/// returns the groups to join on every interface.
fn listen(config: &Config, sockets: &[UdpSocket]) -> Result<Vec<Membership>, BroadcastError> {
    let mut memberships = Vec::new();
    for source in config.sources.iter().filter(|s| s.mode == SourceMode::Broadcast) {
        let Ok(address) = source.address.parse::<IpAddr>() else { continue };
        let listeners = server_sockets_for(address, sockets);
        let wildcard = listeners
            .iter()
            .copied()
            .filter(|s| s.local_addr().is_ok_and(|l| l.ip().is_unspecified()))
            .collect::<Vec<_>>();
        if wildcard.is_empty() {
            let (family, example) =
                if address.is_ipv4() { ("IPv4", "0.0.0.0:123") } else { ("IPv6", "[::]:123") };
            return Err(BroadcastError::NoListener { address, family, example });
        }
        if source.insecure_unauthenticated {
            tracing::warn!(
                "[[source]] {address}: following unsigned broadcasts (insecure_unauthenticated): \
                 anyone on the LAN can send this hub false time"
            );
        }
        if !address.is_multicast() {
            continue;
        }
        let Some(name) = source.interface.as_deref() else {
            let sockets = wildcard
                .iter()
                .map(|s| s.try_clone())
                .collect::<Result<_, _>>()
                .map_err(|source| BroadcastError::Share { group: address, source })?;
            memberships.push(Membership { group: address, sockets });
            continue;
        };
        let index = interface_index(name, &format!("[[source]] {address}"))?;
        for socket in wildcard {
            join(socket, address, index).map_err(|source| BroadcastError::Join {
                group: address,
                interface: name.to_owned(),
                source,
            })?;
        }
        tracing::info!("joined {address} on {name}");
    }
    Ok(memberships)
}

/// Prepares broadcasting while the daemon is still privileged: the groups broadcast sources
/// listen on, the senders, and a first reading of the interfaces (joins included).
pub(crate) fn open(
    config: &Config,
    sockets: &[UdpSocket],
    keys: &KeyStore,
) -> Result<Broadcasting, BroadcastError> {
    let memberships = listen(config, sockets)?;
    let targets = open_targets(config, sockets, keys)?;
    let every_interface =
        targets.iter().any(|t| t.config.address.is_multicast() && t.interface.is_none());
    let mut interfaces = InterfaceFollower::new(memberships, every_interface);
    interfaces.read_now();
    Ok(Broadcasting { targets, interfaces })
}

/// Opens what each `[[broadcast]]` sends from: the server's own port-123 socket of the family
/// (shared), or a socket of its own on another port when the server has none.
fn open_targets(
    config: &Config,
    sockets: &[UdpSocket],
    keys: &KeyStore,
) -> Result<Vec<BroadcastTarget>, BroadcastError> {
    config
        .broadcasts
        .iter()
        .map(|broadcast| {
            let address = broadcast.address;
            let error = |source| BroadcastError::Socket { address, source };
            let socket = match server_sockets_for(address, sockets).first() {
                Some(server) => server.try_clone().map_err(error)?,
                None => {
                    let any: SocketAddr = if address.is_ipv4() {
                        ([0, 0, 0, 0], 0).into()
                    } else {
                        ([0u16; 8], 0).into()
                    };
                    let socket = UdpSocket::bind(any).map_err(error)?;
                    socket.set_nonblocking(true).map_err(error)?;
                    socket
                }
            };
            if address.is_ipv4() {
                socket.set_broadcast(true).map_err(error)?;
            }
            let what = format!("[[broadcast]] {address}");
            let interface = broadcast
                .interface
                .as_deref()
                .map(|name| interface_index(name, &what))
                .transpose()?;
            let key = broadcast.key.and_then(|id| keys.key(id).copied());
            Ok(BroadcastTarget { config: broadcast.clone(), socket, interface, key })
        })
        .collect()
}

/// Sends every target's broadcasts at its interval, and follows the interfaces, until cancelled;
/// nothing is sent while the system has no time to give.
pub(crate) async fn serve(
    broadcasting: Broadcasting,
    system: watch::Receiver<SystemSnapshot>,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
) {
    let Broadcasting { targets, interfaces } = broadcasting;
    let mut tasks = tokio::task::JoinSet::new();
    for target in targets {
        let (system, clock, cancel) = (system.clone(), clock.clone(), cancel.clone());
        let every = interfaces.subscribe();
        tasks.spawn(async move {
            let on = match (&target.config.interface, target.config.address.is_multicast()) {
                (Some(name), _) => format!(" on {name}"),
                (None, true) => " on every interface that can carry multicast".to_owned(),
                (None, false) => String::new(),
            };
            tracing::info!(
                "broadcasting to {} every {} s{}{on}",
                target.config.address,
                target.config.interval,
                target.key.map_or(String::new(), |k| format!(", signed with key {}", k.id))
            );
            let mut interval =
                tokio::time::interval(Duration::from_secs(u64::from(target.config.interval)));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut log_limiter = LogLimiter::new(Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = interval.tick() => {}
                }
                let snapshot = *system.borrow();
                for (name, index) in interfaces_for(&target, &every) {
                    if let Err(error) = send_one(&target, index, &snapshot, clock.as_ref()) {
                        let now = tokio::time::Instant::now();
                        let key = format!("{name} {}", error.kind());
                        if let Some(held) = log_limiter.allow(&key, now) {
                            let on = if name.is_empty() { name } else { format!(" on {name}") };
                            tracing::warn!(
                                "cannot broadcast to {}{on}: {error}{}",
                                target.config.address,
                                held_back(held)
                            );
                        }
                    }
                }
            }
        });
    }
    tasks.spawn(interfaces.follow(cancel));
    while tasks.join_next().await.is_some() {}
}

/// Where one round of `target`'s broadcasts goes: (interface name for messages, index), with
/// index 0 for a broadcast address (the routing table decides).
fn interfaces_for(target: &BroadcastTarget, every: &Interfaces) -> Vec<(String, u32)> {
    let address = target.config.address;
    match (target.interface, address.is_multicast()) {
        (Some(index), _) => vec![(target.config.interface.clone().unwrap_or_default(), index)],
        (None, false) => vec![(String::new(), 0)],
        (None, true) => every
            .borrow()
            .iter()
            .filter(|i| i.carries(address))
            .map(|i| (i.name.clone(), i.index))
            .collect(),
    }
}

/// One broadcast: multicast settings, the packet stamped as late as possible, the MAC, the send.
fn send_one(
    target: &BroadcastTarget,
    interface: u32,
    system: &SystemSnapshot,
    clock: &dyn Clock,
) -> std::io::Result<()> {
    let address = target.config.address;
    if address.is_multicast() {
        let ttl = u32::from(target.config.ttl);
        let socket = SockRef::from(&target.socket);
        match address {
            IpAddr::V4(_) => {
                socket.set_multicast_ttl_v4(ttl)?;
                set_multicast_interface_v4(target.socket.as_fd(), interface)?;
            }
            IpAddr::V6(_) => {
                socket.set_multicast_hops_v6(ttl)?;
                socket.set_multicast_if_v6(interface)?;
            }
        }
    }
    let now = system.served_time(clock.now(), syhub_ntp_clock::kernel_leap_in_progress_or_done);
    let Some(header) = broadcast_packet(system, target.config.poll_exponent(), now) else {
        return Ok(());
    };
    let mut packet = [0u8; HEADER_LEN + MAX_MAC_LEN];
    packet[..HEADER_LEN].copy_from_slice(&header);
    let len = HEADER_LEN + target.key.map_or(0, |key| key.mac_len());
    if let Some(key) = &target.key {
        key.sign(&mut packet[..len]);
    }
    target.socket.send_to(&packet[..len], SocketAddr::new(address, NTP_PORT)).map(drop)
}
