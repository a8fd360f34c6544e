//! Accuracy through the impairment relay: chronyd (`-x`) serves, the relay between it and our
//! daemon (observe mode) shifts the server's timestamps by a known amount or delays the two
//! directions unequally, and our estimate must land where the arithmetic says, within 0.5 ms.
//! The relay sends each datagram a little after it is due, by more when the machine is busy; it
//! counts by how much, and half the difference between the directions comes out of each reading.
//! What is left moves by a few hundred microseconds on a loaded machine (0.1 ms was missed by
//! 16 µs under load), so the tolerance is half a millisecond: still far below the errors it
//! guards against (a shift or an asymmetry applied the wrong way is off by milliseconds). The
//! precise figure is the accuracy benchmark's (`cargo bench --bench accuracy -- --direct`).

use std::time::Duration;
use syhub_ntp_testkit::*;

/// The binary under test.
const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

const TOLERANCE: f64 = 500e-6;

/// Runs our daemon against the relay with `config` in force and returns its settled offset
/// estimate: the mean of ten readings taken once it has been synchronised for a while, less the
/// asymmetry the relay's own lateness added meanwhile.
fn settled_offset(ns: &NetNs, relay: &Relay, config: RelayConfig) -> f64 {
    relay.set_config(config);
    let start = relay.stats();
    let source = format!(
        "[[source]]\nmode = \"server\"\naddress = \"{}\"\nminpoll = 1\nmaxpoll = 1\n\n",
        relay.listen_addr()
    );
    let daemon = Daemon::start(SYHUB_NTP, ns, &test_config(&["127.0.0.1:123"], &source, ""));
    daemon.wait_for_status(Duration::from_secs(30), "synchronised", |s| s["synchronised"] == true);
    std::thread::sleep(Duration::from_secs(20));
    let mut readings = Vec::new();
    for _ in 0..10 {
        readings.push(daemon.status()["offset_seconds"].as_f64().expect("offset"));
        std::thread::sleep(Duration::from_millis(500));
    }
    daemon.stop();
    let end = relay.stats();
    let late_to_server = end.to_server.mean_lateness_since(&start.to_server).as_secs_f64();
    let late_to_client = end.to_client.mean_lateness_since(&start.to_client).as_secs_f64();
    let offset = readings.iter().sum::<f64>() / readings.len() as f64;
    eprintln!(
        "{config:?}: offset {offset:.7} s, relay late by {late_to_server:.7} s to the server, \
         {late_to_client:.7} s back"
    );
    offset - (late_to_server - late_to_client) / 2.0
}

#[test]
fn a_known_shift_and_a_known_asymmetry_are_measured_to_half_a_millisecond() {
    let ns = NetNs::new("relay");
    let _chronyd = Chronyd::server(&ns, 11123, 1);
    let relay = Relay::start(
        &ns,
        "127.0.0.1:0",
        "127.0.0.1:11123".parse().unwrap(),
        RelayConfig::default(),
    );

    // What bias is left with nothing added (the two daemons' own, and the part of the relay's
    // not counted as lateness; a few tens of microseconds), measured before and after each case
    // and subtracted.
    let bias = |ns: &NetNs, relay: &Relay| {
        let bias = settled_offset(ns, relay, RelayConfig::default());
        assert!(bias.abs() < 500e-6, "the relay itself is biased by {bias} s");
        bias
    };
    let before = bias(&ns, &relay);

    // The server's timestamps 7.5 ms ahead: the server is 7.5 ms ahead.
    let shifted =
        settled_offset(&ns, &relay, RelayConfig { server_shift: 0.0075, ..RelayConfig::default() });
    let between = bias(&ns, &relay);
    let expected = 0.0075 + (before + between) / 2.0;
    assert!(
        (shifted - expected).abs() < TOLERANCE,
        "measured {shifted} s for a 7.5 ms shift (relay bias {before} s, then {between} s)"
    );

    // 3 ms to the server, 1 ms back: NTP cannot tell asymmetry from offset, so the estimate is
    // off by half the difference, +1 ms, and no more.
    let asymmetric = RelayConfig {
        to_server: Impairment { fixed: Duration::from_millis(3), ..Impairment::NONE },
        to_client: Impairment { fixed: Duration::from_millis(1), ..Impairment::NONE },
        ..RelayConfig::default()
    };
    let measured = settled_offset(&ns, &relay, asymmetric);
    let after = bias(&ns, &relay);
    let expected = 0.001 + (between + after) / 2.0;
    assert!(
        (measured - expected).abs() < TOLERANCE,
        "measured {measured} s for 3 ms / 1 ms (relay bias {between} s, then {after} s)"
    );
}
