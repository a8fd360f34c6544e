//! The hub's network interfaces as getifaddrs(3) lists them: their addresses, the networks those
//! addresses are in, the ones multicast can use, an interface's index by name (if_nametoindex(3))
//! and name by index (if_indextoname(3)); and the ports the kernel picks for unbound sockets.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The network of an interface address: the address with its host bits cleared, and the prefix
/// length of the interface's netmask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Network {
    pub address: IpAddr,
    pub length: u8,
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.length)
    }
}

impl Network {
    /// The network of `address` with a netmask of `mask` (of the same family); `None` otherwise.
    fn of(address: IpAddr, mask: IpAddr) -> Option<Self> {
        match (address, mask) {
            (IpAddr::V4(a), IpAddr::V4(m)) => Some(Self {
                address: IpAddr::V4(Ipv4Addr::from(u32::from(a) & u32::from(m))),
                length: u32::from(m).count_ones() as u8,
            }),
            (IpAddr::V6(a), IpAddr::V6(m)) => Some(Self {
                address: IpAddr::V6(Ipv6Addr::from(u128::from(a) & u128::from(m))),
                length: u128::from(m).count_ones() as u8,
            }),
            _ => None,
        }
    }
}

/// One entry of getifaddrs(3) with an IPv4 or IPv6 address.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    interface: String,
    flags: libc::c_uint,
    address: IpAddr,
    netmask: Option<IpAddr>,
}

/// The interfaces' IPv4 and IPv6 entries; empty when the kernel cannot list them.
fn entries() -> Vec<Entry> {
    try_entries().unwrap_or_default()
}

/// The interfaces' IPv4 and IPv6 entries, or why the kernel could not list them (getifaddrs
/// fails when the process is out of file descriptors or memory).
fn try_entries() -> io::Result<Vec<Entry>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes the head of a list it allocated into `list`, on success only.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut entries = Vec::new();
    let mut current = list;
    while !current.is_null() {
        // SAFETY: `current` is a node of the list getifaddrs returned, not yet freed; its address
        // and netmask pointers are null or point at sockaddrs of the family they name, and its
        // name is null or a NUL-terminated string owned by the list.
        let (address, netmask, next, name, flags) = unsafe {
            let node = &*current;
            let name = if node.ifa_name.is_null() {
                String::new()
            } else {
                std::ffi::CStr::from_ptr(node.ifa_name).to_string_lossy().into_owned()
            };
            (ip_of(node.ifa_addr), ip_of(node.ifa_netmask), node.ifa_next, name, node.ifa_flags)
        };
        if let Some(address) = address {
            entries.push(Entry { interface: name, flags, address, netmask });
        }
        current = next;
    }
    // SAFETY: the list from getifaddrs, freed once; nothing read from it is used after this.
    unsafe { libc::freeifaddrs(list) };
    Ok(entries)
}

/// The IP address in a sockaddr from getifaddrs.
///
/// # Safety
/// `address` is null or points at a sockaddr whose family says how long it is.
unsafe fn ip_of(address: *const libc::sockaddr) -> Option<IpAddr> {
    if address.is_null() {
        return None;
    }
    // SAFETY: not null (checked); every sockaddr starts with its family, and the caller
    // guarantees that a family of AF_INET or AF_INET6 comes with the struct of that family.
    unsafe {
        match i32::from((*address).sa_family) {
            libc::AF_INET => {
                let sin = std::ptr::read_unaligned(address.cast::<libc::sockaddr_in>());
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))))
            }
            libc::AF_INET6 => {
                let sin6 = std::ptr::read_unaligned(address.cast::<libc::sockaddr_in6>());
                Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    }
}

/// The addresses on the hub's interfaces, loopback included, sorted and without duplicates.
pub fn addresses() -> Vec<IpAddr> {
    let mut addresses: Vec<IpAddr> = entries().into_iter().map(|entry| entry.address).collect();
    addresses.sort();
    addresses.dedup();
    addresses
}

/// The addresses on the hub's interfaces with the interface of each, loopback included, sorted
/// by address.
pub fn named_addresses() -> Vec<(String, IpAddr)> {
    let mut named: Vec<(String, IpAddr)> =
        entries().into_iter().map(|entry| (entry.interface, entry.address)).collect();
    named.sort_by_key(|(name, address)| (*address, name.clone()));
    named.dedup();
    named
}

/// The networks of the hub's interface addresses (IPv4 and IPv6, loopback and link-local
/// included), sorted by how they are written and without duplicates.
pub fn networks() -> Vec<Network> {
    try_networks().unwrap_or_default()
}

/// [`networks`], or why the interfaces could not be read.
pub fn try_networks() -> io::Result<Vec<Network>> {
    Ok(networks_of(&try_assigned()?))
}

/// The networks of `assigned` addresses, sorted by how they are written and without duplicates.
pub fn networks_of(assigned: &[Assigned]) -> Vec<Network> {
    let mut networks: Vec<Network> = assigned.iter().map(Assigned::network).collect();
    networks.sort_by_key(ToString::to_string);
    networks.dedup();
    networks
}

/// An address on one of the hub's interfaces with the prefix length of its netmask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Assigned {
    pub address: IpAddr,
    pub length: u8,
}

impl Assigned {
    /// The network the address is in.
    pub fn network(&self) -> Network {
        let mask = |bits: u32| {
            if self.length == 0 {
                0
            } else {
                u128::MAX << (bits - u32::from(self.length).min(bits))
            }
        };
        match self.address {
            IpAddr::V4(v4) => Network {
                address: IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask(32) as u32)),
                length: self.length,
            },
            IpAddr::V6(v6) => Network {
                address: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask(128))),
                length: self.length,
            },
        }
    }
}

/// Every address on the hub's interfaces (loopback included) that has a netmask, with its prefix
/// length; or why the interfaces could not be read.
pub fn try_assigned() -> io::Result<Vec<Assigned>> {
    Ok(try_entries()?
        .into_iter()
        .filter_map(|entry| {
            let network = Network::of(entry.address, entry.netmask?)?;
            Some(Assigned { address: entry.address, length: network.length })
        })
        .collect())
}

/// An interface multicast can use: up, with a carrier (running), multicast-capable and not
/// loopback; with the families it has an address of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MulticastInterface {
    pub name: String,
    pub index: u32,
    pub ipv4: bool,
    pub ipv6: bool,
}

impl MulticastInterface {
    /// Whether multicast of `group`'s family can leave by or be joined on this interface.
    pub fn carries(&self, group: IpAddr) -> bool {
        if group.is_ipv4() { self.ipv4 } else { self.ipv6 }
    }
}

/// The interfaces multicast can use now, sorted by index (what ntpd sends on when no interface
/// is named).
pub fn multicast_interfaces() -> Vec<MulticastInterface> {
    let wanted = (libc::IFF_UP | libc::IFF_RUNNING | libc::IFF_MULTICAST) as libc::c_uint;
    let mut found: Vec<MulticastInterface> = Vec::new();
    for entry in entries() {
        if entry.flags & wanted != wanted || entry.flags & libc::IFF_LOOPBACK as libc::c_uint != 0 {
            continue;
        }
        let known = match found.iter_mut().find(|i| i.name == entry.interface) {
            Some(known) => known,
            None => {
                let Ok(index) = index_of(&entry.interface) else { continue };
                found.push(MulticastInterface {
                    name: entry.interface.clone(),
                    index,
                    ipv4: false,
                    ipv6: false,
                });
                found.last_mut().expect("just pushed")
            }
        };
        match entry.address {
            IpAddr::V4(_) => known.ipv4 = true,
            IpAddr::V6(_) => known.ipv6 = true,
        }
    }
    found.sort_by_key(|i| i.index);
    found
}

/// The index of the interface called `name` (if_nametoindex(3)).
pub fn index_of(name: &str) -> io::Result<u32> {
    let name = CString::new(name).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, "an interface name without NUL")
    })?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call, which only reads it.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 { Err(io::Error::last_os_error()) } else { Ok(index) }
}

/// The name of the interface with index `index` (if_indextoname(3)); `None` when there is none.
pub fn name_of(index: u32) -> Option<String> {
    let mut name = [0 as libc::c_char; libc::IFNAMSIZ];
    // SAFETY: `name` has room for IFNAMSIZ bytes, the most if_indextoname writes (a
    // NUL-terminated name); it returns null, writing nothing useful, for an unknown index.
    let found = unsafe { libc::if_indextoname(index, name.as_mut_ptr()) };
    if found.is_null() {
        return None;
    }
    // SAFETY: on success `name` holds a NUL-terminated string within its length.
    let name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// Where the kernel reads the ports it gives unbound sockets (for IPv4 and IPv6 alike).
const PORT_RANGE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// The range of ports the kernel picks from for a socket sent from without binding a port (the
/// ephemeral ports, 32768 to 60999 unless the administrator changed them).
pub fn ephemeral_ports() -> io::Result<std::ops::RangeInclusive<u16>> {
    parse_port_range(&std::fs::read_to_string(PORT_RANGE)?).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, format!("{PORT_RANGE}: not two port numbers"))
    })
}

fn parse_port_range(text: &str) -> Option<std::ops::RangeInclusive<u16>> {
    let mut ports = text.split_whitespace().map(str::parse::<u16>);
    let (low, high) = (ports.next()?.ok()?, ports.next()?.ok()?);
    (low <= high && ports.next().is_none()).then_some(low..=high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_among_the_addresses_and_networks() {
        assert!(addresses().contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)), "{:?}", addresses());
        let networks = networks();
        assert!(networks.iter().any(|n| n.to_string() == "127.0.0.0/8"), "{networks:?}");
        let mut sorted = networks.clone();
        sorted.sort_by_key(ToString::to_string);
        sorted.dedup();
        assert_eq!(sorted, networks);
    }

    #[test]
    fn a_network_clears_the_host_bits() {
        let network = Network::of([192, 168, 1, 20].into(), [255, 255, 255, 0].into()).unwrap();
        assert_eq!(network.to_string(), "192.168.1.0/24");
        let v6 =
            Network::of("fd00::1:2".parse().unwrap(), "ffff:ffff:ffff:ffff::".parse().unwrap())
                .unwrap();
        assert_eq!(v6.to_string(), "fd00::/64");
        assert_eq!(Network::of([10, 0, 0, 1].into(), "ffff::".parse().unwrap()), None);
    }

    #[test]
    fn loopback_is_never_a_multicast_interface_and_each_listed_one_has_its_index() {
        let interfaces = multicast_interfaces();
        assert!(interfaces.iter().all(|i| i.name != "lo"), "{interfaces:?}");
        for interface in &interfaces {
            assert_eq!(index_of(&interface.name).unwrap(), interface.index, "{interface:?}");
            assert!(interface.ipv4 || interface.ipv6, "{interface:?}");
        }
        let v4 = MulticastInterface { name: "x".into(), index: 9, ipv4: true, ipv6: false };
        assert!(v4.carries("224.0.1.1".parse().unwrap()));
        assert!(!v4.carries("ff05::101".parse().unwrap()));
    }

    #[test]
    fn an_assigned_address_knows_its_network() {
        let assigned =
            |address: &str, length| Assigned { address: address.parse().unwrap(), length };
        assert_eq!(assigned("192.168.1.20", 24).network().to_string(), "192.168.1.0/24");
        assert_eq!(assigned("10.1.2.3", 0).network().to_string(), "0.0.0.0/0");
        assert_eq!(assigned("10.1.2.3", 32).network().to_string(), "10.1.2.3/32");
        assert_eq!(assigned("fd00::1:2", 64).network().to_string(), "fd00::/64");
        let all = try_assigned().unwrap();
        assert!(all.iter().any(|a| a.address == IpAddr::V4(Ipv4Addr::LOCALHOST) && a.length == 8));
        assert_eq!(networks_of(&all), networks());
    }

    #[test]
    fn the_ephemeral_port_range_is_read_and_nonsense_refused() {
        let range = ephemeral_ports().unwrap();
        assert!(range.start() >= &1 && range.start() <= range.end(), "{range:?}");
        assert_eq!(parse_port_range("32768\t60999\n"), Some(32768..=60999));
        for bad in ["", "32768", "60999 32768", "1 2 3", "a b", "1 70000"] {
            assert_eq!(parse_port_range(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_loopback_interface_has_an_index_and_nonsense_has_none() {
        assert_eq!(name_of(index_of("lo").unwrap()).as_deref(), Some("lo"));
        assert_eq!(name_of(0), None);
        assert!(index_of("lo").unwrap() > 0);
        assert!(index_of("no-such-interface0").is_err());
        assert_eq!(index_of("l\0o").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
