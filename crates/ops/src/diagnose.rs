//! `syhub-ntp test`: one line per check, PASS, WARN or FAIL, and for each failure what to do.
//! Checks only look: they change nothing.

use crate::firewall;
use crate::host::Host;
use crate::services;
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use syhub_ntp_client::{query, request_status};
use syhub_ntp_config::{Config, SourceMode};
use syhub_ntp_state::keys::KeysError;
use syhub_ntp_status::StatusSnapshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub verdict: Verdict,
    pub detail: String,
    /// What to do about a WARN or FAIL.
    pub fix: Option<String>,
}

fn check(name: &str, verdict: Verdict, detail: impl Into<String>, fix: Option<&str>) -> Check {
    Check { name: name.into(), verdict, detail: detail.into(), fix: fix.map(str::to_owned) }
}

/// Time daemons that would compete with us, by process name.
const OTHER_DAEMONS: [&str; 4] = ["chronyd", "ntpd", "systemd-timesyncd", "openntpd"];
const QUERY_TIMEOUT: Duration = Duration::from_secs(3);
/// What a user other than root is told for a check it cannot make.
const AS_ROOT: &str = "run `sudo syhub-ntp test` to check it";
/// The owner of a port whose process this user cannot see.
const HIDDEN_OWNER: &str = "a program this user cannot see";

/// Runs every check against the config at `config_path` (default location when `None`).
pub fn diagnose(config_path: Option<&Path>) -> Vec<Check> {
    let mut checks = Vec::new();
    let as_root = syhub_ntp_sys::privileges::effective_uid() == 0;
    let mut unread_keys = None;
    let config = match Config::load(config_path).map_err(|e| e.to_string()).and_then(|loaded| {
        match syhub_ntp_state::keys::load(&loaded.config) {
            // Another user may not read the keys: said below, and the rest still checked.
            Err(KeysError::Read { path, source })
                if source.kind() == std::io::ErrorKind::PermissionDenied && !as_root =>
            {
                unread_keys = Some(path);
            }
            Err(error) => return Err(error.to_string()),
            Ok(_) => {}
        }
        Ok(loaded)
    }) {
        Ok(loaded) => {
            checks.push(check("config valid", Verdict::Pass, loaded.source.to_string(), None));
            if let Some(path) = unread_keys {
                checks.push(check(
                    "keys file",
                    Verdict::Warn,
                    format!("not checked: this user cannot read {}", path.display()),
                    Some(AS_ROOT),
                ));
            }
            loaded.config
        }
        Err(error) => {
            checks.push(check(
                "config valid",
                Verdict::Fail,
                error,
                Some("correct the config; `syhub-ntp config check` says where"),
            ));
            return checks;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            checks.push(check("runtime", Verdict::Fail, error.to_string(), None));
            return checks;
        }
    };
    let host = Host::new(Path::new("/"), true);

    if services::systemd_running(&host) {
        let active = services::is_active(&host, "syhub-ntp.service");
        checks.push(if active {
            check("service active", Verdict::Pass, "syhub-ntp.service is active", None)
        } else {
            check(
                "service active",
                Verdict::Fail,
                "syhub-ntp.service is not active",
                Some("systemctl enable --now syhub-ntp (or run `syhub-ntp install`)"),
            )
        });
    }

    let status = runtime.block_on(request_status(&config.control.socket));
    checks.push(match &status {
        Ok(_) => check("daemon running", Verdict::Pass, "answers on its control socket", None),
        Err(error) => check(
            "daemon running",
            Verdict::Fail,
            error.to_string(),
            Some("start it: systemctl start syhub-ntp, or syhub-ntp run"),
        ),
    });

    checks.push(port_check(&config, status.is_ok()));
    if as_root {
        checks.extend(firewall_checks(&host, &config));
    } else {
        checks.push(check(
            "firewall open",
            Verdict::Warn,
            "not checked: reading the firewall's rules needs root",
            Some(AS_ROOT),
        ));
    }
    checks.extend(upstream_checks(&config));
    if let Ok(status) = &status {
        checks.extend(refclock_checks(status));
        checks.push(sync_check(status));
        checks.extend(answer_checks(&config));
    }
    checks.push(drift_check(&config));
    checks.push(leap_file_check(&config));
    checks.push(other_daemons_check());
    checks
}

/// UDP 123: bound by the daemon, or taken by something else (named when it can be found).
fn port_check(config: &Config, daemon_running: bool) -> Check {
    let listens_on_123 = config.server.listen.as_slice().iter().any(|a| a.port() == 123);
    if !listens_on_123 {
        return check(
            "UDP 123 bound",
            Verdict::Warn,
            "the config serves on no port 123",
            Some("add \"0.0.0.0:123\" and \"[::]:123\" to [server] listen"),
        );
    }
    let owners = port_owners(123);
    if owners.is_empty() {
        return check(
            "UDP 123 bound",
            Verdict::Fail,
            "nothing listens on UDP 123",
            Some("start the daemon; if it fails, `journalctl -u syhub-ntp` says why"),
        );
    }
    if owners == [HIDDEN_OWNER] {
        // Another user's process (ours runs as syhub-ntp): never told to stop it.
        let detail = if daemon_running {
            "something holds UDP 123 and the daemon answers, but this user cannot see which \
             program holds the port"
        } else {
            "something holds UDP 123, but this user cannot see which program"
        };
        return check("UDP 123 bound", Verdict::Warn, detail, Some(AS_ROOT));
    }
    let others: Vec<&String> = owners.iter().filter(|o| !o.starts_with("syhub-ntp")).collect();
    if !others.is_empty() && !daemon_running {
        return check(
            "UDP 123 bound",
            Verdict::Fail,
            format!(
                "UDP 123 is taken by {}",
                others.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
            Some(
                "stop and disable that program (syhub-ntp install does so for known time services)",
            ),
        );
    }
    check("UDP 123 bound", Verdict::Pass, format!("by {}", owners.join(", ")), None)
}

/// The programs (name and pid) with a UDP socket on `port` in this network namespace.
pub fn port_owners(port: u16) -> Vec<String> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1).and_then(|a| a.rsplit(':').next());
            if local_port.and_then(|p| u16::from_str_radix(p, 16).ok()) == Some(port)
                && let Some(inode) = fields.get(9)
            {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    let mut owners = Vec::new();
    let Ok(processes) = std::fs::read_dir("/proc") else { return owners };
    for process in processes.flatten() {
        let pid = process.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else { continue };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
        });
        if holds {
            let name = std::fs::read_to_string(process.path().join("comm")).unwrap_or_default();
            let owner = format!("{} (pid {pid})", name.trim());
            if !owners.contains(&owner) {
                owners.push(owner);
            }
        }
    }
    if owners.is_empty() && !inodes.is_empty() {
        owners.push(HIDDEN_OWNER.into());
    }
    owners
}

/// Each port the config serves on beyond loopback is let in by the firewall in use: UDP 123 as
/// "firewall open", any other as "firewall open TCP 4460" and the like. A closed NTP or NTS-KE
/// port fails (clients cannot get there); a closed HTTP port only warns.
fn firewall_checks(host: &Host, config: &Config) -> Vec<Check> {
    let Some(backend) = firewall::detect(host) else {
        return vec![check("firewall open", Verdict::Pass, "no firewall in use", None)];
    };
    let ports = firewall::served_ports(config);
    if ports.is_empty() {
        let detail = format!("{}: the config serves on loopback only", backend.name());
        return vec![check("firewall open", Verdict::Pass, detail, None)];
    }
    ports
        .into_iter()
        .map(|(port, purpose)| {
            let name = if port == firewall::Port::NTP {
                "firewall open".to_owned()
            } else {
                format!("firewall open {port}")
            };
            if firewall::is_open(host, backend, port) {
                return check(
                    &name,
                    Verdict::Pass,
                    format!("{}: {port} allowed", backend.name()),
                    None,
                );
            }
            let verdict =
                if purpose == firewall::Purpose::Http { Verdict::Warn } else { Verdict::Fail };
            let detail = format!(
                "{} is in use and has no rule for {port}, which serves {}",
                backend.name(),
                purpose.describe()
            );
            let fix = format!(
                "syhub-ntp install opens it (or: {})",
                firewall::manual_command(backend, port)
            );
            check(&name, verdict, detail, Some(&fix))
        })
        .collect()
}

/// Each configured upstream answers one query (a pool: its name, whichever server that gives).
fn upstream_checks(config: &Config) -> Vec<Check> {
    let upstreams: Vec<&str> = config
        .sources
        .iter()
        .filter(|s| s.mode != SourceMode::Broadcast && !s.mode.is_refclock())
        .map(|s| s.address.as_str())
        .collect();
    let results: Vec<(String, Result<String, String>)> = upstreams
        .iter()
        .map(|address| {
            let outcome = query(address, QUERY_TIMEOUT);
            let result = outcome
                .map(|o| format!("{} answered, stratum {}", o.server, o.sample.server.stratum))
                .map_err(|e| e.to_string());
            ((*address).to_owned(), result)
        })
        .collect();
    let any_answered = results.iter().any(|(_, r)| r.is_ok());
    results
        .into_iter()
        .map(|(address, result)| {
            let name = format!("upstream {address}");
            match result {
                Ok(detail) => check(&name, Verdict::Pass, detail, None),
                Err(error) => check(
                    &name,
                    if any_answered { Verdict::Warn } else { Verdict::Fail },
                    error,
                    Some("check the hub's internet connection, DNS and outgoing UDP 123"),
                ),
            }
        })
        .collect()
}

/// Each reference clock delivers: reachable in the running daemon's status.
fn refclock_checks(status: &StatusSnapshot) -> Vec<Check> {
    status
        .peers
        .iter()
        .filter(|p| matches!(p.kind.as_str(), "gpsd-shm" | "sock" | "pps"))
        .map(|peer| {
            let name = format!("reference clock {}", peer.name);
            if peer.reach != "0" {
                let offset = peer.offset_seconds.map_or(String::new(), |o| format!(", offset {o:+.6} s"));
                return check(&name, Verdict::Pass, format!("{}{offset}", peer.state), None);
            }
            let fix = match peer.kind.as_str() {
                "gpsd-shm" => "is gpsd running (as root) with the receiver, and does it have a fix? \
                               `gpsd -n /dev/ttyAMA0`; `gpspipe -r` shows its sentences",
                "sock" => "gpsd connects to the socket only when it opens the device: restart gpsd \
                           after syhub-ntp",
                _ => "is the PPS line on the configured pin (dtoverlay=pps-gpio)? `ppstest /dev/pps0` \
                      shows its pulses; the pair must be reachable too",
            };
            let detail = peer.detail.clone().unwrap_or_else(|| "nothing delivered".into());
            check(&name, Verdict::Fail, detail, Some(fix))
        })
        .collect()
}

fn sync_check(status: &StatusSnapshot) -> Check {
    let reason = status.reason.clone().unwrap_or_default();
    if status.synchronised {
        check("synchronised", Verdict::Pass, syhub_ntp_status::status_line(status), None)
    } else if status.status == "local clock" {
        check(
            "synchronised",
            Verdict::Warn,
            format!("serving the local clock at stratum {}: {reason}", status.stratum),
            Some("clients get time, but not traceable time: restore the hub's internet access"),
        )
    } else {
        check(
            "synchronised",
            Verdict::Fail,
            format!("unsynchronised: {reason}"),
            Some("wait a minute after start; if it stays so, see the upstream checks"),
        )
    }
}

/// The hub answers on each of its own addresses the config serves.
fn answer_checks(config: &Config) -> Vec<Check> {
    let listen = config.server.listen.as_slice();
    let addresses = syhub_ntp_sys::interfaces::addresses();
    addresses
        .into_iter()
        .filter(|ip| {
            // Link-local IPv6 needs a scope to be asked; it is covered by the others.
            !matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
        })
        .filter_map(|ip| {
            let served = listen.iter().find(|l| {
                l.is_ipv4() == ip.is_ipv4() && (l.ip().is_unspecified() || l.ip() == ip)
            })?;
            Some(SocketAddr::new(ip, served.port()))
        })
        .map(|target| {
            let name = format!("answers on {target}");
            match query(&target.to_string(), QUERY_TIMEOUT) {
                Ok(outcome) => check(
                    &name,
                    Verdict::Pass,
                    format!("stratum {}", outcome.sample.server.stratum),
                    None,
                ),
                Err(error) => check(
                    &name,
                    Verdict::Fail,
                    error.to_string(),
                    Some("check [server] listen and allow, and the firewall"),
                ),
            }
        })
        .collect()
}

fn drift_check(config: &Config) -> Check {
    let Some(path) = &config.clock.drift_file else {
        return check("drift sane", Verdict::Pass, "no drift file configured", None);
    };
    match syhub_ntp_state::drift::read(path) {
        Ok(Some(ppm)) => {
            check("drift sane", Verdict::Pass, format!("{ppm:+.3} ppm in {}", path.display()), None)
        }
        Ok(None) => check(
            "drift sane",
            Verdict::Warn,
            format!("{} not written yet", path.display()),
            Some("it is written once the clock has been synchronised for a while"),
        ),
        Err(error) => check(
            "drift sane",
            Verdict::Fail,
            error.to_string(),
            Some("remove the file; it is written again once synchronised"),
        ),
    }
}

/// The leap-seconds list is valid (else leap seconds come from the sources alone).
fn leap_file_check(config: &Config) -> Check {
    let Some(path) = &config.clock.leap_file else {
        return check("leap seconds list", Verdict::Pass, "none configured", None);
    };
    let now = syhub_ntp_clock::Clock::now(&syhub_ntp_clock::SystemClock);
    match syhub_ntp_state::leap_file::read(path, now) {
        Ok(table) => check(
            "leap seconds list",
            Verdict::Pass,
            format!(
                "{} valid until {}",
                path.display(),
                syhub_ntp_proto::time::utc_date(table.expires())
            ),
            None,
        ),
        Err(error) => check(
            "leap seconds list",
            Verdict::Warn,
            error,
            Some(
                "install a newer tzdata (apt install tzdata); until then the sources' leap \
                  warnings are used",
            ),
        ),
    }
}

/// Other time daemons in this network namespace (where they would take UDP 123 or the clock).
fn other_daemons_check() -> Check {
    let own_namespace = std::fs::read_link("/proc/self/ns/net").ok();
    let mut found = Vec::new();
    if let Ok(processes) = std::fs::read_dir("/proc") {
        for process in processes.flatten() {
            let name = std::fs::read_to_string(process.path().join("comm")).unwrap_or_default();
            let name = name.trim();
            let namespace = std::fs::read_link(process.path().join("ns/net")).ok();
            if OTHER_DAEMONS.contains(&name) && namespace == own_namespace {
                found.push(format!("{name} (pid {})", process.file_name().to_string_lossy()));
            }
        }
    }
    if found.is_empty() {
        check("no other time daemon", Verdict::Pass, "none running", None)
    } else {
        check(
            "no other time daemon",
            Verdict::Fail,
            format!("running: {}", found.join(", ")),
            Some(
                "systemctl disable --now chrony ntp ntpsec systemd-timesyncd (syhub-ntp install does this)",
            ),
        )
    }
}
