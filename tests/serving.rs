//! The server as a client on the wire sees it: old versions and modes real devices send, packets
//! that must get no answer, replies from the right address, and how the daemon starts and stops.

use syhub_ntp_testkit::*;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The binary under test.
const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The current time as a 64-bit NTP timestamp, from the test's own clock.
fn ntp_now() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    ((now.as_secs() + NTP_UNIX_OFFSET) << 32)
        | (((now.subsec_nanos() as u64) << 32) / 1_000_000_000)
}

fn ntp_seconds_between(a: u64, b: u64) -> f64 {
    (a.wrapping_sub(b) as i64) as f64 / 4_294_967_296.0
}

/// A 48-byte request written byte by byte (independent of our codec).
fn raw_request(leap: u8, version: u8, mode: u8, poll: u8, transmit: u64) -> [u8; 48] {
    let mut packet = [0u8; 48];
    packet[0] = (leap << 6) | (version << 3) | mode;
    packet[2] = poll;
    packet[40..48].copy_from_slice(&transmit.to_be_bytes());
    packet
}

struct RawReply {
    len: usize,
    leap: u8,
    version: u8,
    mode: u8,
    stratum: u8,
    poll: u8,
    reference_id: [u8; 4],
    origin: u64,
    receive: u64,
    transmit: u64,
}

fn parse_reply(bytes: &[u8]) -> RawReply {
    let ts = |i: usize| u64::from_be_bytes(bytes[i..i + 8].try_into().unwrap());
    RawReply {
        len: bytes.len(),
        leap: bytes[0] >> 6,
        version: (bytes[0] >> 3) & 7,
        mode: bytes[0] & 7,
        stratum: bytes[1],
        poll: bytes[2],
        reference_id: bytes[12..16].try_into().unwrap(),
        origin: ts(24),
        receive: ts(32),
        transmit: ts(40),
    }
}

fn exchange(socket: &UdpSocket, server: &str, request: &[u8]) -> Option<(RawReply, SocketAddr)> {
    socket.send_to(request, server).expect("send");
    let mut buf = [0u8; 1024];
    match socket.recv_from(&mut buf) {
        Ok((len, from)) => Some((parse_reply(&buf[..len]), from)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => panic!("recv: {e}"),
    }
}

fn assert_good_time(reply: &RawReply, sent_transmit: u64) {
    let now = ntp_now();
    assert_eq!(reply.origin, sent_transmit, "origin must echo our transmit timestamp");
    assert!(ntp_seconds_between(now, reply.receive).abs() < 1.0, "receive timestamp is not now");
    let processing = ntp_seconds_between(reply.transmit, reply.receive);
    assert!((0.0..0.05).contains(&processing), "transmit - receive = {processing} s");
    assert_eq!((reply.leap, reply.stratum, &reply.reference_id), (0, 10, b"LOCL"));
}

#[test]
fn ntpv1_ntpv3_and_symmetric_active_requests_get_correct_answers() {
    let ns = NetNs::new("versions");
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config_on_port_123(""));
    let socket = ns.udp_socket("127.0.0.1:0");
    let server = "127.0.0.1:123";

    // NTPv1 predates the mode field: mode 0, answered as a client request in version 1.
    let transmit = ntp_now();
    let (reply, _) =
        exchange(&socket, server, &raw_request(0, 1, 0, 6, transmit)).expect("NTPv1 answer");
    assert_eq!((reply.len, reply.version, reply.mode), (48, 1, 4));
    assert_good_time(&reply, transmit);

    // NTPv3 client, as old Linux ntpdate and many embedded stacks send.
    let transmit = ntp_now();
    let (reply, _) =
        exchange(&socket, server, &raw_request(0, 3, 3, 10, transmit)).expect("NTPv3 answer");
    assert_eq!((reply.version, reply.mode, reply.poll), (3, 4, 10));
    assert_good_time(&reply, transmit);

    // Symmetric active (Windows w32tm in symmetric mode): stateless passive answer, same timestamps.
    let transmit = ntp_now();
    let (reply, _) =
        exchange(&socket, server, &raw_request(0, 3, 1, 6, transmit)).expect("mode 1 answer");
    assert_eq!((reply.version, reply.mode), (3, 2));
    assert_good_time(&reply, transmit);

    // Arduino NTPClient / lwIP SNTP: leap 3, stratum 0, zero transmit timestamp: echoed as origin.
    let (reply, _) = exchange(&socket, server, &raw_request(3, 4, 3, 0, 0)).expect("SNTP answer");
    assert_eq!((reply.version, reply.mode, reply.origin), (4, 4, 0));

    // Every version 1-4 is mirrored.
    for version in 1..=4 {
        let (reply, _) =
            exchange(&socket, server, &raw_request(0, version, 3, 6, ntp_now())).expect("answer");
        assert_eq!(reply.version, version);
    }
    let log = daemon.stop();
    assert_eq!(counter_in_log(&log, "answered"), 8);
}

#[test]
fn control_private_short_and_random_garbage_get_no_answer_and_no_crash() {
    let ns = NetNs::new("garbage");
    let mut daemon = Daemon::start(SYHUB_NTP, &ns, &config_on_port_123(""));
    let socket = ns.udp_socket("127.0.0.1:0");
    socket.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let server = "127.0.0.1:123";

    let mut garbage: Vec<Vec<u8>> = Vec::new();
    // Mode 6 (ntpq readvar) and mode 7 (ntpdc monlist): never answered from the network.
    garbage.push(vec![0x16, 0x02, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    garbage.push({
        let mut monlist = vec![0u8; 48];
        monlist[..4].copy_from_slice(&[0x17, 0x00, 0x03, 0x2a]);
        monlist
    });
    // A 47-byte packet: one short of a header.
    garbage.push(raw_request(0, 4, 3, 6, ntp_now())[..47].to_vec());
    // 10,000 random packets, each broken in one of the ways a packet can be.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..10_000 {
        let mut packet: Vec<u8> = (0..48 + random() % 200).map(|_| random() as u8).collect();
        let leap = packet[0] & 0xc0;
        let version = |v: u64| (v as u8) << 3;
        match i % 5 {
            // Shorter than a header.
            0 => packet.truncate((random() % 48) as usize),
            // Modes that are never requests, in any version.
            1 => {
                packet[0] = leap | version(random() % 8) | [2, 4, 5, 6, 7][(random() % 5) as usize]
            }
            // Request modes in versions that do not exist, and mode 0 beyond NTPv1.
            2 => {
                packet[0] = match random() % 2 {
                    0 => {
                        leap | version([0, 5, 6, 7][(random() % 4) as usize])
                            | [1, 3][(random() % 2) as usize]
                    }
                    _ => leap | version(2 + random() % 3),
                }
            }
            // Good NTPv4 client or symmetric headers whose trailer is neither extension fields nor
            // a MAC: 25 zero bytes (an extension length of 0), or 8 bytes (no MAC is 8 long).
            3 => {
                packet[0] = leap | version(4) | [1, 3][(random() % 2) as usize];
                let trailer = if random() % 2 == 0 { 25 } else { 8 };
                packet.truncate(48);
                packet.resize(48 + trailer, 0);
            }
            // An extension field whose length runs past the end of the packet.
            _ => {
                packet[0] = leap | version(4) | 3;
                packet.truncate(48 + 32);
                packet.resize(48 + 32, 0);
                packet[50..52].copy_from_slice(&64u16.to_be_bytes());
            }
        }
        garbage.push(packet);
    }
    for (i, packet) in garbage.iter().enumerate() {
        socket.send_to(packet, server).expect("send");
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(1)); // pace, so the kernel drops nothing
        }
    }
    let mut buf = [0u8; 1024];
    let answered = socket.recv_from(&mut buf);
    assert!(answered.is_err(), "a garbage packet got an answer: {:?}", &buf[..answered.unwrap().0]);
    assert!(daemon.process.is_running(), "daemon died:\n{}", daemon.process.log());

    // Still serving.
    socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let transmit = ntp_now();
    let (reply, _) = exchange(&socket, server, &raw_request(0, 4, 3, 6, transmit))
        .expect("answer after garbage");
    assert_good_time(&reply, transmit);
    let log = daemon.stop();
    assert_eq!(counter_in_log(&log, "answered"), 1);
    let ignored = counter_in_log(&log, "ignored");
    assert!(
        ignored >= 9_000,
        "only {ignored} of {} garbage packets reached the server",
        garbage.len()
    );
}

#[test]
fn replies_leave_from_the_address_the_request_was_sent_to() {
    let ns = NetNs::new("pktinfo");
    // Two extra addresses on the namespace's loopback, like a hub with several addresses.
    ns.ip(&["addr", "add", "10.77.0.1/32", "dev", "lo"]);
    ns.ip(&["addr", "add", "10.77.0.2/32", "dev", "lo"]);
    ns.ip(&["addr", "add", "fd77::1/128", "dev", "lo"]);
    ns.ip(&["addr", "add", "fd77::2/128", "dev", "lo"]);
    std::thread::sleep(Duration::from_millis(1500)); // IPv6 duplicate address detection
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config_on_port_123(""));
    for (client, server) in [("10.77.0.1:0", "10.77.0.2:123"), ("[fd77::1]:0", "[fd77::2]:123")] {
        let socket = ns.udp_socket(client);
        let transmit = ntp_now();
        let (reply, from) =
            exchange(&socket, server, &raw_request(0, 4, 3, 6, transmit)).expect("answer");
        assert_eq!(
            from,
            server.parse::<SocketAddr>().unwrap(),
            "reply came from the wrong address"
        );
        assert_good_time(&reply, transmit);
    }
    daemon.stop();
}

#[test]
fn runs_with_no_arguments_on_the_embedded_default_offline_and_stops_on_sigint() {
    let ns = NetNs::new("noargs");
    // A private mount namespace (the host's file system is not changed) hides any installed
    // config, so the embedded default runs, gives the daemon its own /run, and leaves it no
    // resolver: the namespace has no network anyway, so the default pool cannot be reached.
    let script = format!(
        "set -e; if [ -d /etc/syhub-ntp ]; then mount -t tmpfs none /etc/syhub-ntp; fi; \
         if [ -d /var/lib/syhub-ntp ]; then mount -t tmpfs none /var/lib/syhub-ntp; fi; \
         mount -t tmpfs none /run; mount --bind /dev/null /etc/resolv.conf; exec {SYHUB_NTP} run"
    );
    let mut command = ns.command("unshare");
    command.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    // The kernel's "synchronised" flag is machine-wide (this host's own daemon sets it): say it is
    // not, as on a Pi that has just booted without a real-time clock.
    command.env("SYHUB_NTP_KERNEL_SYNC", "unsynchronised");
    let mut daemon = Process::spawn(command);
    let line = daemon.wait_for_line("serving NTP on", Duration::from_secs(10));
    assert!(line.contains("0.0.0.0:123") && line.contains("[::]:123"), "{line}");
    assert!(line.contains("3 source(s)"), "{line}");
    let log = daemon.log();
    assert!(log.contains("config from the embedded default"), "{log}");
    // Default clock mode is steer; without CAP_SYS_TIME it says so once and serves as in observe.
    assert_eq!(log.matches("will not let us steer").count(), 1, "{log}");
    // It says why it is not serving time...
    daemon.wait_for_line("cannot resolve pool.ntp.org", Duration::from_secs(15));
    let why = daemon.wait_for_line("unsynchronised:", Duration::from_secs(5));
    assert!(why.contains("synchronised since boot"), "{why}");

    // ...and answers honestly unsynchronised, not with a clock that may be far off.
    let output = ns.run(SYHUB_NTP, &["query", "--json", "127.0.0.1"], Duration::from_secs(5));
    assert_eq!(output.status.code(), Some(3), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("query JSON");
    assert_eq!(json["stratum"], 16);
    assert_eq!(json["leap"], "unsynchronised");

    let status = daemon.stop_with(nix::sys::signal::Signal::SIGINT);
    assert!(status.success(), "exit {status}:\n{}", daemon.log());
    assert!(daemon.log().contains("SIGINT received"));
}

/// Runs `syhub-ntp run --config PATH` in `ns`, asserts it exits with code 1, returns its stderr.
fn run_expecting_failure(ns: &NetNs, config: &std::path::Path) -> String {
    let args = ["run", "--config", path_str(config)];
    let output = ns.run(SYHUB_NTP, &args, Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn port_already_in_use_is_a_clear_error() {
    let ns = NetNs::new("inuse");
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config_on_port_123(""));
    let dir = TempDir::new("inuse");
    let config = dir.write_config("config.toml", &config_on_port_123(""));
    let stderr = run_expecting_failure(&ns, &config);
    assert!(stderr.contains("UDP 0.0.0.0:123 is already in use"), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    daemon.stop();
}

#[test]
fn port_123_without_privilege_is_a_clear_error() {
    let ns = NetNs::new("noperm");
    let dir = TempDir::new("noperm");
    let config = dir.write_config("config.toml", &config_on_port_123(""));
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let output = ns.run(
        "setpriv",
        &[
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            SYHUB_NTP,
            "run",
            "--config",
            path_str(&config),
        ],
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("permission denied binding UDP 0.0.0.0:123"), "{stderr}");
    assert!(stderr.contains("CAP_NET_BIND_SERVICE"), "{stderr}");
}

#[test]
fn invalid_config_starts_nothing_and_names_file_line_and_key() {
    let ns = NetNs::new("badconfig");
    let dir = TempDir::new("badconfig");
    let config =
        dir.write("config.toml", "[server]\nlisten = [\"0.0.0.0:123\"]\n\n[local]\nstratum = 42\n");
    let stderr = run_expecting_failure(&ns, &config);
    let expected =
        format!("{}:5:11: stratum 42 is out of range: expected 1 to 15", path_str(&config));
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!stderr.contains("serving NTP"), "{stderr}");

    let output = ns.run(
        SYHUB_NTP,
        &["config", "check", "--config", path_str(&config)],
        Duration::from_secs(10),
    );
    assert_eq!(output.status.code(), Some(1));
    let json = ns.run(
        SYHUB_NTP,
        &["config", "check", "--json", "--config", path_str(&config)],
        Duration::from_secs(10),
    );
    let verdict: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON verdict");
    assert_eq!(verdict["valid"], false);
    assert!(verdict["error"].as_str().unwrap().contains("stratum 42"));
    assert!(String::from_utf8_lossy(&output.stderr).contains(&expected));

    let good = dir.write_config("good.toml", &config_on_port_123(""));
    let output = ns.run(
        SYHUB_NTP,
        &["config", "check", "--config", path_str(&good)],
        Duration::from_secs(10),
    );
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("config OK"));
}

#[test]
fn config_default_prints_a_config_that_checks() {
    let ns = NetNs::new("default");
    let output = ns.run(SYHUB_NTP, &["config", "default"], Duration::from_secs(10));
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("[server]")
            && text.contains("stratum = 10")
            && text.contains("mode = \"steer\"")
    );
    let dir = TempDir::new("default");
    let path = dir.write("config.toml", &text);
    let output = ns.run(
        SYHUB_NTP,
        &["config", "check", "--config", path_str(&path)],
        Duration::from_secs(10),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Times each serving thread of `pid` has been scheduled.
fn serving_thread_runs(pid: i32) -> Vec<u64> {
    let mut runs = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if name.starts_with("ntp-serve") {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap();
            runs.push(stat.split_whitespace().nth(2).unwrap().parse().unwrap());
        }
    }
    runs
}

/// Sends one request from each socket, then collects what comes back within a second: the
/// answers carrying time (stratum above 0) and the kisses.
fn ask_from_each(sockets: &[UdpSocket], server: &str) -> (usize, usize) {
    for socket in sockets {
        socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        socket.send_to(&raw_request(0, 4, 3, 6, ntp_now()), server).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let (mut timed, mut kisses) = (0, 0);
    for socket in sockets {
        let mut buf = [0u8; 128];
        if let Ok((len, _)) = socket.recv_from(&mut buf) {
            if parse_reply(&buf[..len]).stratum == 0 { kisses += 1 } else { timed += 1 }
        }
    }
    (timed, kisses)
}

#[test]
fn serving_threads_share_the_port_spread_the_clients_and_keep_one_rate_limit_per_client() {
    let ns = NetNs::new("threads");
    let config = |rate_limited: bool| {
        test_config(&["127.0.0.1:123"], "", "")
            .replacen("[server]\n", "[server]\nthreads = 3\nreceive_buffer = 65536\n", 1)
            .replacen("enabled = false", &format!("enabled = {rate_limited}"), 1)
    };
    // 120 clients on distinct source ports: every one answered, by more than one thread.
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config(false));
    let before = serving_thread_runs(daemon.process.pid());
    assert_eq!(before.len(), 3, "one serving thread per configured thread");
    let sockets: Vec<UdpSocket> = (0..120).map(|_| ns.udp_socket("127.0.0.1:0")).collect();
    assert_eq!(ask_from_each(&sockets, "127.0.0.1:123"), (120, 0));
    let after = serving_thread_runs(daemon.process.pid());
    let busy = before.iter().zip(&after).filter(|(b, a)| a > b).count();
    assert!(busy >= 2, "the kernel spread the clients over the sockets: {before:?} -> {after:?}");
    daemon.stop();

    // One address asking from 40 ports at once is one client to the rate limit, whichever thread
    // each request reaches: its burst of eight answered with time, one kiss, the rest dropped.
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config(true));
    let sockets: Vec<UdpSocket> = (0..40).map(|_| ns.udp_socket("127.0.0.1:0")).collect();
    assert_eq!(ask_from_each(&sockets, "127.0.0.1:123"), (8, 1));
    daemon.stop();
}

/// The hub (`lan0`: 10.78.0.1/24, fd78::1/64) and a host on its LAN (`lan1`: 10.78.0.2/24,
/// fd78::2/64), linked by a veth pair.
fn hub_and_host(label: &str) -> (NetNs, NetNs) {
    let hub = NetNs::new(&format!("{label}h"));
    let host = NetNs::new(&format!("{label}c"));
    hub.link(("lan0", "10.78.0.1/24"), &host, ("lan1", "10.78.0.2/24"));
    hub.ip(&["addr", "add", "fd78::1/64", "dev", "lan0", "nodad"]);
    host.ip(&["addr", "add", "fd78::2/64", "dev", "lan1", "nodad"]);
    (hub, host)
}

/// Sets kernel parameters (`name=value`) inside `ns` only.
fn sysctl(ns: &NetNs, settings: &[&str]) {
    let mut args = vec!["-q", "-w"];
    args.extend_from_slice(settings);
    let output = ns.run("sysctl", &args, Duration::from_secs(10));
    assert!(
        output.status.success(),
        "sysctl {settings:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Sends `payload` over UDP from `source` to `destination` (IPv4) through a raw socket in `ns`,
/// with the IP and UDP headers written here: how a host sends from an address no socket binds.
fn send_raw_v4(ns: &NetNs, source: &str, destination: &str, payload: &[u8]) {
    use socket2::{Domain, Protocol, Socket, Type};
    let parse = |text: &str| match text.parse::<SocketAddr>() {
        Ok(SocketAddr::V4(v4)) => v4,
        other => panic!("not an IPv4 socket address: {text} ({other:?})"),
    };
    let (source, destination) = (parse(source), parse(destination));
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    let mut packet = Vec::with_capacity(total);
    // Version 4, 20-byte header, length, don't fragment, TTL 64, UDP; the kernel fills in the
    // header checksum (and a zero source address, so 0.0.0.0 cannot be sent this way). No UDP
    // checksum (optional over IPv4).
    packet.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ]);
    packet.extend_from_slice(&source.ip().octets());
    packet.extend_from_slice(&destination.ip().octets());
    packet.extend_from_slice(&source.port().to_be_bytes());
    packet.extend_from_slice(&destination.port().to_be_bytes());
    packet.extend_from_slice(&(udp_len as u16).to_be_bytes());
    packet.extend_from_slice(&[0, 0]);
    packet.extend_from_slice(payload);
    ns.spawn_inside(move || {
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP)).unwrap();
        socket.set_header_included_v4(true).unwrap();
        socket.send_to(&packet, &SocketAddr::V4(destination).into()).unwrap();
    })
    .join()
    .unwrap();
}

/// Every datagram `socket` receives until nothing more comes for `quiet`, at most 50.
fn replies(socket: &UdpSocket, quiet: Duration) -> Vec<(RawReply, SocketAddr)> {
    socket.set_read_timeout(Some(quiet)).unwrap();
    let mut buf = [0u8; 1024];
    let mut replies = Vec::new();
    while replies.len() < 50 {
        match socket.recv_from(&mut buf) {
            Ok((len, from)) => replies.push((parse_reply(&buf[..len]), from)),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    replies
}

/// The daemon's request counters once `received` requests are counted (within 10 s), checked to
/// add up: each received request is answered, ignored, denied or rate-limited, once.
fn counters_after(daemon: &Daemon, received: u64) -> serde_json::Value {
    let status = daemon.wait_for_status(Duration::from_secs(10), "requests counted", |s| {
        s["requests"]["received"].as_u64() >= Some(received)
    });
    let requests = status["requests"].clone();
    let count = |key: &str| requests[key].as_u64().unwrap();
    assert_eq!(count("received"), received, "{requests}");
    assert_eq!(
        count("answered") + count("ignored") + count("denied") + count("rate_limited"),
        received,
        "{requests}"
    );
    requests
}

#[test]
fn a_broadcast_request_gets_one_answer_from_four_threads_and_a_multicast_one_none() {
    let (hub, host) = hub_and_host("bcast");
    // A route for the limited broadcast, as a LAN host with a default route has.
    host.ip(&["route", "add", "255.255.255.255", "dev", "lan1"]);
    // Four sockets on port 123 for each family, each of which the kernel hands a copy of every
    // broadcast and multicast; the default rate limit, which four copies of a few requests from
    // one client would exhaust.
    let config = config_on_port_123("")
        .replacen("[server]\n", "[server]\nthreads = 4\n", 1)
        .replacen("enabled = false", "enabled = true", 1);
    let daemon = Daemon::start(SYHUB_NTP, &hub, &config);

    let socket = host.udp_socket("10.78.0.2:0");
    socket.set_broadcast(true).unwrap();
    let mut sent = Vec::new();
    for (i, destination) in
        ["10.78.0.255:123", "10.78.0.255:123", "10.78.0.255:123", "255.255.255.255:123"]
            .iter()
            .enumerate()
    {
        let transmit = ntp_now() + i as u64;
        socket.send_to(&raw_request(0, 4, 3, 6, transmit), destination).unwrap();
        sent.push(transmit);
        std::thread::sleep(Duration::from_millis(100));
    }
    let answers = replies(&socket, Duration::from_millis(1500));
    let summary: Vec<(u8, [u8; 4], SocketAddr)> =
        answers.iter().map(|(r, from)| (r.stratum, r.reference_id, *from)).collect();
    assert_eq!(answers.len(), 4, "one answer per request, no kiss: {summary:?}");
    for (transmit, (reply, from)) in sent.iter().zip(&answers) {
        assert_eq!(reply.origin, *transmit, "{summary:?}");
        assert_eq!((reply.mode, reply.stratum), (4, 10), "time, not a kiss: {summary:?}");
        assert_eq!(*from, "10.78.0.1:123".parse().unwrap(), "from the hub's address on the LAN");
    }

    // Multicast: the all-hosts groups of both families, which every host is a member of.
    let v4 = host.udp_socket("10.78.0.2:0");
    socket2::SockRef::from(&v4).set_multicast_if_v4(&"10.78.0.2".parse().unwrap()).unwrap();
    v4.send_to(&raw_request(0, 4, 3, 6, ntp_now()), "224.0.0.1:123").unwrap();
    let v6 = host.udp_socket("[fd78::2]:0");
    let lan1 = host.spawn_inside(|| syhub_ntp_sys::interfaces::index_of("lan1")).join().unwrap();
    let all_nodes = std::net::SocketAddrV6::new("ff02::1".parse().unwrap(), 123, 0, lan1.unwrap());
    v6.send_to(&raw_request(0, 4, 3, 6, ntp_now()), all_nodes).unwrap();
    let v4_answers = replies(&v4, Duration::from_millis(1500)).len();
    let v6_answers = replies(&v6, Duration::from_millis(200)).len();
    assert_eq!((v4_answers, v6_answers), (0, 0), "a multicast request is not answered");

    // Each request counted once, though four sockets of its family received it.
    let requests = counters_after(&daemon, 6);
    assert_eq!((requests["answered"].as_u64(), requests["ignored"].as_u64()), (Some(4), Some(2)));
    assert_eq!(requests["rate_limited"], 0, "{requests}");
    daemon.stop();
}

#[test]
fn requests_from_the_hubs_own_address_at_a_service_port_or_a_broadcast_address_get_no_answer() {
    let (hub, host) = hub_and_host("ownsrc");
    // The hub takes IPv4 from the LAN with its own address as source (IPv6 does by default), and
    // the host may send from addresses that are not its own: what a forger does.
    sysctl(
        &hub,
        &[
            "net.ipv4.conf.all.accept_local=1",
            "net.ipv4.conf.lan0.accept_local=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.lan0.rp_filter=0",
        ],
    );
    sysctl(&host, &["net.ipv4.ip_nonlocal_bind=1", "net.ipv6.ip_nonlocal_bind=1"]);
    let daemon = Daemon::start(SYHUB_NTP, &hub, &config_on_port_123(""));
    let servers = ["10.78.0.1:123", "[fd78::1]:123"];

    // A service of the hub's (5353, outside the ephemeral ports) as the one an answer would reach.
    let services = [hub.udp_socket("10.78.0.1:5353"), hub.udp_socket("[fd78::1]:5353")];
    // The hub itself sending from that port...
    for (service, server) in services.iter().zip(servers) {
        service.send_to(&raw_request(0, 4, 3, 6, ntp_now()), server).unwrap();
    }
    // ...and a host on the LAN forging it (IPv4 sends from another's address only when
    // transparent).
    for (source, server) in ["10.78.0.1:5353", "[fd78::1]:5353"].iter().zip(servers) {
        let forger = host.udp_socket(source);
        if server.starts_with("10.") {
            socket2::SockRef::from(&forger).set_ip_transparent_v4(true).unwrap();
        }
        forger.send_to(&raw_request(0, 4, 3, 6, ntp_now()), server).unwrap();
    }
    // The subnet's broadcast address as source: an answer would go to every host. No socket
    // sends from it (the kernel picks the interface's address for one bound to it).
    send_raw_v4(&host, "10.78.0.255:5353", "10.78.0.1:123", &raw_request(0, 4, 3, 6, ntp_now()));
    for service in &services {
        let answers = replies(service, Duration::from_millis(1000));
        assert!(answers.is_empty(), "answered to the hub's own service: {} answers", answers.len());
    }
    let requests = counters_after(&daemon, 5);
    assert_eq!((requests["answered"].as_u64(), requests["ignored"].as_u64()), (Some(0), Some(5)));
    let log = daemon.process.log();
    assert!(log.contains("one of the hub's own addresses at a service's port"), "{log}");
    assert!(log.contains("10.78.0.255:5353, a broadcast address, is not answered"), "{log}");

    // A program on the hub asking its LAN address (as `syhub-ntp test` does) sends from an
    // ephemeral port, and is answered.
    for (local, server) in ["10.78.0.1:0", "[fd78::1]:0"].iter().zip(servers) {
        let transmit = ntp_now();
        let asker = hub.udp_socket(local);
        let (reply, from) = exchange(&asker, server, &raw_request(0, 4, 3, 6, transmit))
            .unwrap_or_else(|| panic!("the hub asking {server} got no answer"));
        assert_eq!(from, server.parse().unwrap());
        assert_good_time(&reply, transmit);
    }
    let requests = counters_after(&daemon, 7);
    assert_eq!((requests["answered"].as_u64(), requests["ignored"].as_u64()), (Some(2), Some(5)));
    daemon.stop();
}

#[test]
fn hosts_with_the_same_link_local_address_on_two_links_have_a_rate_limit_each() {
    // The hub with two links, h0 and h1, each to a host whose address is fe80::99.
    let hub = NetNs::new("llhub");
    let hosts = [NetNs::new("ll0"), NetNs::new("ll1")];
    for (i, host) in hosts.iter().enumerate() {
        let link = format!("h{i}");
        hub.link((&link, &format!("10.79.{i}.1/24")), host, ("eth0", &format!("10.79.{i}.2/24")));
        hub.ip(&["addr", "add", "fe80::1/64", "dev", &link, "nodad"]);
        host.ip(&["addr", "add", "fe80::99/64", "dev", "eth0", "nodad"]);
    }
    // Two requests back to back, then held to one per 64 s: the third is refused with a kiss.
    let config = test_config(&["[::]:123"], "", "").replacen(
        "enabled = false",
        "enabled = true\naverage = 64\nminimum = 2\nburst = 2",
        1,
    );
    let daemon = Daemon::start(SYHUB_NTP, &hub, &config);
    let ask = |host: &NetNs, count: u64| -> Vec<RawReply> {
        let eth0 = host.spawn_inside(|| syhub_ntp_sys::interfaces::index_of("eth0")).join();
        let eth0 = eth0.unwrap().unwrap();
        let local = std::net::SocketAddrV6::new("fe80::99".parse().unwrap(), 0, 0, eth0);
        let server = std::net::SocketAddrV6::new("fe80::1".parse().unwrap(), 123, 0, eth0);
        let socket = host.udp_socket(&local.to_string());
        for n in 0..count {
            socket.send_to(&raw_request(0, 4, 3, 6, ntp_now() + n), server).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        replies(&socket, Duration::from_millis(1000)).into_iter().map(|(r, _)| r).collect()
    };
    // The host on h0 floods: two answers with time, one RATE kiss, then silence.
    let flooded = ask(&hosts[0], 6);
    let kinds: Vec<(u8, [u8; 4])> = flooded.iter().map(|r| (r.stratum, r.reference_id)).collect();
    assert_eq!(kinds, [(10, *b"LOCL"), (10, *b"LOCL"), (0, *b"RATE")], "h0's host");
    // The host on h1, same address, other link: its own limit, untouched by the flood.
    let other = ask(&hosts[1], 1);
    let kinds: Vec<(u8, [u8; 4])> = other.iter().map(|r| (r.stratum, r.reference_id)).collect();
    assert_eq!(kinds, [(10, *b"LOCL")], "h1's host");

    // Two clients in the devices view, each named with its link.
    let mut command = std::process::Command::new(SYHUB_NTP);
    command.args(["clients", "--json", "--socket"]).arg(daemon.dir().join("control.sock"));
    let output = run_with_timeout(command, Duration::from_secs(10));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let clients: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut seen: Vec<(String, u64, u64)> = clients
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let count = |key: &str| c[key].as_u64().unwrap();
            (c["address"].as_str().unwrap().to_owned(), count("requests"), count("rate_limited"))
        })
        .collect();
    seen.sort();
    assert_eq!(seen, [("fe80::99%h0".to_owned(), 6, 4), ("fe80::99%h1".to_owned(), 1, 0)]);
    let requests = counters_after(&daemon, 7);
    assert_eq!(
        (requests["answered"].as_u64(), requests["rate_limited"].as_u64()),
        (Some(3), Some(4))
    );
    daemon.stop();
}
