//! Reference clocks end to end: our daemon in observe mode reads gpsd's two ways of handing over
//! time (the NTP shared-memory segment and the SOCK socket), here written by the test playing
//! gpsd's part, and serves stratum 1 with the GPS as its reference. Each test runs in a private
//! IPC namespace, so no other program's shared-memory segments are seen or touched.

use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use syhub_ntp_refclock::{ShmFields, ShmLayout, ShmWriter, SockLayout, encode_sock_sample};
use syhub_ntp_testkit::*;

const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

/// What the fake GPS says: the reference is this far ahead of the system clock.
const GPS_AHEAD: f64 = 0.020;

/// Moves the calling thread (and the processes and threads it starts) into a new IPC namespace.
fn private_ipc() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWIPC).expect("unshare(CLONE_NEWIPC)");
}

fn unix_now() -> (i64, u32) {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    (since.as_secs() as i64, since.subsec_nanos())
}

fn plus(time: (i64, u32), seconds: f64) -> (i64, u32) {
    let total = time.0 as f64 + f64::from(time.1) / 1e9 + seconds;
    (total.floor() as i64, ((total - total.floor()) * 1e9) as u32)
}

fn gps_peer(status: &serde_json::Value) -> Option<&serde_json::Value> {
    status["peers"].as_array()?.iter().find(|p| p["state"] == "system peer")
}

fn assert_serving_from_gps(daemon: &Daemon, kind: &str) {
    let status = daemon.wait_for_status(Duration::from_secs(60), "the GPS selected", |s| {
        gps_peer(s).is_some() && s["stratum"] == 1
    });
    let peer = gps_peer(&status).unwrap();
    assert_eq!(peer["kind"], kind, "{status}");
    assert_eq!(status["reference_id"], "GPS", "{status}");
    let offset = peer["offset_seconds"].as_f64().unwrap();
    assert!((offset - GPS_AHEAD).abs() < 0.002, "GPS offset {offset}, expected {GPS_AHEAD}");
    // A real client gets stratum 1 with the GPS as reference.
    let ns_name = daemon.netns().to_owned();
    let output = run_with_timeout(
        {
            let mut command = std::process::Command::new("ip");
            command.args(["netns", "exec", &ns_name, "ntpdig", "-t", "2", "127.0.0.1"]);
            command
        },
        Duration::from_secs(10),
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains(" s1 "), "ntpdig: {text}{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn gps_through_shared_memory_is_selected_and_served_at_stratum_1() {
    require_namespaces();
    std::thread::spawn(|| {
        private_ipc();
        let stop = Arc::new(AtomicBool::new(false));
        let feeder = fake_gpsd_unit_0(GPS_AHEAD, stop.clone());
        let ns = NetNs::new("refclock-shm");
        // Unit 1 has no writer: a GPS that delivers nothing.
        let sources = "[[source]]\nmode = \"gpsd-shm\"\nunit = 0\npoll = 1\n\n\
                       [[source]]\nmode = \"gpsd-shm\"\nunit = 1\nrefid = \"GPS1\"\npoll = 1\n";
        let daemon = Daemon::start(SYHUB_NTP, &ns, &config_on_port_123_with(sources));
        assert_serving_from_gps(&daemon, "gpsd-shm");
        // `syhub-ntp test` checks each reference clock in the running daemon, and never takes
        // one for a server to query.
        let output = ns.run(
            SYHUB_NTP,
            &["test", "--json", "--config", path_str(&daemon.dir().join("config.toml"))],
            Duration::from_secs(60),
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let check = |name: &str| {
            report["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).cloned()
        };
        let working = check("reference clock SHM(0)").expect("a check of SHM(0)");
        assert_eq!(working["verdict"], "PASS", "{report}");
        let silent = check("reference clock SHM(1)").expect("a check of SHM(1)");
        assert_eq!(silent["verdict"], "FAIL", "{report}");
        assert!(silent["fix"].as_str().unwrap().contains("gpsd"), "{silent}");
        assert!(check("upstream SHM(0)").is_none(), "{report}");
        assert!(check("leap seconds list").is_some(), "{report}");
        daemon.stop();
        stop.store(true, Ordering::Relaxed);
        feeder.join().unwrap();
    })
    .join()
    .unwrap();
}

#[test]
fn gps_through_a_sock_socket_is_selected_and_served_at_stratum_1() {
    require_namespaces();
    let ns = NetNs::new("refclock-sock");
    let dir = TempDir::new("refclock-sock");
    let socket = dir.0.join("chrony.ttyTEST.sock");
    let sources =
        format!("[[source]]\nmode = \"sock\"\npath = \"{}\"\npoll = 1\n", path_str(&socket));
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config_on_port_123_with(&sources));
    let sender = UnixDatagram::unbound().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let target = socket.clone();
    let feeder = std::thread::spawn(move || {
        while !stopped.load(Ordering::Relaxed) {
            let local = unix_now();
            let datagram = encode_sock_sample(
                SockLayout::NATIVE,
                local.0,
                i64::from(local.1 / 1000),
                GPS_AHEAD,
                false,
                0,
            );
            let _ = sender.send_to(&datagram, &target);
            // A pulse too, which this source has no pair to number: said once, then ignored.
            let pulse = encode_sock_sample(SockLayout::NATIVE, local.0, 0, 0.0, true, 0);
            let _ = sender.send_to(&pulse, &target);
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    assert_serving_from_gps(&daemon, "sock");
    let log = daemon.stop();
    assert_eq!(log.matches("nothing numbers their seconds").count(), 1, "{log}");
    stop.store(true, Ordering::Relaxed);
    feeder.join().unwrap();
}

/// Plays gpsd writing SHM unit 0 (in the calling thread's IPC namespace, which the writer thread
/// starts in) twice a second with the reference `ahead` seconds ahead of the clock, until `stop`.
/// Returns once the segment exists.
fn fake_gpsd_unit_0(ahead: f64, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let (created, segment_ready) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        let mut writer = ShmWriter::create(0x4E54_5030, ShmLayout::NATIVE).expect("segment");
        created.send(()).unwrap();
        while !stop.load(Ordering::Relaxed) {
            let local = unix_now();
            writer.write(&ShmFields::from_unix(plus(local, ahead), local, 0, -10));
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    segment_ready.recv().unwrap();
    writer
}

/// Our daemon on port 123 of the namespace, observe mode, with only `sources` and no local clock.
fn config_on_port_123_with(sources: &str) -> String {
    test_config(&["0.0.0.0:123"], sources, "enabled = false\n")
}

#[test]
fn pps_pulses_numbered_by_a_gps_that_is_50_ms_late_are_followed() {
    require_namespaces();
    std::thread::spawn(|| {
        private_ipc();
        let stop = Arc::new(AtomicBool::new(false));
        let ns = NetNs::new("refclock-pps");
        let dir = TempDir::new("refclock-pps");
        let socket = dir.0.join("chrony.pps0.sock");
        // The GPS: NMEA time 50 ms behind the clock (a late sentence, uncorrected).
        let gps_writer = fake_gpsd_unit_0(-0.050, stop.clone());
        let sources = format!(
            "[[source]]\nmode = \"gpsd-shm\"\nunit = 0\npoll = 1\n\n\
             [[source]]\nmode = \"sock\"\npath = \"{}\"\nrefid = \"PPS\"\npair = \"GPS\"\nprecision = -20\npoll = 1\nprefer = true\n",
            path_str(&socket)
        );
        let daemon = Daemon::start(SYHUB_NTP, &ns, &config_on_port_123_with(&sources));
        // Pulses as gpsd sends them for a PPS device: the system time of each edge. The edges
        // are made to fall 300 µs after the clock's whole seconds: the clock is that far ahead.
        let stopped = stop.clone();
        let target = socket.clone();
        let pulses = std::thread::spawn(move || {
            let sender = UnixDatagram::unbound().unwrap();
            while !stopped.load(Ordering::Relaxed) {
                let (seconds, _) = unix_now();
                let datagram =
                    encode_sock_sample(SockLayout::NATIVE, seconds, 300, -0.0003, true, 0);
                let _ = sender.send_to(&datagram, &target);
                std::thread::sleep(Duration::from_millis(1000));
            }
        });
        let status = daemon.wait_for_status(Duration::from_secs(60), "the PPS selected", |s| {
            gps_peer(s).is_some_and(|p| p["kind"] == "sock") && s["stratum"] == 1
        });
        let pps = gps_peer(&status).unwrap();
        let offset = pps["offset_seconds"].as_f64().unwrap();
        assert!((offset + 0.0003).abs() < 20e-6, "PPS offset {offset}: {status}");
        assert_eq!(status["reference_id"], "PPS", "{status}");
        let gps = status["peers"].as_array().unwrap().iter().find(|p| p["kind"] == "gpsd-shm");
        let gps = gps.expect("the GPS in the status");
        assert_eq!(gps["state"], "numbers PPS seconds", "{status}");
        assert!((gps["offset_seconds"].as_f64().unwrap() + 0.050).abs() < 0.002, "{status}");
        daemon.stop();
        stop.store(true, Ordering::Relaxed);
        gps_writer.join().unwrap();
        pulses.join().unwrap();
    })
    .join()
    .unwrap();
}
