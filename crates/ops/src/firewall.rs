//! Opening the ports the config serves on beyond loopback (UDP 123 for NTP, TCP 4460 for NTS key
//! exchange when NTS is on, the HTTP port when it listens on the LAN) in the firewall that is in
//! use: ufw when it is active, else an nftables `inet filter input` chain (Debian's default), else
//! iptables and ip6tables. Each rule carries the comment `syhub-ntp`, so it is found again to be
//! removed. An accept that is the admin's own counts as open: nothing is added beside it.

use crate::host::Host;
use crate::manifest::Change;
use std::fmt;
use std::net::SocketAddr;
use syhub_ntp_config::{Config, DEFAULT_CONFIG_PATH};

const COMMENT: &str = "syhub-ntp";

/// Which firewall guards the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Ufw,
    Nftables,
    Iptables,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ufw => "ufw",
            Self::Nftables => "nftables",
            Self::Iptables => "iptables",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Udp,
    Tcp,
}

impl Protocol {
    /// As nft, iptables and ufw spell it.
    fn keyword(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
        }
    }
}

/// A port to let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port {
    pub protocol: Protocol,
    pub number: u16,
}

impl Port {
    pub const NTP: Self = Self { protocol: Protocol::Udp, number: 123 };

    /// As the manifest records it: `udp/123`.
    fn label(self) -> String {
        format!("{}/{}", self.protocol.keyword(), self.number)
    }

    fn from_label(label: &str) -> Option<Self> {
        let (protocol, number) = label.split_once('/')?;
        let protocol = match protocol {
            "udp" => Protocol::Udp,
            "tcp" => Protocol::Tcp,
            _ => return None,
        };
        Some(Self { protocol, number: number.parse().ok()? })
    }

    /// The name /etc/services gives it, which an admin's rule may use instead of the number.
    fn service_name(self) -> Option<&'static str> {
        match (self.protocol, self.number) {
            (_, 123) => Some("ntp"),
            (Protocol::Tcp, 4460) => Some("ntske"),
            _ => None,
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.protocol.keyword().to_ascii_uppercase(), self.number)
    }
}

/// Why a port is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Ntp,
    NtsKe,
    Http,
}

impl Purpose {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Ntp => "NTP ([server] listen)",
            Self::NtsKe => "NTS key exchange ([nts] listen, NTS is on)",
            Self::Http => "the HTTP API and dashboard ([http] listen beyond loopback)",
        }
    }
}

/// The ports `config` serves on at an address other than loopback, each once: NTP's, NTS-KE's
/// when NTS is on (a certificate is set), and HTTP's.
pub fn served_ports(config: &Config) -> Vec<(Port, Purpose)> {
    let mut ports: Vec<(Port, Purpose)> = Vec::new();
    let mut add = |protocol, purpose, addresses: &[SocketAddr]| {
        for address in addresses.iter().filter(|a| !a.ip().is_loopback() && a.port() != 0) {
            let port = Port { protocol, number: address.port() };
            if !ports.iter().any(|(p, _)| *p == port) {
                ports.push((port, purpose));
            }
        }
    };
    add(Protocol::Udp, Purpose::Ntp, config.server.listen.as_slice());
    if config.nts.certificate.is_some() {
        add(Protocol::Tcp, Purpose::NtsKe, &config.nts.listen);
    }
    add(Protocol::Tcp, Purpose::Http, &config.http.listen);
    ports
}

/// The config under the host's root, as install wrote or kept it; the embedded default when
/// there is none that parses (as in a dry run, where it is not written).
fn installed_config(host: &Host) -> Config {
    host.read(DEFAULT_CONFIG_PATH)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| Config::parse(&text, DEFAULT_CONFIG_PATH).ok())
        .unwrap_or_else(Config::embedded_default)
}

fn succeeds(host: &Host, program: &str, args: &[&str]) -> bool {
    host.query(program, args).is_some_and(|o| o.status.success())
}

/// Whether a listing of rules drops or rejects anything (a policy or a rule).
fn filters(listing: &str) -> bool {
    listing.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.contains("policy drop")
            || line.contains("-p input drop")
            || line
                .split_whitespace()
                .any(|word| matches!(word, "drop" | "drop;" | "reject" | "reject;"))
            || line.ends_with("-j drop")
            || line.ends_with("-j reject")
    })
}

fn listing(host: &Host, program: &str, args: &[&str]) -> Option<String> {
    let output = host.query(program, args).filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The firewall that filters incoming packets, if any: ufw when active, else nftables' `inet
/// filter input` chain or iptables' INPUT chain when they drop or reject anything. A chain that
/// accepts everything is no firewall: every port passes already.
pub fn detect(host: &Host) -> Option<Backend> {
    let ufw_active =
        listing(host, "ufw", &["status"]).is_some_and(|s| s.contains("Status: active"));
    if ufw_active {
        Some(Backend::Ufw)
    } else if listing(host, "nft", &["list", "chain", "inet", "filter", "input"])
        .is_some_and(|l| filters(&l))
    {
        Some(Backend::Nftables)
    } else if ["iptables", "ip6tables"]
        .iter()
        .any(|program| listing(host, program, &["-S", "INPUT"]).is_some_and(|l| filters(&l)))
    {
        Some(Backend::Iptables)
    } else {
        None
    }
}

/// `ufw status` lines that allow `port`: `123/udp`, `123` (both protocols) or the service name
/// first; with `ours`, only those with our comment.
fn ufw_allows(status: &str, port: Port, ours: bool) -> bool {
    let with_protocol = format!("{}/{}", port.number, port.protocol.keyword());
    let number = port.number.to_string();
    status.lines().any(|line| {
        let first = line.split_whitespace().next().unwrap_or("");
        let named = port.service_name().is_some_and(|name| first == name);
        (first == with_protocol || first == number || named)
            && line.contains("ALLOW")
            && (!ours || line.contains(&format!("# {COMMENT}")))
    })
}

/// Whether our own rule for `port` is in the running firewall.
fn has_our_rule(host: &Host, backend: Backend, port: Port) -> bool {
    match backend {
        Backend::Ufw => {
            listing(host, "ufw", &["status"]).is_some_and(|s| ufw_allows(&s, port, true))
        }
        Backend::Nftables => nft_handle(host, port).is_some(),
        Backend::Iptables => {
            let check = iptables_args("-C", port);
            succeeds(host, "iptables", &check.iter().map(String::as_str).collect::<Vec<_>>())
        }
    }
}

/// Whether `port` is accepted already: by our rule, or by any rule of the admin's that accepts
/// it (a list or range holding it, or its service name). The rules' order is not judged: an
/// accept placed after a rule that drops everything is still counted.
pub fn is_open(host: &Host, backend: Backend, port: Port) -> bool {
    has_our_rule(host, backend, port)
        || match backend {
            Backend::Ufw => {
                listing(host, "ufw", &["status"]).is_some_and(|s| ufw_allows(&s, port, false))
            }
            Backend::Nftables => {
                listing(host, "nft", &["list", "chain", "inet", "filter", "input"])
                    .is_some_and(|l| l.lines().any(|rule| accepts(rule, port)))
            }
            Backend::Iptables => listing(host, "iptables", &["-S", "INPUT"])
                .is_some_and(|l| l.lines().any(|rule| accepts(rule, port))),
        }
}

/// Whether one rule, as `nft list` or `iptables -S` prints it, accepts `port`.
fn accepts(rule: &str, port: Port) -> bool {
    let rule = rule.to_ascii_lowercase();
    let words: Vec<&str> = rule.split_whitespace().collect();
    // nft's verdict and iptables' `-j ACCEPT` alike.
    let accepts = words.iter().any(|w| matches!(*w, "accept" | "accept;"));
    let protocol = words.contains(&port.protocol.keyword());
    // The ports follow `dport` (nft), `--dport` or `--dports` (iptables): one, a range, a list.
    let Some(at) = words.iter().position(|w| matches!(*w, "dport" | "--dport" | "--dports")) else {
        return false;
    };
    let after = &words[at + 1..];
    let ports: Vec<&str> = match after.first() {
        Some(&"{") => after[1..].iter().take_while(|w| **w != "}").copied().collect(),
        first => first.copied().into_iter().collect(),
    };
    let holds = ports.iter().flat_map(|p| p.split(',')).any(|spec| takes_in(spec, port));
    accepts && protocol && holds
}

/// Whether one port of a rule (`123`, `ntp`, a range `100-200` or `100:200`) takes in `port`.
fn takes_in(spec: &str, port: Port) -> bool {
    match spec.split_once(['-', ':']) {
        None => spec == port.number.to_string() || port.service_name() == Some(spec),
        Some((low, high)) => match (low.parse::<u16>(), high.parse::<u16>()) {
            (Ok(low), Ok(high)) => (low..=high).contains(&port.number),
            _ => false,
        },
    }
}

/// Our nftables rule for `port`, as `nft list` prints it.
fn nft_rule(port: Port) -> String {
    format!("{} dport {} accept comment \"{COMMENT}\"", port.protocol.keyword(), port.number)
}

/// `iptables VERB ...` for our rule for `port`.
fn iptables_args(verb: &str, port: Port) -> Vec<String> {
    let protocol = port.protocol.keyword();
    [verb, "INPUT", "-p", protocol, "--dport", &port.number.to_string()]
        .into_iter()
        .chain(["-m", "comment", "--comment", COMMENT, "-j", "ACCEPT"])
        .map(str::to_owned)
        .collect()
}

/// What an admin runs to open `port` by hand.
pub fn manual_command(backend: Backend, port: Port) -> String {
    let (protocol, number) = (port.protocol.keyword(), port.number);
    match backend {
        Backend::Ufw => format!("ufw allow {number}/{protocol}"),
        Backend::Nftables => {
            format!("nft insert rule inet filter input {protocol} dport {number} accept")
        }
        Backend::Iptables => format!("iptables -I INPUT -p {protocol} --dport {number} -j ACCEPT"),
    }
}

/// Opens, in the firewall in use, each port the installed config serves on beyond loopback. Each change goes into `made` as soon as it is made, so that a failure
/// part way is undone with the rest of the install.
pub fn open_ports(host: &mut Host, made: &mut Vec<Change>) -> std::io::Result<()> {
    let ports = served_ports(&installed_config(host));
    let names = ports.iter().map(|(port, _)| port.to_string()).collect::<Vec<_>>().join(", ");
    if ports.is_empty() {
        host.report.push("firewall: the config serves on loopback only, no port to open".into());
        return Ok(());
    }
    let Some(backend) = detect(host) else {
        host.report.push(format!("no firewall in use: {names} not filtered"));
        return Ok(());
    };
    let name = backend.name();
    for (port, purpose) in ports {
        if has_our_rule(host, backend, port) {
            host.report.push(format!("firewall ({name}): {port} is open already"));
        } else if is_open(host, backend, port) {
            host.report.push(format!("firewall ({name}): {port} is open already, by your rule"));
        } else {
            add_rule(host, backend, port)?;
            made.push(Change::Firewall { backend: name.into(), rule: port.label() });
            let verb = if host.is_dry_run() { "would open" } else { "opened" };
            host.report
                .push(format!("firewall ({name}): {verb} {port} for {}", purpose.describe()));
        }
    }
    Ok(())
}

fn add_rule(host: &mut Host, backend: Backend, port: Port) -> std::io::Result<()> {
    let protocol = port.protocol.keyword();
    let number = port.number.to_string();
    match backend {
        Backend::Ufw => {
            host.run("ufw", &["allow", &format!("{number}/{protocol}"), "comment", COMMENT])
        }
        Backend::Nftables => host.run(
            "nft",
            &[
                "insert",
                "rule",
                "inet",
                "filter",
                "input",
                protocol,
                "dport",
                &number,
                "accept",
                "comment",
                &format!("\"{COMMENT}\""),
            ],
        ),
        Backend::Iptables => {
            let insert = iptables_args("-I", port);
            let insert: Vec<&str> = insert.iter().map(String::as_str).collect();
            for program in ["iptables", "ip6tables"] {
                // ip6tables may be missing on an IPv4-only system: IPv4 alone is still worth it.
                if let Err(error) = host.run(program, &insert)
                    && program == "iptables"
                {
                    return Err(error);
                }
            }
            Ok(())
        }
    }
}

/// The handle of our rule for `port` in `inet filter input`.
fn nft_handle(host: &Host, port: Port) -> Option<String> {
    let text = listing(host, "nft", &["-a", "list", "chain", "inet", "filter", "input"])?;
    let rule = nft_rule(port);
    text.lines()
        .find(|line| line.trim_start().starts_with(&format!("{rule} #")))
        .and_then(|line| line.rsplit("# handle ").next())
        .map(|handle| handle.trim().to_owned())
}

/// Removes the rule `open_ports` added with `backend` for `rule` (`udp/123`, as recorded).
pub fn close(host: &mut Host, backend: &str, rule: &str) -> std::io::Result<()> {
    let port = Port::from_label(rule).unwrap_or(Port::NTP);
    let number = port.number.to_string();
    match backend {
        "ufw" => {
            host.run("ufw", &["delete", "allow", &format!("{number}/{}", port.protocol.keyword())])
        }
        "nftables" => match nft_handle(host, port) {
            Some(handle) => {
                host.run("nft", &["delete", "rule", "inet", "filter", "input", "handle", &handle])
            }
            None => {
                host.report
                    .push(format!("firewall (nftables): our rule for {port} is gone already"));
                Ok(())
            }
        },
        _ => {
            let delete = iptables_args("-D", port);
            let delete: Vec<&str> = delete.iter().map(String::as_str).collect();
            let mut check = delete.clone();
            check[0] = "-C";
            for program in ["iptables", "ip6tables"] {
                if succeeds(host, program, &check) {
                    host.run(program, &delete)?;
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UDP_123: Port = Port::NTP;
    const TCP_4460: Port = Port { protocol: Protocol::Tcp, number: 4460 };

    #[test]
    fn an_accept_of_udp_123_is_recognised_in_every_spelling_and_nothing_else_is() {
        for rule in [
            "udp dport 123 accept",
            "ip saddr 192.168.0.0/16 udp dport ntp counter packets 0 bytes 0 accept",
            "udp dport { 53, 123, 5353 } accept",
            "udp dport 100-200 accept comment \"mine\"",
            "-A INPUT -p udp -m udp --dport 123 -j ACCEPT",
            "-A INPUT -p udp -m multiport --dports 53,123 -j ACCEPT",
            "-A INPUT -s 10.0.0.0/8 -p udp -m udp --dport 100:200 -j ACCEPT",
        ] {
            assert!(accepts(rule, UDP_123), "{rule}");
        }
        for rule in [
            "udp dport 1234 accept",
            "tcp dport 123 accept",
            "udp dport 123 drop",
            "udp dport { 53, 5353 } accept",
            "-A INPUT -p udp -m udp --dport 123 -j DROP",
            "-A INPUT -p udp -m udp --dport 124:200 -j ACCEPT",
            "-P INPUT ACCEPT",
        ] {
            assert!(!accepts(rule, UDP_123), "{rule}");
        }
    }

    #[test]
    fn an_accept_of_tcp_4460_needs_tcp_and_the_port() {
        assert!(accepts("tcp dport 4460 accept", TCP_4460));
        assert!(accepts("tcp dport ntske accept", TCP_4460));
        assert!(accepts("-A INPUT -p tcp -m tcp --dport 4000:5000 -j ACCEPT", TCP_4460));
        assert!(!accepts("udp dport 4460 accept", TCP_4460));
        assert!(!accepts("tcp dport 44600 accept", TCP_4460));
    }

    #[test]
    fn ufw_status_lines_are_matched_by_port_protocol_and_comment() {
        let status = "Status: active\n\nTo                         Action      From\n\
                      --                         ------      ----\n\
                      123/udp                    ALLOW       Anywhere                   # syhub-ntp\n\
                      8123                       ALLOW       Anywhere\n\
                      44600/tcp                  ALLOW       Anywhere\n";
        assert!(ufw_allows(status, UDP_123, true));
        assert!(!ufw_allows(status, TCP_4460, false), "44600 is not 4460");
        let http = Port { protocol: Protocol::Tcp, number: 8123 };
        assert!(ufw_allows(status, http, false), "a rule for both protocols");
        assert!(!ufw_allows(status, http, true), "not ours");
    }

    fn parse(text: &str) -> Config {
        Config::parse(text, "test").unwrap()
    }

    #[test]
    fn the_default_config_opens_udp_123_alone() {
        assert_eq!(served_ports(&Config::default()), [(UDP_123, Purpose::Ntp)]);
    }

    #[test]
    fn nts_and_http_beyond_loopback_add_their_tcp_ports_once_each() {
        let config = parse(
            "[server]\nlisten = [\"0.0.0.0:123\", \"[::]:123\", \"127.0.0.1:1123\"]\n\
             [http]\nlisten = [\"127.0.0.1:8123\", \"192.168.1.2:8080\", \"[::]:8080\"]\n\
             [nts]\ncertificate = \"/etc/syhub-ntp/cert.pem\"\nprivate_key = \"/etc/syhub-ntp/key.pem\"\n",
        );
        assert_eq!(
            served_ports(&config),
            [
                (UDP_123, Purpose::Ntp),
                (TCP_4460, Purpose::NtsKe),
                (Port { protocol: Protocol::Tcp, number: 8080 }, Purpose::Http),
            ]
        );
        // NTS off (no certificate): its listen addresses open nothing.
        let config =
            parse("[nts]\nlisten = [\"0.0.0.0:4460\"]\n[http]\nlisten = [\"[::1]:8123\"]\n");
        assert_eq!(served_ports(&config), [(UDP_123, Purpose::Ntp)]);
    }

    #[test]
    fn a_port_survives_the_manifest_label_round_trip() {
        for port in [UDP_123, TCP_4460] {
            assert_eq!(Port::from_label(&port.label()), Some(port));
        }
        assert_eq!(Port::from_label("sctp/1"), None);
    }
}
