//! Importing an existing ntpd (or NTPsec) configuration: its servers and pools, restrict lines,
//! broadcasts, keys, drift and leap files, local clock and interface lines become syhub-ntp
//! settings; what is imported with a difference says so, and what has no counterpart is listed.

use crate::glob::Glob;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use syhub_ntp_proto::server::Prefix;

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
    /// `leapfile`: the leap-seconds list ntpd read, an absolute path.
    pub leap_file: Option<String>,
    /// ntpd's undisciplined local clock, when ntp.conf configures one.
    pub local_clock: Option<LocalClock>,
    /// `interface` (or `nic`) lines, in the order written.
    pub interface_rules: Vec<InterfaceRule>,
    /// Lines imported with a difference, each saying what differs.
    pub changed: Vec<String>,
    /// Lines with no counterpart, with the reason.
    pub skipped: Vec<String>,
}

/// The options after a source's address, as far as they have a counterpart.
#[derive(Debug, Default)]
struct SourceOptions {
    iburst: bool,
    prefer: bool,
    /// `minpoll`, `maxpoll`, `key` and `ttl` with their values.
    settings: Vec<(String, String)>,
    /// Words with no counterpart (`noselect`, `version 4`), in order.
    unknown: Vec<String>,
}

/// Reads the options after an address: `iburst`, `prefer`, `minpoll N`, `maxpoll N`, `key N`,
/// `ttl N`.
fn options(words: &[&str]) -> SourceOptions {
    let mut options = SourceOptions::default();
    let mut rest = words.iter();
    while let Some(&word) = rest.next() {
        match word {
            "iburst" | "burst" => options.iburst = true,
            "prefer" => options.prefer = true,
            "minpoll" | "maxpoll" | "key" | "ttl" => {
                if let Some(value) = rest.next().filter(|v| v.parse::<i64>().is_ok()) {
                    options.settings.push((word.to_owned(), (*value).to_owned()));
                }
            }
            _ => options.unknown.push(word.to_owned()),
        }
    }
    options
}

/// `text` as a TOML basic string.
pub(crate) fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A prefix from `restrict ADDRESS [mask MASK]`, as its network: ntpd masks the address, and
/// our config refuses host bits beyond the length.
fn restrict_prefix(words: &[&str]) -> Option<String> {
    let address: IpAddr = words.first()?.parse().ok()?;
    let mask = words.iter().position(|w| *w == "mask").and_then(|i| words.get(i + 1));
    let length = match (address, mask) {
        (IpAddr::V4(_), Some(mask)) => u32::from(mask.parse::<Ipv4Addr>().ok()?).count_ones(),
        (IpAddr::V6(_), Some(mask)) => u128::from(mask.parse::<Ipv6Addr>().ok()?).count_ones(),
        (_, None) => return Some(address.to_string()),
    };
    let network = Prefix::new(address, u8::try_from(length).ok()?).ok()?;
    Some(network.to_string())
}

/// ntpd's SHM reference clock (driver 28): gpsd's shared memory, unit N at 127.127.28.N.
const SHM_DRIVER: &str = "127.127.28.";
/// ntpd's undisciplined local clock (driver 1), at 127.127.1.N.
const LOCAL_DRIVER: &str = "127.127.1.";
/// The stratum ntpd's local clock driver has when no `fudge` line sets one.
const NTPD_LOCAL_CLOCK_STRATUM: u8 = 5;

/// Google's public NTP servers (time.google.com, time1 to time4.google.com), which smear leap
/// seconds instead of announcing them.
fn is_google(address: &str) -> bool {
    let host = address.trim_end_matches('.').to_ascii_lowercase();
    host.strip_suffix(".google.com")
        .and_then(|name| name.strip_prefix("time"))
        .is_some_and(|number| number.bytes().all(|b| b.is_ascii_digit()))
}

/// ntpd's undisciplined local clock (`server 127.127.1.0`), which it followed when no other
/// source was selectable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalClock {
    /// The clock's own stratum: its `fudge 127.127.1.N stratum S`, else ntpd's default of 5.
    pub stratum: u8,
    /// The stratum came from a `fudge` line.
    fudged: bool,
}

impl LocalClock {
    /// The stratum ntpd announced to its clients while following the clock: one more than the
    /// clock's own, as for any source; 16 (unsynchronised) for a clock at 15.
    pub fn announced_stratum(&self) -> u8 {
        self.stratum.saturating_add(1).min(16)
    }

    /// `[local]` for it, as TOML.
    pub fn table(&self) -> String {
        match self.announced_stratum() {
            16 => "[local]\nenabled = false\n".to_owned(),
            stratum => {
                format!("[local]\nenabled = true\nstratum = {stratum}\nmode = \"holdover\"\n")
            }
        }
    }

    /// How syhub-ntp's `[local]` differs from ntpd's local clock, one sentence group each.
    pub fn differences(&self) -> Vec<String> {
        let origin = if self.fudged {
            format!("server 127.127.1.0 with fudge stratum {}", self.stratum)
        } else {
            format!("server 127.127.1.0 (no fudge stratum: ntpd's default, {})", self.stratum)
        };
        let announced = self.announced_stratum();
        if announced > 15 {
            return vec![format!(
                "{origin}: ntpd announced stratum 16 (unsynchronised) while following a local \
                 clock at stratum 15, so no client used it; [local] enabled = false does the same"
            )];
        }
        vec![
            format!(
                "{origin}: [local] stratum = {announced}, the stratum ntpd announced to clients \
                 while following its local clock (one more than the clock's own), which is what \
                 [local] stratum sets"
            ),
            "[local] mode = \"holdover\": ntpd served its undisciplined local clock from start-up, \
             whatever the clock said; syhub-ntp serves its local clock only once the clock has been \
             synchronised since boot (by syhub-ntp, or the kernel said so when the daemon started) \
             and answers unsynchronised (leap indicator 3, stratum 16) until then, because a hub \
             without a real-time clock boots with a wrong time. While it holds over, the root \
             dispersion it announces grows from the last synchronisation, up to 1 s. Like ntpd's, \
             it is used only while no other source is selectable. mode = \"always\" serves it from \
             start-up as ntpd did, for an air-gapped hub with a good real-time clock"
                .to_owned(),
        ]
    }
}

/// What an `interface` line does with the addresses it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterfaceAction {
    Listen,
    /// Not opened at all.
    Ignore,
    /// Opened, and whatever arrives dropped: not served either.
    Drop,
}

/// The addresses an `interface` line is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceMatch {
    /// `all`: every address but loopback.
    All,
    Ipv4,
    Ipv6,
    /// `wildcard` (or `0.0.0.0`, `::`): ntpd's catch-all socket, which is no interface's address.
    Wildcard,
    /// An interface name; `*` and `?` match as in a shell, in any case (ntpd uses fnmatch).
    Name(String),
    /// One address (a prefix as long as the address), or every address in a prefix.
    Prefix(Prefix),
}

/// One `interface ACTION WHAT` (or `nic ...`) line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceRule {
    pub action: InterfaceAction,
    pub matches: InterfaceMatch,
    /// The line as written, for the report.
    pub line: String,
}

impl InterfaceMatch {
    /// Reads `all`, `ipv4`, `ipv6`, `wildcard`, an address with an optional `/length`, or a name.
    fn parse(word: &str) -> Option<Self> {
        match word {
            "all" => return Some(Self::All),
            "ipv4" => return Some(Self::Ipv4),
            "ipv6" => return Some(Self::Ipv6),
            "wildcard" => return Some(Self::Wildcard),
            _ => {}
        }
        let (address, length) = match word.split_once('/') {
            Some((address, length)) => (address, Some(length)),
            None => (word, None),
        };
        match address.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() && length.is_none() => Some(Self::Wildcard),
            Ok(ip) => {
                let bits = if ip.is_ipv4() { 32 } else { 128 };
                let length = match length {
                    None => bits,
                    Some(length) => length.parse::<u8>().ok().filter(|l| *l <= bits)?,
                };
                Prefix::new(ip, length).ok().map(Self::Prefix)
            }
            Err(_) if length.is_none() && !word.is_empty() => Some(Self::Name(word.to_owned())),
            Err(_) => None,
        }
    }

    /// Whether the line is about `address` on interface `name`.
    fn covers(&self, name: &str, address: IpAddr) -> bool {
        match self {
            Self::All => !address.is_loopback(),
            Self::Ipv4 => address.is_ipv4(),
            Self::Ipv6 => address.is_ipv6(),
            Self::Wildcard => false,
            Self::Name(pattern) => Glob::NAME.matches(pattern.as_bytes(), name.as_bytes()),
            Self::Prefix(prefix) => prefix.contains(address),
        }
    }
}

/// What ntpd did with `address` on interface `name` under `rules` (at least one): the last line
/// that matches decides; loopback no line matches is listened on, any other address ignored.
fn ntpd_action(rules: &[InterfaceRule], name: &str, address: IpAddr) -> InterfaceAction {
    let unmatched =
        if address.is_loopback() { InterfaceAction::Listen } else { InterfaceAction::Ignore };
    rules
        .iter()
        .rev()
        .find(|rule| rule.matches.covers(name, address))
        .map_or(unmatched, |r| r.action)
}

/// An IPv6 link-local address (fe80::/10), which is bound only together with its interface.
fn is_link_local_v6(address: IpAddr) -> bool {
    matches!(address, IpAddr::V6(v6) if v6.is_unicast_link_local())
}

/// What ntp.conf's `interface` lines become, given the hub's addresses at install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenImport {
    /// No lines, or lines that serve every address: `[server] listen` keeps its default.
    Everywhere,
    /// `[server] listen` on these addresses (loopback first); `notes` say what differs.
    Addresses { listen: Vec<SocketAddr>, notes: Vec<String> },
    /// The lines would leave no address but loopback: not imported, for this reason.
    Refused(String),
}

/// Addresses as `name (a, b)` per interface, in order of first appearance.
fn by_interface(named: &[(&str, IpAddr)]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in named {
        if !names.contains(name) {
            names.push(name);
        }
    }
    let groups: Vec<String> = names
        .iter()
        .map(|name| {
            let addresses: Vec<String> = named
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, address)| address.to_string())
                .collect();
            format!("{name} ({})", addresses.join(", "))
        })
        .collect();
    groups.join(", ")
}

/// Turns `interface` lines into a `[server] listen` list of the addresses they leave served
/// among `interfaces` (each address with its interface's name, loopback included), the hub's at
/// install. syhub-ntp listens on addresses, not interfaces, so the list is fixed then.
pub fn import_interfaces(rules: &[InterfaceRule], interfaces: &[(String, IpAddr)]) -> ListenImport {
    if rules.is_empty() {
        return ListenImport::Everywhere;
    }
    let lines: Vec<&str> = rules.iter().map(|rule| rule.line.as_str()).collect();
    let lines = lines.join("; ");
    let (mut served, mut unserved, mut link_local) = (Vec::new(), Vec::new(), Vec::new());
    let mut loopback_left_out = false;
    for (name, address) in interfaces {
        let listen = ntpd_action(rules, name, *address) == InterfaceAction::Listen;
        if address.is_loopback() {
            loopback_left_out |= !listen;
        } else if !listen {
            unserved.push((name.as_str(), *address));
        } else if is_link_local_v6(*address) {
            link_local.push((name.as_str(), *address));
        } else {
            served.push((name.as_str(), *address));
        }
    }
    // Lines that would also serve an address on an interface the hub does not have yet (`listen
    // all`) need no list: the default serves every address, as they did.
    let serves_any = ["192.0.2.1", "2001:db8::1"]
        .iter()
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .all(|a| ntpd_action(rules, "", a) == InterfaceAction::Listen);
    if unserved.is_empty() && serves_any {
        return ListenImport::Everywhere;
    }
    if served.is_empty() {
        let link_local = if link_local.is_empty() {
            String::new()
        } else {
            format!(" (besides link-local {}, which listen cannot name)", by_interface(&link_local))
        };
        return ListenImport::Refused(format!(
            "{lines}: of the hub's addresses at install, these lines serve none but loopback{link_local}; \
             rather than serve loopback alone, [server] listen keeps its default, every address \
             (not served under these lines: {}). Set [server] listen by hand",
            if unserved.is_empty() { "none".to_owned() } else { by_interface(&unserved) }
        ));
    }
    let mut listen: Vec<SocketAddr> = vec![
        SocketAddr::from((Ipv4Addr::LOCALHOST, 123)),
        SocketAddr::from((Ipv6Addr::LOCALHOST, 123)),
    ];
    for (_, address) in &served {
        let socket = SocketAddr::new(*address, 123);
        if !listen.contains(&socket) {
            listen.push(socket);
        }
    }
    let mut notes = vec![format!(
        "{lines}: syhub-ntp listens on addresses, not interfaces, so [server] listen names the \
         addresses these lines served when installed: {}; not served: {}. The list does not follow \
         address changes: an address gone when the daemon starts is skipped with a warning, and a \
         new one (another DHCP lease, an interface added) is not served until added to listen",
        by_interface(&served),
        if unserved.is_empty() { "none yet".to_owned() } else { by_interface(&unserved) }
    )];
    notes.push(format!(
        "loopback (127.0.0.1, ::1) is always served, so that local monitoring (syhub-ntp status, \
         ntpq) works{}",
        if loopback_left_out { ", although these lines left it out" } else { "" }
    ));
    if !link_local.is_empty() {
        notes.push(format!(
            "left out link-local {}: a link-local address needs its interface as a scope \
             (fe80::1%eth0), which listen does not accept",
            by_interface(&link_local)
        ));
    }
    ListenImport::Addresses { listen, notes }
}

pub fn parse(text: &str) -> NtpConf {
    let mut conf = NtpConf::default();
    // The index in `conf.sources` of each imported SHM unit, for its `fudge` line.
    let mut shm_units: Vec<(String, usize)> = Vec::new();
    // The address of the local clock, for its `fudge` line.
    let mut local_address: Option<String> = None;
    // Google's servers among the sources: their index and line.
    let mut google: Vec<(usize, String)> = Vec::new();
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
                if address.strip_prefix(LOCAL_DRIVER).is_some_and(|u| u.parse::<u8>().is_ok()) {
                    if local_address.is_some() {
                        skip(&mut conf, "a second local clock: the first is imported");
                        continue;
                    }
                    local_address = Some((*address).to_owned());
                    conf.local_clock =
                        Some(LocalClock { stratum: NTPD_LOCAL_CLOCK_STRATUM, fudged: false });
                    if args.contains(&"prefer") {
                        conf.skipped.push(format!(
                            "{content} (prefer: ntpd then followed the local clock alone; \
                             syhub-ntp's is used only while no other source is selectable)"
                        ));
                    }
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
                let options = options(&args[1..]);
                let mut table = format!(
                    "[[source]]\nmode = \"{mode}\"\naddress = {}\niburst = {}\n",
                    toml_string(address),
                    options.iburst
                );
                for (key, value) in options.settings.iter().filter(|(k, _)| k != "ttl") {
                    table.push_str(&format!("{key} = {value}\n"));
                }
                if options.prefer {
                    table.push_str("prefer = true\n");
                }
                if directive == "peer" {
                    conf.skipped
                        .push(format!("{content} (symmetric peering: imported as a server)"));
                }
                if !options.unknown.is_empty() {
                    conf.skipped
                        .push(format!("{content} ({} not imported)", options.unknown.join(" ")));
                }
                if is_google(address) {
                    google.push((conf.sources.len(), content.to_owned()));
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
                let options = options(&args[1..]);
                let mut table = format!("[[broadcast]]\naddress = {}\n", toml_string(address));
                for (key, value) in
                    options.settings.iter().filter(|(k, _)| k == "key" || k == "ttl")
                {
                    table.push_str(&format!("{key} = {value}\n"));
                }
                conf.broadcasts.push(table);
            }
            "keys" => conf.keys_file = args.first().map(|p| (*p).to_owned()),
            "trustedkey" => {
                conf.trusted_keys.extend(args.iter().filter_map(|id| id.parse::<u32>().ok()));
            }
            "driftfile" => conf.drift_file = args.first().map(|p| (*p).to_owned()),
            "leapfile" => match args.first() {
                Some(path) if path.starts_with('/') => conf.leap_file = Some((*path).to_owned()),
                _ => skip(&mut conf, "not an absolute path"),
            },
            "interface" | "nic" => {
                let action = match args.first() {
                    Some(&"listen") => InterfaceAction::Listen,
                    Some(&"ignore") => InterfaceAction::Ignore,
                    Some(&"drop") => InterfaceAction::Drop,
                    _ => {
                        skip(&mut conf, "not understood: expected listen, ignore or drop");
                        continue;
                    }
                };
                let Some(matches) = args.get(1).and_then(|w| InterfaceMatch::parse(w)) else {
                    skip(
                        &mut conf,
                        "not understood: expected all, ipv4, ipv6, a name or an address",
                    );
                    continue;
                };
                if matches == InterfaceMatch::Wildcard {
                    skip(
                        &mut conf,
                        "ntpd's catch-all socket: no counterpart; the other interface lines \
                         decide which addresses are served",
                    );
                }
                conf.interface_rules.push(InterfaceRule {
                    action,
                    matches,
                    line: content.to_owned(),
                });
            }
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
            "fudge" if args.first().is_some_and(|a| a.starts_with(LOCAL_DRIVER)) => {
                let Some(local) =
                    conf.local_clock.as_mut().filter(|_| local_address.as_deref() == Some(args[0]))
                else {
                    skip(&mut conf, "no such local clock before it");
                    continue;
                };
                let mut not_imported = Vec::new();
                for pair in args[1..].chunks(2) {
                    match (pair, pair.get(1).and_then(|s| s.parse::<u8>().ok())) {
                        (["stratum", _], Some(stratum @ 0..=15)) => {
                            local.stratum = stratum;
                            local.fudged = true;
                        }
                        _ => not_imported.push(pair.join(" ")),
                    }
                }
                for pair in not_imported {
                    conf.skipped.push(format!("{content} ({pair} not imported)"));
                }
            }
            "fudge" | "tos" | "statsdir" | "statistics" | "filegen" | "logfile"
            | "broadcastclient" | "disable" | "enable" | "tinker" | "includefile" => {
                skip(&mut conf, "no counterpart");
            }
            _ => skip(&mut conf, "not understood"),
        }
    }
    // Google smears leap seconds: beside servers that do not, it may only be a fallback.
    if !google.is_empty() && google.len() < conf.sources.len() {
        for (index, line) in google {
            let table = &mut conf.sources[index];
            let preferred = table.contains("prefer = true\n");
            *table = format!(
                "# Google smears leap seconds: a fallback only, never combined with the others.\n{}fallback = true\n",
                table.replace("prefer = true\n", "")
            );
            conf.changed.push(format!(
                "{line}: imported with fallback = true, used only while no other source is \
                 selectable: Google smears leap seconds (over the 24 hours around one) while the \
                 other sources step, so near a leap second the two disagree by up to half a \
                 second and must not be combined{}",
                if preferred {
                    "; its prefer is dropped, as a fallback is never combined"
                } else {
                    ""
                }
            ));
        }
    }
    conf
}

#[cfg(test)]
mod tests {
    use super::*;
    use syhub_ntp_config::Config;

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

    /// The sources of `conf` as a config of their own, checked by the daemon's parser.
    fn sources_config(conf: &NtpConf) -> Config {
        let text = conf.sources.join("\n");
        Config::parse(&text, "imported").unwrap_or_else(|e| panic!("{e}:\n{text}"))
    }

    /// A hub with a wired and a wireless interface, each with IPv4, IPv6 and link-local.
    fn hub_interfaces() -> Vec<(String, IpAddr)> {
        [
            ("lo", "127.0.0.1"),
            ("lo", "::1"),
            ("eth0", "192.168.1.2"),
            ("eth0", "2001:db8:1::2"),
            ("eth0", "fe80::2"),
            ("wlan0", "192.168.50.2"),
            ("wlan0", "fe80::50"),
        ]
        .iter()
        .map(|(name, address)| ((*name).to_owned(), address.parse().unwrap()))
        .collect()
    }

    fn listen_of(ntp_conf: &str) -> ListenImport {
        import_interfaces(&parse(ntp_conf).interface_rules, &hub_interfaces())
    }

    fn sockets(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

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
        let config = sources_config(&conf);
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
        assert_eq!(conf.leap_file.as_deref(), Some("/usr/share/zoneinfo/leap-seconds.list"));
        assert_eq!(conf.local_clock.as_ref().map(LocalClock::announced_stratum), Some(6));
        // statistics, and the two `restrict default` lines.
        assert_eq!(conf.skipped.len(), 3, "{:?}", conf.skipped);
        assert!(conf.changed.is_empty(), "{:?}", conf.changed);
    }

    #[test]
    fn prefer_is_imported_for_servers_and_pools_and_other_options_are_reported() {
        let conf = parse(
            "server 192.168.1.1 iburst prefer\npool pool.ntp.org prefer iburst\n\
             server 192.168.1.9 noselect version 4\n",
        );
        assert!(conf.sources[0].ends_with("iburst = true\nprefer = true\n"), "{}", conf.sources[0]);
        assert!(conf.sources[1].contains("prefer = true\n"), "{}", conf.sources[1]);
        assert!(!conf.sources[2].contains("prefer"), "{}", conf.sources[2]);
        let config = sources_config(&conf);
        let preferred: Vec<bool> = config.sources.iter().map(|s| s.prefer).collect();
        assert_eq!(preferred, [true, true, false]);
        assert_eq!(
            conf.skipped,
            ["server 192.168.1.9 noselect version 4 (noselect version 4 not imported)"]
        );
    }

    #[test]
    fn google_beside_other_sources_becomes_a_fallback_and_says_why() {
        let conf = parse(
            "server time.google.com iburst prefer\npool pool.ntp.org iburst\n\
             server time3.google.com\nserver 127.127.28.0\n",
        );
        let config = sources_config(&conf);
        let roles: Vec<(&str, bool, bool)> =
            config.sources.iter().map(|s| (s.address.as_str(), s.fallback, s.prefer)).collect();
        assert_eq!(
            roles,
            [
                ("time.google.com", true, false),
                ("pool.ntp.org", false, false),
                ("time3.google.com", true, false),
                ("SHM(0)", false, false),
            ]
        );
        assert!(conf.sources[0].starts_with("# Google smears leap seconds"), "{}", conf.sources[0]);
        assert_eq!(conf.changed.len(), 2, "{:?}", conf.changed);
        assert!(
            conf.changed[0]
                .starts_with("server time.google.com iburst prefer: imported with fallback = true")
        );
        assert!(conf.changed[0].contains("smears leap seconds"), "{}", conf.changed[0]);
        assert!(conf.changed[0].contains("prefer is dropped"), "{}", conf.changed[0]);
        assert!(!conf.changed[1].contains("prefer"), "{}", conf.changed[1]);
    }

    #[test]
    fn google_alone_is_imported_as_it_is() {
        let conf = parse(
            "server time1.google.com iburst\nserver time2.google.com iburst\n\
             server TIME.Google.com. prefer\n",
        );
        assert!(conf.changed.is_empty(), "{:?}", conf.changed);
        let config = sources_config(&conf);
        assert!(config.sources.iter().all(|s| !s.fallback));
        assert!(config.sources[2].prefer);
        assert!(!is_google("time.google.com.evil.example") && !is_google("timex.google.com"));
    }

    #[test]
    fn a_leapfile_becomes_the_clocks_leap_file() {
        let conf = parse("leapfile /var/lib/ntp/leap-seconds.list\n");
        assert_eq!(conf.leap_file.as_deref(), Some("/var/lib/ntp/leap-seconds.list"));
        assert!(conf.skipped.is_empty(), "{:?}", conf.skipped);
        let relative = parse("leapfile leap-seconds.list\n");
        assert_eq!(relative.leap_file, None);
        assert_eq!(relative.skipped, ["leapfile leap-seconds.list (not an absolute path)"]);
    }

    #[test]
    fn the_local_clocks_fudge_stratum_becomes_local_stratum_and_holdover_is_explained() {
        let conf = parse(
            "server 127.127.1.0 prefer\nfudge 127.127.1.0 stratum 10 refid LCL\npool pool.ntp.org\n",
        );
        let local = conf.local_clock.clone().expect("the local clock");
        assert_eq!((local.stratum, local.announced_stratum()), (10, 11));
        assert_eq!(local.table(), "[local]\nenabled = true\nstratum = 11\nmode = \"holdover\"\n");
        let config = Config::parse(&local.table(), "local").unwrap();
        assert_eq!(config.local.stratum.get(), 11);
        assert_eq!(config.local.mode, syhub_ntp_config::LocalMode::Holdover);
        let differences = local.differences().join("\n");
        for expected in [
            "fudge stratum 10: [local] stratum = 11",
            "only once the clock has been synchronised since boot",
            "leap indicator 3, stratum 16",
            "mode = \"always\"",
        ] {
            assert!(differences.contains(expected), "{expected:?} missing from {differences}");
        }
        assert_eq!(conf.sources.len(), 1, "the local clock is no source");
        assert!(
            conf.skipped.iter().any(|s| s.contains("refid LCL not imported")),
            "{:?}",
            conf.skipped
        );
        assert!(conf.skipped.iter().any(|s| s.starts_with("server 127.127.1.0 prefer (prefer")));

        // Without a fudge, ntpd's local clock was at stratum 5; at 15 it was never served.
        let unfudged = parse("server 127.127.1.0\n").local_clock.unwrap();
        assert_eq!(unfudged.announced_stratum(), 6);
        assert!(unfudged.differences()[0].contains("ntpd's default, 5"));
        let useless =
            parse("server 127.127.1.0\nfudge 127.127.1.0 stratum 15\n").local_clock.unwrap();
        assert_eq!(useless.table(), "[local]\nenabled = false\n");
        assert!(!Config::parse(&useless.table(), "local").unwrap().local.enabled);
        // A fudge for a clock that is not configured changes nothing.
        let stray = parse("fudge 127.127.1.0 stratum 3\n");
        assert_eq!((stray.local_clock, stray.skipped.len()), (None, 1));
    }

    #[test]
    fn interface_lines_become_the_addresses_of_the_interfaces_left_served() {
        let ListenImport::Addresses { listen, notes } =
            listen_of("interface listen eth0\ninterface ignore wlan0\n")
        else {
            panic!("no list")
        };
        assert_eq!(
            listen,
            sockets(&["127.0.0.1:123", "[::1]:123", "192.168.1.2:123", "[2001:db8:1::2]:123"])
        );
        let notes = notes.join("\n");
        for expected in [
            "interface listen eth0; interface ignore wlan0: ",
            "eth0 (192.168.1.2, 2001:db8:1::2); not served: wlan0 (192.168.50.2, fe80::50)",
            "does not follow address changes",
            "loopback (127.0.0.1, ::1) is always served",
            "left out link-local eth0 (fe80::2)",
        ] {
            assert!(notes.contains(expected), "{expected:?} missing from {notes}");
        }
        // The list is what [server] listen accepts.
        let quoted: Vec<String> = listen.iter().map(|a| format!("\"{a}\"")).collect();
        let text = format!("[server]\nlisten = [{}]\n", quoted.join(", "));
        let config = Config::parse(&text, "listen").unwrap();
        assert_eq!(config.server.listen.as_slice(), listen.as_slice());
    }

    #[test]
    fn interface_lines_follow_ntpds_rules_the_last_match_deciding() {
        // A name alone: every other address (but loopback) is ignored, as by ntpd.
        let only_eth0 = listen_of("interface listen eth0\n");
        let by_address =
            listen_of("interface listen 192.168.1.2\ninterface listen 2001:db8:1::/64\n");
        let eth0 =
            sockets(&["127.0.0.1:123", "[::1]:123", "192.168.1.2:123", "[2001:db8:1::2]:123"]);
        for import in [&only_eth0, &by_address] {
            assert!(
                matches!(import, ListenImport::Addresses { listen, .. } if *listen == eth0),
                "{import:?}"
            );
        }
        // The last line that matches decides: IPv6 ignored, then eth0's IPv4 dropped.
        let ipv4_wlan0 = listen_of(
            "interface listen all\ninterface ignore ipv6\ninterface drop eth*\nnic listen WLAN0\n",
        );
        assert!(
            matches!(&ipv4_wlan0, ListenImport::Addresses { listen, .. }
                if *listen == sockets(&["127.0.0.1:123", "[::1]:123", "192.168.50.2:123"])),
            "{ipv4_wlan0:?}"
        );
        // Loopback stays served even when a line leaves it out, and the note says so.
        let ListenImport::Addresses { listen, notes } =
            listen_of("interface ignore all\ninterface ignore lo\ninterface listen wlan0\n")
        else {
            panic!("no list")
        };
        assert_eq!(listen[..2], sockets(&["127.0.0.1:123", "[::1]:123"]));
        assert!(notes[1].contains("although these lines left it out"), "{notes:?}");
    }

    #[test]
    fn interface_lines_that_serve_everything_keep_the_default_and_none_left_is_refused() {
        assert_eq!(listen_of(""), ListenImport::Everywhere);
        assert_eq!(listen_of("interface listen all\n"), ListenImport::Everywhere);
        assert_eq!(
            listen_of("interface listen ipv4\ninterface listen ipv6\n"),
            ListenImport::Everywhere
        );
        // Every address the hub has now, but not one it may get: a list.
        assert!(matches!(
            listen_of("interface listen eth0\ninterface listen wlan0\n"),
            ListenImport::Addresses { .. }
        ));
        for lines in [
            "interface ignore all\n",
            "interface listen eth9\n",
            "interface ignore wildcard\n",
            "interface drop all\ninterface listen fe80::/10\n",
        ] {
            let ListenImport::Refused(reason) = listen_of(lines) else {
                panic!("{lines:?} not refused")
            };
            assert!(reason.contains("serve none but loopback"), "{reason}");
            assert!(reason.contains("keeps its default, every address"), "{reason}");
        }
        let ListenImport::Refused(reason) =
            listen_of("interface drop all\ninterface listen fe80::/10\n")
        else {
            unreachable!()
        };
        assert!(reason.contains("besides link-local eth0 (fe80::2), wlan0 (fe80::50)"), "{reason}");
    }

    #[test]
    fn interface_lines_that_are_not_understood_are_reported() {
        let conf = parse(
            "interface listen\ninterface serve eth0\ninterface ignore 10.0.0.0/33\n\
             interface ignore wildcard\ninterface listen 0.0.0.0\n",
        );
        assert_eq!(conf.interface_rules.len(), 2, "{:?}", conf.interface_rules);
        assert!(conf.interface_rules.iter().all(|r| r.matches == InterfaceMatch::Wildcard));
        assert_eq!(conf.skipped.len(), 5, "{:?}", conf.skipped);
        assert!(conf.skipped[3].contains("catch-all socket"), "{:?}", conf.skipped);
    }

    #[test]
    fn a_link_local_listen_address_cannot_name_its_interface() {
        // Why link-local addresses are left out of an imported listen list: a scope by name does
        // not parse, and a scope by index would change with the interfaces' order at boot.
        let named = "[server]\nlisten = [\"[fe80::2%eth0]:123\"]\n";
        assert!(Config::parse(named, "listen").is_err());
        let indexed = "[server]\nlisten = [\"[fe80::2%2]:123\"]\n";
        assert!(Config::parse(indexed, "listen").is_ok());
    }

    #[test]
    fn interface_names_match_like_ntpd_with_wildcards_in_any_case() {
        let matches =
            |pattern: &str, name: &str| Glob::NAME.matches(pattern.as_bytes(), name.as_bytes());
        assert!(matches("eth0", "ETH0") && matches("eth*", "eth1") && matches("wl?n0", "wlan0"));
        assert!(matches("*", "") && matches("e*0", "enx0") && !matches("eth?", "eth10"));
        assert!(!matches("eth0", "eth00") && !matches("eth0", "eth"));
    }
}
