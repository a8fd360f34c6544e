//! Synchronisation from real upstream servers: chronyd (`-x`, never touching the clock) in network
//! namespaces of the test's own, our daemon in observe mode in another, linked by veth pairs that
//! the test cuts and restores. Names resolve from a hosts file in the daemon's private mount
//! namespace, never from the machine's resolver.

use std::time::Duration;
use syhub_ntp_testkit::*;

/// The binary under test.
const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

const ONE_MS: f64 = 0.001;

/// A hub namespace linked to `count` upstream namespaces, upstream `i` at 10.200.i.2 reached
/// through the hub's interface `up{i}`, each running chronyd at `local stratum 3`.
struct Lan {
    hub: NetNs,
    _upstreams: Vec<(NetNs, Chronyd)>,
}

impl Lan {
    fn new(label: &str, count: usize) -> Self {
        let hub = NetNs::new(label);
        let upstreams = (1..=count)
            .map(|i| {
                let upstream = NetNs::new(&format!("{label}{i}"));
                hub.link(
                    (&format!("up{i}"), &format!("10.200.{i}.1/24")),
                    &upstream,
                    ("eth0", &format!("10.200.{i}.2/24")),
                );
                let chronyd = Chronyd::server(&upstream, 123, 3);
                (upstream, chronyd)
            })
            .collect();
        Self { hub, _upstreams: upstreams }
    }
}

fn server_source(address: &str) -> String {
    format!("[[source]]\nmode = \"server\"\naddress = \"{address}\"\nminpoll = 1\nmaxpoll = 1\n\n")
}

fn source_by_address<'a>(status: &'a serde_json::Value, address: &str) -> &'a serde_json::Value {
    status["peers"]
        .as_array()
        .and_then(|sources| {
            sources.iter().find(|s| s["address"].as_str().is_some_and(|a| a.starts_with(address)))
        })
        .unwrap_or_else(|| panic!("no source {address} in {status}"))
}

fn peer_address(status: &serde_json::Value) -> Option<String> {
    status["peers"]
        .as_array()?
        .iter()
        .find(|s| s["state"] == "system peer")
        .map(|s| s["address"].as_str().unwrap_or("").to_owned())
}

#[test]
fn synchronises_fails_over_holds_over_and_resynchronises() {
    let lan = Lan::new("sync", 2);
    let sources = server_source("10.200.1.2") + &server_source("10.200.2.2");
    let config = test_config(&["127.0.0.1:123"], &sources, "mode = \"holdover\"\n");
    // The kernel's flag is machine-wide: pretend it is unset, so only our own sync counts.
    let daemon = Daemon::start_with_env(
        SYHUB_NTP,
        &lan.hub,
        &config,
        &[("SYHUB_NTP_KERNEL_SYNC", "unsynchronised")],
    );

    // Both sources reach; one is selected; stratum = theirs + 1; one kernel clock, so ~0 offset.
    let status = daemon.wait_for_status(Duration::from_secs(20), "synchronised", |s| {
        s["synchronised"] == true
            && s["peers"].as_array().is_some_and(|v| v.iter().all(|s| s["reach"] != "0"))
    });
    assert_eq!(status["stratum"], 4, "{status}");
    assert!(status["offset_seconds"].as_f64().unwrap().abs() < ONE_MS, "{status}");
    assert_eq!(status["clock_mode"], "observe");
    let states: Vec<&str> =
        status["peers"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert!(states.contains(&"system peer") && states.contains(&"candidate"), "{states:?}");
    // The hub serves stratum 4 to its own clients, as ntpdig sees it.
    let output = lan.hub.run("ntpdig", &["-j", "-t", "2", "127.0.0.1"], Duration::from_secs(10));
    let served: serde_json::Value = serde_json::from_slice(&output.stdout).expect("ntpdig JSON");
    assert_eq!(served["stratum"], 4);

    // Cut the link to the system peer: the other server takes over.
    let first = peer_address(&status).expect("a system peer");
    let (cut, other) =
        if first.starts_with("10.200.1.2") { ("up1", "10.200.2.2") } else { ("up2", "10.200.1.2") };
    lan.hub.set_link(cut, false);
    let status = daemon.wait_for_status(Duration::from_secs(60), "failover", |s| {
        peer_address(s).is_some_and(|p| p.starts_with(other)) && s["synchronised"] == true
    });
    assert_eq!(status["stratum"], 4);
    assert_eq!(source_by_address(&status, &first)["state"], "unreachable");

    // Cut both: holdover on the local clock at stratum 10, its error bar growing.
    lan.hub.set_link(if cut == "up1" { "up2" } else { "up1" }, false);
    let status = daemon
        .wait_for_status(Duration::from_secs(60), "holdover", |s| s["status"] == "local clock");
    assert_eq!(
        (status["stratum"].as_u64(), status["reference_id"].as_str()),
        (Some(10), Some("LOCL"))
    );
    let output = lan.hub.run("ntpdig", &["-j", "-t", "2", "127.0.0.1"], Duration::from_secs(10));
    let served: serde_json::Value = serde_json::from_slice(&output.stdout).expect("ntpdig JSON");
    assert_eq!((served["stratum"].as_u64(), served["leap"].as_str()), (Some(10), Some("no-leap")));

    // Restore: synchronised again without a restart.
    lan.hub.set_link("up1", true);
    lan.hub.set_link("up2", true);
    let status = daemon
        .wait_for_status(Duration::from_secs(60), "resynchronised", |s| s["synchronised"] == true);
    assert_eq!(status["stratum"], 4);
    let log = daemon.stop();
    assert!(log.contains("serving the local clock at stratum 10"), "{log}");
}

#[test]
fn unsynchronised_until_the_first_sync_in_holdover_mode() {
    let lan = Lan::new("nosync", 1);
    lan.hub.set_link("up1", false);
    let config =
        test_config(&["127.0.0.1:123"], &server_source("10.200.1.2"), "mode = \"holdover\"\n");
    let daemon = Daemon::start_with_env(
        SYHUB_NTP,
        &lan.hub,
        &config,
        &[("SYHUB_NTP_KERNEL_SYNC", "unsynchronised")],
    );
    std::thread::sleep(Duration::from_secs(3));
    let status = daemon.status();
    assert_eq!(
        (status["status"].as_str(), status["stratum"].as_u64()),
        (Some("unsynchronised"), Some(16))
    );
    assert!(status["reason"].as_str().unwrap().contains("synchronised since boot"), "{status}");
    let output = lan.hub.run(SYHUB_NTP, &["query", "--json", "127.0.0.1"], Duration::from_secs(5));
    assert_eq!(output.status.code(), Some(3));
    lan.hub.set_link("up1", true);
    daemon.wait_for_status(Duration::from_secs(30), "synchronised", |s| s["synchronised"] == true);
    daemon.stop();
}

/// Runs our daemon in a private mount namespace whose /etc/hosts is `hosts` and which has no
/// resolver, so names resolve only from the test's own file.
fn start_with_hosts(ns: &NetNs, config: &str, hosts: &str) -> Daemon {
    let dir = TempDir::new("hosts");
    let hosts_path = dir.write("hosts", hosts);
    let wrapper = dir.write(
        "run.sh",
        &format!(
            "#!/bin/sh\nset -e\nexec unshare --mount --propagation private sh -c 'mount --bind {} /etc/hosts && \
             mount --bind /dev/null /etc/resolv.conf && exec {SYHUB_NTP} \"$@\"' -- \"$@\"\n",
            path_str(&hosts_path)
        ),
    );
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    let daemon = Daemon::start(path_str(&wrapper), ns, config);
    std::mem::forget(dir); // the daemon's mount namespace holds the hosts file; removed with /tmp
    daemon
}

#[test]
fn a_pool_name_gives_several_servers_and_a_dead_one_is_replaced() {
    let lan = Lan::new("pool", 3);
    let hosts = "10.200.1.2 ntp.hub.test\n10.200.2.2 ntp.hub.test\n10.200.3.2 ntp.hub.test\n";
    let pool = "[[source]]\nmode = \"pool\"\naddress = \"ntp.hub.test\"\nmax_sources = 2\nminpoll = 1\nmaxpoll = 1\n\n";
    let daemon = start_with_hosts(&lan.hub, &test_config(&["127.0.0.1:123"], pool, ""), hosts);
    let status =
        daemon.wait_for_status(Duration::from_secs(20), "two pool members synchronised", |s| {
            s["synchronised"] == true && s["peers"].as_array().is_some_and(|v| v.len() == 2)
        });
    assert_eq!(status["stratum"], 4);
    let members: Vec<String> = status["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["address"].as_str().unwrap().to_owned())
        .collect();
    assert!(members.iter().all(|m| m.starts_with("10.200.")), "{members:?}");
    assert!(
        status["peers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] == "ntp.hub.test" && s["kind"] == "pool")
    );

    // Kill one member's link: it is dropped and the third server takes its place.
    let dead = members[0].clone();
    let interface = format!(
        "up{}",
        &dead["10.200.".len()..dead["10.200.".len()..].find('.').unwrap() + "10.200.".len()]
    );
    lan.hub.set_link(&interface, false);
    let spare = (1..=3)
        .map(|i| format!("10.200.{i}.2"))
        .find(|a| !members.iter().any(|m| m.starts_with(a)))
        .unwrap();
    let status = daemon.wait_for_status(Duration::from_secs(90), "dead member replaced", |s| {
        let addresses: Vec<&str> = s["peers"]
            .as_array()
            .map(|v| v.iter().filter_map(|s| s["address"].as_str()).collect())
            .unwrap_or_default();
        addresses.len() == 2
            && addresses.iter().any(|a| a.starts_with(&spare))
            && !addresses.iter().any(|a| *a == dead)
    });
    assert!(status["synchronised"] == true || status["peers"].as_array().unwrap().len() == 2);
    let log = daemon.stop();
    assert!(log.contains("dropping ntp.hub.test"), "{log}");
}

/// Runs `syhub-ntp ARGS --socket SOCKET` of `daemon` inside `ns`; returns its stdout.
fn cli(ns: &NetNs, daemon: &Daemon, args: &[&str]) -> String {
    let socket = daemon.dir().join("control.sock");
    let mut full = args.to_vec();
    full.extend(["--socket", path_str(&socket)]);
    let output = ns.run(SYHUB_NTP, &full, Duration::from_secs(10));
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn a_pool_name_that_never_resolves_is_shown_with_why_and_losing_every_source_is_said_once() {
    const POOL: &str = "pool.syhub.invalid";
    let lan = Lan::new("lost", 1);
    let pool =
        format!("[[source]]\nmode = \"pool\"\naddress = \"{POOL}\"\nminpoll = 3\nmaxpoll = 6\n\n");
    let config = test_config(&["127.0.0.1:123"], &(server_source("10.200.1.2") + &pool), "")
        + "\n[http]\nlisten = [\"127.0.0.1:8124\"]\n";
    // Nothing but the hosts file and no name server: the name under .invalid fails at once.
    let mut daemon = start_with_hosts(&lan.hub, &config, "");
    let is_pool_row = |p: &serde_json::Value| p["name"] == POOL && p["state"] == "unresolved";
    let status =
        daemon.wait_for_status(Duration::from_secs(20), "synchronised, pool failed", |s| {
            s["synchronised"] == true
                && s["peers"].as_array().is_some_and(|v| v.iter().any(is_pool_row))
        });

    // The control socket's peers, the HTTP API and the status all carry the same row.
    let peers: serde_json::Value =
        serde_json::from_str(&cli(&lan.hub, &daemon, &["peers", "--json"])).expect("peers JSON");
    let output = lan.hub.run(
        "curl",
        &["-sSf", "--max-time", "5", "http://127.0.0.1:8124/api/ntp/status"],
        Duration::from_secs(10),
    );
    let http: serde_json::Value = serde_json::from_slice(&output.stdout).expect("HTTP status");
    for peers in [&peers, &status["peers"], &http["peers"]] {
        let row = peers
            .as_array()
            .and_then(|v| v.iter().find(|p| p["name"] == POOL))
            .unwrap_or_else(|| panic!("no {POOL} row in {peers}"));
        assert_eq!(
            (&row["address"], &row["kind"], &row["tally"], &row["reach"]),
            (&"".into(), &"pool".into(), &" ".into(), &"0".into()),
            "{row}"
        );
        assert_eq!((&row["stratum"], &row["reference_id"]), (&16.into(), &".POOL.".into()));
        assert_eq!(row["poll_log2"], 3, "{row}");
        assert!(row["detail"].as_str().is_some_and(|d| d.contains(POOL)), "{row}");
        assert!(row["offset_seconds"].is_null() && row["delay_seconds"].is_null(), "{row}");
    }
    assert_eq!(peers.as_array().unwrap().len(), 2, "{peers}");
    // The ntpq-like table: the pool's .POOL. row in line with the others, and why under it.
    let text = cli(&lan.hub, &daemon, &["peers"]);
    let lines: Vec<&str> = text.lines().collect();
    let row = lines.iter().find(|l| l.starts_with(&format!(" {POOL} "))).expect(&text);
    let header = lines[0];
    assert!(row[header.find("refid").unwrap()..].starts_with(".POOL. "), "{text}");
    // Right-aligned columns end where their heading ends, on every row of the table.
    for column in ["st", "poll", "reach", "refused"] {
        let end = header.find(column).unwrap() + column.len();
        for line in &lines[2..lines.len() - 1] {
            let ends_here = line.get(..end).is_some_and(|l| !l.ends_with(' '))
                && line.get(end..).is_some_and(|rest| rest.is_empty() || rest.starts_with(' '));
            assert!(ends_here, "{column} out of line in {line:?}:\n{text}");
        }
    }
    assert!(row.contains(".POOL.") && row.contains(" 16 p "), "{text}");
    let note = lines.last().unwrap();
    assert!(note.starts_with(&format!("{POOL} unresolved: ")) && note.contains(POOL), "{text}");

    // The dashboard, drawn by a real browser, shows the row and why.
    let url = "http://127.0.0.1:8124/";
    let dom = String::from_utf8(chromium(&lan.hub, url, &["--dump-dom"]).stdout).unwrap();
    assert_eq!(dom.matches("<tr class=\"peer\"").count(), 2, "{dom}");
    let reason = http["peers"][1]["detail"].as_str().unwrap();
    assert!(dom.contains(&format!("<small>{reason}</small>")), "{reason} not shown:\n{dom}");

    // The only server stops answering: said at once at warn, naming what is lost and what is
    // served now; the pool stays in the list with its reason.
    lan.hub.set_link("up1", false);
    let lost = daemon.process.wait_for_line("every source is lost", Duration::from_secs(60));
    assert!(lost.contains("WARN"), "{lost}");
    assert!(
        lost.contains("(2 configured)")
            && lost.contains("10.200.1.2:123 unreachable")
            && lost.contains(&format!("{POOL} unresolved (cannot resolve {POOL}"))
            && lost.contains("serving the local clock at stratum 10"),
        "{lost}"
    );
    // Once: the polls that follow, still unanswered, say nothing more.
    std::thread::sleep(Duration::from_secs(5));
    lan.hub.set_link("up1", true);
    let back = daemon.process.wait_for_line("answers again", Duration::from_secs(60));
    assert!(back.contains("INFO") && back.contains("10.200.1.2"), "{back}");
    let log = daemon.stop();
    assert_eq!(log.matches("every source is lost").count(), 1, "{log}");
    assert_eq!(log.matches("answers again").count(), 1, "{log}");
}

#[test]
fn iburst_gives_the_first_sync_within_ten_seconds_at_default_polling() {
    let lan = Lan::new("iburst", 1);
    let source = "[[source]]\nmode = \"server\"\naddress = \"10.200.1.2\"\n\n";
    let started = std::time::Instant::now();
    let daemon = Daemon::start(SYHUB_NTP, &lan.hub, &test_config(&["127.0.0.1:123"], source, ""));
    let status = daemon.wait_for_status(Duration::from_secs(10), "synchronised within 10 s", |s| {
        s["synchronised"] == true
    });
    eprintln!("synchronised after {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(status["poll_log2"], 6, "default polling: {status}");
    daemon.stop();
}

#[test]
fn the_drift_file_is_read_at_start_and_written_once_settled() {
    let lan = Lan::new("drift", 1);
    let dir = TempDir::new("drift");
    let drift = dir.write("drift", "250.000\n");
    let config = test_config(&["127.0.0.1:123"], &server_source("10.200.1.2"), "")
        .replace("drift_file = \"@DIR@/drift\"", &format!("drift_file = \"{}\"", path_str(&drift)));
    let daemon = Daemon::start(SYHUB_NTP, &lan.hub, &config);
    daemon
        .process
        .lines
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains("+250.000 ppm from the drift file"))
        .expect("drift read at start");
    // Polled every 2 s, the estimate settles (16 updates, frequency known to 1 ppm) in well under
    // a minute; the first write comes then, replacing the start value with the measured one.
    let status = daemon.wait_for_status(Duration::from_secs(90), "drift written", |_| {
        std::fs::read_to_string(&drift).is_ok_and(|text| text != "250.000\n")
    });
    let written: f64 = std::fs::read_to_string(&drift).unwrap().trim().parse().expect("a number");
    let estimate = status["frequency_ppm"].as_f64().unwrap();
    assert!((written - estimate).abs() < 1.0, "wrote {written} ppm, estimate {estimate} ppm");
    // Observe mode: what the clock needs here is about the host kernel's own setting, not 250 ppm.
    assert!(
        (written - 250.0).abs() > 50.0,
        "the measured frequency replaced the start value: {written}"
    );
    let names: Vec<_> =
        std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
    daemon.stop();
}

/// A server on `socket` that answers every request with its transmit time `backwards` seconds
/// before its receive time (and 2^-23 s of precision, as a fast chronyd), until `stop` is set.
fn backwards_server(
    ns: &NetNs,
    socket: std::net::UdpSocket,
    backwards: f64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    use syhub_ntp_proto::server::{Answer, SystemSnapshot, answer};
    use syhub_ntp_proto::{NtpDuration, NtpTimestamp};
    ns.spawn_inside(move || {
        let mut request = [0u8; 512];
        let mut reply = [0u8; 512];
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((len, peer)) = socket.recv_from(&mut request) else { continue };
            let since_epoch = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970");
            let now =
                NtpTimestamp::from_unix(since_epoch.as_secs() as i64, since_epoch.subsec_nanos());
            let snapshot = SystemSnapshot::local_clock(1, -23, now - NtpDuration::from_seconds(1));
            if let Answer::Reply(prepared) = answer(&request[..len], now, &snapshot, &mut reply) {
                prepared.stamp_transmit_time(
                    &mut reply,
                    now - NtpDuration::from_seconds_f64(backwards),
                );
                let _ = socket.send_to(&reply[..prepared.len], peer);
            }
        }
    })
}

#[test]
fn answers_whose_transmit_time_is_before_their_receive_time_are_counted_and_said_why() {
    require_namespaces();
    let ns = NetNs::new("backwards");
    ns.ip(&["link", "set", "lo", "up"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Within the precisions (2^-23 s and ours): noise, used. Beyond them: refused.
    let noisy = backwards_server(&ns, ns.udp_socket("127.0.0.1:11124"), 60e-9, stop.clone());
    let broken = backwards_server(&ns, ns.udp_socket("127.0.0.1:11125"), 0.001, stop.clone());
    let sources =
        format!("{}{}", server_source("127.0.0.1:11124"), server_source("127.0.0.1:11125"));
    let daemon = Daemon::start(SYHUB_NTP, &ns, &test_config(&["127.0.0.1:123"], &sources, ""));
    let status = daemon.wait_for_status(Duration::from_secs(30), "refusals counted", |status| {
        source_by_address(status, "127.0.0.1:11125")["refused_answers"].as_u64() >= Some(5)
    });
    let noisy_status = source_by_address(&status, "127.0.0.1:11124");
    assert_eq!(noisy_status["refused_answers"], 0, "{status}");
    assert_eq!(noisy_status["state"], "system peer", "{status}");
    let broken_status = source_by_address(&status, "127.0.0.1:11125");
    // It answers: never called unreachable, and the status says why its time is not used.
    assert_ne!(broken_status["state"], "unreachable", "{status}");
    assert!(
        broken_status["detail"]
            .as_str()
            .is_some_and(|d| d.contains("transmit time is before its receive time")),
        "{status}"
    );
    let peers = ns.run(
        SYHUB_NTP,
        &["peers", "--socket", path_str(&daemon.dir().join("control.sock"))],
        Duration::from_secs(10),
    );
    assert!(String::from_utf8_lossy(&peers.stdout).contains("refused"), "{peers:?}");
    let log = daemon.stop();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = (noisy.join(), broken.join());
    // Each refusal at debug with its four timestamps, and the run of them once at warn.
    assert!(
        log.contains("127.0.0.1:11125: answer refused:")
            && log.contains(" T1 ")
            && log.contains(" T4 "),
        "{log}"
    );
    let warnings =
        log.lines().filter(|l| l.contains("answers, but its answers are refused")).count();
    assert_eq!(warnings, 1, "{log}");
}
