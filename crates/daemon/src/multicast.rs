//! The interfaces multicast uses when a `[[broadcast]]` or a broadcast `[[source]]` names none:
//! every interface that is up, running, multicast-capable and not loopback (as ntpd does), read
//! again every few seconds so that a Wi-Fi link that comes up after the daemon is used, with the
//! listeners' groups joined on each and the senders told where to send.

use socket2::{InterfaceIndexOrAddress, SockRef};
use std::collections::HashSet;
use std::net::{IpAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;
use syhub_ntp_sys::interfaces::{self, MulticastInterface};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the interfaces are read again.
const FOLLOW_EVERY: Duration = Duration::from_secs(5);

/// The interfaces multicast can use now, as the senders read them.
pub(crate) type Interfaces = watch::Receiver<Arc<[MulticastInterface]>>;

/// A group a broadcast source listens on, to be joined on every interface, and the server
/// sockets that join it.
pub(crate) struct Membership {
    pub(crate) group: IpAddr,
    pub(crate) sockets: Vec<UdpSocket>,
}

/// Joins `group` on interface `index` (0: the one the routing table picks) on `socket`; joining
/// again what is already joined is success.
pub(crate) fn join(socket: &UdpSocket, group: IpAddr, index: u32) -> std::io::Result<()> {
    let result = match group {
        IpAddr::V4(group) => SockRef::from(socket)
            .join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(index)),
        IpAddr::V6(group) => socket.join_multicast_v6(&group, index),
    };
    match result {
        Err(error) if error.raw_os_error() == Some(syhub_ntp_sys::errno::EADDRINUSE) => Ok(()),
        other => other,
    }
}

/// Follows the interfaces: joins the memberships' groups on each one that appears and publishes
/// the list to the senders.
pub(crate) struct InterfaceFollower {
    memberships: Vec<Membership>,
    /// Whether a sender or listener uses every interface (else there is nothing to follow).
    needed: bool,
    known: Option<Arc<[MulticastInterface]>>,
    /// (group, interface index) joined, or refused once (and reported once).
    joined: HashSet<(IpAddr, u32)>,
    refused: HashSet<(IpAddr, u32)>,
    publish: watch::Sender<Arc<[MulticastInterface]>>,
}

impl InterfaceFollower {
    /// A follower for `memberships`, and for senders when `senders_need_it`; nothing read yet.
    pub(crate) fn new(memberships: Vec<Membership>, senders_need_it: bool) -> Self {
        let (publish, _) = watch::channel(Arc::from(Vec::new()));
        let needed = senders_need_it || !memberships.is_empty();
        Self {
            memberships,
            needed,
            known: None,
            joined: HashSet::new(),
            refused: HashSet::new(),
            publish,
        }
    }

    /// Reads the interfaces and joins on them now, if anything uses them.
    pub(crate) fn read_now(&mut self) {
        if self.needed {
            self.refresh(interfaces::multicast_interfaces());
        }
    }

    pub(crate) fn is_needed(&self) -> bool {
        self.needed
    }

    /// The list as it changes, for a sender.
    pub(crate) fn subscribe(&self) -> Interfaces {
        self.publish.subscribe()
    }

    /// Takes `current` as the interfaces multicast can use: logs a change, joins every group on
    /// every interface of its family not yet joined, and publishes the list.
    fn refresh(&mut self, current: Vec<MulticastInterface>) {
        if self.known.as_deref() != Some(current.as_slice()) {
            if current.is_empty() {
                tracing::warn!(
                    "no interface can carry multicast (up, running, multicast-capable, not \
                     loopback): waiting for one, or set interface = \"...\" to name it"
                );
            } else {
                tracing::info!("multicast uses {}", describe(&current));
            }
            let indexes: HashSet<u32> = current.iter().map(|i| i.index).collect();
            // An interface that went away is joined again when it comes back.
            self.joined.retain(|(_, index)| indexes.contains(index));
            self.refused.retain(|(_, index)| indexes.contains(index));
            let current: Arc<[MulticastInterface]> = Arc::from(current);
            self.known = Some(current.clone());
            self.publish.send_replace(current);
        }
        let Some(known) = self.known.clone() else { return };
        for membership in &self.memberships {
            for interface in known.iter().filter(|i| i.carries(membership.group)) {
                let key = (membership.group, interface.index);
                if self.joined.contains(&key) {
                    continue;
                }
                let result = membership
                    .sockets
                    .iter()
                    .try_for_each(|socket| join(socket, membership.group, interface.index));
                match result {
                    Ok(()) => {
                        tracing::info!("joined {} on {}", membership.group, interface.name);
                        self.joined.insert(key);
                        self.refused.remove(&key);
                    }
                    Err(error) => {
                        if self.refused.insert(key) {
                            tracing::warn!(
                                "cannot join the multicast group {} on {}: {error}; set \
                                 interface = \"...\" in its [[source]] to choose the interface",
                                membership.group,
                                interface.name
                            );
                        }
                    }
                }
            }
        }
    }

    /// Reads the interfaces again every few seconds until cancelled.
    pub(crate) async fn follow(mut self, cancel: CancellationToken) {
        if !self.needed {
            return;
        }
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(FOLLOW_EVERY) => {}
            }
            self.read_now();
        }
    }
}

/// "lan0 (IPv4, IPv6), wlan0 (IPv4)".
fn describe(interfaces: &[MulticastInterface]) -> String {
    let described: Vec<String> = interfaces
        .iter()
        .map(|i| {
            let families = match (i.ipv4, i.ipv6) {
                (true, true) => "IPv4, IPv6",
                (true, false) => "IPv4",
                _ => "IPv6",
            };
            format!("{} ({families})", i.name)
        })
        .collect();
    described.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interface(name: &str, index: u32, ipv4: bool, ipv6: bool) -> MulticastInterface {
        MulticastInterface { name: name.into(), index, ipv4, ipv6 }
    }

    #[test]
    fn the_list_is_described_with_its_families() {
        let list = [interface("lan0", 2, true, true), interface("wlan0", 3, false, true)];
        assert_eq!(describe(&list), "lan0 (IPv4, IPv6), wlan0 (IPv6)");
    }

    // These tests hand the follower loopback as if it were listed, so that nothing joins a
    // group on this machine's real interfaces.

    #[test]
    fn joins_follow_the_interfaces_and_the_senders_see_each_change() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let group: IpAddr = "239.255.77.1".parse().unwrap();
        let lo = interfaces::index_of("lo").unwrap();
        let membership = Membership { group, sockets: vec![socket] };
        let mut follower = InterfaceFollower::new(vec![membership], false);
        let senders = follower.subscribe();
        assert!(follower.is_needed());

        follower.refresh(vec![interface("lo", lo, true, false)]);
        assert!(follower.joined.contains(&(group, lo)), "{:?}", follower.joined);
        assert_eq!(senders.borrow().len(), 1);
        // Read again unchanged: nothing joined twice, nothing refused.
        follower.refresh(vec![interface("lo", lo, true, false)]);
        assert!(follower.refused.is_empty());

        // The interface goes: forgotten. It comes back: joined again (the kernel may still hold
        // the membership, which counts as joined).
        follower.refresh(Vec::new());
        assert!(follower.joined.is_empty());
        assert!(senders.borrow().is_empty());
        follower.refresh(vec![interface("lo", lo, true, false)]);
        assert!(follower.joined.contains(&(group, lo)));

        // An index that does not exist is refused, and reported once.
        follower
            .refresh(vec![interface("lo", lo, true, false), interface("x", 999_999, true, true)]);
        assert!(follower.refused.contains(&(group, 999_999)));
        assert!(!follower.joined.contains(&(group, 999_999)));
    }

    #[test]
    fn a_group_is_joined_only_on_interfaces_of_its_family() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let group: IpAddr = "239.255.77.2".parse().unwrap();
        let lo = interfaces::index_of("lo").unwrap();
        let mut follower =
            InterfaceFollower::new(vec![Membership { group, sockets: vec![socket] }], false);
        follower.refresh(vec![interface("v6only", lo, false, true)]);
        assert!(follower.joined.is_empty() && follower.refused.is_empty());
    }

    #[test]
    fn nothing_to_follow_without_a_listener_or_a_sender_on_every_interface() {
        let follower = InterfaceFollower::new(Vec::new(), false);
        assert!(!follower.is_needed());
        assert!(follower.known.is_none());
        assert!(InterfaceFollower::new(Vec::new(), true).is_needed());
    }
}
