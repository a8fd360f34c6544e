//! Server addresses as the config and `syhub-ntp query` spell them: `HOST[:PORT]`, an IPv4
//! address, an IPv6 address bare or as `[addr]:port`; checked here, resolved by whoever sends.

use std::net::SocketAddr;

/// The NTP port, used when an address names none.
pub const NTP_PORT: u16 = 123;

/// A server to ask: an address (kept whole, with any IPv6 scope) or a name to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Address(SocketAddr),
    Name { host: String, port: u16 },
}

/// A server address that is neither a name nor an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad server `{0}`: expected HOST, HOST:PORT, an IP address or [IPv6]:PORT")]
pub struct BadTarget(pub String);

/// Parses `HOST[:PORT]`: a name, an IPv4 address, an IPv6 address bare or as `[addr]:port`
/// (with `%scope` for link-local); the port defaults to 123.
pub fn parse_target(target: &str) -> Result<Target, BadTarget> {
    let bad = || BadTarget(target.to_owned());
    if let Ok(address) = target.parse::<SocketAddr>() {
        return Ok(Target::Address(address));
    }
    let bracketed = target.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(target);
    if let Ok(address) = format!("[{bracketed}]:{NTP_PORT}").parse::<SocketAddr>() {
        return Ok(Target::Address(address));
    }
    if let Ok(address) = format!("{target}:{NTP_PORT}").parse::<SocketAddr>() {
        return Ok(Target::Address(address));
    }
    let (host, port) = match target.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().map_err(|_| bad())?),
        None => (target, NTP_PORT),
    };
    // A DNS name: at most 253 characters, in labels of 1 to 63 (a final dot allowed).
    let labels_fit = host.len() <= 253
        && host.strip_suffix('.').unwrap_or(host).split('.').all(|l| (1..=63).contains(&l.len()));
    let valid_name = labels_fit
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if valid_name { Ok(Target::Name { host: host.to_owned(), port }) } else { Err(bad()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_like_ntpdate() {
        let ok = |t: &str| parse_target(t).unwrap();
        let name = |host: &str, port| Target::Name { host: host.into(), port };
        let address = |a: &str| Target::Address(a.parse().unwrap());
        assert_eq!(ok("pool.ntp.org"), name("pool.ntp.org", 123));
        assert_eq!(ok("hub.local:1123"), name("hub.local", 1123));
        assert_eq!(ok("192.168.1.10"), address("192.168.1.10:123"));
        assert_eq!(ok("127.0.0.1:11123"), address("127.0.0.1:11123"));
        assert_eq!(ok("::1"), address("[::1]:123"));
        assert_eq!(ok("[::1]"), address("[::1]:123"));
        assert_eq!(ok("[fe80::1]:123"), address("[fe80::1]:123"));
        let Target::Address(SocketAddr::V6(scoped)) = ok("[fe80::1%2]:123") else { panic!() };
        assert_eq!(scoped.scope_id(), 2, "the scope of a link-local address is kept");
        for bad in ["", "host:", "host:99999", "a b", "[::1", "host:port", ":123", "a..b", ".a"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
        // Longer than DNS allows: a name, or one of its labels.
        assert!(parse_target(&"a".repeat(64)).is_err());
        assert!(parse_target(&["abc"; 64].join(".")).is_err());
        assert!(parse_target(&"a".repeat(63)).is_ok() && parse_target("pool.ntp.org.").is_ok());
    }
}
