//! Opening UDP 123 in the firewall that is in use: ufw when it is active, else an nftables
//! `inet filter input` chain (Debian's default), else iptables and ip6tables. Each rule carries
//! the comment `syhub-ntp`, so it is found again to be removed.

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

/// Whether UDP 123 is open already by our rule.
pub fn is_open(host: &Host, backend: Backend) -> bool {
    match backend {
        Backend::Ufw => host
            .query("ufw", &["status"])
            .is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains("123/udp")),
        Backend::Nftables => nft_handle(host).is_some(),
        Backend::Iptables => {
            let mut check = vec!["-C"];
            check.extend_from_slice(&IPTABLES_RULE);
            check.push("ACCEPT");
            succeeds(host, "iptables", &check)
        }
    }
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
