//! Opening the ports the config serves on beyond loopback (UDP 123 for NTP, TCP 4460 for NTS key
//! exchange when NTS is on, the HTTP port when it listens on the LAN) in the firewall that is in
//! use, both now and after a reboot: ufw when it is active, else an nftables `inet filter input`
//! chain (Debian's default), else iptables and ip6tables. Each rule carries the comment
//! `syhub-ntp`, so it is found again to be removed. An accept that is the admin's own counts as
//! open: nothing is added beside it.
//!
//! After a reboot: ufw restores its own rules. For nftables the rules go into a file of ours that
//! a line appended to /etc/nftables.conf includes, so they are loaded with the admin's chain and
//! put first in it. (A table of our own would not do: an accept ends only its own base chain, and
//! the packet still meets the admin's drop in theirs.) For iptables they go into
//! /etc/iptables/rules.v4 and rules.v6 when netfilter-persistent keeps those; otherwise install
//! says plainly that they last until the next boot.

use crate::glob::Glob;
use crate::host::Host;
use crate::manifest::Change;
use crate::services;
use std::fmt;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use syhub_ntp_config::{Config, DEFAULT_CONFIG_PATH};

const COMMENT: &str = "syhub-ntp";

/// Debian's nftables.service loads this file at boot (and on reload).
const NFT_CONF: &str = "/etc/nftables.conf";
const NFT_DIR: &str = "/etc/nftables.d";
/// Our nftables rules, loaded at boot through [`NFT_INCLUDE`].
pub const NFT_FILE: &str = "/etc/nftables.d/syhub-ntp.nft";
/// The line appended to nftables.conf. A pattern rather than the file's name: should our file go
/// missing, nft includes nothing instead of refusing to load the whole firewall.
pub const NFT_INCLUDE: &str = "include \"/etc/nftables.d/syhub-ntp*.nft\" # the ports syhub-ntp \
                               serves on; `syhub-ntp uninstall` removes this line";
/// The start of [`NFT_FILE`]; one `insert rule` line per port follows. The table and chain are
/// declared (`add` leaves an existing one as it is) so that the file loads even where
/// nftables.conf has no `inet filter input`: the rules then sit in a chain no hook reaches.
const NFT_HEADER: &str = "\
# Written by `syhub-ntp install`: the ports syhub-ntp serves on. /etc/nftables.conf includes this
# file, so the rules are loaded again at boot, first in the inet filter input chain.
# `syhub-ntp uninstall` removes this file and the include line.
add table inet filter
add chain inet filter input
";

/// netfilter-persistent (Debian's iptables-persistent) restores these at boot.
const RULES_V4: &str = "/etc/iptables/rules.v4";
const RULES_V6: &str = "/etc/iptables/rules.v6";
const NETFILTER_PERSISTENT: &str = "/usr/sbin/netfilter-persistent";

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

/// Our iptables rule for `port` as iptables-save writes it (and rules.v4 holds it).
fn iptables_saved(port: Port) -> String {
    let protocol = port.protocol.keyword();
    format!(
        "-A INPUT -p {protocol} -m {protocol} --dport {} -m comment --comment {COMMENT} -j ACCEPT",
        port.number
    )
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

/// Opens, in the firewall in use, each port the installed config serves on beyond loopback,
/// now and at every boot. Each change goes into `made` as soon as it is made, so that a failure
/// part way is undone with the rest of the install. Without `edit_conffiles` (a package's
/// maintainer script, which must not change another package's conffiles), nftables.conf is left
/// as it is and the line that keeps the rules at boot is only named.
pub fn open_ports(
    host: &mut Host,
    made: &mut Vec<Change>,
    edit_conffiles: bool,
) -> std::io::Result<()> {
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
    let mut ours = Vec::new();
    for (port, purpose) in ports {
        if has_our_rule(host, backend, port) {
            host.report.push(format!("firewall ({name}): {port} is open already"));
            ours.push(port);
        } else if is_open(host, backend, port) {
            host.report.push(format!("firewall ({name}): {port} is open already, by your rule"));
        } else {
            add_rule(host, backend, port)?;
            made.push(Change::Firewall { backend: name.into(), rule: port.label() });
            let verb = if host.is_dry_run() { "would open" } else { "opened" };
            host.report
                .push(format!("firewall ({name}): {verb} {port} for {}", purpose.describe()));
            ours.push(port);
        }
    }
    if ours.is_empty() {
        return Ok(());
    }
    match backend {
        Backend::Ufw => {
            host.report.push("firewall (ufw): ufw keeps its rules across reboots itself".into());
            Ok(())
        }
        Backend::Nftables => persist_nft(host, &ours, made, edit_conffiles),
        Backend::Iptables => persist_iptables(host, &ours, made),
    }
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

/// A file under the root as text; `None` when missing or not UTF-8.
fn read_text(host: &Host, path: &str) -> Option<String> {
    String::from_utf8(host.read(path).ok()?).ok()
}

/// Rewrites a file of the admin's whole, keeping its mode and group.
fn rewrite(host: &mut Host, path: &str, text: &str) -> std::io::Result<()> {
    let meta = std::fs::metadata(host.path(path))?;
    host.write_with_group(path, text.as_bytes(), meta.mode() & 0o7777, Some(meta.gid()))
}

/// Whether a file of the admin's may be rewritten: not through a symbolic link, whose target
/// could lie outside the root (and would be replaced by a plain file).
fn may_rewrite(host: &mut Host, path: &str) -> bool {
    match host.link_on_the_way(path) {
        Some(link) => {
            host.report.push(format!("left {path} alone: {} is a symbolic link", link.display()));
            false
        }
        None => true,
    }
}

/// `text` with `line` added as its last line, and whether a newline had to go before it (the
/// text did not end in one): [`without_line`] gives back `text` exactly from the two. The line
/// always ends in a newline of its own, as nft wants after a comment.
fn with_line_appended(text: &str, line: &str) -> (String, bool) {
    if text.is_empty() || text.ends_with('\n') {
        (format!("{text}{line}\n"), false)
    } else {
        (format!("{text}\n{line}\n"), true)
    }
}

/// `text` without its first line equal to `line`, or `None` when no line is. With
/// `newline_added`, the newline before the line goes too when nothing follows it.
fn without_line(text: &str, line: &str, newline_added: bool) -> Option<String> {
    let mut start = 0;
    for piece in text.split_inclusive('\n') {
        let end = start + piece.len();
        if piece.strip_suffix('\n').unwrap_or(piece) == line {
            let mut head = &text[..start];
            if newline_added && end == text.len() {
                head = head.strip_suffix('\n').unwrap_or(head);
            }
            return Some(format!("{head}{}", &text[end..]));
        }
        start = end;
    }
    None
}

/// `text`, an iptables-save file, with `rule` first in its filter table (before the first `-A`,
/// or before `COMMIT` when the table has no rule); `None` when it has no filter table.
fn with_rule_in_filter(text: &str, rule: &str) -> Option<String> {
    let mut start = 0;
    let mut in_filter = false;
    for piece in text.split_inclusive('\n') {
        let line = piece.trim();
        if in_filter && (line.starts_with("-A ") || line == "COMMIT") {
            return Some(format!("{}{rule}\n{}", &text[..start], &text[start..]));
        }
        if line.starts_with('*') {
            if in_filter {
                return None;
            }
            in_filter = line == "*filter";
        }
        start += piece.len();
    }
    None
}

/// Whether an nftables file includes `path` already (by name or by a pattern such as
/// `/etc/nftables.d/*.nft`).
fn includes(conf: &str, path: &str) -> bool {
    conf.lines().any(|line| {
        let Some(rest) = line.trim_start().strip_prefix("include") else { return false };
        let mut quoted = rest.split('"');
        quoted.next().is_some_and(|before| before.trim().is_empty())
            && quoted
                .next()
                .is_some_and(|pattern| Glob::PATH.matches(pattern.as_bytes(), path.as_bytes()))
    })
}

/// Keeps our nftables rules across reboots: one `insert rule` line per port in [`NFT_FILE`], which
/// nftables.conf includes.
fn persist_nft(
    host: &mut Host,
    ports: &[Port],
    made: &mut Vec<Change>,
    edit_conffiles: bool,
) -> std::io::Result<()> {
    let Some(conf) = read_text(host, NFT_CONF) else {
        let rules: Vec<String> = ports
            .iter()
            .map(|p| format!("`insert rule inet filter input {}`", nft_rule(*p)))
            .collect();
        host.report.push(format!(
            "firewall (nftables): there is no readable {NFT_CONF}, so these rules last until the \
             next boot; to keep them, add {} to the rules loaded at boot",
            rules.join(" and ")
        ));
        return Ok(());
    };
    if !may_rewrite(host, NFT_CONF) || !may_rewrite(host, NFT_FILE) {
        host.report.push("firewall (nftables): the rules last until the next boot".into());
        return Ok(());
    }

    let existing = read_text(host, NFT_FILE);
    let mut text = existing.clone().unwrap_or_else(|| NFT_HEADER.to_owned());
    let mut added = Vec::new();
    for port in ports {
        let line = format!("insert rule inet filter input {}", nft_rule(*port));
        if !text.lines().any(|l| l == line) {
            text = with_line_appended(&text, &line).0;
            added.push(line);
        }
    }
    if existing.is_none() {
        if !host.exists(NFT_DIR) {
            host.create_dir(NFT_DIR, 0o755)?;
            made.push(Change::Directory { path: NFT_DIR.into() });
        }
        host.write(NFT_FILE, text.as_bytes(), 0o644)?;
        made.push(Change::File { path: NFT_FILE.into(), data: false });
    } else if !added.is_empty() {
        // A port added to the file of an earlier install: this line alone is undone.
        rewrite(host, NFT_FILE, &text)?;
        for line in &added {
            made.push(Change::LineAdded {
                path: NFT_FILE.into(),
                line: line.clone(),
                newline_added: false,
            });
        }
    }
    if !added.is_empty() && !host.is_dry_run() {
        // nft's own check (against the running ruleset, changing nothing) before boot relies on it.
        let file = host.path(NFT_FILE).to_string_lossy().into_owned();
        let check = host.query("nft", &["-c", "-f", &file]);
        if let Some(output) = check.filter(|o| !o.status.success()) {
            return Err(std::io::Error::other(format!(
                "nft -c -f {file} rejects it: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
    }

    if !includes(&conf, NFT_FILE) && !edit_conffiles {
        host.report.push(format!(
            "firewall (nftables): {NFT_CONF} belongs to the nftables package, which the package's \
             scripts leave alone: to keep the rules after a reboot, add the line `{NFT_INCLUDE}` \
             to it, or run `sudo syhub-ntp install`, which adds it"
        ));
        return Ok(());
    }
    if !includes(&conf, NFT_FILE) {
        let (with, newline_added) = with_line_appended(&conf, NFT_INCLUDE);
        rewrite(host, NFT_CONF, &with)?;
        made.push(Change::LineAdded {
            path: NFT_CONF.into(),
            line: NFT_INCLUDE.into(),
            newline_added,
        });
    }
    if !added.is_empty() {
        host.report.push(format!(
            "firewall (nftables): the rules are kept in {NFT_FILE}, which {NFT_CONF} includes, so \
             they are loaded again at boot"
        ));
    }
    let defines_filter = conf.lines().any(|line| {
        line.split_whitespace().take(3).collect::<Vec<_>>() == ["table", "inet", "filter"]
    });
    if !defines_filter {
        host.report.push(format!(
            "firewall (nftables): {NFT_CONF} does not itself define `table inet filter`: unless a \
             file it includes before our line does, the rules come back at boot in a chain that \
             no packet passes"
        ));
    }
    if !services::is_enabled(host, "nftables.service") {
        host.report.push(format!(
            "firewall (nftables): nftables.service is not enabled, so nothing loads {NFT_CONF} at \
             boot (`systemctl enable nftables` does, once that file holds the rules you want)"
        ));
    }
    Ok(())
}

/// Keeps our iptables rules across reboots in netfilter-persistent's files, when it keeps any.
fn persist_iptables(
    host: &mut Host,
    ports: &[Port],
    made: &mut Vec<Change>,
) -> std::io::Result<()> {
    if !host.exists(RULES_V4) && !host.exists(RULES_V6) {
        let how = if host.exists(NETFILTER_PERSISTENT) {
            "`netfilter-persistent save` keeps the running rules, these included"
        } else {
            "`apt install iptables-persistent` keeps the running rules, these included, and \
             restores them at boot"
        };
        host.report.push(format!(
            "firewall (iptables): these rules last until the next boot, as nothing here restores \
             iptables rules at boot (no {RULES_V4}); {how}"
        ));
        return Ok(());
    }
    for (path, program) in [(RULES_V4, "iptables"), (RULES_V6, "ip6tables")] {
        let Some(mut text) = read_text(host, path) else {
            host.report.push(format!(
                "firewall (iptables): there is no {path}, so the {program} rules last until the \
                 next boot (`netfilter-persistent save` keeps them)"
            ));
            continue;
        };
        if !may_rewrite(host, path) {
            continue;
        }
        let mut added = Vec::new();
        for port in ports {
            let line = iptables_saved(*port);
            if text.lines().any(|l| l.trim() == line) {
                continue;
            }
            match with_rule_in_filter(&text, &line) {
                Some(with) => {
                    text = with;
                    added.push(line);
                }
                None => host.report.push(format!(
                    "firewall (iptables): {path} has no filter table, so the {program} rule for \
                     {port} lasts until the next boot"
                )),
            }
        }
        if added.is_empty() {
            continue;
        }
        rewrite(host, path, &text)?;
        for line in added {
            made.push(Change::LineAdded { path: path.into(), line, newline_added: false });
        }
        host.report.push(format!(
            "firewall (iptables): the {program} rules are kept in {path}, which \
             netfilter-persistent restores at boot"
        ));
    }
    Ok(())
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

/// Undoes a [`Change::LineAdded`]: the file without that line, otherwise as it is now.
pub fn remove_line(
    host: &mut Host,
    path: &str,
    line: &str,
    newline_added: bool,
) -> std::io::Result<()> {
    let Some(text) = read_text(host, path) else {
        host.report.push(format!("{path} is gone: no line to take out of it"));
        return Ok(());
    };
    match without_line(&text, line, newline_added) {
        Some(without) => rewrite(host, path, &without),
        None => {
            host.report.push(format!("{path} no longer holds the line `{line}`"));
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

    #[test]
    fn a_line_appended_then_removed_gives_the_text_back_byte_for_byte() {
        for text in ["", "flush ruleset\n", "flush ruleset", "a\n\n", "a\nb"] {
            let (with, newline_added) = with_line_appended(text, NFT_INCLUDE);
            assert!(with.ends_with(&format!("\n{NFT_INCLUDE}\n")) || text.is_empty(), "{with:?}");
            let without = without_line(&with, NFT_INCLUDE, newline_added);
            assert_eq!(without.as_deref(), Some(text), "{text:?}");
        }
        // Lines the admin adds afterwards stay.
        let (with, newline_added) = with_line_appended("a", NFT_INCLUDE);
        let with = with + "b\n";
        assert_eq!(without_line(&with, NFT_INCLUDE, newline_added).as_deref(), Some("a\nb\n"));
        assert_eq!(without_line("a\nb\n", NFT_INCLUDE, false), None);
    }

    const RULES_V4_TEXT: &str = "\
# Generated by iptables-save v1.8.9 on Mon Jan  1 00:00:00 2024
*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -p tcp --dport 80 -j REDIRECT --to-ports 8080
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -j DROP
COMMIT
";

    #[test]
    fn a_rule_goes_first_in_the_filter_table_of_a_saved_ruleset_and_comes_out_exactly() {
        let rule = iptables_saved(UDP_123);
        let with = with_rule_in_filter(RULES_V4_TEXT, &rule).unwrap();
        let lines: Vec<&str> = with.lines().collect();
        let at = lines.iter().position(|l| *l == rule).unwrap();
        assert_eq!(lines[at - 1], ":OUTPUT ACCEPT [0:0]");
        assert_eq!(lines[at + 1], "-A INPUT -i lo -j ACCEPT");
        assert_eq!(without_line(&with, &rule, false).as_deref(), Some(RULES_V4_TEXT));
        // A filter table with no rule: before its COMMIT.
        let empty = "*filter\n:INPUT DROP [0:0]\nCOMMIT\n";
        assert_eq!(
            with_rule_in_filter(empty, "-A X").as_deref(),
            Some("*filter\n:INPUT DROP [0:0]\n-A X\nCOMMIT\n")
        );
        assert_eq!(with_rule_in_filter("*nat\nCOMMIT\n", "-A X"), None);
    }

    #[test]
    fn an_include_by_name_or_pattern_is_recognised() {
        assert!(includes(&format!("flush ruleset\n{NFT_INCLUDE}\n"), NFT_FILE));
        assert!(includes("  include \"/etc/nftables.d/*.nft\"\n", NFT_FILE));
        assert!(includes("include \"/etc/nftables.d/syhub-ntp.nft\"", NFT_FILE));
        assert!(!includes("include \"/etc/nftables.d/*.conf\"\n", NFT_FILE));
        assert!(!includes("include \"/etc/*.nft\"\n", NFT_FILE), "* stops at a /");
        assert!(!includes("# include \"/etc/nftables.d/*.nft\"\n", NFT_FILE));
    }
}
