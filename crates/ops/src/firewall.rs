//! Opening UDP 123 in the firewall that is in use: ufw when it is active, else an nftables
//! `inet filter input` chain (Debian's default), else iptables and ip6tables. Each rule carries
//! the comment `syhub-ntp`, so it is found again to be removed. An accept of UDP 123 that is the
//! admin's own counts as open: nothing is added beside it.

use crate::host::Host;
use crate::manifest::Change;

const COMMENT: &str = "syhub-ntp";
const IPTABLES_RULE: [&str; 10] =
    ["INPUT", "-p", "udp", "--dport", "123", "-m", "comment", "--comment", COMMENT, "-j"];

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
/// accepts everything is no firewall: UDP 123 passes already.
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

/// Whether UDP 123 is accepted already: by our rule, or by any rule of the admin's that
/// accepts UDP to port 123 (a list or range holding it, or the `ntp` service name). The rules'
/// order is not judged: an accept placed after a rule that drops everything is still counted.
pub fn is_open(host: &Host, backend: Backend) -> bool {
    match backend {
        Backend::Ufw => host
            .query("ufw", &["status"])
            .is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains("123/udp")),
        Backend::Nftables => {
            nft_handle(host).is_some()
                || listing(host, "nft", &["list", "chain", "inet", "filter", "input"])
                    .is_some_and(|l| l.lines().any(accepts_udp_123))
        }
        Backend::Iptables => {
            let mut check = vec!["-C"];
            check.extend_from_slice(&IPTABLES_RULE);
            check.push("ACCEPT");
            succeeds(host, "iptables", &check)
                || listing(host, "iptables", &["-S", "INPUT"])
                    .is_some_and(|l| l.lines().any(accepts_udp_123))
        }
    }
}

/// Whether one rule, as `nft list` or `iptables -S` prints it, accepts UDP to port 123.
fn accepts_udp_123(rule: &str) -> bool {
    let rule = rule.to_ascii_lowercase();
    let words: Vec<&str> = rule.split_whitespace().collect();
    // nft's verdict and iptables' `-j ACCEPT` alike.
    let accepts = words.iter().any(|w| matches!(*w, "accept" | "accept;"));
    let udp = words.contains(&"udp");
    // The ports follow `dport` (nft), `--dport` or `--dports` (iptables): one, a range, a list.
    let Some(at) = words.iter().position(|w| matches!(*w, "dport" | "--dport" | "--dports")) else {
        return false;
    };
    let after = &words[at + 1..];
    let ports: Vec<&str> = match after.first() {
        Some(&"{") => after[1..].iter().take_while(|w| **w != "}").copied().collect(),
        first => first.copied().into_iter().collect(),
    };
    let holds_123 = ports.iter().flat_map(|p| p.split(',')).filter(|p| !p.is_empty()).any(|p| {
        match p.split_once(['-', ':']) {
            None => p == "123" || p == "ntp",
            Some((low, high)) => match (low.parse::<u16>(), high.parse::<u16>()) {
                (Ok(low), Ok(high)) => (low..=high).contains(&123),
                _ => false,
            },
        }
    });
    accepts && udp && holds_123
}

/// Opens UDP 123; returns the change to record, or `None` if nothing was needed.
pub fn open(host: &mut Host, backend: Backend) -> std::io::Result<Option<Change>> {
    if is_open(host, backend) {
        host.report.push(format!("firewall ({}): UDP 123 is open already", backend.name()));
        return Ok(None);
    }
    match backend {
        Backend::Ufw => host.run("ufw", &["allow", "123/udp", "comment", COMMENT])?,
        Backend::Nftables => host.run(
            "nft",
            &[
                "insert",
                "rule",
                "inet",
                "filter",
                "input",
                "udp",
                "dport",
                "123",
                "accept",
                "comment",
                &format!("\"{COMMENT}\""),
            ],
        )?,
        Backend::Iptables => {
            for program in ["iptables", "ip6tables"] {
                let mut insert = vec!["-I"];
                insert.extend_from_slice(&IPTABLES_RULE);
                insert.push("ACCEPT");
                // ip6tables may be missing on an IPv4-only system: IPv4 alone is still worth it.
                if let Err(error) = host.run(program, &insert)
                    && program == "iptables"
                {
                    return Err(error);
                }
            }
        }
    }
    Ok(Some(Change::Firewall { backend: backend.name().into(), rule: "udp/123".into() }))
}

/// The handle of our rule in `inet filter input`.
fn nft_handle(host: &Host) -> Option<String> {
    let output = host.query("nft", &["-a", "list", "chain", "inet", "filter", "input"])?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.lines()
        .find(|line| line.contains(&format!("comment \"{COMMENT}\"")))
        .and_then(|line| line.rsplit("# handle ").next())
        .map(|handle| handle.trim().to_owned())
}

/// Removes the rule `open` added with `backend`.
pub fn close(host: &mut Host, backend: &str) -> std::io::Result<()> {
    match backend {
        "ufw" => host.run("ufw", &["delete", "allow", "123/udp"]),
        "nftables" => match nft_handle(host) {
            Some(handle) => {
                host.run("nft", &["delete", "rule", "inet", "filter", "input", "handle", &handle])
            }
            None => {
                host.report.push("firewall (nftables): our rule is gone already".into());
                Ok(())
            }
        },
        _ => {
            for program in ["iptables", "ip6tables"] {
                let mut delete = vec!["-D"];
                delete.extend_from_slice(&IPTABLES_RULE);
                delete.push("ACCEPT");
                let mut check = delete.clone();
                check[0] = "-C";
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
    use super::accepts_udp_123;

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
            assert!(accepts_udp_123(rule), "{rule}");
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
            assert!(!accepts_udp_123(rule), "{rule}");
        }
    }
}
