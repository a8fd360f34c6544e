//! Importing an existing ntpd (or NTPsec) configuration: its servers and pools, restrict lines,
//! broadcasts, keys and drift file become syhub-ntp settings; what has no counterpart is listed.

use std::net::{IpAddr, Ipv4Addr};

/// What an ntp.conf says, in syhub-ntp's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NtpConf {
    /// `[[source]]` tables, as TOML.
    pub sources: Vec<String>,
    /// Prefixes from `restrict` lines that allow time service, and those that `ignore`.
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    /// `[[broadcast]]` tables, as TOML.
    pub broadcasts: Vec<String>,
    pub keys_file: Option<String>,
    pub trusted_keys: Vec<u32>,
    pub drift_file: Option<String>,
    /// Lines with no counterpart, with the reason.
    pub skipped: Vec<String>,
}

/// Reads the options after an address: `iburst`, `minpoll N`, `maxpoll N`, `key N`, `ttl N`.
fn options(words: &[&str]) -> (bool, Vec<(String, String)>) {
    let mut iburst = false;
    let mut settings = Vec::new();
    let mut rest = words.iter();
    while let Some(&word) = rest.next() {
        match word {
            "iburst" | "burst" => iburst = true,
            "minpoll" | "maxpoll" | "key" | "ttl" => {
                if let Some(value) = rest.next().filter(|v| v.parse::<i64>().is_ok()) {
                    settings.push((word.to_owned(), (*value).to_owned()));
                }
            }
            _ => {}
        }
    }
    (iburst, settings)
}

fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A prefix from `restrict ADDRESS [mask MASK]`, as its network: ntpd masks the address, and
/// our config refuses host bits beyond the length.
fn restrict_prefix(words: &[&str]) -> Option<String> {
    let address: IpAddr = words.first()?.parse().ok()?;
    let mask = words.iter().position(|w| *w == "mask").and_then(|i| words.get(i + 1));
    let length = match (address, mask) {
        (IpAddr::V4(_), Some(mask)) => u32::from(mask.parse::<Ipv4Addr>().ok()?).count_ones(),
        (IpAddr::V6(_), Some(mask)) => {
            u128::from(mask.parse::<std::net::Ipv6Addr>().ok()?).count_ones()
        }
        (_, None) => return Some(address.to_string()),
    };
    let network = syhub_ntp_proto::server::Prefix::new(address, u8::try_from(length).ok()?).ok()?;
    Some(network.to_string())
}

/// ntpd's SHM reference clock (driver 28): gpsd's shared memory, unit N at 127.127.28.N.
const SHM_DRIVER: &str = "127.127.28.";

pub fn parse(text: &str) -> NtpConf {
    let mut conf = NtpConf::default();
    // The index in `conf.sources` of each imported SHM unit, for its `fudge` line.
    let mut shm_units: Vec<(String, usize)> = Vec::new();
    for line in text.lines() {
        let content = line.split('#').next().unwrap_or("").trim();
        let words: Vec<&str> = content.split_whitespace().collect();
        let Some((&directive, args)) = words.split_first() else { continue };
        let skip = |conf: &mut NtpConf, why: &str| conf.skipped.push(format!("{content} ({why})"));
        match directive {
            "server" | "pool" | "peer" => {
                let Some(address) = args.first() else { continue };
                if let Some(unit) =
                    address.strip_prefix(SHM_DRIVER).and_then(|u| u.parse::<u8>().ok())
                {
                    let prefer = if args.contains(&"prefer") { "prefer = true\n" } else { "" };
                    shm_units.push(((*address).to_owned(), conf.sources.len()));
                    conf.sources
                        .push(format!("[[source]]\nmode = \"gpsd-shm\"\nunit = {unit}\n{prefer}"));
                    continue;
                }
                if address.starts_with("127.127.") {
                    skip(
                        &mut conf,
                        "reference clock driver: see [local] and the refclock settings",
                    );
                    continue;
                }
                let mode = if directive == "pool" { "pool" } else { "server" };
                let (iburst, settings) = options(&args[1..]);
                let mut table = format!(
                    "[[source]]\nmode = \"{mode}\"\naddress = {}\niburst = {iburst}\n",
                    toml_string(address)
                );
                for (key, value) in settings.iter().filter(|(k, _)| k != "ttl") {
                    table.push_str(&format!("{key} = {value}\n"));
                }
                if directive == "peer" {
                    conf.skipped
                        .push(format!("{content} (symmetric peering: imported as a server)"));
                }
                conf.sources.push(table);
            }
            "restrict" => {
                let args: Vec<&str> =
                    args.iter().copied().filter(|w| *w != "-4" && *w != "-6").collect();
                let ignore = args.iter().any(|w| matches!(*w, "ignore" | "noserve"));
                if args.first() == Some(&"default") {
                    if !ignore {
                        skip(&mut conf, "serving everyone: syhub-ntp answers its LAN by default");
                    }
                    continue;
                }
                match restrict_prefix(&args) {
                    Some(prefix) if ignore => conf.deny.push(prefix),
                    Some(prefix) => conf.allow.push(prefix),
                    None => skip(&mut conf, "not an address"),
                }
            }
            "broadcast" => {
                let Some(address) = args.first() else { continue };
                let (_, settings) = options(&args[1..]);
                let mut table = format!("[[broadcast]]\naddress = {}\n", toml_string(address));
                for (key, value) in settings.iter().filter(|(k, _)| k == "key" || k == "ttl") {
                    table.push_str(&format!("{key} = {value}\n"));
                }
                conf.broadcasts.push(table);
            }
            "keys" => conf.keys_file = args.first().map(|p| (*p).to_owned()),
            "trustedkey" => {
                conf.trusted_keys.extend(args.iter().filter_map(|id| id.parse::<u32>().ok()));
            }
            "driftfile" => conf.drift_file = args.first().map(|p| (*p).to_owned()),
            "fudge" if args.first().is_some_and(|a| a.starts_with(SHM_DRIVER)) => {
                let Some(&(_, index)) = shm_units.iter().find(|(a, _)| a == args[0]) else {
                    skip(&mut conf, "no such reference clock before it");
                    continue;
                };
                for pair in args[1..].chunks(2) {
                    match pair {
                        ["time1", seconds] if seconds.parse::<f64>().is_ok_and(f64::is_finite) => {
                            conf.sources[index].push_str(&format!("offset = {seconds}\n"));
                        }
                        ["refid", refid] if (1..=4).contains(&refid.len()) => {
                            conf.sources[index]
                                .push_str(&format!("refid = {}\n", toml_string(refid)));
                        }
                        _ => conf
                            .skipped
                            .push(format!("{content} ({} not imported)", pair.join(" "))),
                    }
                }
            }
            "fudge" | "tos" | "statsdir" | "statistics" | "filegen" | "logfile" | "leapfile"
            | "broadcastclient" | "disable" | "enable" | "tinker" | "includefile" => {
                skip(&mut conf, "no counterpart");
            }
            _ => skip(&mut conf, "not understood"),
        }
    }
    conf
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN_NTP_CONF: &str = "\
driftfile /var/lib/ntp/ntp.drift
leapfile /usr/share/zoneinfo/leap-seconds.list
statistics loopstats peerstats clockstats
pool 0.debian.pool.ntp.org iburst
server time.nist.gov iburst minpoll 6 maxpoll 10 key 2
server 127.127.1.0
restrict -4 default kod notrap nomodify nopeer noquery limited
restrict -6 default kod notrap nomodify nopeer noquery limited
restrict 127.0.0.1
restrict ::1
restrict 192.168.1.0 mask 255.255.255.0 nomodify notrap
restrict 10.9.0.0 mask 255.255.0.0 ignore
broadcast 192.168.1.255 key 2 ttl 3
keys /etc/ntp.keys
trustedkey 1 2
";

    #[test]
    fn a_restrict_with_host_bits_is_imported_as_its_network() {
        let conf = parse("restrict 192.168.1.7 mask 255.255.255.0\nrestrict fd00::5 mask ffff::\n");
        assert_eq!(conf.allow, ["192.168.1.0/24", "fd00::/16"]);
    }

    #[test]
    fn gpsd_shared_memory_clocks_are_imported_with_their_fudge() {
        let conf = parse(
            "server 127.127.28.0 minpoll 4 maxpoll 4 prefer\n\
             fudge 127.127.28.0 time1 0.420 refid GPS\n\
             server 127.127.28.1\nfudge 127.127.28.1 stratum 2\nserver 127.127.22.0\n",
        );
        assert_eq!(
            conf.sources,
            [
                "[[source]]\nmode = \"gpsd-shm\"\nunit = 0\nprefer = true\noffset = 0.420\nrefid = \"GPS\"\n",
                "[[source]]\nmode = \"gpsd-shm\"\nunit = 1\n",
            ]
        );
        assert!(
            conf.skipped.iter().any(|s| s.contains("stratum 2 not imported")),
            "{:?}",
            conf.skipped
        );
        assert!(conf.skipped.iter().any(|s| s.contains("127.127.22.0")), "{:?}", conf.skipped);
        let text: String = conf.sources.join("\n");
        let config = syhub_ntp_config::Config::parse(&text, "imported").unwrap();
        let settings = config.sources[0].refclock.as_ref().unwrap();
        assert_eq!((settings.unit, settings.refid.as_str()), (0, "GPS"));
        assert!((settings.offset() - 0.42).abs() < 1e-9 && config.sources[0].prefer);
    }

    #[test]
    fn a_debian_ntp_conf_is_imported() {
        let conf = parse(DEBIAN_NTP_CONF);
        assert_eq!(conf.sources.len(), 2);
        assert!(conf.sources[0].contains("mode = \"pool\"\naddress = \"0.debian.pool.ntp.org\""));
        assert!(conf.sources[1].contains("minpoll = 6\nmaxpoll = 10\nkey = 2\n"));
        assert_eq!(conf.allow, ["127.0.0.1", "::1", "192.168.1.0/24"]);
        assert_eq!(conf.deny, ["10.9.0.0/16"]);
        assert_eq!(
            conf.broadcasts,
            ["[[broadcast]]\naddress = \"192.168.1.255\"\nkey = 2\nttl = 3\n"]
        );
        assert_eq!(conf.keys_file.as_deref(), Some("/etc/ntp.keys"));
        assert_eq!(conf.trusted_keys, [1, 2]);
        assert_eq!(conf.drift_file.as_deref(), Some("/var/lib/ntp/ntp.drift"));
        assert_eq!(conf.skipped.len(), 5, "{:?}", conf.skipped);
    }
}
