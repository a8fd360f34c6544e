//! Requests never answered for their addresses alone: from a source no host sends from (the
//! unspecified address, a broadcast address, a multicast group, an IPv4-mapped address on IPv6) or
//! from one of the hub's own addresses at a port no program on the hub asks from (a forgery that
//! would make the hub answer one of its own services); and what kind of destination a request was
//! sent to (one of our addresses, a broadcast address, a multicast group). No I/O: the daemon
//! reads the interfaces and the kernel's ephemeral port range and passes them in.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;

/// Why a request's source rules out an answer: the answer would go to many hosts, to none, or to
/// the hub itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswerable {
    /// `0.0.0.0` (or anything in `0.0.0.0/8`) or `::`: a host without an address yet.
    Unspecified,
    /// `255.255.255.255` or the broadcast address of one of the hub's subnets.
    Broadcast,
    /// A multicast group, IPv4 or IPv6.
    Multicast,
    /// `::ffff:a.b.c.d` on IPv6: an IPv4 host never sends as such (our IPv6 sockets are IPv6
    /// only, so IPv4 clients reach the IPv4 ones), and the kernel would not send the answer.
    Ipv4Mapped,
    /// One of the hub's own addresses, other than loopback, at a port outside the ephemeral
    /// range.
    OwnAddress,
}

/// What a request was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// One of the hub's addresses: the request reached one socket.
    Unicast,
    /// A broadcast address: every socket bound to the port got a copy.
    Broadcast,
    /// A multicast group: every socket bound to the port got a copy.
    Multicast,
}

/// The hub's addresses as its interfaces list them, for telling the requests above apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubAddresses {
    /// The hub's own addresses except loopback ones, sorted, without duplicates.
    own: Vec<IpAddr>,
    /// The broadcast addresses of the hub's IPv4 subnets (of /30 and wider), sorted.
    broadcasts: Vec<Ipv4Addr>,
    /// The ports the kernel gives a socket that sends without binding one.
    ephemeral_ports: RangeInclusive<u16>,
}

/// Linux's ephemeral ports unless the administrator changed them.
pub const DEFAULT_EPHEMERAL_PORTS: RangeInclusive<u16> = 32768..=60999;

impl Default for HubAddresses {
    fn default() -> Self {
        Self { own: Vec::new(), broadcasts: Vec::new(), ephemeral_ports: DEFAULT_EPHEMERAL_PORTS }
    }
}

impl HubAddresses {
    /// From the addresses on the hub's interfaces, each with its prefix length, and the kernel's
    /// ephemeral port range.
    pub fn new(
        assigned: impl IntoIterator<Item = (IpAddr, u8)>,
        ephemeral_ports: RangeInclusive<u16>,
    ) -> Self {
        let mut own = Vec::new();
        let mut broadcasts = Vec::new();
        for (address, length) in assigned {
            if address.is_loopback() {
                continue;
            }
            own.push(address);
            // A /31 (RFC 3021) and a /32 have no broadcast address.
            match address {
                IpAddr::V4(v4) if length <= 30 => {
                    broadcasts.push(Ipv4Addr::from(u32::from(v4) | (u32::MAX >> length)));
                }
                _ => {}
            }
        }
        own.sort_unstable();
        own.dedup();
        broadcasts.sort_unstable();
        broadcasts.dedup();
        Self { own, broadcasts, ephemeral_ports }
    }

    /// The hub's own addresses, loopback left out.
    pub fn own(&self) -> &[IpAddr] {
        &self.own
    }

    /// Why a request from `source` must not be answered, or `None` when it may be.
    ///
    /// Loopback sources are answered: the kernel takes them only from the hub itself. One of the
    /// hub's other addresses is the hub itself too (`syhub-ntp test` asking the LAN address, a
    /// container on the host's network), or a forgery from the LAN: IPv6 delivers those, and IPv4
    /// with `accept_local`. The kernel does not say which (IP_PKTINFO names the address's interface
    /// either way), so the port decides: a program asking the time sends from an ephemeral port,
    /// while a forgery aims the answer at a service, which listens on a fixed one (a reply to our
    /// own port 123 included).
    pub fn check_source(&self, source: SocketAddr) -> Option<Unanswerable> {
        let ip = match source.ip() {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
                return Some(Unanswerable::Ipv4Mapped);
            }
            ip => ip,
        };
        match ip {
            IpAddr::V4(v4) if v4.octets()[0] == 0 => return Some(Unanswerable::Unspecified),
            IpAddr::V6(v6) if v6.is_unspecified() => return Some(Unanswerable::Unspecified),
            ip if ip.is_multicast() => return Some(Unanswerable::Multicast),
            IpAddr::V4(v4) if v4.is_broadcast() || self.broadcasts.binary_search(&v4).is_ok() => {
                return Some(Unanswerable::Broadcast);
            }
            _ => {}
        }
        let own = self.own.binary_search(&ip).is_ok();
        (own && !self.ephemeral_ports.contains(&source.port())).then_some(Unanswerable::OwnAddress)
    }

    /// What a request to `destination` was sent to, given `local`, the address the kernel would
    /// answer it from (IP_PKTINFO's `ipi_spec_dst`, which is the destination itself for a unicast
    /// datagram and the interface's address for a broadcast; for IPv6 pass the destination). A
    /// broadcast address not (yet) in the hub's list is still told by the two differing.
    pub fn destination(&self, destination: IpAddr, local: IpAddr) -> Destination {
        match destination {
            ip if ip.is_multicast() => Destination::Multicast,
            IpAddr::V4(v4)
                if v4.is_broadcast()
                    || self.broadcasts.binary_search(&v4).is_ok()
                    || local != destination =>
            {
                Destination::Broadcast
            }
            _ => Destination::Unicast,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hub on 192.168.1.20/24, 10.0.0.1/31, fd00::20/64 and fe80::20/64, with loopback.
    fn hub() -> HubAddresses {
        let assigned = [
            ("127.0.0.1", 8),
            ("::1", 128),
            ("192.168.1.20", 24),
            ("10.0.0.1", 31),
            ("fd00::20", 64),
            ("fe80::20", 64),
            ("192.168.1.20", 24),
        ];
        HubAddresses::new(assigned.map(|(a, l)| (a.parse().unwrap(), l)), 32768..=60999)
    }

    fn source(text: &str) -> Option<Unanswerable> {
        hub().check_source(text.parse().unwrap())
    }

    #[test]
    fn the_hub_knows_its_own_addresses_and_subnet_broadcasts_without_loopback() {
        let hub = hub();
        let own: Vec<String> = hub.own().iter().map(ToString::to_string).collect();
        assert_eq!(own, ["10.0.0.1", "192.168.1.20", "fd00::20", "fe80::20"]);
        assert_eq!(hub.broadcasts, [Ipv4Addr::new(192, 168, 1, 255)], "a /31 has none");
    }

    #[test]
    fn clients_with_ordinary_addresses_may_be_answered() {
        for client in [
            "192.168.1.40:123",
            "192.168.1.40:50000",
            "10.0.0.0:40000",
            "[fd00::40]:123",
            "[fe80::40%2]:40000",
            "127.0.0.1:123",
            "127.0.0.1:40000",
            "[::1]:123",
            "192.168.2.255:123",
        ] {
            assert_eq!(source(client), None, "{client}");
        }
    }

    #[test]
    fn sources_no_host_sends_from_are_never_answered() {
        use Unanswerable::*;
        for (client, why) in [
            ("0.0.0.0:68", Unspecified),
            ("0.1.2.3:123", Unspecified),
            ("[::]:123", Unspecified),
            ("255.255.255.255:123", Broadcast),
            ("192.168.1.255:40000", Broadcast),
            ("224.0.1.1:123", Multicast),
            ("[ff02::1]:123", Multicast),
            ("[::ffff:192.168.1.40]:40000", Ipv4Mapped),
            ("[::ffff:127.0.0.1]:40000", Ipv4Mapped),
        ] {
            assert_eq!(source(client), Some(why), "{client}");
        }
    }

    #[test]
    fn the_hub_asking_itself_is_answered_and_a_forgery_aimed_at_its_services_is_not() {
        // A program on the hub sends from an ephemeral port, whichever address it asks.
        for client in ["192.168.1.20:32768", "[fd00::20]:45000", "[fe80::20%2]:60999"] {
            assert_eq!(source(client), None, "{client}");
        }
        // An answer to one of the hub's services (DNS, mDNS, MQTT, our own port): refused.
        for client in [
            "192.168.1.20:53",
            "[fd00::20]:5353",
            "[fe80::20%2]:1883",
            "10.0.0.1:123",
            "[fd00::20]:61000",
        ] {
            assert_eq!(source(client), Some(Unanswerable::OwnAddress), "{client}");
        }
        // The whole port space ephemeral: the port tells nothing, so own addresses are answered.
        let open = HubAddresses { ephemeral_ports: 1..=65535, ..hub() };
        assert_eq!(open.check_source("192.168.1.20:53".parse().unwrap()), None);
    }

    #[test]
    fn broadcast_and_multicast_destinations_are_told_from_unicast() {
        let hub = hub();
        let kind = |destination: &str, local: &str| {
            hub.destination(destination.parse().unwrap(), local.parse().unwrap())
        };
        assert_eq!(kind("192.168.1.20", "192.168.1.20"), Destination::Unicast);
        assert_eq!(kind("127.0.0.1", "127.0.0.1"), Destination::Unicast);
        assert_eq!(kind("fd00::20", "fd00::20"), Destination::Unicast);
        assert_eq!(kind("192.168.1.255", "192.168.1.20"), Destination::Broadcast);
        assert_eq!(kind("255.255.255.255", "192.168.1.20"), Destination::Broadcast);
        // A subnet the hub joined after its last reading of the interfaces: the kernel still
        // answers from the interface's address, not from the broadcast address.
        assert_eq!(kind("172.16.9.255", "172.16.9.1"), Destination::Broadcast);
        assert_eq!(kind("224.0.1.1", "192.168.1.20"), Destination::Multicast);
        assert_eq!(kind("ff02::1", "ff02::1"), Destination::Multicast);
        assert_eq!(kind("ff05::101", "ff05::101"), Destination::Multicast);
    }
}
