//! Every monitoring surface against the real thing: the CLI over the control socket, the HTTP
//! API with curl, the dashboard in headless Chromium, and MQTT through a Mosquitto broker the
//! test starts — all in network namespaces of the test's own.

use std::time::Duration;
use syhub_ntp_testkit::*;

/// The binary under test.
const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

/// A hub namespace with two chronyd upstreams (stratum 3) at 10.201.1.2 and 10.201.2.2.
fn hub_with_two_upstreams(label: &str) -> (NetNs, Vec<(NetNs, Chronyd)>) {
    let hub = NetNs::new(label);
    let upstreams = (1..=2)
        .map(|i| {
            let upstream = NetNs::new(&format!("{label}{i}"));
            hub.link(
                (&format!("up{i}"), &format!("10.201.{i}.1/24")),
                &upstream,
                ("eth0", &format!("10.201.{i}.2/24")),
            );
            let chronyd = Chronyd::server(&upstream, 123, 3);
            (upstream, chronyd)
        })
        .collect();
    (hub, upstreams)
}

fn sources() -> String {
    (1..=2)
        .map(|i| format!("[[source]]\nmode = \"server\"\naddress = \"10.201.{i}.2\"\nminpoll = 1\nmaxpoll = 1\n\n"))
        .collect()
}

/// Runs `syhub-ntp ARGS --socket SOCKET` and returns (exit code, stdout).
fn cli(daemon: &Daemon, args: &[&str]) -> (i32, String) {
    let socket = daemon.dir().join("control.sock");
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["--socket", path_str(&socket)]);
    let output = run_with_timeout(
        {
            let mut command = std::process::Command::new(SYHUB_NTP);
            command.args(&full);
            command
        },
        Duration::from_secs(10),
    );
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn the_cli_reports_status_peers_sync_and_clients() {
    let (hub, _upstreams) = hub_with_two_upstreams("cli");
    let daemon = Daemon::start(SYHUB_NTP, &hub, &test_config(&["127.0.0.1:123"], &sources(), ""));
    daemon.wait_for_status(Duration::from_secs(20), "synchronised with both sources", |s| {
        s["synchronised"] == true
            && s["peers"].as_array().is_some_and(|p| p.iter().all(|p| p["reach"] != "0"))
    });

    let (code, text) = cli(&daemon, &["status"]);
    assert_eq!(code, 0);
    for line in [
        "state            synchronised",
        "stratum          4",
        "system offset",
        "frequency",
        "root dispersion",
        "clock mode       observe",
        "uptime",
        "requests",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }

    let (code, text) = cli(&daemon, &["peers"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(" remote")
            && lines[0].contains("refid")
            && lines[0].contains("reach")
            && lines[0].contains("jitter")
            && lines[0].ends_with("refused"),
        "{text}"
    );
    assert!(lines[1].chars().all(|c| c == '='), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("*10.201.")), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("+10.201.")), "{text}");
    // Columns line up: every row is as long as the header or longer only in the last column.
    let reach_column = lines[0].find("reach").unwrap();
    assert!(
        lines[2..].iter().all(|l| l[..reach_column + 5].trim_end().len() > reach_column),
        "{text}"
    );
    let (_, json) = cli(&daemon, &["peers", "--json"]);
    let peers: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(peers.as_array().unwrap().len(), 2);
    assert!(peers.as_array().unwrap().iter().any(|p| p["tally"] == "*"));

    let (code, text) = cli(&daemon, &["sync-check"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(text.lines().count(), 1);
    assert!(text.starts_with("synchronised to 10.201.") && text.contains("stratum 4"), "{text}");

    // Clients the server answered show up, with what their requests say of their clocks.
    for _ in 0..3 {
        hub.run("ntpdig", &["-t", "2", "127.0.0.1"], Duration::from_secs(10));
    }
    let (code, json) = cli(&daemon, &["clients", "--json"]);
    assert_eq!(code, 0);
    let clients: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(clients[0]["address"], "127.0.0.1");
    assert!(clients[0]["requests"].as_u64().unwrap() >= 3);
    let (_, text) = cli(&daemon, &["clients"]);
    // The devices table: a summary line, the header and its rule, then ntpdig, in sync.
    assert!(text.starts_with("1 device(s): 1 in sync,"), "{text}");
    let row = text.lines().nth(3).unwrap_or_default();
    assert!(row.starts_with("127.0.0.1 in sync"), "{text}");
    daemon.stop();
}

#[test]
fn sync_check_says_not_synchronised_and_daemon_unreachable() {
    let ns = NetNs::new("check");
    let daemon =
        Daemon::start(SYHUB_NTP, &ns, &test_config(&["127.0.0.1:123"], "", "enabled = false\n"));
    let (code, text) = cli(&daemon, &["sync-check"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.starts_with("unsynchronised: "), "{text}");
    let (code, json) = cli(&daemon, &["sync-check", "--json"]);
    assert_eq!(code, 1);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&json).unwrap()["synchronised"], false);
    daemon.stop();
    let output = run_with_timeout(
        {
            let mut command = std::process::Command::new(SYHUB_NTP);
            command.args(["sync-check", "--socket", "/nonexistent/control.sock"]);
            command
        },
        Duration::from_secs(10),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot reach the daemon"));
}

fn curl(ns: &NetNs, url: &str) -> String {
    let output = ns.run("curl", &["-sSf", "--max-time", "5", url], Duration::from_secs(10));
    assert!(output.status.success(), "curl {url}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn http_api_metrics_and_the_dashboard_in_chromium() {
    let (hub, _upstreams) = hub_with_two_upstreams("http");
    let config = test_config(&["127.0.0.1:123"], &sources(), "")
        + "\n[http]\nlisten = [\"127.0.0.1:8123\"]\n";
    let daemon = Daemon::start(SYHUB_NTP, &hub, &config);
    daemon.wait_for_status(Duration::from_secs(20), "synchronised", |s| s["synchronised"] == true);

    let status: serde_json::Value =
        serde_json::from_str(&curl(&hub, "http://127.0.0.1:8123/api/ntp/status")).unwrap();
    assert_eq!(status["status"], "synchronised");
    assert_eq!(status["peers"].as_array().unwrap().len(), 2);
    let peers: serde_json::Value =
        serde_json::from_str(&curl(&hub, "http://127.0.0.1:8123/api/ntp/peers")).unwrap();
    assert_eq!(peers.as_array().unwrap().len(), 2);
    let history: serde_json::Value =
        serde_json::from_str(&curl(&hub, "http://127.0.0.1:8123/api/ntp/history")).unwrap();
    assert_eq!(history["interval_seconds"], 30);
    assert!(!history["points"].as_array().unwrap().is_empty(), "{history}");
    let health: serde_json::Value =
        serde_json::from_str(&curl(&hub, "http://127.0.0.1:8123/healthz")).unwrap();
    assert_eq!(health["ok"], true);

    let metrics = curl(&hub, "http://127.0.0.1:8123/metrics");
    for needle in [
        "syhub_ntp_synchronised 1",
        "syhub_ntp_stratum 4",
        "syhub_ntp_offset_seconds ",
        "syhub_ntp_requests_total{result=\"answered\"}",
        "syhub_ntp_source_reach{name=\"10.201.",
    ] {
        assert!(metrics.contains(needle), "{needle:?} missing from:\n{metrics}");
    }
    // Every sample parses as a number and every family is typed.
    for line in metrics.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        assert!(line.rsplit(' ').next().unwrap().parse::<f64>().is_ok(), "{line}");
    }

    // The dashboard, drawn by a real browser: both peers in the table, both lines plotted.
    let dom = String::from_utf8(chromium(&hub, "http://127.0.0.1:8123/", &["--dump-dom"]).stdout)
        .unwrap();
    assert!(dom.contains("data-loaded=\"true\""), "the page never loaded its data:\n{dom}");
    assert_eq!(dom.matches("<tr class=\"peer\"").count(), 2, "{dom}");
    for line in ["offset-line", "jitter-line"] {
        let start = dom.find(&format!("id=\"{line}\"")).unwrap_or_else(|| panic!("no {line}"));
        let tag = &dom[dom[..start].rfind('<').unwrap()..start + dom[start..].find('>').unwrap()];
        assert!(tag.contains(" d=\"M"), "{line} not drawn: {tag}");
    }
    let artefacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    let shot = artefacts.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let flag = format!("--screenshot={}", path_str(&shot));
    chromium(&hub, "http://127.0.0.1:8123/", &[&flag, "--window-size=1280,900"]);
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000),
        "no screenshot at {}",
        shot.display()
    );
    daemon.stop();
}

/// Subscribes to `topics` on the broker at 127.0.0.1:1883 in `ns` and returns the first `count`
/// messages as "topic payload" lines (at most `seconds` of waiting).
fn subscribe(ns: &NetNs, topics: &[&str], count: usize, seconds: u64) -> Vec<String> {
    let mut args = vec!["-h", "127.0.0.1", "-p", "1883", "-v"];
    for topic in topics {
        args.extend(["-t", topic]);
    }
    let count = count.to_string();
    let wait = seconds.to_string();
    args.extend(["-C", &count, "-W", &wait]);
    let output = ns.run("mosquitto_sub", &args, Duration::from_secs(seconds + 5));
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn mqtt_status_survives_the_broker_going_away_and_coming_back() {
    let ns = NetNs::new("mqtt");
    let mut broker = Mosquitto::start(&ns, 1883);
    let config = test_config(&["127.0.0.1:123"], "", "")
        + "\n[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\ninterval = 2\nhome_assistant = true\n";
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config);

    // Retained: a subscriber arriving now gets the status, availability and discovery at once.
    let messages = subscribe(&ns, &["syhub/ntp/#", "homeassistant/#"], 9, 10);
    let status = messages
        .iter()
        .find(|m| m.starts_with("syhub/ntp/status "))
        .unwrap_or_else(|| panic!("no status in {messages:?}"));
    let json: serde_json::Value =
        serde_json::from_str(&status["syhub/ntp/status ".len()..]).unwrap();
    assert_eq!(
        (json["status"].as_str(), json["stratum"].as_u64()),
        (Some("local clock"), Some(10))
    );
    assert!(messages.contains(&"syhub/ntp/availability online".to_owned()), "{messages:?}");
    let discovery: Vec<&String> =
        messages.iter().filter(|m| m.starts_with("homeassistant/")).collect();
    assert!(discovery.len() >= 6, "{messages:?}");
    assert!(discovery.iter().any(|m| m.contains("\"state_topic\":\"syhub/ntp/status\"")));
    assert!(discovery.iter().any(|m| m.contains("\"state_topic\":\"syhub/ntp/devices\"")));
    // No device has asked yet: the summary says so.
    assert!(
        messages.iter().any(|m| m.starts_with("syhub/ntp/devices {\"devices\":0,")),
        "{messages:?}"
    );

    // The broker goes away: NTP is served as before.
    broker.process.stop_with(nix::sys::signal::Signal::SIGTERM);
    for _ in 0..3 {
        let output = ns.run("ntpdig", &["-j", "-t", "2", "127.0.0.1"], Duration::from_secs(10));
        assert!(output.status.success(), "NTP stopped while the broker was down");
    }
    std::thread::sleep(Duration::from_secs(3));

    // It comes back: the daemon reconnects and publishes again.
    let _broker = Mosquitto::start(&ns, 1883);
    let messages = subscribe(&ns, &["syhub/ntp/status"], 1, 90);
    assert!(messages.first().is_some_and(|m| m.starts_with("syhub/ntp/status {")), "{messages:?}");
    let log = daemon.stop();
    assert!(log.contains("MQTT broker mqtt://127.0.0.1:1883 unavailable"), "{log}");
    assert!(log.matches("MQTT connected").count() >= 2, "{log}");
}

#[test]
fn uptime_advances_between_reads_on_every_surface() {
    let ns = NetNs::new("uptime");
    let _broker = Mosquitto::start(&ns, 1883);
    // No sources: nothing rebuilds the status snapshot after the start.
    let config = test_config(&["127.0.0.1:123"], "", "")
        + "\n[http]\nlisten = [\"127.0.0.1:8123\"]\n\n[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\ninterval = 2\n";
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config);
    let uptimes = || {
        let json = |text: &str| -> f64 {
            let status: serde_json::Value = serde_json::from_str(text).unwrap();
            status["uptime_seconds"].as_f64().unwrap_or_else(|| panic!("no uptime in {text}"))
        };
        let metrics = curl(&ns, "http://127.0.0.1:8123/metrics");
        let gauge = metrics
            .lines()
            .find_map(|l| l.strip_prefix("syhub_ntp_uptime_seconds "))
            .unwrap_or_else(|| panic!("no uptime in {metrics}"));
        [
            daemon.status()["uptime_seconds"].as_f64().unwrap(),
            json(&curl(&ns, "http://127.0.0.1:8123/api/ntp/status")),
            gauge.parse().unwrap(),
        ]
    };
    let first = uptimes();
    std::thread::sleep(Duration::from_secs(2));
    let second = uptimes();
    for (surface, (a, b)) in ["CLI", "HTTP", "Prometheus"].iter().zip(first.iter().zip(&second)) {
        assert!((1.0..10.0).contains(&(b - a)), "{surface}: uptime {a} s, then {b} s");
    }
    // MQTT: the retained status, then the next one two seconds on.
    let messages = subscribe(&ns, &["syhub/ntp/status"], 2, 10);
    let mqtt: Vec<f64> = messages
        .iter()
        .filter_map(|m| m.strip_prefix("syhub/ntp/status "))
        .map(|json| {
            serde_json::from_str::<serde_json::Value>(json).unwrap()["uptime_seconds"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(mqtt.len(), 2, "{messages:?}");
    assert!((1.0..10.0).contains(&(mqtt[1] - mqtt[0])), "MQTT: {mqtt:?}");
    eprintln!("uptime 2 s apart: {first:?} then {second:?}; MQTT {mqtt:?}");
    daemon.stop();
}

/// Runs `syhub-ntp ARGS --socket SOCKET` as user `uid` and group `gid` (no other groups).
fn cli_as(daemon: &Daemon, uid: u32, gid: u32, args: &[&str]) -> std::process::Output {
    let socket = daemon.dir().join("control.sock");
    let mut command = std::process::Command::new("setpriv");
    command
        .args(["--reuid", &uid.to_string(), "--regid", &gid.to_string(), "--clear-groups"])
        .arg(SYHUB_NTP)
        .args(args)
        .args(["--socket", path_str(&socket)]);
    run_with_timeout(command, Duration::from_secs(10))
}

#[test]
fn every_local_user_reads_the_status_and_only_the_daemons_group_the_devices() {
    let ns = NetNs::new("monusers");
    let daemon = Daemon::start(SYHUB_NTP, &ns, &test_config(&["127.0.0.1:123"], "", ""));
    ns.run("ntpdig", &["-t", "2", "127.0.0.1"], Duration::from_secs(10));
    let text = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };
    // nobody: the status, the peers and the sync check, as `chronyc tracking` allows.
    let status = cli_as(&daemon, 65534, 65534, &["status"]);
    assert!(status.status.success() && text(&status).contains("stratum"), "{}", text(&status));
    let peers = cli_as(&daemon, 65534, 65534, &["peers", "--json"]);
    assert!(peers.status.success(), "{}", text(&peers));
    let check = cli_as(&daemon, 65534, 65534, &["sync-check"]);
    assert!(matches!(check.status.code(), Some(0 | 1)), "{}", text(&check));
    assert!(text(&check).contains("synchronised"), "{}", text(&check));
    // The devices list holds the clients' addresses: not for nobody...
    let devices = cli_as(&daemon, 65534, 65534, &["clients", "--json"]);
    assert!(!devices.status.success(), "{}", text(&devices));
    assert!(text(&devices).contains("ask as root or as a member"), "{}", text(&devices));
    assert!(!text(&devices).contains("127.0.0.1"), "{}", text(&devices));
    // ...but for a member of the daemon's group (the daemon runs as root here: group 0).
    let devices = cli_as(&daemon, 65534, 0, &["clients", "--json"]);
    assert!(devices.status.success() && text(&devices).contains("127.0.0.1"), "{}", text(&devices));

    // One user holding many idle connections starves nobody, not even itself: a few of its
    // connections are served at once, and the oldest idle one gives way to a newer one.
    let mut hog = hold_control_connections(&daemon, 65534, 40, 8);
    for (uid, gid) in [(65533, 65533), (0, 0), (65534, 65534)] {
        let status = cli_as(&daemon, uid, gid, &["status", "--json"]);
        assert!(status.status.success(), "uid {uid}: {}", text(&status));
    }
    let _ = hog.kill();
    let _ = hog.wait();
    daemon.stop();
}

/// Holds `count` idle connections to the daemon's control socket as user (and group) `uid` for
/// `seconds`, from a Python process of its own; returns once they are made.
fn hold_control_connections(
    daemon: &Daemon,
    uid: u32,
    count: usize,
    seconds: u64,
) -> std::process::Child {
    let socket = daemon.dir().join("control.sock");
    let script = format!(
        "import socket, time\nheld = []\nfor _ in range({count}):\n    \
         s = socket.socket(socket.AF_UNIX)\n    s.connect({:?})\n    held.append(s)\n\
         print('held', flush=True)\ntime.sleep({seconds})\n",
        path_str(&socket)
    );
    let id = uid.to_string();
    let mut hog = std::process::Command::new("setpriv")
        .args(["--reuid", &id, "--regid", &id, "--clear-groups", "/usr/bin/python3", "-c"])
        .arg(&script)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(hog.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "held", "the idle connections were not made");
    hog
}

/// The binary makes monitoring ready before the daemon gives up root: an HTTP port below 1024
/// and an MQTT password file only root may read both work once the daemon runs as nobody.
#[test]
fn monitoring_is_made_ready_before_privileges_are_dropped() {
    let ns = NetNs::new("monpriv");
    let secrets = TempDir::new("monpriv");
    // The broker lets in this account only.
    let accounts = secrets.0.join("mosquitto.passwd");
    let made = ns.run(
        "mosquitto_passwd",
        &["-c", "-b", path_str(&accounts), "hub", "s3cret"],
        Duration::from_secs(10),
    );
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let _broker = Mosquitto::start_with(
        &ns,
        1883,
        &format!("allow_anonymous false\npassword_file {}\n", path_str(&accounts)),
    );
    let password = secrets.write("mqtt-password", "s3cret\n");
    std::fs::set_permissions(&password, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .unwrap();
    let config = test_config(&["127.0.0.1:123"], "", "").replacen(
        "\n[server]\n",
        "\n[server]\nuser = \"nobody\"\n",
        1,
    ) + &format!(
        "\n[http]\nlisten = [\"127.0.0.1:80\"]\n\n[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n\
         username = \"hub\"\npassword_file = \"{}\"\ninterval = 2\n",
        path_str(&password)
    );
    let mut daemon = Daemon::start(SYHUB_NTP, &ns, &config);
    daemon
        .process
        .wait_for_line("MQTT connected to mqtt://127.0.0.1:1883", Duration::from_secs(10));
    assert!(curl(&ns, "http://127.0.0.1:80/healthz").contains("\"ok\":true"));
    let log = daemon.stop();
    assert!(log.contains("running as nobody with no capabilities"), "{log}");
    assert!(!log.contains("MQTT password file") && !log.contains("cannot listen"), "{log}");
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with openssl in `dir`.
fn make_certificates(dir: &TempDir) {
    let run = |args: &[&str]| {
        let output = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir.0)
            .output()
            .expect("openssl");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    dir.write("san.ext", "subjectAltName=IP:127.0.0.1\n");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

#[test]
fn mqtt_over_tls_with_a_private_ca() {
    let ns = NetNs::new("mqtts");
    let certificates = TempDir::new("mqtts");
    make_certificates(&certificates);
    let file = |name: &str| path_str(&certificates.0.join(name)).to_owned();
    let tls_listener = format!(
        "listener 8883 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n",
        file("ca.pem"),
        file("server.pem"),
        file("server.key")
    );
    let _broker = Mosquitto::start_with(&ns, 1883, &tls_listener);
    let config = test_config(&["127.0.0.1:123"], "", "")
        + &format!(
            "\n[mqtt]\nurl = \"mqtts://127.0.0.1:8883\"\nca_file = \"{}\"\ninterval = 2\n",
            file("ca.pem")
        );
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config);
    // Published over TLS, read back on the broker's plain listener.
    let messages = subscribe(&ns, &["syhub/ntp/status"], 1, 15);
    assert!(
        messages.first().is_some_and(|m| m.starts_with("syhub/ntp/status {")),
        "{messages:?}\n{}",
        daemon.process.log()
    );
    let log = daemon.stop();
    assert!(log.contains("MQTT connected to mqtts://127.0.0.1:8883"), "{log}");
}

#[test]
fn sync_check_wait_holds_until_synchronised_or_gives_up() {
    let ns = NetNs::new("waitsync");
    let _chronyd = Chronyd::server(&ns, 11123, 2);
    let dir = TempDir::new("waitsync");
    let socket = dir.0.join("control.sock");
    // Started before the daemon: it waits for the daemon to come up, then for synchronisation.
    let waiting = {
        let mut command = std::process::Command::new(SYHUB_NTP);
        command.args(["sync-check", "--wait", "40", "--socket", path_str(&socket)]);
        command.stdout(std::process::Stdio::piped());
        command.spawn().unwrap()
    };
    std::thread::sleep(Duration::from_secs(2));
    let source = "[[source]]\nmode = \"server\"\naddress = \"127.0.0.1:11123\"\nminpoll = 1\nmaxpoll = 1\n\n";
    let config = test_config(&["127.0.0.1:123"], source, "")
        .replace("@DIR@/control.sock", path_str(&socket));
    let started = std::time::Instant::now();
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config);
    let output = waiting.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.starts_with("synchronised to 127.0.0.1:11123"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(30));
    daemon.stop();

    // Never synchronised: exit 1 once the wait is over.
    let daemon =
        Daemon::start(SYHUB_NTP, &ns, &test_config(&["127.0.0.1:123"], "", "enabled = false\n"));
    let started = std::time::Instant::now();
    let (code, text) = cli(&daemon, &["sync-check", "--wait", "2"]);
    assert_eq!(code, 1, "{text}");
    assert!(started.elapsed() >= Duration::from_secs(2));
    daemon.stop();
}

#[test]
fn systemd_hears_ready_status_and_watchdog_pings() {
    let ns = NetNs::new("notify");
    let dir = TempDir::new("notify");
    let path = dir.0.join("notify.sock");
    let listener = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    listener.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let env = [("NOTIFY_SOCKET", path_str(&path)), ("WATCHDOG_USEC", "1000000")];
    let daemon =
        Daemon::start_with_env(SYHUB_NTP, &ns, &test_config(&["127.0.0.1:123"], "", ""), &env);
    let mut heard = Vec::new();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 512];
    while started.elapsed() < Duration::from_secs(3) {
        if let Ok(len) = listener.recv(&mut buf) {
            heard.push(String::from_utf8_lossy(&buf[..len]).into_owned());
        }
    }
    assert_eq!(heard.first().map(String::as_str), Some("READY=1"), "{heard:?}");
    assert!(heard.iter().any(|m| m == "STATUS=serving the local clock at stratum 10"), "{heard:?}");
    // Pings every half second: at least four in three seconds.
    let pings = heard.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!(pings >= 4, "{pings} watchdog pings: {heard:?}");
    daemon.stop();
    listener.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut last = None;
    while let Ok(len) = listener.recv(&mut buf) {
        last = Some(String::from_utf8_lossy(&buf[..len]).into_owned());
    }
    assert_eq!(last.as_deref(), Some("STOPPING=1"));
}

/// Open descriptors of process `pid`.
fn open_descriptors(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Resident memory of process `pid`, kB.
fn resident_kb(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|kb| kb.parse().ok()).unwrap_or(0)
}

/// Whether the server has closed `stream` (end of file or reset), reading what it sent first;
/// false if it is still open when `timeout` is over.
fn closed_by_server(mut stream: &std::net::TcpStream, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match std::io::Read::read(&mut stream, &mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// HTTP on the hub's loopback, the daemon allowed 256 open files (so at most 32 HTTP
/// connections): 300 connections that send half a request head, 60 idle control-socket
/// connections from one user and 20 from root. The CLI, /healthz and NTP keep answering, the
/// daemon's descriptors stay bounded, and every half-sent connection is closed by the server.
#[test]
fn half_sent_http_requests_and_idle_control_connections_exhaust_nothing() {
    use std::io::{Read, Write};
    let ns = NetNs::new("flood");
    let config =
        test_config(&["127.0.0.1:123"], "", "") + "\n[http]\nlisten = [\"127.0.0.1:8123\"]\n";
    let mut daemon = Daemon::start_with_open_files(SYHUB_NTP, &ns, &config, 256);
    let pid = daemon.process.pid();
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap().trim(), "syhub-ntp");
    assert!(curl(&ns, "http://127.0.0.1:8123/healthz").contains("\"ok\":true"));
    let (fds_before, rss_before) = (open_descriptors(pid), resident_kb(pid));

    let flood_started = std::time::Instant::now();
    let flood: Vec<std::net::TcpStream> = ns
        .spawn_inside(|| {
            (0..300)
                .map(|_| {
                    let address = "127.0.0.1:8123".parse().unwrap();
                    let mut stream =
                        std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5))
                            .unwrap();
                    // Half a request head: no blank line will follow.
                    let _ =
                        stream.write_all(b"GET /api/ntp/status HTTP/1.1\r\nHost: hub\r\nX-Slow: ");
                    stream
                })
                .collect()
        })
        .join()
        .unwrap();
    let mut hog = hold_control_connections(&daemon, 65534, 60, 30);
    let socket = daemon.dir().join("control.sock");
    let mut root_idle: Vec<std::os::unix::net::UnixStream> =
        (0..20).map(|_| std::os::unix::net::UnixStream::connect(&socket).unwrap()).collect();
    // The most seen over a second, once the daemon has taken in what is waiting for it.
    let (mut fds_during, mut rss_during) = (0, 0);
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(100));
        fds_during = fds_during.max(open_descriptors(pid));
        rss_during = rss_during.max(resident_kb(pid));
    }

    // Everything still answers, at once: the newcomers take the places of the oldest idle ones.
    let text = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };
    for (uid, gid) in [(0, 0), (65533, 65533), (65534, 65534)] {
        let status = cli_as(&daemon, uid, gid, &["status"]);
        assert!(status.status.success() && text(&status).contains("stratum"), "{}", text(&status));
    }
    let check = cli_as(&daemon, 0, 0, &["sync-check"]);
    assert!(matches!(check.status.code(), Some(0 | 1)), "{}", text(&check));
    assert!(curl(&ns, "http://127.0.0.1:8123/healthz").contains("\"ok\":true"));
    let ntp = ns.run("ntpdig", &["-t", "2", "127.0.0.1"], Duration::from_secs(10));
    assert!(ntp.status.success(), "ntpdig: {}", text(&ntp));
    daemon.process.wait_for_line(
        "HTTP: 32 connections, the most allowed; closing those waiting longest",
        Duration::from_secs(5),
    );

    // The control socket closes an idle connection 2 s after accept; HTTP one without a whole
    // request head 5 s after accept (or sooner, to make room).
    for stream in &mut root_idle {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert!(matches!(stream.read(&mut [0u8; 64]), Ok(0)), "an idle control connection stayed");
    }
    let still_open = flood
        .iter()
        .filter(|stream| {
            let left = (flood_started + Duration::from_secs(20))
                .saturating_duration_since(std::time::Instant::now());
            !closed_by_server(stream, left.max(Duration::from_millis(10)))
        })
        .count();
    assert_eq!(still_open, 0, "half-sent HTTP connections the server kept");
    drop(flood);
    drop(root_idle);
    let _ = hog.kill();
    let _ = hog.wait();
    let settled = std::time::Instant::now();
    while open_descriptors(pid) > fds_before && settled.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (fds_after, rss_after) = (open_descriptors(pid), resident_kb(pid));
    eprintln!(
        "daemon descriptors: {fds_before} before, {fds_during} during, {fds_after} after; \
         resident kB: {rss_before} before, {rss_during} during, {rss_after} after"
    );
    // Its own, 32 HTTP, 16 root and 4 of the one user's control connections, and a little slack.
    assert!(fds_during <= fds_before + 32 + 16 + 4 + 4, "{fds_during} descriptors during");
    assert!(fds_after <= fds_before, "{fds_after} descriptors after, {fds_before} before");

    // A request head larger than 8 KiB is refused; a keep-alive connection may idle 15 s.
    let (too_large, kept, closed) = ns
        .spawn_inside(|| {
            let connect = || std::net::TcpStream::connect("127.0.0.1:8123").unwrap();
            let mut large = connect();
            let head = format!(
                "GET /healthz HTTP/1.1\r\nHost: hub\r\nX-Big: {}\r\n\r\n",
                "a".repeat(20_000)
            );
            let _ = large.write_all(head.as_bytes());
            let mut answer = String::new();
            large.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = large.read_to_string(&mut answer);
            let mut idle = connect();
            idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n").unwrap();
            idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 4096];
            let answered = idle.read(&mut buf).unwrap();
            assert!(buf[..answered].starts_with(b"HTTP/1.1 200"));
            // Past the first request's 5 s it is still open, then closed by 15 s (and margin).
            let kept = !closed_by_server(&idle, Duration::from_secs(8));
            let closed = closed_by_server(&idle, Duration::from_secs(20));
            (answer, kept, closed)
        })
        .join()
        .unwrap();
    assert!(too_large.starts_with("HTTP/1.1 431"), "{too_large}");
    assert!(kept && closed, "kept open after 8 s: {kept}, closed by 28 s: {closed}");
    daemon.stop();
}
