//! The 32-bit reference identifier: a clock name (stratum 0–1), an upstream IPv4 address or hashed
//! IPv6 address (stratum 2+), or a kiss code in a kiss-o'-death packet.

use md5::{Digest, Md5};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ReferenceId([u8; 4]);

impl ReferenceId {
    /// The local clock, as chrony and ntpd name it.
    pub const LOCAL: Self = Self(*b"LOCL");
    /// Kiss code: the server asks the client to poll less often.
    pub const KISS_RATE: Self = Self(*b"RATE");
    /// Kiss code: access denied.
    pub const KISS_DENY: Self = Self(*b"DENY");
    /// Kiss code: access restricted.
    pub const KISS_RSTR: Self = Self(*b"RSTR");
    /// Kiss code: NTS negative acknowledgement, the request's cookie is not one the server can
    /// open (RFC 8915 section 5.7).
    pub const KISS_NTSN: Self = Self(*b"NTSN");
    /// Nothing known yet (used while unsynchronised).
    pub const NONE: Self = Self([0; 4]);

    pub const fn from_bytes(bytes: [u8; 4]) -> Self {
        Self(bytes)
    }

    pub const fn to_bytes(self) -> [u8; 4] {
        self.0
    }

    pub fn from_ipv4(address: Ipv4Addr) -> Self {
        Self(address.octets())
    }

    /// Our reference id while synchronised to a server at `address` (RFC 5905): its IPv4 address,
    /// or the first four bytes of the MD5 digest of its IPv6 address.
    pub fn for_server(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(v4) => Self::from_ipv4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::from_ipv4(v4),
                None => {
                    let digest = Md5::digest(v6.octets());
                    Self([digest[0], digest[1], digest[2], digest[3]])
                }
            },
        }
    }

    /// The identifier as text when it is printable ASCII (a clock name or kiss code), trailing NULs cut.
    pub fn as_ascii(&self) -> Option<&str> {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(4);
        let text = &self.0[..len];
        if !text.is_empty() && text.iter().all(|b| b.is_ascii_graphic()) {
            std::str::from_utf8(text).ok()
        } else {
            None
        }
    }

    /// How to show it for a packet of this stratum: a name at stratum 0–1, an address above, except
    /// that four capital letters (`LOCL`, `INIT`) read as a name at any stratum.
    pub fn display_for_stratum(&self, stratum: u8) -> String {
        let capitals = self.0.iter().all(|b| b.is_ascii_uppercase());
        match self.as_ascii() {
            Some(name) if stratum <= 1 || capitals => name.to_owned(),
            _ => Ipv4Addr::from(self.0).to_string(),
        }
    }
}

impl fmt::Debug for ReferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_ascii() {
            Some(name) => write!(f, "ReferenceId({name:?})"),
            None => write!(f, "ReferenceId({})", Ipv4Addr::from(self.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_id_of_a_server_is_its_ipv4_address_or_an_md5_prefix_of_its_ipv6_address() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(ReferenceId::for_server(v4).to_bytes(), [192, 0, 2, 7]);
        // RFC 5905: the first four octets of the MD5 digest of the IPv6 address.
        let v6: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        let digest = Md5::digest(v6.octets());
        assert_eq!(
            ReferenceId::for_server(IpAddr::V6(v6)).to_bytes(),
            [digest[0], digest[1], digest[2], digest[3]]
        );
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(ReferenceId::for_server(mapped).to_bytes(), [10, 1, 2, 3]);
    }

    #[test]
    fn names_show_as_text_and_addresses_as_addresses() {
        assert_eq!(ReferenceId::LOCAL.display_for_stratum(10), "LOCL");
        assert_eq!(ReferenceId::from_bytes(*b"GPS\0").display_for_stratum(1), "GPS");
        assert_eq!(ReferenceId::from_bytes([192, 0, 2, 1]).display_for_stratum(2), "192.0.2.1");
    }
}
