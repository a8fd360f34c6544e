//! `install` and `uninstall` into a temporary root: every file, mode and manifest entry; a second
//! install changes nothing; uninstall --purge leaves the tree as it was. The systemd units pass
//! `systemd-analyze verify` without a warning. The firewall is changed for real, but only inside
//! network namespaces the tests create (ufw's files in a private copy too); a reboot is played
//! there too, by loading the scratch root's nftables.conf or rules.v4 as the boot would.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use syhub_ntp_testkit::*;

/// The binary under test.
const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

const NTP_CONF: &str = "\
driftfile /var/lib/ntp/ntp.drift
leapfile /usr/share/zoneinfo/leap-seconds.list
pool 2.debian.pool.ntp.org iburst
server 192.168.1.1 iburst key 1 prefer
server time.google.com iburst
server 127.127.1.0
fudge 127.127.1.0 stratum 10
restrict default kod nomodify notrap nopeer noquery
restrict 127.0.0.1
restrict 192.168.7.0 mask 255.255.255.0 nomodify
restrict 10.66.0.0 mask 255.255.0.0 ignore
keys /etc/ntp.keys
trustedkey 1
";

/// That install's report has an "imported differently" line saying `said`.
fn assert_imported_differently(actions: &[&str], said: &str) {
    assert!(
        actions.iter().any(|a| a.starts_with("  imported differently: ") && a.contains(said)),
        "{said:?} not reported: {actions:#?}"
    );
}

/// Writes `text` at `path` under `dir` with `mode`, making the folders on the way.
fn write_in(dir: &Path, path: &str, text: &str, mode: u32) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A small system tree as an ntpd host has it: `prepare_bare_root` plus an ntpd config, keys
/// and drift file to import.
fn prepare_root(dir: &Path) {
    prepare_bare_root(dir);
    write_in(dir, "etc/ntp.conf", NTP_CONF, 0o644);
    write_in(dir, "etc/ntp.keys", "1 SHA1 6f2c1d0e9a8b7c6d5e4f30211203f4e5d6c7b8a9\n", 0o600);
    write_in(dir, "var/lib/ntp/ntp.drift", "12.345\n", 0o644);
}

/// A root with its account files and systemd's units, a chrony enabled, and no /var.
fn prepare_bare_root(dir: &Path) {
    let write = |path: &str, text: &str, mode: u32| write_in(dir, path, text, mode);
    write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n", 0o644);
    write("etc/group", "root:x:0:\n", 0o644);
    write("etc/shadow", "root:*:19000:0:99999:7:::\n", 0o640);
    write("etc/gshadow", "root:*::\n", 0o640);
    write("etc/.pwd.lock", "", 0o600);
    // The real system's units, so targets resolve, and a chrony enabled as Debian would.
    let units = dir.join("usr/lib/systemd");
    std::fs::create_dir_all(&units).unwrap();
    let copied = Command::new("cp").arg("-a").arg("/usr/lib/systemd/system").arg(&units).status();
    assert!(copied.unwrap().success());
    write(
        "usr/lib/systemd/system/chrony.service",
        "[Unit]\nDescription=chrony\n[Service]\nExecStart=/usr/sbin/chronyd\n[Install]\nWantedBy=multi-user.target\n",
        0o644,
    );
    systemctl(dir, &["enable", "chrony.service"]);
}

fn systemctl(root: &Path, args: &[&str]) -> String {
    let output = Command::new("systemctl").arg("--root").arg(root).args(args).output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Every path under `root` with its type, mode, owner and content (or link target). Backups
/// the account tools leave (`passwd-` and the like) are left out.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut tree = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if name.starts_with("etc/") && name.ends_with('-') {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let description = if meta.is_symlink() {
                format!("link {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                format!("dir {:o} {}:{}", meta.mode() & 0o7777, meta.uid(), meta.gid())
            } else {
                let contents = std::fs::read(&path).unwrap();
                format!(
                    "file {:o} {}:{} {} bytes {:x}",
                    meta.mode() & 0o7777,
                    meta.uid(),
                    meta.gid(),
                    contents.len(),
                    contents
                        .iter()
                        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(*b)))
                )
            };
            tree.insert(name, description);
        }
    }
    tree
}

fn ops(args: &[&str], root: &Path) -> serde_json::Value {
    let output =
        Command::new(SYHUB_NTP).args(args).arg("--root").arg(root).arg("--json").output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{args:?}: {}", String::from_utf8_lossy(&output.stderr)));
    assert!(output.status.success(), "{args:?}: {json}");
    json
}

/// `systemd-analyze verify` of the installed `units` (drop-ins included), warnings included.
fn verify_units(root: &Path, units: &[&str]) {
    let verify = Command::new("systemd-analyze")
        .arg(format!("--root={}", root.display()))
        .arg("verify")
        .args(units)
        .output()
        .unwrap();
    let warnings = String::from_utf8_lossy(&verify.stderr).into_owned();
    assert!(
        verify.status.success() && warnings.trim().is_empty(),
        "systemd-analyze verify {units:?}: {warnings}"
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn install_sets_up_the_tree_a_second_run_changes_nothing_and_uninstall_restores_it() {
    let dir = TempDir::new("install");
    let root = dir.0.clone();
    prepare_root(&root);
    let before = snapshot(&root);

    // A dry run says what it would do and does none of it.
    let dry = ops(&["install", "--dry-run"], &root);
    assert!(
        dry["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().starts_with("would write /etc/syhub-ntp/config.toml")),
        "{dry}"
    );
    assert_eq!(snapshot(&root), before, "the dry run changed the tree");

    let first = ops(&["install"], &root);
    let at = |p: &str| root.join(p);
    assert_eq!(mode(&at("usr/bin/syhub-ntp")), 0o755);
    assert_eq!(std::fs::read(at("usr/bin/syhub-ntp")).unwrap(), std::fs::read(SYHUB_NTP).unwrap());
    let passwd = std::fs::read_to_string(at("etc/passwd")).unwrap();
    let account = passwd.lines().find(|l| l.starts_with("syhub-ntp:")).expect("the account");
    let uid: u32 = account.split(':').nth(2).unwrap().parse().unwrap();
    assert!(account.ends_with(":/var/lib/syhub-ntp:/usr/sbin/nologin"), "{account}");
    assert_eq!(mode(&at("etc/syhub-ntp")), 0o755);
    assert_eq!(mode(&at("var/lib/syhub-ntp")), 0o750);
    assert_eq!(std::fs::metadata(at("var/lib/syhub-ntp")).unwrap().uid(), uid);

    // The config: valid, with ntp.conf's sources, restrictions, keys, leap file and local clock.
    let config = std::fs::read_to_string(at("etc/syhub-ntp/config.toml")).unwrap();
    assert_eq!(mode(&at("etc/syhub-ntp/config.toml")), 0o644);
    for expected in [
        "address = \"2.debian.pool.ntp.org\"",
        "address = \"192.168.1.1\"\niburst = true\nkey = 1\nprefer = true\n",
        "address = \"time.google.com\"\niburst = true\nfallback = true\n",
        "leap_file = \"/usr/share/zoneinfo/leap-seconds.list\"\n",
        "[local]\nenabled = true\nstratum = 11\nmode = \"holdover\"\n",
        "\"192.168.7.0/24\"",
        "deny = [\"10.66.0.0/16\"]",
        "keys_file = \"/etc/syhub-ntp/ntp.keys\"",
        "trusted_keys = [1]",
    ] {
        assert!(config.contains(expected), "{expected:?} missing from:\n{config}");
    }
    // What is imported differently is said in the report, and again at the top of the config.
    let actions: Vec<&str> =
        first["actions"].as_array().unwrap().iter().filter_map(|a| a.as_str()).collect();
    for (said, in_config) in [
        (
            "server time.google.com iburst: imported with fallback = true",
            "Google smears leap seconds",
        ),
        (
            "leapfile /usr/share/zoneinfo/leap-seconds.list: [clock] leap_file names it, but there is no such file under",
            "# - leapfile /usr/share/zoneinfo/leap-seconds.list:",
        ),
        (
            "server 127.127.1.0 with fudge stratum 10: [local] stratum = 11",
            "# - server 127.127.1.0",
        ),
        (
            "[local] mode = \"holdover\": ntpd served its undisciplined local clock",
            "# - [local] mode",
        ),
    ] {
        assert_imported_differently(&actions, said);
        assert!(config.contains(in_config), "{in_config:?} missing from:\n{config}");
    }
    assert_eq!(mode(&at("etc/syhub-ntp/ntp.keys")), 0o640);
    assert_eq!(std::fs::metadata(at("etc/syhub-ntp/ntp.keys")).unwrap().gid(), uid);
    assert_eq!(std::fs::read_to_string(at("var/lib/syhub-ntp/drift")).unwrap(), "12.345\n");
    // The daemon's own check passes on it, with the keys file where the config says (under root).
    let checked = Command::new(SYHUB_NTP)
        .args(["config", "check", "--config"])
        .arg(at("etc/syhub-ntp/config.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success() || stderr.contains("/etc/syhub-ntp/ntp.keys"), "{stderr}");

    // Units in place and enabled; chrony disabled.
    for unit in ["syhub-ntp.service", "syhub-ntp-wait-sync.service"] {
        assert_eq!(mode(&at(&format!("etc/systemd/system/{unit}"))), 0o644);
        assert_eq!(systemctl(&root, &["is-enabled", unit]), "enabled", "{unit}");
    }
    assert_eq!(systemctl(&root, &["is-enabled", "chrony.service"]), "disabled");

    // The manifest records each change, in order.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(at("var/lib/syhub-ntp/install.json")).unwrap())
            .unwrap();
    let kinds: Vec<String> = manifest["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["kind"].as_str().unwrap(),
                c["path"].as_str().or(c["unit"].as_str()).or(c["name"].as_str()).unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            // The scratch root has no /usr/bin or /etc/sysusers.d: made, and recorded, on the way.
            "directory /usr/bin",
            "file /usr/bin/syhub-ntp",
            "directory /etc/sysusers.d",
            "file /etc/sysusers.d/syhub-ntp.conf",
            "account syhub-ntp",
            "directory /etc/syhub-ntp",
            "directory /var/lib/syhub-ntp",
            "file /etc/syhub-ntp/ntp.keys",
            "file /var/lib/syhub-ntp/drift",
            "file /etc/syhub-ntp/config.toml",
            "file /etc/systemd/system/syhub-ntp.service",
            "file /etc/systemd/system/syhub-ntp-wait-sync.service",
            "disabled chrony.service",
            "enabled syhub-ntp.service",
            "enabled syhub-ntp-wait-sync.service",
        ],
        "{first}"
    );

    // The units pass systemd's own check, warnings included.
    verify_units(&root, &["syhub-ntp.service", "syhub-ntp-wait-sync.service"]);
    let security = Command::new("systemd-analyze")
        .arg(format!("--root={}", root.display()))
        .args(["security", "--offline=yes", "syhub-ntp.service"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout).into_owned();
    let exposure: f64 = report
        .split("Overall exposure level for syhub-ntp.service: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|score| score.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in:\n{report}"));
    eprintln!("systemd-analyze security --offline=yes: exposure {exposure}");
    assert!(exposure <= 3.0, "exposure {exposure}:\n{report}");

    // Again: nothing to do, nothing changed.
    let installed = snapshot(&root);
    let second = ops(&["install"], &root);
    let changed: Vec<&str> = second["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .filter(|a| a.starts_with("write") || a.starts_with("run") || a.starts_with("create"))
        .collect();
    assert!(changed.is_empty(), "a second install changed {changed:?}");
    assert_eq!(snapshot(&root), installed);

    // Uninstall --purge: the tree as it was.
    ops(&["uninstall", "--purge"], &root);
    assert_eq!(systemctl(&root, &["is-enabled", "chrony.service"]), "enabled");
    let left = differences(&before, &snapshot(&root));
    assert!(left.is_empty(), "uninstall --purge left differences: {left:#?}");
}

/// Differences between two snapshots, as lines.
fn differences(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: {v} → {:?}", after.get(k)))
        .chain(
            after.keys().filter(|k| !before.contains_key(*k)).map(|k| format!("{k}: left behind")),
        )
        .collect()
}

#[test]
fn uninstall_purge_removes_every_directory_install_made_in_a_root_without_var() {
    let dir = TempDir::new("install-bare");
    let root = dir.0.clone();
    prepare_bare_root(&root);
    assert!(!root.join("var").exists());
    let before = snapshot(&root);
    ops(&["install"], &root);
    assert!(root.join("var/lib/syhub-ntp/install.json").exists());
    ops(&["uninstall", "--purge"], &root);
    let left = differences(&before, &snapshot(&root));
    assert!(left.is_empty(), "uninstall --purge left differences: {left:#?}");
    assert!(!root.join("var").exists(), "var/ is left behind");
}

#[test]
fn uninstall_keeps_the_users_data_unless_purged_and_refuses_without_a_manifest() {
    let dir = TempDir::new("uninstall");
    let root = dir.0.clone();
    prepare_root(&root);
    ops(&["install"], &root);
    let json = ops(&["uninstall"], &root);
    for kept in ["etc/syhub-ntp/config.toml", "etc/syhub-ntp/ntp.keys", "var/lib/syhub-ntp/drift"] {
        assert!(root.join(kept).exists(), "{kept} was removed: {json}");
    }
    for gone in [
        "usr/bin/syhub-ntp",
        "etc/systemd/system/syhub-ntp.service",
        "var/lib/syhub-ntp/install.json",
    ] {
        assert!(!root.join(gone).exists(), "{gone} is still there");
    }
    assert!(!std::fs::read_to_string(root.join("etc/passwd")).unwrap().contains("syhub-ntp"));
    let output = Command::new(SYHUB_NTP).args(["uninstall", "--root"]).arg(&root).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no install manifest"));
}

/// Puts the Debian package's files under `root` as dpkg would, with a dpkg database that says
/// the package owns them.
fn unpack_package_files(root: &Path) {
    let units = [
        ("usr/lib/systemd/system/syhub-ntp.service", "crates/ops/units/syhub-ntp.service"),
        (
            "usr/lib/systemd/system/syhub-ntp-wait-sync.service",
            "crates/ops/units/syhub-ntp-wait-sync.service",
        ),
        ("usr/lib/sysusers.d/syhub-ntp.conf", "crates/ops/units/syhub-ntp.sysusers"),
    ];
    let mut listed = vec!["/.".to_owned(), "/usr".into(), "/usr/bin".into()];
    for (path, source) in units {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(source));
        write_in(root, path, &text.unwrap(), 0o644);
        listed.push(format!("/{path}"));
    }
    std::fs::copy(SYHUB_NTP, root.join("usr/bin/syhub-ntp")).unwrap();
    listed.push("/usr/bin/syhub-ntp".into());
    write_in(
        root,
        "var/lib/dpkg/status",
        "Package: syhub-ntp\nStatus: install ok installed\nPriority: optional\nSection: net\n\
         Maintainer: SyHub <support@syhub.invalid>\nArchitecture: amd64\nVersion: 0.1.0-1\n\
         Description: time server\n\n",
        0o644,
    );
    write_in(root, "var/lib/dpkg/info/syhub-ntp.list", &(listed.join("\n") + "\n"), 0o644);
    std::fs::create_dir_all(root.join("var/lib/dpkg/updates")).unwrap();
}

#[test]
fn the_packages_first_configure_after_a_source_install_lets_the_packaged_units_apply_and_keeps_dpkgs_binary()
 {
    let dir = TempDir::new("install-then-package");
    let root = dir.0.clone();
    prepare_bare_root(&root);
    ops(&["install"], &root);
    let unit = root.join("etc/systemd/system/syhub-ntp.service");
    assert!(unit.exists());
    assert_eq!(systemctl(&root, &["is-enabled", "syhub-ntp.service"]), "enabled");

    // dpkg unpacks the package over the source install, then postinst runs the first configure.
    unpack_package_files(&root);
    let configured = ops(&["install", "--from-package"], &root);
    let actions = configured["actions"].to_string();
    for gone in [
        "etc/systemd/system/syhub-ntp.service",
        "etc/systemd/system/syhub-ntp-wait-sync.service",
        "etc/sysusers.d/syhub-ntp.conf",
        "etc/systemd/system/multi-user.target.wants/syhub-ntp.service",
    ] {
        assert!(!root.join(gone).exists(), "{gone} still shadows the package's: {actions}");
    }
    assert!(actions.contains("uninstall leaves it to dpkg"), "{actions}");
    // Nothing enabled by install itself: deb-systemd-helper's job in the package.
    assert!(!actions.contains("systemctl"), "{actions}");
    let manifest = std::fs::read_to_string(root.join("var/lib/syhub-ntp/install.json")).unwrap();
    for forgotten in ["/usr/bin/syhub-ntp", "syhub-ntp.service", "\"enabled\""] {
        assert!(!manifest.contains(forgotten), "{forgotten} still in the manifest:\n{manifest}");
    }

    // uninstall never removes what dpkg owns, even if an old manifest lists it.
    let mut old: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    old["changes"].as_array_mut().unwrap().push(serde_json::json!(
        {"kind": "file", "path": "/usr/bin/syhub-ntp", "data": false}
    ));
    std::fs::write(root.join("var/lib/syhub-ntp/install.json"), old.to_string()).unwrap();
    let removed = ops(&["uninstall"], &root);
    assert!(root.join("usr/bin/syhub-ntp").exists(), "uninstall removed dpkg's binary: {removed}");
    assert!(
        removed["actions"].to_string().contains("the Debian package syhub-ntp owns it"),
        "{removed}"
    );
    assert!(root.join("usr/lib/systemd/system/syhub-ntp.service").exists());
}

#[test]
fn a_gps_hub_gets_the_reference_clock_drop_in_and_it_passes_systemds_check() {
    let dir = TempDir::new("install-gps");
    let root = dir.0.clone();
    prepare_root(&root);
    // An ntpd set up for gpsd: its SHM clock is imported as a gpsd-shm source.
    std::fs::write(
        root.join("etc/ntp.conf"),
        format!("{NTP_CONF}server 127.127.28.0 minpoll 4 prefer\nfudge 127.127.28.0 time1 0.1 refid GPS\n"),
    )
    .unwrap();
    let before = snapshot(&root);
    let json = ops(&["install"], &root);
    let config = std::fs::read_to_string(root.join("etc/syhub-ntp/config.toml")).unwrap();
    assert!(config.contains("mode = \"gpsd-shm\""), "{config}");
    let drop_in = root.join("etc/systemd/system/syhub-ntp.service.d/refclocks.conf");
    let text = std::fs::read_to_string(&drop_in).unwrap_or_else(|_| panic!("no drop-in: {json}"));
    assert!(text.contains("User=\n") && text.contains("DeviceAllow=char-pps r"), "{text}");
    verify_units(&root, &["syhub-ntp.service"]);
    // The drop-in is the install's: uninstall --purge takes it away with the rest.
    ops(&["uninstall", "--purge"], &root);
    assert!(!drop_in.exists());
    assert_eq!(snapshot(&root), before);
}

/// Whether the server at `server` (`address:port`) answers a request sent from inside `ns`.
fn answers(ns: &NetNs, server: &str) -> bool {
    let socket = ns.udp_socket(if server.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" });
    socket.send_to(&raw_request(4, 3, 7), server).unwrap();
    let mut answer = [0u8; 128];
    socket.recv_from(&mut answer).is_ok_and(|(length, _)| length >= 48)
}

#[test]
fn interface_lines_become_a_listen_list_that_serves_eth0_and_not_wlan0() {
    // A hub with a wired and a wireless interface, as `ip` shows them in its own namespace.
    let ns = NetNs::new("ifaces");
    ns.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "wlan0"]);
    ns.ip(&["addr", "add", "192.168.1.2/24", "dev", "eth0"]);
    ns.ip(&["addr", "add", "2001:db8:1::2/64", "dev", "eth0", "nodad"]);
    ns.ip(&["addr", "add", "192.168.50.2/24", "dev", "wlan0"]);
    for link in ["eth0", "wlan0"] {
        ns.set_link(link, true);
    }
    // The kernel gives eth0 a link-local address once it is up.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(
        &ns.run(
            "ip",
            &["-6", "addr", "show", "dev", "eth0", "scope", "link"],
            Duration::from_secs(5),
        )
        .stdout,
    )
    .contains("fe80::")
    {
        assert!(std::time::Instant::now() < deadline, "eth0 has no link-local address");
        std::thread::sleep(Duration::from_millis(100));
    }

    let (_dir, root) = scratch_root("ifaces");
    std::fs::write(
        root.join("etc/ntp.conf"),
        format!("{NTP_CONF}interface listen eth0\ninterface ignore wlan0\n"),
    )
    .unwrap();
    let output = ns.run(
        SYHUB_NTP,
        &["install", "--root", path_str(&root), "--keep-others", "--json"],
        Duration::from_secs(60),
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
    assert!(output.status.success(), "{json}");

    // eth0's addresses and loopback, not wlan0's, nor eth0's link-local one.
    let listen = ["127.0.0.1:123", "[::1]:123", "192.168.1.2:123", "[2001:db8:1::2]:123"];
    let config = std::fs::read_to_string(root.join("etc/syhub-ntp/config.toml")).unwrap();
    let quoted: Vec<String> = listen.iter().map(|a| format!("\"{a}\"")).collect();
    assert!(
        config.contains(&format!("\nlisten = [{}]\n", quoted.join(", "))),
        "no such listen list in:\n{config}"
    );
    assert!(config.contains("# - interface listen eth0; interface ignore wlan0:"), "{config}");
    let actions: Vec<&str> =
        json["actions"].as_array().unwrap().iter().filter_map(|a| a.as_str()).collect();
    for said in [
        "interface listen eth0; interface ignore wlan0: syhub-ntp listens on addresses, not interfaces",
        "eth0 (192.168.1.2, 2001:db8:1::2",
        "not served: wlan0 (192.168.50.2",
        "The list does not follow address changes",
        "loopback (127.0.0.1, ::1) is always served",
        "left out link-local eth0 (fe80::",
    ] {
        assert_imported_differently(&actions, said);
    }

    // Served on that list (without CAP_SYS_TIME, in the namespace): eth0 answers, wlan0 does not.
    let daemon = Daemon::start(SYHUB_NTP, &ns, &test_config(&listen, "", ""));
    for (server, served) in [
        ("192.168.1.2:123", true),
        ("[2001:db8:1::2]:123", true),
        ("127.0.0.1:123", true),
        ("192.168.50.2:123", false),
    ] {
        assert_eq!(answers(&ns, server), served, "{server}");
    }
    daemon.stop();
}

/// Runs install (or uninstall) in `ns` against a scratch root, with the firewall step on;
/// returns what it printed.
fn in_namespace(ns: &NetNs, verb: &str, root: &Path) -> String {
    let mut args = vec![verb, "--root", root.to_str().unwrap()];
    if verb == "install" {
        args.extend(["--firewall", "--keep-others"]);
    }
    let output = ns.run(SYHUB_NTP, &args, Duration::from_secs(60));
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{verb}: {printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    printed
}

fn scratch_root(label: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new(label);
    let root = dir.0.clone();
    prepare_root(&root);
    (dir, root)
}

/// Runs `nft ARGS` in `ns`, asserting success; returns what it printed.
fn nft(ns: &NetNs, args: &str) -> String {
    let output = ns.run("sh", &["-c", &format!("nft {args}")], Duration::from_secs(10));
    assert!(output.status.success(), "nft {args}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Debian's /etc/nftables.conf made to filter: the input chain drops what it does not accept.
const NFTABLES_CONF: &str = "#!/usr/sbin/nft -f

flush ruleset

table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tiif lo accept
\t\tct state established,related accept
\t}
\tchain forward {
\t\ttype filter hook forward priority filter;
\t}
\tchain output {
\t\ttype filter hook output priority filter;
\t}
}
";

/// What nftables.service does at boot, in `ns`: the ruleset flushed and the scratch root's
/// nftables.conf loaded, after `nft -c` (a check that changes nothing) has passed it. Its
/// include of /etc/nftables.d is pointed into the scratch root, the machine's own /etc never read.
fn boot_nftables(ns: &NetNs, root: &Path) {
    let conf = std::fs::read_to_string(root.join("etc/nftables.conf")).unwrap();
    let conf = conf.replace("\"/etc/nftables.d/", &format!("\"{}/etc/nftables.d/", root.display()));
    let dir = TempDir::new("nft-boot");
    let copy = dir.write("nftables.conf", &conf);
    nft(ns, "flush ruleset");
    nft(ns, &format!("-c -f {}", copy.display()));
    nft(ns, &format!("-f {}", copy.display()));
}

/// The rules of `inet filter input`, in order, one line each.
fn input_rules(ns: &NetNs) -> Vec<String> {
    nft(ns, "list chain inet filter input")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("table") && !l.starts_with("chain"))
        .filter(|l| !l.starts_with("type") && *l != "}")
        .map(str::to_owned)
        .collect()
}

#[test]
fn nftables_gets_a_rule_for_udp_123_kept_across_a_reboot_and_loses_both_on_uninstall() {
    let ns = NetNs::new("fwnft");
    let (_dir, root) = scratch_root("fwnft");
    write_in(&root, "etc/nftables.conf", NFTABLES_CONF, 0o755);
    boot_nftables(&ns, &root);
    let before = snapshot(&root);

    let printed = in_namespace(&ns, "install", &root);
    assert!(printed.contains("opened UDP 123 for NTP"), "{printed}");
    assert!(printed.contains("nftables.service is not enabled"), "{printed}");
    assert_eq!(input_rules(&ns)[0], "udp dport 123 accept comment \"syhub-ntp\"");
    // Kept: our own file, and one line at the end of the admin's file that includes it.
    let ours = std::fs::read_to_string(root.join("etc/nftables.d/syhub-ntp.nft")).unwrap();
    assert!(
        ours.contains(
            "\ninsert rule inet filter input udp dport 123 accept comment \"syhub-ntp\"\n"
        ),
        "{ours}"
    );
    let conf = std::fs::read_to_string(root.join("etc/nftables.conf")).unwrap();
    let added = conf.strip_prefix(NFTABLES_CONF).unwrap_or_else(|| panic!("{conf}"));
    assert!(added.starts_with("include \"/etc/nftables.d/syhub-ntp*.nft\""), "{added}");
    assert_eq!(added.lines().count(), 1, "{added}");

    // A reboot: the rule comes back, first in the chain, ahead of the admin's rules.
    boot_nftables(&ns, &root);
    let rules = input_rules(&ns);
    assert_eq!(rules[0], "udp dport 123 accept comment \"syhub-ntp\"", "{rules:#?}");
    assert_eq!(rules.len(), 3, "{rules:#?}");

    // A second install adds nothing, live or kept.
    let kept = snapshot(&root);
    in_namespace(&ns, "install", &root);
    assert_eq!(nft(&ns, "list ruleset").matches("syhub-ntp").count(), 1, "a second rule");
    assert_eq!(snapshot(&root), kept);

    in_namespace(&ns, "uninstall", &root);
    assert!(!nft(&ns, "list ruleset").contains("syhub-ntp"));
    assert_eq!(std::fs::read_to_string(root.join("etc/nftables.conf")).unwrap(), NFTABLES_CONF);
    assert!(!root.join("etc/nftables.d").exists(), "our directory is left behind");
    let left = differences(&before, &snapshot(&root));
    // What a plain uninstall keeps (the config and the user's data) aside, the tree is as before.
    let left: Vec<&String> = left.iter().filter(|l| !l.contains("syhub-ntp")).collect();
    assert!(left.is_empty(), "uninstall left differences: {left:#?}");
}

#[test]
fn an_nftables_conf_without_an_inet_filter_table_still_loads_and_comes_back_byte_for_byte() {
    let ns = NetNs::new("fwnftodd");
    nft(&ns, "add table inet filter");
    nft(&ns, "'add chain inet filter input { type filter hook input priority 0; policy drop; }'");
    let (_dir, root) = scratch_root("fwnftodd");
    // The admin's own layout, with no newline at its end.
    let conf = "flush ruleset\ntable ip guard {\n\tchain in {\n\t\ttype filter hook input priority 0; policy accept;\n\t}\n}";
    write_in(&root, "etc/nftables.conf", conf, 0o644);
    let printed = in_namespace(&ns, "install", &root);
    assert!(printed.contains("does not itself define `table inet filter`"), "{printed}");
    let with = std::fs::read_to_string(root.join("etc/nftables.conf")).unwrap();
    assert!(with.starts_with(&format!("{conf}\ninclude ")) && with.ends_with("line\n"), "{with}");
    // Our file declares the chain it fills, so the admin's file loads all the same.
    boot_nftables(&ns, &root);
    in_namespace(&ns, "uninstall", &root);
    assert_eq!(std::fs::read_to_string(root.join("etc/nftables.conf")).unwrap(), conf);
    assert_eq!(mode(&root.join("etc/nftables.conf")), 0o644);
}

#[test]
fn nts_and_a_lan_facing_http_port_are_opened_with_ntp_and_judged_by_test() {
    let ns = NetNs::new("fwnts");
    let (_dir, root) = scratch_root("fwnts");
    write_in(&root, "etc/nftables.conf", NFTABLES_CONF, 0o755);
    boot_nftables(&ns, &root);
    // An existing config, kept by install: first NTP alone (the dashboard on loopback) ...
    write_in(&root, "etc/syhub-ntp/config.toml", "source = []\n", 0o644);
    let printed = in_namespace(&ns, "install", &root);
    assert!(printed.contains("opened UDP 123 for NTP"), "{printed}");
    assert!(!printed.contains("TCP"), "{printed}");
    // ... then NTS turned on and the dashboard put on the LAN, and install run again.
    let config = "source = []\n[http]\nlisten = [\"0.0.0.0:8123\"]\n[nts]\n\
                  certificate = \"/etc/syhub-ntp/nts.crt\"\nprivate_key = \"/etc/syhub-ntp/nts.key\"\n";
    write_in(&root, "etc/syhub-ntp/config.toml", config, 0o644);
    let printed = in_namespace(&ns, "install", &root);
    for line in [
        "UDP 123 is open already",
        "opened TCP 4460 for NTS key exchange",
        "opened TCP 8123 for the HTTP API and dashboard",
    ] {
        assert!(printed.contains(line), "{line:?} missing from:\n{printed}");
    }
    let rules = input_rules(&ns);
    for port in ["udp dport 123", "tcp dport 4460", "tcp dport 8123"] {
        let rule = format!("{port} accept comment \"syhub-ntp\"");
        assert!(rules.contains(&rule), "{rule} missing from {rules:#?}");
    }
    // After a reboot, all three are back.
    boot_nftables(&ns, &root);
    assert_eq!(input_rules(&ns).iter().filter(|r| r.contains("syhub-ntp")).count(), 3);

    let test = |ns: &NetNs| {
        let config = root.join("etc/syhub-ntp/config.toml");
        let output = ns.run(
            SYHUB_NTP,
            &["test", "--json", "--config", path_str(&config)],
            Duration::from_secs(60),
        );
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
        json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["name"].as_str().unwrap().starts_with("firewall open"))
            .map(|c| (c["name"].as_str().unwrap().to_owned(), c.clone()))
            .collect::<BTreeMap<String, serde_json::Value>>()
    };
    let checks = test(&ns);
    for name in ["firewall open", "firewall open TCP 4460", "firewall open TCP 8123"] {
        assert_eq!(checks[name]["verdict"], "PASS", "{name}: {checks:#?}");
    }

    in_namespace(&ns, "uninstall", &root);
    assert_eq!(std::fs::read_to_string(root.join("etc/nftables.conf")).unwrap(), NFTABLES_CONF);
    assert!(!root.join("etc/nftables.d").exists(), "our directory is left behind");
    // Closed again: NTS-KE fails and HTTP warns, each with the command that opens it.
    let checks = test(&ns);
    assert_eq!(checks["firewall open TCP 4460"]["verdict"], "FAIL", "{checks:#?}");
    assert_eq!(checks["firewall open TCP 8123"]["verdict"], "WARN", "{checks:#?}");
    let fix = checks["firewall open TCP 4460"]["fix"].as_str().unwrap();
    assert!(fix.contains("nft insert rule inet filter input tcp dport 4460 accept"), "{fix}");
}

#[test]
fn an_admins_own_accept_for_udp_123_counts_as_open() {
    let ns = NetNs::new("fwadmin");
    let nft = |args: &str| nft(&ns, args);
    nft("add table inet filter");
    nft("'add chain inet filter input { type filter hook input priority 0; policy drop; }'");
    nft("add rule inet filter input udp dport { 53, 123 } accept");
    // `test` judges by what is accepted, not by our comment.
    let dir = TempDir::new("fwadmin-config");
    let config = dir.write("config.toml", "source = []\n");
    let output = ns.run(
        SYHUB_NTP,
        &["test", "--json", "--config", path_str(&config)],
        Duration::from_secs(60),
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
    let firewall = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "firewall open")
        .unwrap_or_else(|| panic!("no firewall check: {json}"));
    assert_eq!(firewall["verdict"], "PASS", "{firewall}");
    // install adds nothing beside the admin's rule.
    let (_dir, root) = scratch_root("fwadmin");
    in_namespace(&ns, "install", &root);
    assert!(!nft("list ruleset").contains("syhub-ntp"), "{}", nft("list ruleset"));
    in_namespace(&ns, "uninstall", &root);
    assert!(nft("list ruleset").contains("dport { 53, 123 } accept"), "the admin's rule stays");
}

#[test]
fn iptables_gets_rules_for_udp_123_and_loses_them_on_uninstall() {
    let ns = NetNs::new("fwipt");
    let rules = |program: &str| {
        let output = ns.run(program, &["-S", "INPUT"], Duration::from_secs(10));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // A host that filters: INPUT drops what no rule accepts.
    for program in ["iptables", "ip6tables"] {
        assert!(
            ns.run(program, &["-P", "INPUT", "DROP"], Duration::from_secs(10)).status.success()
        );
    }
    let (_dir, root) = scratch_root("fwipt");
    let printed = in_namespace(&ns, "install", &root);
    for program in ["iptables", "ip6tables"] {
        let listed = rules(program);
        assert!(
            listed.contains(
                "-A INPUT -p udp -m udp --dport 123 -m comment --comment syhub-ntp -j ACCEPT"
            ),
            "{program}: {listed}"
        );
    }
    // Nothing restores iptables rules at boot here: install says so, and what to do.
    assert!(printed.contains("last until the next boot"), "{printed}");
    assert!(printed.contains("apt install iptables-persistent"), "{printed}");
    assert!(!root.join("etc/iptables").exists());
    in_namespace(&ns, "uninstall", &root);
    assert!(!rules("iptables").contains("syhub-ntp"));
    assert!(!rules("ip6tables").contains("syhub-ntp"));
}

/// netfilter-persistent's saved rules, as iptables-save writes them: a nat table, and a filter
/// table that drops what its rules do not accept.
const RULES_V4: &str = "# Generated by iptables-save v1.8.9 (nf_tables) on Mon Jan  1 00:00:00 2024
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o eth0 -j MASQUERADE
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
# Completed on Mon Jan  1 00:00:00 2024
";
const RULES_V6: &str = "# Generated by ip6tables-save v1.8.9 (nf_tables)
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
COMMIT
";

#[test]
fn iptables_rules_go_into_netfilter_persistents_files_and_come_out_byte_for_byte() {
    let ns = NetNs::new("fwiptp");
    let (_dir, root) = scratch_root("fwiptp");
    write_in(&root, "etc/iptables/rules.v4", RULES_V4, 0o640);
    write_in(&root, "etc/iptables/rules.v6", RULES_V6, 0o640);
    let restore = |program: &str, file: &str, test: bool| {
        let path = root.join("etc/iptables").join(file);
        let script =
            format!("{program}-restore {} < {}", if test { "--test" } else { "" }, path.display());
        let output = ns.run("sh", &["-c", &script], Duration::from_secs(10));
        assert!(output.status.success(), "{script}: {}", String::from_utf8_lossy(&output.stderr));
    };
    let first_input_rule = |program: &str| {
        let output = ns.run(program, &["-S", "INPUT"], Duration::from_secs(10));
        let listed = String::from_utf8_lossy(&output.stdout).into_owned();
        listed.lines().find(|l| l.starts_with("-A INPUT")).unwrap_or("").to_owned()
    };
    // The boot before: the saved rules restored.
    restore("iptables", "rules.v4", false);
    restore("ip6tables", "rules.v6", false);

    let printed = in_namespace(&ns, "install", &root);
    assert!(printed.contains("kept in /etc/iptables/rules.v4"), "{printed}");
    assert!(printed.contains("kept in /etc/iptables/rules.v6"), "{printed}");
    let ours = "-A INPUT -p udp -m udp --dport 123 -m comment --comment syhub-ntp -j ACCEPT";
    let saved = std::fs::read_to_string(root.join("etc/iptables/rules.v4")).unwrap();
    assert_eq!(saved.matches(ours).count(), 1, "{saved}");
    assert!(saved.contains(&format!(":OUTPUT ACCEPT [0:0]\n{ours}\n-A INPUT -i lo")), "{saved}");
    assert_eq!(mode(&root.join("etc/iptables/rules.v4")), 0o640);
    // Valid for iptables-restore, and what a reboot restores: our rule first.
    restore("iptables", "rules.v4", true);
    restore("ip6tables", "rules.v6", true);
    restore("iptables", "rules.v4", false);
    restore("ip6tables", "rules.v6", false);
    assert_eq!(first_input_rule("iptables"), ours);
    assert_eq!(first_input_rule("ip6tables"), ours);

    in_namespace(&ns, "uninstall", &root);
    assert_eq!(std::fs::read_to_string(root.join("etc/iptables/rules.v4")).unwrap(), RULES_V4);
    assert_eq!(std::fs::read_to_string(root.join("etc/iptables/rules.v6")).unwrap(), RULES_V6);
    assert_eq!(first_input_rule("iptables"), "-A INPUT -i lo -j ACCEPT");
}

#[test]
fn ufw_gets_a_rule_for_udp_123_and_loses_it_on_uninstall() {
    // ufw rewrites files under /etc/ufw: every ufw here runs in a private mount namespace with a
    // scratch copy mounted over /etc/ufw, so the machine's own files are never touched.
    let ns = NetNs::new("fwufw");
    let dir = TempDir::new("fwufw-etc");
    let copy = dir.0.join("ufw");
    let copied = Command::new("cp").args(["-a", "/etc/ufw"]).arg(&copy).status();
    assert!(copied.unwrap().success());
    let private = |command: &str| {
        let script = format!(
            "mount --bind {} /etc/ufw && exec ip netns exec {} {command}",
            copy.display(),
            ns.name
        );
        let mut unshare = Command::new("unshare");
        unshare.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
        let output = run_with_timeout(unshare, Duration::from_secs(60));
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    assert!(private("ufw --force enable").contains("enabled"));
    let (_root_dir, root) = scratch_root("fwufw");
    let root = root.display().to_string();
    let installed = private(&format!("{SYHUB_NTP} install --root {root} --firewall --keep-others"));
    let status = private("ufw status");
    assert!(status.contains("123/udp") && status.contains("ALLOW"), "{installed}\n{status}");
    assert!(installed.contains("ufw keeps its rules across reboots"), "{installed}");
    // ufw's own files hold it, and ufw loads them at boot.
    let saved = || std::fs::read_to_string(copy.join("user.rules")).unwrap();
    assert!(saved().contains("allow udp 123 "), "{}", saved());
    private(&format!("{SYHUB_NTP} uninstall --root {root}"));
    assert!(!private("ufw status").contains("123/udp"));
    assert!(!saved().contains("allow udp 123 "), "{}", saved());
}

#[test]
fn an_install_that_fails_half_way_undoes_what_it_did() {
    let dir = TempDir::new("halfway");
    let root = dir.0.clone();
    prepare_root(&root);
    // The units cannot be written: /etc/systemd/system is a file here.
    std::fs::remove_dir_all(root.join("etc/systemd/system")).ok();
    std::fs::create_dir_all(root.join("etc/systemd")).unwrap();
    std::fs::write(root.join("etc/systemd/system"), "not a directory").unwrap();
    let before = snapshot(&root);
    let output = Command::new(SYHUB_NTP).args(["install", "--root"]).arg(&root).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("writing the systemd unit"));
    assert!(stdout.contains("undoing this run's changes"), "{stdout}");
    assert_eq!(snapshot(&root), before, "a failed install left changes behind:\n{stdout}");
}
