//! The devices view against real clients, each in a namespace of its own linked to the hub:
//! ntpdig and ntpdate as they are (in sync), ntpdig and ntpdate with their clocks 5 s ahead through
//! libfaketime and a raw client sending a transmit time 5 s ahead (off), chronyd (random transmit) and an
//! Arduino-style zero transmit (unknown), and a client that stops (silent) while another keeps
//! asking. Every surface shows them: the CLI, the HTTP API, /metrics, the dashboard in Chromium
//! (phone width too) and MQTT's summary through Mosquitto.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use syhub_ntp_proto::time::{NtpDuration, NtpTimestamp};
use syhub_ntp_testkit::*;

/// The binary under test.
const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

/// Seconds without a request before a one-shot client is silent, for this test.
const SILENT_AFTER: u64 = 40;

/// The hub and one namespace per client: client `i` is 10.60.i.2, and reaches the hub at
/// 10.60.i.1.
struct Lan {
    hub: NetNs,
    clients: Vec<NetNs>,
}

impl Lan {
    fn new(count: u8) -> Self {
        let hub = NetNs::new("devh");
        let clients = (1..=count)
            .map(|i| {
                let client = NetNs::new(&format!("dev{i}"));
                hub.link(
                    (&format!("h{i}"), &format!("10.60.{i}.1/24")),
                    &client,
                    (&format!("c{i}"), &format!("10.60.{i}.2/24")),
                );
                client
            })
            .collect();
        Self { hub, clients }
    }

    fn client(&self, i: usize) -> &NetNs {
        &self.clients[i - 1]
    }
}

fn hub_address(i: usize) -> String {
    format!("10.60.{i}.1")
}

/// Our clock now, shifted by `shift` seconds, as an NTP timestamp.
fn ntp_now(shift: f64) -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let stamp = NtpTimestamp::from_unix(now.as_secs() as i64, now.subsec_nanos());
    (stamp + NtpDuration::from_seconds_f64(shift)).to_bits()
}

/// `syhub-ntp clients --json` from the daemon's control socket.
fn devices(daemon: &Daemon) -> Vec<serde_json::Value> {
    let mut command = std::process::Command::new(SYHUB_NTP);
    command.args(["clients", "--json", "--socket"]).arg(daemon.dir().join("control.sock"));
    let output = run_with_timeout(command, Duration::from_secs(10));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap().as_array().unwrap().clone()
}

fn device<'a>(list: &'a [serde_json::Value], address: &str) -> &'a serde_json::Value {
    list.iter()
        .find(|d| d["address"] == address)
        .unwrap_or_else(|| panic!("no {address} in {list:#?}"))
}

fn curl(ns: &NetNs, url: &str) -> String {
    let output = ns.run("curl", &["-sSf", "--max-time", "5", url], Duration::from_secs(10));
    assert!(output.status.success(), "curl {url}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8")
}

/// The retained devices summary on the hub's broker.
fn mqtt_summary(ns: &NetNs) -> Option<serde_json::Value> {
    let args = ["-h", "127.0.0.1", "-p", "1883", "-t", "syhub/ntp/devices", "-C", "1", "-W", "5"];
    let output = ns.run("mosquitto_sub", &args, Duration::from_secs(10));
    serde_json::from_slice(&output.stdout).ok()
}

/// A raw client in `ns` sending one request with its transmit time `shift` seconds from ours
/// (`None`: zero, as Arduino's and lwIP's SNTP do), version `version`.
fn raw_ask(ns: &NetNs, source: &str, hub: &str, version: u8, shift: Option<f64>) {
    let socket = ns.udp_socket(&format!("{source}:0"));
    let transmit = shift.map_or(0, ntp_now);
    socket.send_to(&raw_request(version, 3, transmit), format!("{hub}:123")).unwrap();
    let mut reply = [0u8; 128];
    let (len, _) = socket.recv_from(&mut reply).expect("an answer");
    assert_eq!(len, 48);
}

#[test]
fn devices_are_told_apart_by_their_clocks_on_every_surface() {
    for tool in ["ntpdig", "ntpdate", "faketime", "chronyd", "mosquitto", "chromium"] {
        assert!(
            std::process::Command::new("which")
                .arg(tool)
                .output()
                .is_ok_and(|o| o.status.success()),
            "`{tool}` is not installed: run ./scripts/test.sh, which installs it"
        );
    }
    let lan = Lan::new(7);
    let _broker = Mosquitto::start(&lan.hub, 1883);
    let config = config_on_port_123("")
        + "\n[http]\nlisten = [\"127.0.0.1:8123\"]\n"
        + "\n[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\ninterval = 1\n"
        + &format!("\n[clients]\nsilent_after = {SILENT_AFTER}\n")
        + "names = { \"10.60.1.2\" = \"greenhouse-esp32\" }\n";
    let daemon = Daemon::start(SYHUB_NTP, &lan.hub, &config);

    // chronyd's iburst takes seconds: it runs beside the others (and gives up by itself).
    let directive = format!("server {} port 123 iburst", hub_address(5));
    let chronyd = lan
        .client(5)
        .command("chronyd")
        .args(["-Q", "-t", "15", "-f", "/dev/null", directive.as_str()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("chronyd");
    let ntpdig =
        lan.client(1).run("ntpdig", &["-t", "2", &hub_address(1)], Duration::from_secs(10));
    assert!(ntpdig.status.success(), "{}", String::from_utf8_lossy(&ntpdig.stderr));
    let ntpdate = lan.client(2).run("ntpdate", &["-q", &hub_address(2)], Duration::from_secs(15));
    assert!(ntpdate.status.success(), "{}", String::from_utf8_lossy(&ntpdate.stderr));
    let ahead = lan.client(3).run(
        "faketime",
        &["-f", "+5s", "ntpdig", "-t", "2", &hub_address(3)],
        Duration::from_secs(15),
    );
    let ahead_out = String::from_utf8_lossy(&ahead.stdout);
    assert!(ahead.status.success(), "{ahead_out} {}", String::from_utf8_lossy(&ahead.stderr));
    // ntpdig itself sees the shift: its own offset is about -5 s.
    assert!(ahead_out.contains("-5.0") || ahead_out.contains("-4.9"), "{ahead_out}");
    let ahead = lan.client(7).run(
        "faketime",
        &["-f", "+5s", "ntpdate", "-q", &hub_address(7)],
        Duration::from_secs(15),
    );
    let ahead_out = String::from_utf8_lossy(&ahead.stdout);
    assert!(ahead.status.success(), "{ahead_out} {}", String::from_utf8_lossy(&ahead.stderr));
    assert!(ahead_out.contains("-5.0") || ahead_out.contains("-4.9"), "{ahead_out}");
    raw_ask(lan.client(6), "10.60.6.2", &hub_address(6), 3, None);
    raw_ask(lan.client(6), "10.60.6.2", &hub_address(6), 3, None);

    // The raw client 5 s ahead keeps asking every 2 s (bounded: at most 90 requests).
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let stop = stop.clone();
        let socket = lan.client(4).udp_socket("10.60.4.2:0");
        std::thread::spawn(move || {
            for _ in 0..90 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let request = raw_request(4, 3, ntp_now(5.0));
                socket.send_to(&request, format!("{}:123", hub_address(4))).unwrap();
                let mut reply = [0u8; 128];
                let _ = socket.recv_from(&mut reply);
                std::thread::sleep(Duration::from_secs(2));
            }
        })
    };
    let chronyd = chronyd.wait_with_output().unwrap();
    assert!(chronyd.status.success(), "{}", String::from_utf8_lossy(&chronyd.stderr));

    let list = devices(&daemon);
    eprintln!("{}", serde_json::to_string_pretty(&list).unwrap());
    let expect = |address: &str, state: &str| {
        let found = device(&list, address);
        assert_eq!(found["state"], state, "{address}: {found:#}");
        found
    };
    let esp = expect("10.60.1.2", "in sync");
    assert_eq!(esp["name"], "greenhouse-esp32");
    assert_eq!((esp["version"].as_u64(), esp["mode"].as_u64()), (Some(4), Some(3)));
    assert!(esp["clock_error_seconds"].as_f64().unwrap().abs() < 0.1, "{esp}");
    expect("10.60.2.2", "in sync");
    for address in ["10.60.3.2", "10.60.4.2", "10.60.7.2"] {
        let error = expect(address, "off")["clock_error_seconds"].as_f64().unwrap();
        assert!((error + 5.0).abs() < 0.5, "{address}: {error} s, not 5 s ahead");
    }
    let chrony = expect("10.60.5.2", "unknown");
    assert!(chrony["clock_error_seconds"].is_null(), "{chrony}");
    assert!(chrony["requests"].as_u64().unwrap() >= 2, "{chrony}");
    let arduino = expect("10.60.6.2", "unknown");
    assert_eq!((arduino["version"].as_u64(), arduino["requests"].as_u64()), (Some(3), Some(2)));
    // Sorted for the operator: the three that are off first.
    for first in &list[..3] {
        assert_eq!(first["state"], "off", "{list:#?}");
    }

    // The table says the same.
    let mut command = std::process::Command::new(SYHUB_NTP);
    command.args(["clients", "--socket"]).arg(daemon.dir().join("control.sock"));
    let table =
        String::from_utf8(run_with_timeout(command, Duration::from_secs(10)).stdout).unwrap();
    eprintln!("{table}");
    assert!(table.starts_with("7 device(s): 2 in sync, 3 off, 2 unknown, 0 silent"), "{table}");
    assert!(table.contains("greenhouse-esp32 (10.60.1.2)"), "{table}");
    assert!(table.contains("off by 5.0") || table.contains("off by 4.9"), "{table}");

    // HTTP: the list and the counts; /metrics only the counts.
    let api: serde_json::Value =
        serde_json::from_str(&curl(&lan.hub, "http://127.0.0.1:8123/api/ntp/clients")).unwrap();
    assert_eq!(api["summary"]["off"], 3, "{api}");
    assert_eq!(api["devices"].as_array().unwrap().len(), 7, "{api}");
    let metrics = curl(&lan.hub, "http://127.0.0.1:8123/metrics");
    assert!(metrics.contains("syhub_ntp_devices{state=\"off\"} 3\n"), "{metrics}");
    let largest: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("syhub_ntp_devices_largest_clock_error_seconds "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no largest error in {metrics}"));
    assert!((largest - 5.0).abs() < 0.5, "{largest}");
    assert!(!metrics.contains("10.60."), "no addresses in /metrics");

    // The dashboard, drawn by Chromium: the counts on top, one row per device.
    let dom =
        String::from_utf8(chromium(&lan.hub, "http://127.0.0.1:8123/", &["--dump-dom"]).stdout)
            .unwrap();
    assert!(dom.contains("data-loaded=\"true\""), "the page never loaded its data:\n{dom}");
    assert_eq!(dom.matches("<tr class=\"dev\"").count(), 7, "{dom}");
    assert_eq!(dom.matches("data-state=\"off\"").count(), 3, "{dom}");
    assert!(dom.contains(">3 off</span>"), "{dom}");
    assert!(dom.contains("greenhouse-esp32 (10.60.1.2)"), "{dom}");
    let artefacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    for (name, size) in [("devices.png", "1280,1000"), ("devices-phone.png", "390,1600")] {
        let shot = artefacts.join(name);
        let _ = std::fs::remove_file(&shot);
        let flags = [format!("--screenshot={}", path_str(&shot)), format!("--window-size={size}")];
        chromium(&lan.hub, "http://127.0.0.1:8123/", &[&flags[0], &flags[1]]);
        assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000), "no {name}");
    }

    // MQTT: the retained summary, no addresses.
    let summary = (0..10)
        .filter_map(|_| mqtt_summary(&lan.hub))
        .find(|s| s["off"] == 3 && s["devices"] == 7)
        .expect("a devices summary with 7 devices, 3 off, on syhub/ntp/devices");
    assert_eq!((summary["in_sync"].as_u64(), summary["unknown"].as_u64()), (Some(2), Some(2)));

    // The ESP32 stops asking; the client 5 s ahead goes on. After the silent threshold the first
    // is silent, the second still off.
    daemon.wait_for_status(Duration::from_secs(SILENT_AFTER + 30), "the ESP32 silent", |_| {
        device(&devices(&daemon), "10.60.1.2")["state"] == "silent"
    });
    let list = devices(&daemon);
    assert_eq!(device(&list, "10.60.4.2")["state"], "off", "{list:#?}");
    let trend = device(&list, "10.60.4.2")["clock_errors"].as_array().unwrap().clone();
    assert!(!trend.is_empty(), "{list:#?}");
    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();
    daemon.stop();
}
