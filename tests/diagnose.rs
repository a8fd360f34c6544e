//! `syhub-ntp test` against a real hub in a namespace synchronised to chronyd in another: every
//! check passes, and each of a stopped daemon, a port taken by someone else and an unreachable
//! upstream is reported as a failure with exit code 1. A user other than root is told which checks
//! it could not make and why.

use std::time::Duration;
use syhub_ntp_testkit::*;

/// The binary under test.
const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

/// Runs `syhub-ntp test --json` in `ns` with `config`: the exit code and the checks by name.
fn diagnose(
    ns: &NetNs,
    config: &std::path::Path,
) -> (i32, serde_json::Map<String, serde_json::Value>) {
    let output = ns.run(
        SYHUB_NTP,
        &["test", "--json", "--config", path_str(config)],
        Duration::from_secs(60),
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
    let checks = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c.clone()))
        .collect();
    (output.status.code().unwrap_or(-1), checks)
}

fn verdict(checks: &serde_json::Map<String, serde_json::Value>, name: &str) -> String {
    checks.get(name).unwrap_or_else(|| panic!("no check {name:?} in {checks:?}"))["verdict"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_checks_pass_on_a_working_hub_and_each_failure_is_reported() {
    let hub = NetNs::new("diaghub");
    let upstream = NetNs::new("diagup");
    hub.link(("up0", "10.88.0.1/24"), &upstream, ("hub0", "10.88.0.2/24"));
    let _chronyd = Chronyd::server(&upstream, 123, 2);
    let source =
        "[[source]]\nmode = \"server\"\naddress = \"10.88.0.2\"\nminpoll = 1\nmaxpoll = 1\n\n";
    let daemon =
        Daemon::start(SYHUB_NTP, &hub, &test_config(&["0.0.0.0:123", "[::]:123"], source, ""));
    daemon.wait_for_status(Duration::from_secs(30), "synchronised", |s| s["synchronised"] == true);
    // A copy of its config that outlives the daemon's own directory.
    let dir = TempDir::new("diagcfg");
    let config = dir
        .write("config.toml", &std::fs::read_to_string(daemon.dir().join("config.toml")).unwrap());

    let (code, checks) = diagnose(&hub, &config);
    for name in [
        "config valid",
        "daemon running",
        "UDP 123 bound",
        "firewall open",
        "upstream 10.88.0.2",
        "synchronised",
        "answers on 10.88.0.1:123",
        "answers on 127.0.0.1:123",
        "no other time daemon",
    ] {
        assert_eq!(verdict(&checks, name), "PASS", "{name}: {:?}", checks[name]);
    }
    assert!(checks["UDP 123 bound"]["detail"].as_str().unwrap().contains("syhub-ntp"));
    assert_eq!(code, 0, "{checks:?}");

    // Stopped: the daemon and the port fail, with what to do.
    daemon.stop();
    let (code, checks) = diagnose(&hub, &config);
    assert_eq!(code, 1);
    assert_eq!(verdict(&checks, "daemon running"), "FAIL");
    assert!(checks["daemon running"]["fix"].as_str().unwrap().contains("start"));
    assert_eq!(verdict(&checks, "UDP 123 bound"), "FAIL");

    // The port taken by another program (this test).
    let squatter = hub.udp_socket("0.0.0.0:123");
    let (code, checks) = diagnose(&hub, &config);
    assert_eq!(code, 1);
    let port = &checks["UDP 123 bound"];
    assert_eq!(port["verdict"], "FAIL", "{port}");
    assert!(port["detail"].as_str().unwrap().contains("taken by"), "{port}");
    assert!(
        port["detail"].as_str().unwrap().contains(&format!("pid {}", std::process::id())),
        "{port}"
    );
    drop(squatter);

    // An upstream nobody answers at.
    let source = "[[source]]\nmode = \"server\"\naddress = \"10.88.0.99\"\n\n";
    let lonely = dir.write_config("lonely.toml", &test_config(&["0.0.0.0:123"], source, ""));
    let (code, checks) = diagnose(&hub, &lonely);
    assert_eq!(code, 1);
    let upstream = &checks["upstream 10.88.0.99"];
    assert_eq!(upstream["verdict"], "FAIL", "{upstream}");
    assert!(upstream["fix"].as_str().unwrap().contains("internet connection"));
}

#[test]
fn a_user_other_than_root_is_told_what_was_not_checked_and_never_to_stop_the_daemon() {
    let hub = NetNs::new("diaguser");
    let keys = TempDir::new("diagkeys");
    let keys_file = keys.write("ntp.keys", "1 SHA1 6f2c1d0e9a8b7c6d5e4f30211203f4e5d6c7b8a9\n");
    std::fs::set_permissions(&keys_file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .unwrap();
    let config = test_config(&["0.0.0.0:123"], "", "")
        + &format!("\n[auth]\nkeys_file = \"{}\"\n", path_str(&keys_file));
    let daemon = Daemon::start(SYHUB_NTP, &hub, &config);
    let config = daemon.dir().join("config.toml");
    // nobody, in the hub's namespace: root's processes and the keys file are hidden from it.
    let output = hub.run(
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            SYHUB_NTP,
            "test",
            "--json",
            "--config",
            path_str(&config),
        ],
        Duration::from_secs(60),
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
    let checks: serde_json::Map<String, serde_json::Value> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c.clone()))
        .collect();
    eprintln!("{checks:#?}");
    assert!(!json.to_string().contains("stop and disable"), "{json}");
    assert_eq!(verdict(&checks, "config valid"), "PASS");
    assert_eq!(verdict(&checks, "keys file"), "WARN");
    assert_eq!(verdict(&checks, "daemon running"), "PASS");
    for name in ["UDP 123 bound", "firewall open"] {
        assert_eq!(verdict(&checks, name), "WARN", "{name}");
        assert!(checks[name]["fix"].as_str().unwrap().contains("sudo syhub-ntp test"), "{name}");
    }
    assert!(checks["UDP 123 bound"]["detail"].as_str().unwrap().contains("cannot see"));
    assert_eq!(verdict(&checks, "answers on 127.0.0.1:123"), "PASS");
    daemon.stop();
}
