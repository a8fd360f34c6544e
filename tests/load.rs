//! The benchmark's load generator against real servers: every request it counts as answered was,
//! its emulated clients reach the server as distinct addresses, and its timings are sane. The
//! comparison itself is `scripts/bench.sh`, not a test.

use std::net::SocketAddr;
use std::time::Duration;
use syhub_ntp_bench::load::{LoadConfig, LoadReport, run};
use syhub_ntp_testkit::*;

const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

fn load_inside(ns: &NetNs, server: &str, rate: f64, clients: u32) -> LoadReport {
    let config = LoadConfig {
        server: server.parse::<SocketAddr>().unwrap(),
        rate,
        duration: Duration::from_secs(1),
        clients,
        batch: 8,
        ..LoadConfig::default()
    };
    ns.spawn_inside(move || run(&config).expect("load run")).join().expect("load thread")
}

fn daemon_config(rate_limited: bool) -> String {
    test_config(&["0.0.0.0:123"], "", "")
        .replacen("[server]\n", "[server]\nthreads = 2\n", 1)
        .replacen("enabled = false", &format!("enabled = {rate_limited}"), 1)
}

#[test]
fn every_request_to_our_daemon_and_to_chronyd_is_answered_and_timed() {
    let ns = NetNs::new("load");
    let daemon = Daemon::start(SYHUB_NTP, &ns, &daemon_config(false));
    let chronyd = Chronyd::server(&ns, 1123, 10);
    for server in ["127.0.0.1:123", "127.0.0.1:1123"] {
        let report = load_inside(&ns, server, 4000.0, 512);
        assert!((3600..=4100).contains(&report.sent), "{server}: {report:?}");
        assert_eq!(report.answered, report.sent, "{server}: {report:?}");
        assert_eq!(report.unexpected, 0, "{server}: {report:?}");
        // Both answer with time: every answer has the server's own timestamps.
        assert_eq!(report.processing_us.count as u64, report.answered, "{server}: {report:?}");
        assert!(report.processing_us.p50 > 0.0 && report.processing_us.p99 < 50_000.0);
        assert!(report.latency_us.p50 > 0.0 && report.latency_us.p99 < 100_000.0);
        assert!(report.stamp_to_wire_us.p50 > -1.0, "{server}: stamped after it left? {report:?}");
    }
    drop(chronyd);
    let log = daemon.stop();
    assert!(counter_in_log(&log, "answered") >= 3600, "{log}");
}

#[test]
fn emulated_clients_are_distinct_addresses_to_the_rate_limit() {
    let ns = NetNs::new("loadlimit");
    let daemon = Daemon::start(SYHUB_NTP, &ns, &daemon_config(true));
    // 300 addresses asking ten times a second each for a second: each is answered with time for
    // its own burst of eight, then held back by the default limit (two seconds between requests
    // once the burst is spent).
    let report = load_inside(&ns, "127.0.0.1:123", 3000.0, 300);
    // (Round robin over the addresses: if fewer than 2 400 were sent, every one was answered.)
    assert_eq!(report.processing_us.count as u64, report.sent.min(300 * 8), "{report:?}");
    let status = daemon.status();
    let limited = status["requests"]["rate_limited"].as_u64().unwrap_or(0);
    let expected = report.sent.saturating_sub(300 * 8);
    assert!(limited + 10 >= expected, "{limited} limited of {expected}: {status} {report:?}");
    daemon.stop();
}
