//! Real NTP implementations from Debian's packages against ours, all inside a network namespace the
//! test creates and under `setpriv --bounding-set -sys_time`: chronyd, ntpdig and ntpdate accept our
//! time, and our `query` accepts chronyd's.

use syhub_ntp_testkit::*;

use std::time::Duration;

/// The binary under test.
const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

const ONE_MS: f64 = 0.001;

fn require(tool: &str) {
    let found =
        std::process::Command::new("sh").args(["-c", &format!("command -v {tool}")]).output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "`{tool}` is not installed: run ./scripts/test.sh, which installs chrony, ntpsec-ntpdig and ntpsec-ntpdate"
    );
}

/// The offset chronyd -Q reports: "System clock wrong by -0.000012 seconds (ignored)".
fn chronyd_offset(stderr: &str) -> Option<f64> {
    let rest = stderr.split("System clock wrong by ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn chronyd_accepts_our_time_over_ipv4_and_ipv6() {
    require("chronyd");
    let ns = NetNs::new("chronyc");
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config_on_port_123(""));
    for server in ["127.0.0.1", "::1"] {
        let directive = format!("server {server} port 123 iburst minpoll -6 maxpoll -6");
        let output = ns.run(
            "chronyd",
            &["-Q", "-t", "10", "-f", "/dev/null", &directive],
            Duration::from_secs(20),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "chronyd -Q failed against {server}:\n{stderr}");
        let offset =
            chronyd_offset(&stderr).unwrap_or_else(|| panic!("no offset from chronyd:\n{stderr}"));
        assert!(offset.abs() < ONE_MS, "chronyd measured {offset} s against {server}");
    }
    let log = daemon.stop();
    assert!(counter_in_log(&log, "answered") >= 2);
}

#[test]
fn ntpdig_accepts_our_time_over_ipv4_and_ipv6() {
    require("ntpdig");
    let ns = NetNs::new("ntpdig");
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config_on_port_123(""));
    for server in ["127.0.0.1", "::1"] {
        let output = ns.run("ntpdig", &["-j", "-t", "3", server], Duration::from_secs(10));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "ntpdig failed: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: serde_json::Value = serde_json::from_str(stdout.trim()).expect("ntpdig JSON");
        let offset = json["offset"].as_f64().expect("offset");
        // ntpdig stamps in Python: on a busy machine its own scheduling delays show up as
        // offset, and its "precision" (the synchronisation distance, half the delay and more)
        // bounds them.
        let distance = json["precision"].as_f64().expect("distance");
        assert!(
            offset.abs() < ONE_MS + distance,
            "ntpdig measured {offset} s ± {distance} s against {server}"
        );
        assert_eq!(json["stratum"], 10);
        assert_eq!(json["leap"], "no-leap");
    }
    daemon.stop();
}

#[test]
fn ntpdate_query_accepts_our_time() {
    require("ntpdate");
    let ns = NetNs::new("ntpdate");
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config_on_port_123(""));
    let output = ns.run("ntpdate", &["-q", "127.0.0.1"], Duration::from_secs(10));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "ntpdate -q failed: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // "2026-11-25 20:32:45.331049 (+0000) -0.000010 +/- 0.000121 127.0.0.1 s10 no-leap"
    let fields: Vec<&str> = stdout.split_whitespace().collect();
    let offset: f64 = fields[3].parse().expect("offset field");
    let distance: f64 = fields[5].parse().expect("distance field");
    assert!(offset.abs() < ONE_MS + distance, "ntpdate measured {offset} s ± {distance} s");
    assert!(stdout.contains(" s10 "), "{stdout}");
    daemon.stop();
}

#[test]
fn ntpdig_refuses_our_answer_when_we_are_honestly_unsynchronised() {
    require("ntpdig");
    let ns = NetNs::new("unsync");
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config_on_port_123("enabled = false\n"));
    let output = ns.run("ntpdig", &["-j", "-t", "2", "127.0.0.1"], Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "ntpdig accepted an unsynchronised server");
    assert!(stderr.contains("Response dropped"), "{stderr}");

    let output = ns.run(SYHUB_NTP, &["query", "--json", "127.0.0.1"], Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(3), "query exit code for an unsynchronised server");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("query JSON");
    assert_eq!(json["synchronised"], false);
    assert_eq!(json["stratum"], 16);
    assert_eq!(json["leap"], "unsynchronised");
    daemon.stop();
}

#[test]
fn our_query_accepts_chronyd_time() {
    require("chronyd");
    let ns = NetNs::new("query");
    let mut chronyd = Chronyd::server(&ns, 11123, 10);
    let mut last = None;
    // chronyd answers within a fraction of a second of starting; allow a few tries for that.
    for _ in 0..20 {
        let output = ns.run(
            SYHUB_NTP,
            &["query", "--json", "--timeout", "1", "127.0.0.1:11123"],
            Duration::from_secs(5),
        );
        if output.status.success() {
            last = Some(output);
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = last
        .unwrap_or_else(|| panic!("chronyd never answered our query:\n{}", chronyd.process.log()));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("query JSON");
    let offset = json["offset_seconds"].as_f64().expect("offset");
    assert!(offset.abs() < ONE_MS, "our query measured {offset} s against chronyd");
    assert_eq!(json["stratum"], 10);
    assert_eq!(json["synchronised"], true);
    assert_eq!(json["leap"], "none");
    assert_eq!(json["reference_id"], "127.127.1.1");
    assert!(json["delay_seconds"].as_f64().unwrap() < 0.01);

    // The plain-text form too, over IPv6.
    let output = ns.run(SYHUB_NTP, &["query", "[::1]:11123"], Duration::from_secs(5));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("stratum        10") && stdout.contains("offset"), "{stdout}");
    chronyd.process.stop_with(nix::sys::signal::Signal::SIGTERM);
}

#[test]
fn query_without_an_answer_times_out_with_exit_code_1() {
    let ns = NetNs::new("noanswer");
    let output = ns.run(
        SYHUB_NTP,
        &["query", "--timeout", "0.5", "127.0.0.1:11123"],
        Duration::from_secs(5),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no answer from 127.0.0.1:11123"), "{stderr}");
}

#[test]
fn the_chrony_line_from_clients_config_works_in_chronyd() {
    require("chronyd");
    let ns = NetNs::new("cliconf");
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config_on_port_123(""));
    let output = std::process::Command::new(SYHUB_NTP)
        .args(["clients-config", "--address", "127.0.0.1", "--only", "chrony", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let line = json["clients"][0]["text"].as_str().unwrap().trim().to_owned();
    assert_eq!(line, "server 127.0.0.1 iburst");
    let output =
        ns.run("chronyd", &["-Q", "-t", "10", "-f", "/dev/null", &line], Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && chronyd_offset(&stderr).is_some(), "{stderr}");
    daemon.stop();
}

#[test]
fn the_dnsmasq_lines_from_clients_config_pass_dnsmasqs_own_check() {
    require("dnsmasq");
    let dir = TempDir::new("dnsmasqconf");
    for address in ["192.168.1.10", "fd00::2", "hub.lan"] {
        let output = std::process::Command::new(SYHUB_NTP)
            .args(["clients-config", "--address", address, "--only", "dnsmasq", "--json"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let text = json["clients"][0]["text"].as_str().unwrap();
        let conf = dir.write("ntp.conf", text);
        let check = std::process::Command::new("dnsmasq")
            .args(["--test", &format!("--conf-file={}", path_str(&conf))])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&check.stderr);
        assert!(
            check.status.success() && said.contains("syntax check OK"),
            "{address}: {text}\n{said}"
        );
    }
    let refused = std::process::Command::new(SYHUB_NTP)
        .args(["clients-config", "--address", "hub;reboot"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "a bad --address is a usage error");
}

/// The default config's rate limit (`burst = 8`, `minimum = 2`, `average = 8`) on both
/// families.
fn rate_limited_config() -> String {
    let config = config_on_port_123("");
    assert!(config.contains("[server.rate_limit]\nenabled = false\n"));
    config
        .replace("[server.rate_limit]\nenabled = false\n", "[server.rate_limit]\nenabled = true\n")
}

#[test]
fn a_burst_of_eight_is_answered_the_ninth_kissed_and_real_clients_get_every_answer() {
    require("chronyd");
    require("ntpdig");
    require("ntpdate");
    let ns = NetNs::new("burst");

    // Eight requests back to back from one address, each sent as the previous answer arrives:
    // all answered with time; the ninth gets a RATE kiss.
    let daemon = Daemon::start(SYHUB_NTP, &ns, &rate_limited_config());
    let socket = ns.udp_socket("127.0.0.1:0");
    socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut replies = Vec::new();
    for serial in 1..=9u64 {
        socket.send_to(&raw_request(4, 3, serial), "127.0.0.1:123").unwrap();
        let mut buf = [0u8; 128];
        let (len, _) = socket.recv_from(&mut buf).expect("an answer or a kiss to each of nine");
        replies.push(buf[..len].to_vec());
    }
    for (n, reply) in replies[..8].iter().enumerate() {
        assert_eq!(reply[1], 10, "request {} of the burst answered with time: {reply:?}", n + 1);
    }
    assert_eq!((replies[8][1], &replies[8][12..16]), (0, &b"RATE"[..]), "the ninth is kissed");
    assert_eq!(daemon.status()["requests"]["rate_limited"], 1);
    daemon.stop();

    // Real clients, each from a fresh server: none is limited.
    let every_answer = |client: &str, run: &dyn Fn() -> std::process::Output| {
        let daemon = Daemon::start(SYHUB_NTP, &ns, &rate_limited_config());
        let output = run();
        assert!(
            output.status.success(),
            "{client} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let requests = &daemon.status()["requests"];
        assert_eq!(requests["rate_limited"], 0, "{client}: {requests}");
        daemon.stop();
    };
    every_answer("chronyd -Q iburst", &|| {
        let directive = "server 127.0.0.1 port 123 iburst";
        ns.run(
            "chronyd",
            &["-Q", "-t", "20", "-f", "/dev/null", directive],
            Duration::from_secs(30),
        )
    });
    every_answer("ntpdate -q", &|| {
        ns.run("ntpdate", &["-q", "127.0.0.1"], Duration::from_secs(10))
    });
    every_answer("ntpdig", &|| {
        ns.run("ntpdig", &["-t", "3", "127.0.0.1"], Duration::from_secs(10))
    });
}
