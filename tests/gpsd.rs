//! gpsd for real: Debian's gpsd reads NMEA sentences that `tests/gpsd/nmea_feed.py` writes into a
//! FIFO once a second, with the current time 30 ms ahead, and writes the NTP shared-memory segment
//! of unit 0; our daemon in observe mode reads it and serves stratum 1 with the GPS as reference.
//! gpsd, the feeder and our daemon share a private IPC namespace (no other program's segments are
//! seen or touched) and gpsd and our daemon a network namespace, both without CAP_SYS_TIME.
//!
//! gpsd 3.22 sends chrony SOCK samples only for PPS on serial and USB devices, never for NMEA time
//! and never for a FIFO: the SOCK input is tested with a sender of our own (tests/refclock.rs).

use std::process::Command;
use std::time::Duration;
use syhub_ntp_testkit::*;

const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");
const FEEDER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gpsd/nmea_feed.py");
const GPSD: &str = "/usr/sbin/gpsd";

/// The NMEA time the feeder writes, ahead of the system clock.
const AHEAD_MS: f64 = 30.0;

#[test]
fn gpsd_shared_memory_is_read_and_the_hub_serves_stratum_1() {
    require_namespaces();
    assert!(
        std::path::Path::new(GPSD).exists(),
        "{GPSD} is missing: scripts/test.sh installs Debian's gpsd"
    );
    std::thread::spawn(|| {
        // This thread and everything it starts get an IPC namespace of their own.
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWIPC).expect("unshare(CLONE_NEWIPC)");
        let ns = NetNs::new("gpsd");
        let dir = TempDir::new("gpsd");
        let fifo = dir.0.join(format!("syhubgps{}", std::process::id()));
        let made = Command::new("mkfifo").arg("-m").arg("600").arg(&fifo).status().unwrap();
        assert!(made.success());

        // gpsd as root (so it writes unit 0, root-only), in the foreground, not waiting for a
        // client, and not probing the FIFO with bytes of its own.
        let mut gpsd = ns.command(GPSD);
        gpsd.args(["-N", "-n", "-b"]).arg(&fifo);
        let gpsd = Process::spawn(gpsd);
        let mut feeder = Command::new("python3");
        feeder.arg(FEEDER).arg(&fifo).arg("90").arg("--offset-ms").arg(AHEAD_MS.to_string());
        let feeder = Process::spawn(feeder);

        let sources = "[[source]]\nmode = \"gpsd-shm\"\nunit = 0\npoll = 2\n";
        let daemon = Daemon::start(
            SYHUB_NTP,
            &ns,
            &test_config(&["127.0.0.1:123"], sources, "enabled = false\n"),
        );
        let status = daemon.wait_for_status(Duration::from_secs(60), "the GPS selected", |s| {
            s["stratum"] == 1
                && s["peers"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p["state"] == "system peer"))
        });
        let peer = &status["peers"][0];
        assert_eq!(
            (peer["kind"].as_str(), peer["name"].as_str()),
            (Some("gpsd-shm"), Some("SHM(0)"))
        );
        assert_eq!(status["reference_id"], "GPS", "{status}");
        // gpsd hands over the feeder's time less the ~0.4 ms the sentence takes to arrive.
        let offset = peer["offset_seconds"].as_f64().unwrap();
        println!("GPS offset through gpsd: {:.3} ms (NMEA {AHEAD_MS} ms ahead)", offset * 1e3);
        assert!((offset * 1e3 - AHEAD_MS).abs() < 5.0, "offset {offset} s: {status}");
        let answer = ns.run("ntpdig", &["-t", "2", "127.0.0.1"], Duration::from_secs(10));
        let text = String::from_utf8_lossy(&answer.stdout);
        assert!(text.contains(" s1 "), "ntpdig: {text}");

        daemon.stop();
        drop(feeder);
        drop(gpsd);
    })
    .join()
    .unwrap();
}
