//! `install` and `uninstall`: each step checks first and changes only what is missing, records what
//! it changed in the manifest, and a failure undoes this run's changes before it is reported, so
//! the system is never left half done. `uninstall` undoes the manifest in reverse.

use crate::firewall;
use crate::host::Host;
use crate::manifest::{Change, MANIFEST_PATH, Manifest};
use crate::ntp_conf;
use crate::services;
use crate::units;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use syhub_ntp_config::{Config, DEFAULT_CONFIG_PATH};

pub const BINARY_PATH: &str = "/usr/bin/syhub-ntp";
pub const CONFIG_DIR: &str = "/etc/syhub-ntp";
pub const STATE_DIR: &str = "/var/lib/syhub-ntp";
pub const KEYS_PATH: &str = "/etc/syhub-ntp/ntp.keys";
pub const DRIFT_PATH: &str = "/var/lib/syhub-ntp/drift";
/// Where an existing ntpd or NTPsec keeps its config.
const NTP_CONFS: [&str; 2] = ["/etc/ntp.conf", "/etc/ntpsec/ntp.conf"];

#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Leave other time services running.
    pub keep_others: bool,
    /// Open the ports the config serves on in the firewall in use (UDP 123, and NTS-KE's and
    /// HTTP's TCP ports when configured), now and after a reboot.
    pub firewall: bool,
    /// The binary to install when none is at /usr/bin/syhub-ntp (this one).
    pub binary: PathBuf,
    /// Network prefixes of the hub's interfaces (for the config's comments and broadcast hint).
    pub local_networks: Vec<String>,
    /// Run by the Debian package's first configure: dpkg owns the binary and units and
    /// deb-systemd-helper enables them, the package's Conflicts replace other time daemons, the
    /// account is kept on removal, and the firewall is left alone in a chroot.
    pub from_package: bool,
    /// The hub's addresses with the interface of each, loopback included: what ntp.conf's
    /// `interface` lines are turned into `[server] listen` from.
    pub interface_addresses: Vec<(String, IpAddr)>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("{step}: {source}")]
    Step { step: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
}

fn step(name: &str) -> impl FnOnce(std::io::Error) -> OpsError + '_ {
    move |source| OpsError::Step { step: name.to_owned(), source }
}

/// Installs, recording into the manifest at `MANIFEST_PATH`. On failure, this run's changes are
/// undone and the error returned.
pub fn install(host: &mut Host, options: &InstallOptions) -> Result<Manifest, OpsError> {
    let mut manifest = match host.read(MANIFEST_PATH) {
        Ok(bytes) => Manifest::parse(&bytes).map_err(OpsError::Invalid)?,
        Err(_) => Manifest::new(),
    };
    let adopted = options.from_package && adopt_source_install(host, &mut manifest);
    let mut made = Vec::new();
    match install_steps(host, options, &mut made) {
        Ok(()) => {
            if made.is_empty() && !adopted {
                host.report.push("installed already: nothing to change".into());
                return Ok(manifest);
            }
            for change in made {
                manifest.record(change);
            }
            host.write(MANIFEST_PATH, &manifest.to_bytes(), 0o640)
                .map_err(step("writing the install manifest"))?;
            Ok(manifest)
        }
        Err(error) => {
            host.report.push(format!("failed: {error}; undoing this run's changes"));
            undo(host, &made, true);
            Err(error)
        }
    }
}

/// Writes a new file, creating (and recording) the directories it needs on the way; `what` names
/// the step in an error.
fn write_new(
    host: &mut Host,
    path: &str,
    contents: &[u8],
    mode: u32,
    data: bool,
    made: &mut Vec<Change>,
    what: &str,
) -> Result<(), OpsError> {
    create_parents(host, path, made, what)?;
    host.write(path, contents, mode).map_err(step(what))?;
    made.push(Change::File { path: path.into(), data });
    Ok(())
}

/// Creates the ancestors of `path` that do not exist yet, outermost first, each recorded so that
/// uninstall removes it again.
fn create_parents(
    host: &mut Host,
    path: &str,
    made: &mut Vec<Change>,
    what: &str,
) -> Result<(), OpsError> {
    let mut missing: Vec<String> = std::path::Path::new(path)
        .ancestors()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .filter(|a| a != "/" && !a.is_empty())
        .take_while(|a| !host.exists(a))
        .collect();
    missing.reverse();
    for dir in missing {
        host.create_dir(&dir, 0o755).map_err(step(what))?;
        made.push(Change::Directory { path: dir });
    }
    Ok(())
}

fn install_steps(
    host: &mut Host,
    options: &InstallOptions,
    made: &mut Vec<Change>,
) -> Result<(), OpsError> {
    // The binary, unless one is there (from the Debian package, or an earlier install).
    if !options.from_package && !host.exists(BINARY_PATH) {
        let binary = std::fs::read(&options.binary).map_err(step("reading this binary"))?;
        write_new(host, BINARY_PATH, &binary, 0o755, false, made, "installing the binary")?;
    }

    // The account, through systemd-sysusers (the Debian package ships its entry under /usr/lib).
    let packaged_sysusers = host.exists(units::PACKAGED_SYSUSERS_PATH);
    let sysusers_path =
        if packaged_sysusers { units::PACKAGED_SYSUSERS_PATH } else { units::SYSUSERS_PATH };
    if !host.exists(sysusers_path) {
        let entry = units::SYSUSERS.as_bytes();
        write_new(
            host,
            units::SYSUSERS_PATH,
            entry,
            0o644,
            false,
            made,
            "writing the sysusers entry",
        )?;
    }
    if host.id_of("/etc/passwd", units::ACCOUNT).is_none() {
        let entry = host.path(sysusers_path).to_string_lossy().into_owned();
        host.run_rooted("systemd-sysusers", &[&entry])
            .map_err(step("creating the syhub-ntp account"))?;
        // An account the package made stays after removal, as Debian's system accounts do.
        if !options.from_package {
            made.push(Change::Account { name: units::ACCOUNT.into() });
        }
    }

    for (dir, mode) in [(CONFIG_DIR, 0o755), (STATE_DIR, 0o750)] {
        if !host.exists(dir) {
            create_parents(host, dir, made, "creating directories")?;
            host.create_dir(dir, mode).map_err(step("creating directories"))?;
            made.push(Change::Directory { path: dir.into() });
        }
    }
    if made.contains(&Change::Directory { path: STATE_DIR.into() }) {
        host.chown(STATE_DIR, units::ACCOUNT).map_err(step("giving the state directory away"))?;
    }

    write_config(host, options, made)?;
    write_refclock_drop_in(host, made)?;

    for (name, text) in
        [(units::SERVICE_NAME, units::SERVICE), (units::WAIT_SYNC_NAME, units::WAIT_SYNC_SERVICE)]
    {
        let path = format!("{}/{name}", units::UNIT_DIR);
        let packaged =
            units::PACKAGED_UNIT_DIRS.iter().any(|dir| host.exists(&format!("{dir}/{name}")));
        if !packaged && !host.exists(&path) {
            write_new(
                host,
                &path,
                text.as_bytes(),
                0o644,
                false,
                made,
                "writing the systemd unit",
            )?;
        }
    }

    if options.from_package {
        host.report.push(
            "other time daemons are replaced through the package's Conflicts: time-daemon".into(),
        );
    } else if options.keep_others {
        host.report.push("left other time services alone (--keep-others)".into());
    } else {
        for unit in services::CONFLICTING {
            if services::is_enabled(host, unit) || services::is_active(host, unit) {
                let change =
                    services::disable(host, unit).map_err(step(&format!("disabling {unit}")))?;
                made.push(change);
            }
        }
    }

    let chroot = options.from_package && host.in_chroot() != Some(false);
    if options.firewall && chroot {
        host.report.push(
            "the firewall is left alone: this looks like a chroot (an image being built), whose \
             firewall is the build host's; on the running hub, `sudo syhub-ntp install` opens UDP 123"
                .into(),
        );
    } else if options.firewall {
        firewall::open_ports(host, made, !options.from_package)
            .map_err(step("opening the firewall"))?;
    }

    if options.from_package {
        // deb-systemd-helper enables the units once, then keeps the admin's choice.
        return Ok(());
    }
    for unit in [units::SERVICE_NAME, units::WAIT_SYNC_NAME] {
        if !services::is_enabled(host, unit) {
            let change = services::enable(host, unit).map_err(step(&format!("enabling {unit}")))?;
            made.push(change);
        }
    }
    if !services::systemd_running(host) {
        host.report.push("systemd is not running here: the service starts at the next boot".into());
    }
    Ok(())
}

/// With a reference clock in the config, the unit's drop-in that lets the daemon open it as root.
fn write_refclock_drop_in(host: &mut Host, made: &mut Vec<Change>) -> Result<(), OpsError> {
    let text = host.read(DEFAULT_CONFIG_PATH).ok().and_then(|b| String::from_utf8(b).ok());
    let config = text.and_then(|t| Config::parse(&t, DEFAULT_CONFIG_PATH).ok());
    let refclocks = config.is_some_and(|c| c.sources.iter().any(|s| s.mode.is_refclock()));
    if !refclocks || host.exists(units::REFCLOCK_DROP_IN_PATH) {
        return Ok(());
    }
    host.report.push(format!(
        "a reference clock is configured: {} starts the daemon as root to open it",
        units::REFCLOCK_DROP_IN_PATH
    ));
    write_new(
        host,
        units::REFCLOCK_DROP_IN_PATH,
        units::REFCLOCK_DROP_IN.as_bytes(),
        0o644,
        false,
        made,
        "writing the reference-clock drop-in",
    )
}

/// Writes the config, unless one exists: the embedded default's choices, the hub's subnets in
/// comments and a broadcast suggestion, and whatever an existing ntp.conf says,
/// with what it imports differently or not at all listed at the top. Checked by the daemon's own
/// parser before it is written.
fn write_config(
    host: &mut Host,
    options: &InstallOptions,
    made: &mut Vec<Change>,
) -> Result<(), OpsError> {
    if host.exists(DEFAULT_CONFIG_PATH) {
        host.report.push(format!("kept the existing {DEFAULT_CONFIG_PATH}"));
        return Ok(());
    }
    let imported = NTP_CONFS.iter().find_map(|path| {
        let text = String::from_utf8(host.read(path).ok()?).ok()?;
        Some((*path, ntp_conf::parse(&text)))
    });
    // What ntp.conf says that is imported with a difference, and what is not imported at all:
    // both reported and written at the top of the config.
    let (mut differences, mut not_imported) = (Vec::new(), Vec::new());
    let mut listen = None;
    let mut text = String::new();
    let mut keys_file = None;
    if let Some((path, conf)) = &imported {
        not_imported.extend(conf.skipped.iter().cloned());
        differences.extend(conf.changed.iter().cloned());
        if let Some(local) = &conf.local_clock {
            differences.extend(local.differences());
        }
        if let Some(leap) = &conf.leap_file {
            differences.extend(leap_file_difference(host, leap));
        }
        match ntp_conf::import_interfaces(&conf.interface_rules, &options.interface_addresses) {
            ntp_conf::ListenImport::Everywhere => {}
            ntp_conf::ListenImport::Addresses { listen: addresses, notes } => {
                listen = Some(addresses);
                differences.extend(notes);
            }
            ntp_conf::ListenImport::Refused(reason) => not_imported.push(reason),
        }
        host.report.push(format!("imported {path}"));
        for skipped in &not_imported {
            host.report.push(format!("  not imported: {skipped}"));
        }
        for difference in &differences {
            host.report.push(format!("  imported differently: {difference}"));
        }
        text.push_str(&format!("# Sources imported from {path}.\n"));
        if conf.sources.is_empty() {
            text.push_str("source = []\n");
        }
        for source in &conf.sources {
            text.push_str(source);
            text.push('\n');
        }
        if let Some(keys) = &conf.keys_file
            && let Ok(bytes) = host.read(keys)
        {
            // The service account must read the keys: a copy of its own, group-readable.
            write_new(host, KEYS_PATH, &bytes, 0o640, true, made, "copying the keys file")?;
            host.chown(KEYS_PATH, units::ACCOUNT).map_err(step("giving the keys file away"))?;
            keys_file = Some(KEYS_PATH);
        }
        if let Some(drift) = &conf.drift_file {
            import_drift(host, drift, made)?;
        }
    }
    let (allow, deny) = imported
        .as_ref()
        .map(|(_, conf)| (conf.allow.clone(), conf.deny.clone()))
        .unwrap_or_default();
    text.push_str("[server]\n");
    text.push_str(&format!(
        "# This hub's subnets when installed: {}. \"local\" follows them as they change.\n",
        if options.local_networks.is_empty() {
            "none found".into()
        } else {
            options.local_networks.join(", ")
        }
    ));
    let quoted =
        |list: &[String]| list.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", ");
    if let Some(addresses) = listen {
        let addresses: Vec<String> = addresses.iter().map(ToString::to_string).collect();
        text.push_str(
            "# From ntp.conf's interface lines, as the hub's addresses were when installed (see the\n\
             # top of this file): edit it when they change.\n",
        );
        text.push_str(&format!("listen = [{}]\n", quoted(&addresses)));
    }
    let mut allowed: Vec<String> =
        syhub_ntp_config::DEFAULT_ALLOW.iter().map(|s| (*s).to_owned()).collect();
    for prefix in allow {
        if !allowed.contains(&prefix) {
            allowed.push(prefix);
        }
    }
    text.push_str(&format!("allow = [{}]\ndeny = [{}]\n\n", quoted(&allowed), quoted(&deny)));
    match imported.as_ref().map(|(_, c)| &c.broadcasts).filter(|b| !b.is_empty()) {
        Some(broadcasts) => {
            for broadcast in broadcasts {
                text.push_str(broadcast);
                text.push('\n');
            }
        }
        None => {
            let hints: Vec<String> =
                options.local_networks.iter().filter_map(|p| broadcast_address(p)).collect();
            if let Some(first) = hints.first() {
                text.push_str(&format!(
                    "# To announce the time on the LAN by broadcast ({}):\n# [[broadcast]]\n# address = \"{first}\"\n# key = 1\n\n",
                    hints.join(", ")
                ));
            }
        }
    }
    if let Some(keys) = keys_file {
        let trusted = imported.as_ref().map(|(_, c)| c.trusted_keys.clone()).unwrap_or_default();
        let ids = trusted.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        text.push_str(&format!("[auth]\nkeys_file = \"{keys}\"\ntrusted_keys = [{ids}]\n\n"));
    }
    text.push_str(&format!("[clock]\ndrift_file = \"{DRIFT_PATH}\"\n"));
    let conf = imported.as_ref().map(|(_, conf)| conf);
    if let Some(leap) = conf.and_then(|c| c.leap_file.as_deref()) {
        text.push_str(&format!("leap_file = {}\n", ntp_conf::toml_string(leap)));
    }
    if let Some(local) = conf.and_then(|c| c.local_clock.as_ref()) {
        text.push_str("\n# From ntp.conf's local clock (see the top of this file).\n");
        text.push_str(&local.table());
    }
    let mut header = String::from(
        "# syhub-ntp configuration, written by `syhub-ntp install`. A key left out takes its\n\
         # default: `syhub-ntp config default` prints them all, each explained.\n\n",
    );
    if let Some((path, _)) = &imported {
        for (title, lines) in [
            ("Imported from {path} with a difference:", &differences),
            ("Not imported from {path}:", &not_imported),
        ] {
            if lines.is_empty() {
                continue;
            }
            header.push_str(&format!("# {}\n", title.replace("{path}", path)));
            for line in lines {
                header.push_str(&comment(&format!("- {line}")));
            }
            header.push('\n');
        }
    }
    let text = header + &text;
    Config::parse(&text, "the generated config")
        .map_err(|e| OpsError::Invalid(format!("the config to install does not validate: {e}")))?;
    write_new(host, DEFAULT_CONFIG_PATH, text.as_bytes(), 0o644, true, made, "writing the config")?;
    Ok(())
}

/// What differs about ntp.conf's `leapfile`, which `[clock] leap_file` names as it is: nothing,
/// unless the file is missing or the service account may not read it.
fn leap_file_difference(host: &Host, path: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let whose =
        if host.is_live() { String::new() } else { format!(" under {}", host.root().display()) };
    match std::fs::metadata(host.path(path)) {
        Err(_) => Some(format!(
            "leapfile {path}: [clock] leap_file names it, but there is no such file{whose}; until \
             there is, syhub-ntp says so in its status and log and takes leap seconds from its \
             sources' warnings alone"
        )),
        Ok(meta) if meta.permissions().mode() & 0o004 == 0 => Some(format!(
            "leapfile {path}: [clock] leap_file names it, but it is not readable by everyone{whose}, \
             and syhub-ntp reads it as the {} account",
            units::ACCOUNT
        )),
        Ok(_) => None,
    }
}

/// `text` as TOML comment lines of at most 100 columns, continuation lines indented.
fn comment(text: &str) -> String {
    let mut lines = String::new();
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 100 && line.len() > 4 {
            lines.push_str(&line);
            lines.push('\n');
            line = String::from("#  ");
        }
        line.push(' ');
        line.push_str(word);
    }
    lines.push_str(&line);
    lines.push('\n');
    lines
}

/// The IPv4 broadcast address of a prefix such as `192.168.1.20/24`; none for loopback, /31, /32.
fn broadcast_address(prefix: &str) -> Option<String> {
    let (address, length) = prefix.split_once('/')?;
    let address: std::net::Ipv4Addr = address.parse().ok()?;
    let length: u32 = length.parse().ok()?;
    if address.is_loopback() || address.is_link_local() || length >= 31 {
        return None;
    }
    let host_bits = u32::MAX >> length;
    Some(std::net::Ipv4Addr::from(u32::from(address) | host_bits).to_string())
}

/// Copies ntpd's drift value, when it reads as one, into our drift file.
fn import_drift(host: &mut Host, path: &str, made: &mut Vec<Change>) -> Result<(), OpsError> {
    if host.exists(DRIFT_PATH) {
        return Ok(());
    }
    let Ok(Some(ppm)) = syhub_ntp_state::drift::read(&host.path(path)) else {
        host.report.push(format!("  not imported: {path} (no drift value in it)"));
        return Ok(());
    };
    let value = format!("{ppm:.3}\n");
    write_new(host, DRIFT_PATH, value.as_bytes(), 0o644, true, made, "importing the drift file")?;
    host.chown(DRIFT_PATH, units::ACCOUNT).map_err(step("giving the drift file away"))?;
    Ok(())
}

/// When the Debian package arrives after an install from source: the binary the source install
/// copied is now dpkg's, and the units and sysusers entry it wrote under /etc would shadow the
/// package's. Those copies (only those the manifest records as ours) are removed with their
/// `.wants` links, so the packaged units apply and deb-systemd-helper enables them. Returns
/// whether the manifest changed.
fn adopt_source_install(host: &mut Host, manifest: &mut Manifest) -> bool {
    let shadowing: Vec<String> = [units::SERVICE_NAME, units::WAIT_SYNC_NAME]
        .iter()
        .map(|name| format!("{}/{name}", units::UNIT_DIR))
        .chain([units::SYSUSERS_PATH.to_owned()])
        .collect();
    let before = manifest.changes.len();
    let mut kept = Vec::new();
    for change in std::mem::take(&mut manifest.changes) {
        match &change {
            Change::File { path, .. } if path == BINARY_PATH => host.report.push(format!(
                "{BINARY_PATH} from the source install is now the package's: uninstall leaves it to dpkg"
            )),
            Change::File { path, .. } if shadowing.contains(path) => {
                host.report.push(format!(
                    "{path} from the source install would shadow the package's own: removing it"
                ));
                remove_wants_links(host, path);
                if let Err(error) = host.remove_file(path) {
                    host.report.push(format!("could not remove {path}: {error}"));
                    kept.push(change);
                }
            }
            // The source install's enabling pointed at the copies just removed; the package
            // enables its own units.
            Change::Enabled { .. } => {}
            _ => kept.push(change),
        }
    }
    manifest.changes = kept;
    for name in [units::SERVICE_NAME, units::WAIT_SYNC_NAME] {
        let path = format!("{}/{name}", units::UNIT_DIR);
        if host.exists(&path) {
            host.report.push(format!(
                "{path} is not from syhub-ntp install: it overrides the package's unit (left alone)"
            ));
        }
    }
    if host.exists("/usr/local/bin/syhub-ntp") {
        host.report.push(
            "/usr/local/bin/syhub-ntp comes first on PATH and hides the package's /usr/bin/syhub-ntp: \
             remove it if it is an old build"
                .into(),
        );
    }
    manifest.changes.len() != before
}

/// Removes the `*.wants`/`*.requires` links under /etc/systemd/system that point at `unit_path`.
fn remove_wants_links(host: &mut Host, unit_path: &str) {
    let Ok(dirs) = std::fs::read_dir(host.path(units::UNIT_DIR)) else { return };
    let links: Vec<String> = dirs
        .flatten()
        .filter(|d| d.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|dir| std::fs::read_dir(dir.path()).ok())
        .flatten()
        .flatten()
        .filter(|link| {
            std::fs::read_link(link.path()).is_ok_and(|target| target == Path::new(unit_path))
        })
        .filter_map(|link| {
            let relative = link.path().strip_prefix(host.root()).ok()?.to_owned();
            Some(format!("/{}", relative.to_string_lossy()))
        })
        .collect();
    for link in links {
        if let Err(error) = host.remove_file(&link) {
            host.report.push(format!("could not remove {link}: {error}"));
        }
    }
}

/// Undoes `changes` in reverse. With `purge`, the user's data goes too. Failures are reported and
/// the rest still undone.
pub fn undo(host: &mut Host, changes: &[Change], purge: bool) {
    for change in changes.iter().rev() {
        let result = match change {
            Change::Enabled { unit, started } => services::undo_enable(host, unit, *started),
            Change::Disabled { unit, was_active } => {
                services::undo_disable(host, unit, *was_active)
            }
            Change::Firewall { backend, rule } => firewall::close(host, backend, rule),
            Change::LineAdded { path, line, newline_added } => {
                firewall::remove_line(host, path, line, *newline_added)
            }
            Change::File { path, data } if *data && !purge => {
                host.report.push(format!("kept {path} (--purge removes it)"));
                Ok(())
            }
            Change::File { path, .. } if let Some(package) = host.package_owning(path) => {
                host.report.push(format!("kept {path}: the Debian package {package} owns it"));
                Ok(())
            }
            Change::File { path, .. } => host.remove_file(path),
            Change::Directory { path } => host.remove_dir_if_empty(path),
            Change::Account { name } => remove_account(host, name),
        };
        if let Err(error) = result {
            host.report.push(format!("could not undo {change:?}: {error}"));
        }
    }
}

fn remove_account(host: &mut Host, name: &str) -> std::io::Result<()> {
    host.run_rooted("userdel", &[name])?;
    if host.id_of("/etc/group", name).is_some() {
        host.run_rooted("groupdel", &[name])?;
    }
    Ok(())
}

/// Uninstalls what the manifest records, then the manifest itself.
pub fn uninstall(host: &mut Host, purge: bool) -> Result<(), OpsError> {
    let bytes = host.read(MANIFEST_PATH).map_err(|_| {
        OpsError::Invalid(format!(
            "nothing to uninstall: no install manifest at {MANIFEST_PATH} (was `syhub-ntp install` run here?)"
        ))
    })?;
    let manifest = Manifest::parse(&bytes).map_err(OpsError::Invalid)?;
    // The manifest lives in the state directory: remove it before the directory and the
    // directories above it that install created.
    let holds_manifest = |path: &str| MANIFEST_PATH.starts_with(&format!("{path}/"));
    let (state_dir, rest): (Vec<Change>, Vec<Change>) = manifest
        .changes
        .iter()
        .cloned()
        .partition(|c| matches!(c, Change::Directory { path } if holds_manifest(path)));
    undo(host, &rest, purge);
    host.remove_file(MANIFEST_PATH).map_err(step("removing the manifest"))?;
    undo(host, &state_dir, purge);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch root with an ntp.conf, removed on drop.
    struct ScratchRoot(PathBuf);

    impl ScratchRoot {
        fn with_ntp_conf(label: &str, ntp_conf: &str) -> Self {
            let root =
                std::env::temp_dir().join(format!("syhub-ops-{label}-{}", std::process::id()));
            std::fs::create_dir_all(root.join("etc")).unwrap();
            std::fs::write(root.join("etc/ntp.conf"), ntp_conf).unwrap();
            Self(root)
        }
    }

    impl Drop for ScratchRoot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn options(interfaces: &[(&str, &str)]) -> InstallOptions {
        InstallOptions {
            keep_others: true,
            firewall: false,
            binary: PathBuf::from("/nonexistent"),
            local_networks: vec!["192.168.1.0/24".into()],
            interface_addresses: interfaces
                .iter()
                .map(|(name, address)| ((*name).to_owned(), address.parse().unwrap()))
                .collect(),
            from_package: false,
        }
    }

    /// Runs write_config under `root`: the config written, and the report.
    fn write_config_under(root: &ScratchRoot, options: &InstallOptions) -> (String, Vec<String>) {
        let mut host = Host::new(&root.0, false);
        let mut made = Vec::new();
        write_config(&mut host, options, &mut made)
            .unwrap_or_else(|e| panic!("{e}: {:?}", host.report));
        let text = std::fs::read_to_string(host.path(DEFAULT_CONFIG_PATH)).unwrap();
        (text, host.report)
    }

    #[test]
    fn an_imported_ntp_conf_says_what_differs_in_the_report_and_the_config() {
        let root = ScratchRoot::with_ntp_conf(
            "differs",
            "server 192.168.1.1 iburst prefer\nserver time.google.com iburst\n\
             pool 2.debian.pool.ntp.org iburst\nleapfile /usr/share/zoneinfo/leap-seconds.list\n\
             server 127.127.1.0\nfudge 127.127.1.0 stratum 10\n\
             interface listen eth0\ninterface ignore wlan0\n",
        );
        let interfaces = [
            ("lo", "127.0.0.1"),
            ("lo", "::1"),
            ("eth0", "192.168.1.2"),
            ("eth0", "fe80::2"),
            ("wlan0", "192.168.50.2"),
        ];
        let (text, report) = write_config_under(&root, &options(&interfaces));
        let config = Config::parse(&text, "written").unwrap();
        let roles: Vec<(&str, bool, bool)> =
            config.sources.iter().map(|s| (s.address.as_str(), s.prefer, s.fallback)).collect();
        assert_eq!(
            roles,
            [
                ("192.168.1.1", true, false),
                ("time.google.com", false, true),
                ("2.debian.pool.ntp.org", false, false)
            ]
        );
        let listen: Vec<String> =
            config.server.listen.as_slice().iter().map(ToString::to_string).collect();
        assert_eq!(listen, ["127.0.0.1:123", "[::1]:123", "192.168.1.2:123"]);
        assert_eq!(
            config.clock.leap_file.as_deref(),
            Some(std::path::Path::new("/usr/share/zoneinfo/leap-seconds.list"))
        );
        assert_eq!(
            (config.local.stratum.get(), config.local.mode),
            (11, syhub_ntp_config::LocalMode::Holdover)
        );

        // Each difference is in the report and, wrapped, in the config's header.
        let differences: Vec<&String> =
            report.iter().filter(|l| l.starts_with("  imported differently: ")).collect();
        for expected in [
            "server time.google.com iburst: imported with fallback = true",
            "Google smears leap seconds (over the 24 hours around one)",
            "leapfile /usr/share/zoneinfo/leap-seconds.list: [clock] leap_file names it, but there is no such file under",
            "server 127.127.1.0 with fudge stratum 10: [local] stratum = 11",
            "[local] mode = \"holdover\": ntpd served its undisciplined local clock from start-up",
            "interface listen eth0; interface ignore wlan0: syhub-ntp listens on addresses",
            "loopback (127.0.0.1, ::1) is always served",
            "left out link-local eth0 (fe80::2)",
        ] {
            assert!(
                differences.iter().any(|l| l.contains(expected)),
                "{expected:?} not reported: {report:#?}"
            );
        }
        let header: String = text
            .lines()
            .take_while(|l| l.starts_with('#') || l.is_empty())
            .map(|l| l.trim_start_matches('#').trim())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(header.contains("Imported from /etc/ntp.conf with a difference:"), "{text}");
        for difference in differences {
            let words: Vec<&str> = difference
                .trim_start_matches("  imported differently: ")
                .split_whitespace()
                .collect();
            assert!(header.contains(&words.join(" ")), "{difference:?} not in the header:\n{text}");
        }
        assert!(text.lines().filter(|l| l.starts_with('#')).all(|l| l.len() <= 100), "{text}");
    }

    #[test]
    fn a_leap_file_that_exists_needs_no_word() {
        let root = ScratchRoot::with_ntp_conf(
            "leap-file",
            "pool pool.ntp.org iburst\nleapfile /var/lib/ntp/leap-seconds.list\n",
        );
        std::fs::create_dir_all(root.0.join("var/lib/ntp")).unwrap();
        std::fs::write(root.0.join("var/lib/ntp/leap-seconds.list"), "").unwrap();
        let (text, report) = write_config_under(&root, &options(&[]));
        assert!(!report.iter().any(|l| l.contains("leapfile")), "{report:#?}");
        assert!(text.contains("leap_file = \"/var/lib/ntp/leap-seconds.list\"\n"), "{text}");
    }

    #[test]
    fn interface_lines_that_leave_nothing_but_loopback_are_refused() {
        let root = ScratchRoot::with_ntp_conf(
            "refused",
            "pool pool.ntp.org iburst\ninterface listen eth9\n",
        );
        let (text, report) =
            write_config_under(&root, &options(&[("lo", "127.0.0.1"), ("eth0", "192.168.1.2")]));
        let config = Config::parse(&text, "written").unwrap();
        assert_eq!(config.server.listen, syhub_ntp_config::ServerConfig::default().listen);
        assert!(!text.contains("\nlisten ="), "{text}");
        assert!(
            report.iter().any(|l| l.starts_with("  not imported: interface listen eth9: ")
                && l.contains("serve none but loopback")),
            "{report:#?}"
        );
        assert!(
            text.contains("# Not imported from /etc/ntp.conf:\n# - interface listen eth9:"),
            "{text}"
        );
    }

    #[test]
    fn comments_wrap_at_100_columns() {
        let long = "word ".repeat(60);
        let wrapped = comment(&long);
        assert!(wrapped.lines().all(|l| l.len() <= 100 && l.starts_with('#')), "{wrapped}");
        assert_eq!(wrapped.split_whitespace().filter(|w| *w == "word").count(), 60);
    }
}
