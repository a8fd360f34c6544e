//! The hub's network interfaces as getifaddrs(3) lists them: their addresses, the networks those
//! addresses are in, and an interface's index by name (if_nametoindex(3)).

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    address: IpAddr,
    netmask: Option<IpAddr>,
}

/// The interfaces' IPv4 and IPv6 entries; empty when the kernel cannot list them.
fn entries() -> Vec<Entry> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes the head of a list it allocated into `list`, on success only.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Vec::new();
    }
    let mut entries = Vec::new();
    let mut current = list;
    while !current.is_null() {
        // SAFETY: `current` is a node of the list getifaddrs returned, not yet freed; its address
        // and netmask pointers are null or point at sockaddrs of the family they name.
        let (address, netmask, next) = unsafe {
            let node = &*current;
            (ip_of(node.ifa_addr), ip_of(node.ifa_netmask), node.ifa_next)
        };
        if let Some(address) = address {
            entries.push(Entry { address, netmask });
        }
        current = next;
    }
    // SAFETY: the list from getifaddrs, freed once; nothing read from it is used after this.
    unsafe { libc::freeifaddrs(list) };
    entries
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

/// The networks of the hub's interface addresses (IPv4 and IPv6, loopback and link-local
/// included), sorted by how they are written and without duplicates.
pub fn networks() -> Vec<Network> {
    let mut networks: Vec<Network> = entries()
        .into_iter()
        .filter_map(|entry| Network::of(entry.address, entry.netmask?))
        .collect();
    networks.sort_by_key(ToString::to_string);
    networks.dedup();
    networks
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
    fn the_loopback_interface_has_an_index_and_nonsense_has_none() {
        assert!(index_of("lo").unwrap() > 0);
        assert!(index_of("no-such-interface0").is_err());
        assert_eq!(index_of("l\0o").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
