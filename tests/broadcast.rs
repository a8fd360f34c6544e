//! Broadcast and multicast across a veth pair between two namespaces the test creates: our
//! broadcasts reach the other host, tshark (capturing only on that host's end of the link) decodes
//! them as NTP mode 5 with our state, and our daemon there, as a broadcast client, follows them.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;
use syhub_ntp_testkit::*;

/// The binary under test.
const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

const KEYS: &str = "1 AES128CMAC 000102030405060708090a0b0c0d0e0f\n";

/// The broadcasting hub (`hub`, interface `lan0`) and a listener (`host`, interface `lan1`).
struct Lan {
    hub: NetNs,
    host: NetNs,
    dir: TempDir,
}

impl Lan {
    fn new(label: &str) -> Self {
        let hub = NetNs::new(&format!("{label}h"));
        let host = NetNs::new(&format!("{label}c"));
        hub.link(("lan0", "10.77.0.1/24"), &host, ("lan1", "10.77.0.2/24"));
        hub.ip(&["addr", "add", "fd77::1/64", "dev", "lan0", "nodad"]);
        host.ip(&["addr", "add", "fd77::2/64", "dev", "lan1", "nodad"]);
        Self { hub, host, dir: TempDir::new(label) }
    }

    fn keys(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.write(name, text);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }
}

/// A daemon config on both families' port 123, serving its own clock, with `extra` appended.
fn config(extra: &str, sources: &str) -> String {
    test_config(&["0.0.0.0:123", "[::]:123"], sources, "") + extra
}

fn auth(keys: &std::path::Path) -> String {
    format!("\n[auth]\nkeys_file = \"{}\"\n", path_str(keys))
}

/// Captures up to `count` NTP packets on `interface` in `ns` for at most `seconds`, and returns
/// one line per packet: source, destination, NTP mode, version, stratum, poll.
fn capture(ns: &NetNs, interface: &str, count: u32, seconds: u32) -> std::process::Child {
    let mut command = std::process::Command::new("ip");
    command.args(["netns", "exec", &ns.name, "tshark", "-l", "-n", "-i", interface]);
    command.args(["-c", &count.to_string(), "-a", &format!("duration:{seconds}")]);
    command.args(["-f", "udp port 123", "-Y", "ntp.flags.mode == 5", "-T", "fields"]);
    for field in ["ipv6.src", "ip.src", "ipv6.dst", "ip.dst", "ntp.flags.mode", "ntp.flags.vn"] {
        command.args(["-e", field]);
    }
    command.args(["-e", "ntp.stratum", "-e", "ntp.ppoll"]);
    command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = command.spawn().expect("tshark (installed by scripts/test.sh)");
    // tshark takes a moment to open the interface.
    std::thread::sleep(Duration::from_secs(2));
    child
}

fn captured(child: std::process::Child) -> Vec<Vec<String>> {
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.split('\t').filter(|f| !f.is_empty()).map(str::to_owned).collect())
        .collect()
}

/// A broadcast client source listening on `address`.
fn listener(address: &str, extra: &str) -> String {
    format!("[[source]]\nmode = \"broadcast\"\naddress = \"{address}\"\n{extra}\n")
}

/// Waits until the listener follows the hub's broadcasts: synchronised to it, polling only every
/// 2^10 s after its burst, yet with samples no older than a few broadcast intervals.
fn assert_follows(daemon: &Daemon, hub: &str) {
    daemon.wait_for_status(Duration::from_secs(30), "synchronised to the hub", |s| {
        s["synchronised"] == true
    });
    // The burst (six requests 2 s apart) is over after 12 s; from then on only broadcasts arrive.
    std::thread::sleep(Duration::from_secs(14));
    let status = daemon.status();
    let peer = &status["peers"][0];
    assert_eq!(peer["kind"], "broadcast", "{status}");
    assert_eq!(peer["address"], hub, "{status}");
    assert_eq!(peer["poll_log2"], 10, "{status}");
    let age = peer["last_sample_seconds_ago"].as_f64().expect("a sample");
    assert!(age < 3.5, "the last sample is {age} s old: broadcasts are not followed ({status})");
    let offset = status["offset_seconds"].as_f64().unwrap();
    eprintln!("following {hub}: last sample {age:.1} s ago, offset {offset:+.6} s, peer {peer}");
    assert!(offset.abs() < 0.001, "offset {offset} s from a hub on the same clock");
    assert_eq!(status["synchronised"], true, "{status}");
}

#[test]
fn signed_ipv4_broadcasts_are_seen_by_tshark_and_followed_and_a_wrong_key_is_not() {
    let lan = Lan::new("bcast");
    let keys = lan.keys("ntp.keys", KEYS);
    let broadcast = "\n[[broadcast]]\naddress = \"10.77.0.255\"\ninterval = 1\nkey = 1\n";
    let tshark = capture(&lan.host, "lan1", 3, 20);
    let hub = Daemon::start(SYHUB_NTP, &lan.hub, &(config(broadcast, "") + &auth(&keys)));
    let packets = captured(tshark);
    eprintln!("tshark: {packets:?}");
    assert_eq!(packets.len(), 3, "tshark saw {packets:?}");
    for packet in &packets {
        // Source, destination, mode 5, version 4, stratum 10 (local clock), poll 2^0 s.
        assert_eq!(packet, &["10.77.0.1", "10.77.0.255", "5", "4", "10", "0"], "{packets:?}");
    }

    let follower = Daemon::start(
        SYHUB_NTP,
        &lan.host,
        &(config("", &listener("10.77.0.255", "key = 1")) + &auth(&keys)),
    );
    assert_follows(&follower, "10.77.0.1:123");
    follower.stop();

    // The same key id with another secret: the hub's broadcasts and answers fail the check.
    let wrong = lan.keys("wrong.keys", "1 AES128CMAC ffffffffffffffffffffffffffffffff\n");
    let fooled = Daemon::start(
        SYHUB_NTP,
        &lan.host,
        &(config("", &listener("10.77.0.255", "key = 1")) + &auth(&wrong)),
    );
    std::thread::sleep(Duration::from_secs(8));
    let status = fooled.status();
    assert_eq!(status["synchronised"], false, "{status}");
    fooled.stop();
    hub.stop();
}

#[test]
fn multicast_reaches_a_listener_that_joined_the_group_over_ipv4_and_ipv6() {
    let lan = Lan::new("mcast");
    let keys = lan.keys("ntp.keys", KEYS);
    for (group, hub_address) in [("224.0.1.1", "10.77.0.1:123"), ("ff05::101", "[fd77::1]:123")] {
        let broadcast = format!(
            "\n[[broadcast]]\naddress = \"{group}\"\ninterval = 1\nkey = 1\ninterface = \"lan0\"\n"
        );
        let tshark = capture(&lan.host, "lan1", 2, 20);
        let hub = Daemon::start(SYHUB_NTP, &lan.hub, &(config(&broadcast, "") + &auth(&keys)));
        let packets = captured(tshark);
        eprintln!("tshark: {packets:?}");
        assert_eq!(packets.len(), 2, "tshark saw {packets:?} for {group}");
        assert_eq!(packets[0][1], group, "{packets:?}");
        assert_eq!(packets[0][2..], ["5", "4", "10", "0"], "{packets:?}");

        let follower = Daemon::start(
            SYHUB_NTP,
            &lan.host,
            &(config("", &listener(group, "key = 1\ninterface = \"lan1\"")) + &auth(&keys)),
        );
        assert_follows(&follower, hub_address);
        follower.stop();
        hub.stop();
    }
}

#[test]
fn unsigned_broadcasts_are_followed_only_when_the_config_says_so() {
    let lan = Lan::new("bopen");
    let broadcast = "\n[[broadcast]]\naddress = \"10.77.0.255\"\ninterval = 1\n";
    let hub = Daemon::start(SYHUB_NTP, &lan.hub, &config(broadcast, ""));

    // Without a key the listener's config is refused before it starts.
    let dir = TempDir::new("bopen-check");
    let refused = dir.write_config("config.toml", &config("", &listener("10.77.0.255", "")));
    let output =
        lan.host.run(SYHUB_NTP, &["run", "--config", path_str(&refused)], Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("needs key = N"));

    let follower = Daemon::start(
        SYHUB_NTP,
        &lan.host,
        &config("", &listener("10.77.0.255", "insecure_unauthenticated = true")),
    );
    assert_follows(&follower, "10.77.0.1:123");
    let log = follower.stop();
    assert!(log.contains("following unsigned broadcasts"), "{log}");
    hub.stop();
}

/// The namespace's routes, which must hold no default route for the tests below to mean anything.
fn assert_no_default_route(ns: &NetNs) {
    for family in ["-4", "-6"] {
        let output = ns.run("ip", &[family, "route", "show", "default"], Duration::from_secs(5));
        let routes = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success() && routes.trim().is_empty(), "{}: {routes}", ns.name);
    }
}

#[test]
fn multicast_with_no_default_route_and_no_interface_named_uses_every_interface() {
    let lan = Lan::new("mauto");
    assert_no_default_route(&lan.hub);
    assert_no_default_route(&lan.host);
    let keys = lan.keys("ntp.keys", KEYS);
    let mut broadcasts = String::new();
    for group in ["224.0.1.1", "ff05::101"] {
        broadcasts += &format!("\n[[broadcast]]\naddress = \"{group}\"\ninterval = 1\nkey = 1\n");
    }
    let tshark = capture(&lan.host, "lan1", 4, 20);
    let hub = Daemon::start(SYHUB_NTP, &lan.hub, &(config(&broadcasts, "") + &auth(&keys)));
    let packets = captured(tshark);
    eprintln!("tshark: {packets:?}");
    for (source, group) in [("10.77.0.1", "224.0.1.1"), ("fd77::1", "ff05::101")] {
        let expected = [source, group, "5", "4", "10", "0"];
        assert!(packets.iter().any(|p| p == &expected), "no {expected:?} in {packets:?}");
    }
    let log = hub.process.log();
    assert!(log.contains("multicast uses lan0 (IPv4, IPv6)"), "{log}");

    for (group, hub_address) in [("224.0.1.1", "10.77.0.1:123"), ("ff05::101", "[fd77::1]:123")] {
        let follower = Daemon::start(
            SYHUB_NTP,
            &lan.host,
            &(config("", &listener(group, "key = 1")) + &auth(&keys)),
        );
        assert_follows(&follower, hub_address);
        let log = follower.stop();
        assert!(log.contains(&format!("joined {group} on lan1")), "{log}");
    }
    hub.stop();
}

#[test]
fn an_interface_that_comes_up_after_the_start_is_used_to_send_and_joined() {
    let lan = Lan::new("mlate");
    let keys = lan.keys("ntp.keys", KEYS);
    // Both ends are down: neither side has an interface that can carry multicast.
    lan.hub.set_link("lan0", false);
    lan.host.set_link("lan1", false);
    let broadcast = "\n[[broadcast]]\naddress = \"224.0.1.1\"\ninterval = 1\nkey = 1\n";
    let hub = Daemon::start(SYHUB_NTP, &lan.hub, &(config(broadcast, "") + &auth(&keys)));
    let mut follower = Daemon::start(
        SYHUB_NTP,
        &lan.host,
        &(config("", &listener("224.0.1.1", "key = 1")) + &auth(&keys)),
    );
    for daemon in [&hub, &follower] {
        let log = daemon.process.log();
        assert!(log.contains("no interface can carry multicast"), "{log}");
    }

    lan.hub.set_link("lan0", true);
    lan.host.set_link("lan1", true);
    follower.process.wait_for_line("joined 224.0.1.1 on lan1", Duration::from_secs(20));
    follower.wait_for_status(Duration::from_secs(60), "synchronised to the hub", |s| {
        s["synchronised"] == true
    });
    assert_follows(&follower, "10.77.0.1:123");
    assert!(hub.process.log().contains("multicast uses lan0"), "{}", hub.process.log());
    follower.stop();
    hub.stop();
}
