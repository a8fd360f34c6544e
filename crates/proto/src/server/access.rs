//! Access control: allow and deny rules as address prefixes, IPv4 and IPv6; the longest matching
//! prefix decides, an address no rule covers is denied. A lookup costs one hash probe per distinct
//! prefix length in the rules (a handful), never a scan of the rules.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// What a rule says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Allow,
    Deny,
}

/// An address prefix such as `192.168.0.0/16`, `fe80::/10` or a single address. Parsed from
/// text, it must have no host bits set (`10.0.0.1/8` is refused); [`Prefix::new`] clears them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    address: IpAddr,
    length: u8,
}

impl Prefix {
    /// The network of `address` with `length` leading bits (host bits cleared).
    pub fn new(address: IpAddr, length: u8) -> Result<Self, String> {
        let network = match address {
            IpAddr::V4(v4) if length <= 32 => {
                IpAddr::from(((u128::from(u32::from(v4)) & mask(32, length)) as u32).to_be_bytes())
            }
            IpAddr::V6(v6) if length <= 128 => {
                IpAddr::from((u128::from(v6) & mask(128, length)).to_be_bytes())
            }
            _ => {
                let max = if address.is_ipv4() { 32 } else { 128 };
                return Err(format!("{address}/{length}: the prefix length is at most {max}"));
            }
        };
        Ok(Self { address: network, length })
    }

    pub fn is_ipv4(&self) -> bool {
        self.address.is_ipv4()
    }

    /// Whether `address` is in this prefix (IPv4-mapped IPv6 counts as IPv4, as in the lists).
    pub fn contains(&self, address: IpAddr) -> bool {
        let (v4, value) = key(address);
        let (prefix_v4, prefix) = key(self.address);
        let bits = if v4 { 32 } else { 128 };
        v4 == prefix_v4 && value & mask(bits, self.length) == prefix
    }
}

impl FromStr for Prefix {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (address, length) = match text.split_once('/') {
            Some((address, length)) => (address, Some(length)),
            None => (text, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?}: expected an address or ADDRESS/LENGTH"))?;
        let length = match length {
            Some(length) => length.parse().map_err(|_| format!("{text:?}: bad prefix length"))?,
            None if address.is_ipv4() => 32,
            None => 128,
        };
        let prefix = Self::new(address, length)?;
        // Written by a person: bits beyond the length are a typo or a host address taken for
        // its network, and either way the rule would not say what it seems to.
        if prefix.address != address {
            return Err(format!("{text} has host bits set; did you mean {prefix}?"));
        }
        Ok(prefix)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.length)
    }
}

/// An IPv4 address as the low 32 bits, or an IPv6 address; IPv4-mapped IPv6 counts as IPv4.
fn key(address: IpAddr) -> (bool, u128) {
    match address {
        IpAddr::V4(v4) => (true, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (true, u128::from(u32::from(v4))),
            None => (false, u128::from(v6)),
        },
    }
}

fn mask(bits: u32, length: u8) -> u128 {
    if length == 0 {
        0
    } else {
        (u128::MAX << (bits - u32::from(length))) & (u128::MAX >> (128 - bits))
    }
}

/// Rules of one family: for each prefix length in use, longest first, the masked prefixes.
#[derive(Debug, Clone, Default)]
struct FamilyRules {
    by_length: Vec<(u8, HashMap<u128, Access>)>,
}

impl FamilyRules {
    fn insert(&mut self, bits: u32, value: u128, length: u8, access: Access) {
        let masked = value & mask(bits, length);
        let position = match self.by_length.iter().position(|(l, _)| *l == length) {
            Some(position) => position,
            None => {
                self.by_length.push((length, HashMap::new()));
                self.by_length.sort_by_key(|entry| std::cmp::Reverse(entry.0));
                self.by_length.iter().position(|(l, _)| *l == length).unwrap_or(0)
            }
        };
        let rule = self.by_length[position].1.entry(masked).or_insert(access);
        // The same prefix both allowed and denied: deny.
        if access == Access::Deny {
            *rule = Access::Deny;
        }
    }

    fn check(&self, bits: u32, value: u128) -> Option<Access> {
        self.by_length
            .iter()
            .find_map(|(length, rules)| rules.get(&(value & mask(bits, *length))).copied())
    }
}

/// Allow and deny rules, looked up by longest prefix.
#[derive(Debug, Clone, Default)]
pub struct AccessList {
    v4: FamilyRules,
    v6: FamilyRules,
}

impl AccessList {
    pub fn new<'a>(
        allow: impl IntoIterator<Item = &'a Prefix>,
        deny: impl IntoIterator<Item = &'a Prefix>,
    ) -> Self {
        let mut list = Self::default();
        for (prefixes, access) in [
            (allow.into_iter().collect::<Vec<_>>(), Access::Allow),
            (deny.into_iter().collect(), Access::Deny),
        ] {
            for prefix in prefixes {
                let (v4, value) = key(prefix.address);
                if v4 {
                    list.v4.insert(32, value, prefix.length.min(32), access);
                } else {
                    list.v6.insert(128, value, prefix.length, access);
                }
            }
        }
        list
    }

    /// What the rules say of `address`: the longest matching prefix decides; none matching denies.
    pub fn check(&self, address: IpAddr) -> Access {
        let (v4, value) = key(address);
        let verdict = if v4 { self.v4.check(32, value) } else { self.v6.check(128, value) };
        verdict.unwrap_or(Access::Deny)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes(list: &[&str]) -> Vec<Prefix> {
        list.iter().map(|p| p.parse().unwrap()).collect()
    }

    fn check(list: &AccessList, address: &str) -> Access {
        list.check(address.parse().unwrap())
    }

    #[test]
    fn the_longest_prefix_wins() {
        let allow = prefixes(&["10.0.0.0/8", "10.1.2.3"]);
        let deny = prefixes(&["10.1.0.0/16"]);
        let list = AccessList::new(&allow, &deny);
        assert_eq!(check(&list, "10.9.9.9"), Access::Allow);
        assert_eq!(check(&list, "10.1.9.9"), Access::Deny);
        assert_eq!(check(&list, "10.1.2.3"), Access::Allow);
        assert_eq!(check(&list, "11.0.0.1"), Access::Deny, "no rule: denied");
    }

    #[test]
    fn ipv6_and_mapped_ipv4() {
        let allow = prefixes(&["fc00::/7", "fe80::/10", "::1", "192.168.0.0/16"]);
        let list = AccessList::new(&allow, &[]);
        assert_eq!(check(&list, "fd12:3456::1"), Access::Allow);
        assert_eq!(check(&list, "fe80::1"), Access::Allow);
        assert_eq!(check(&list, "::1"), Access::Allow);
        assert_eq!(check(&list, "2001:db8::1"), Access::Deny);
        assert_eq!(check(&list, "::ffff:192.168.4.4"), Access::Allow);
        assert_eq!(check(&list, "::ffff:8.8.8.8"), Access::Deny);
    }

    #[test]
    fn everything_and_nothing() {
        let all = prefixes(&["0.0.0.0/0", "::/0"]);
        let open = AccessList::new(&all, &[]);
        assert_eq!(check(&open, "203.0.113.9"), Access::Allow);
        assert_eq!(check(&open, "2001:db8::9"), Access::Allow);
        let closed = AccessList::new(&all, &all);
        assert_eq!(check(&closed, "203.0.113.9"), Access::Deny, "allowed and denied alike: deny");
    }

    #[test]
    fn a_prefix_contains_the_addresses_of_its_network_and_family_only() {
        let lan: Prefix = "192.168.1.0/24".parse().unwrap();
        let host = Prefix::new("fd00::20".parse().unwrap(), 128).unwrap();
        for (prefix, address, inside) in [
            (lan, "192.168.1.200", true),
            (lan, "::ffff:192.168.1.7", true),
            (lan, "192.168.2.1", false),
            (lan, "fd00::1", false),
            (host, "fd00::20", true),
            (host, "fd00::21", false),
        ] {
            assert_eq!(prefix.contains(address.parse().unwrap()), inside, "{prefix} {address}");
        }
    }

    #[test]
    fn prefixes_parse_and_refuse_nonsense() {
        assert_eq!("10.0.0.0/8".parse::<Prefix>().unwrap().to_string(), "10.0.0.0/8");
        assert_eq!("fe80::1".parse::<Prefix>().unwrap().to_string(), "fe80::1/128");
        for bad in ["10.0.0.0/33", "fe80::/129", "10.0.0/8", "x", "10.0.0.0/a", ""] {
            assert!(bad.parse::<Prefix>().is_err(), "{bad}");
        }
        assert_eq!(
            "10.0.0.1/8".parse::<Prefix>().unwrap_err(),
            "10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?"
        );
        assert_eq!(
            "fe80::1/10".parse::<Prefix>().unwrap_err(),
            "fe80::1/10 has host bits set; did you mean fe80::/10?"
        );
        assert!("0.0.0.0/0".parse::<Prefix>().is_ok() && "::/0".parse::<Prefix>().is_ok());
    }
}
