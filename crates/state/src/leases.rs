//! A DHCP server's leases file, read for the host names it gives the hub's devices: dnsmasq's
//! (`expiry mac address hostname client-id` per line) and ISC dhcpd's (`lease ADDRESS { ...
//! client-hostname "name"; }` blocks, the last block of an address winning).

use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

/// The most of a leases file read: a LAN's leases are a few kB.
const MAX_LEN: u64 = 4 << 20;

/// The names in the leases file at `path`; empty when it cannot be read (the view then shows
/// addresses).
pub fn read(path: &Path) -> BTreeMap<IpAddr, String> {
    let mut text = String::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(MAX_LEN).read_to_string(&mut text));
    if read.is_err() {
        return BTreeMap::new();
    }
    parse(&text)
}

/// The host names in a dnsmasq or ISC dhcpd leases file's text.
pub fn parse(text: &str) -> BTreeMap<IpAddr, String> {
    let mut names = BTreeMap::new();
    let mut lease: Option<IpAddr> = None;
    for line in text.lines().map(str::trim) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["lease", address, "{", ..] => lease = address.parse().ok(),
            ["}", ..] => lease = None,
            ["client-hostname", name] => {
                if let (Some(address), Some(name)) = (lease, quoted(name)) {
                    names.insert(address, name);
                }
            }
            [expiry, _mac, address, name, ..] if expiry.parse::<u64>().is_ok() => {
                if let (Ok(address), true) = (address.parse(), *name != "*" && clean(name)) {
                    names.insert(address, (*name).to_owned());
                }
            }
            _ => {}
        }
    }
    names
}

/// `"name";` as `name`, if it is a clean host name.
fn quoted(field: &str) -> Option<String> {
    let name = field.strip_suffix(';')?.strip_prefix('"')?.strip_suffix('"')?;
    clean(name).then(|| name.to_owned())
}

fn clean(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_graphic() && c != '"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnsmasq_and_isc_leases_give_names_and_nonsense_gives_none() {
        let dnsmasq = "1796000000 24:0a:c4:00:00:01 192.168.1.40 greenhouse-esp32 *\n\
                       1796000000 24:0a:c4:00:00:02 192.168.1.41 * 01:24:0a\n\
                       1796000000 00:11:22:33:44:55 fd00::41 pi-kitchen *\n";
        let names = parse(dnsmasq);
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(names[&"192.168.1.40".parse::<IpAddr>().unwrap()], "greenhouse-esp32");
        assert_eq!(names[&"fd00::41".parse::<IpAddr>().unwrap()], "pi-kitchen");

        let isc = "# dhcpd.leases\nlease 192.168.1.50 {\n  starts 4 2026/12/03 10:00:00;\n  \
                   client-hostname \"old-name\";\n}\nlease 192.168.1.50 {\n  \
                   client-hostname \"thermostat\";\n}\nlease 192.168.1.51 {\n  \
                   hardware ethernet 00:11:22:33:44:66;\n}\n";
        let names = parse(isc);
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(names[&"192.168.1.50".parse::<IpAddr>().unwrap()], "thermostat");

        assert!(parse("garbage\n\0\u{1b}[31m\nlease x {\nclient-hostname \"a\";\n}\n").is_empty());
        assert!(read(Path::new("/nonexistent/leases")).is_empty());
    }
}
