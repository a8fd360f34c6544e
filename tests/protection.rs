//! Whom the server answers and how often, what it never answers, and the privileges it keeps:
//! test hosts in network namespaces with their own addresses, a flood, a malformed-input corpus,
//! and the daemon's credentials read from /proc.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use syhub_ntp_testkit::*;

/// The binary under test.
const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

/// Sends `packet` to `server` and returns the answer, if one comes within `wait`.
fn ask(socket: &UdpSocket, server: &str, packet: &[u8], wait: Duration) -> Option<Vec<u8>> {
    socket.set_read_timeout(Some(wait)).unwrap();
    socket.send_to(packet, server).unwrap();
    let mut buf = [0u8; 2048];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((len, _)) => return Some(buf[..len].to_vec()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
}

/// Held by the tests that load the machine, so they do not run at the same time and starve
/// each other on two cores.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The resident memory of process `pid`, kB.
fn rss_kb(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A hub with client hosts: host `i` is `addresses[i]` behind the hub's interface `c{i}`.
struct Network {
    hub: NetNs,
    clients: Vec<NetNs>,
}

impl Network {
    /// Each entry: (client address/prefix, hub address/prefix).
    fn new(label: &str, links: &[(&str, &str)]) -> Self {
        let hub = NetNs::new(label);
        let clients = links
            .iter()
            .enumerate()
            .map(|(i, (client, hub_side))| {
                let ns = NetNs::new(&format!("{label}c{i}"));
                hub.link((&format!("c{i}"), hub_side), &ns, ("eth0", client));
                ns
            })
            .collect();
        Self { hub, clients }
    }
}

fn with_server_keys(keys: &str) -> String {
    test_config(&["0.0.0.0:123", "[::]:123"], "", "").replacen(
        "\n[server]\n",
        &format!("\n[server]\n{keys}\n"),
        1,
    )
}

#[test]
fn allowed_subnets_are_answered_and_denied_ones_dropped_or_kissed() {
    let network = Network::new(
        "acl",
        &[("10.210.1.2/24", "10.210.1.1/24"), ("203.0.113.2/24", "203.0.113.1/24")],
    );
    let (inside, outside) = (&network.clients[0], &network.clients[1]);
    let probe = |ns: &NetNs, server: &str| {
        let socket = ns.udp_socket("0.0.0.0:0");
        ask(&socket, server, &raw_request(4, 3, 7), Duration::from_millis(800))
    };

    // Only 10/8: the outsider gets nothing (deny_action = drop).
    let daemon =
        Daemon::start(SYHUB_NTP, &network.hub, &with_server_keys("allow = [\"10.0.0.0/8\"]"));
    assert!(
        probe(inside, "10.210.1.1:123").is_some_and(|a| a[1] == 1 || a[1] == 10),
        "allowed client not answered"
    );
    assert_eq!(probe(outside, "203.0.113.1:123"), None, "denied client answered");
    let status = daemon.status();
    assert_eq!(status["requests"]["denied"], 1);
    daemon.stop();

    // The same with deny_action = "kod": a DENY kiss, which our own client refuses.
    let daemon = Daemon::start(
        SYHUB_NTP,
        &network.hub,
        &with_server_keys("allow = [\"10.0.0.0/8\"]\ndeny_action = \"kod\""),
    );
    let output =
        outside.run(SYHUB_NTP, &["query", "--json", "203.0.113.1"], Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stdout).contains("kiss-o'-death DENY"));
    // One kiss per client every 8 s: kisses cannot be turned into a flood either.
    assert_eq!(probe(outside, "203.0.113.1:123"), None, "a second kiss within 8 s");
    std::thread::sleep(Duration::from_secs(8));
    let kiss = probe(outside, "203.0.113.1:123").expect("a kiss-o'-death");
    assert_eq!((kiss.len(), kiss[1], &kiss[12..16]), (48, 0, &b"DENY"[..]));
    assert_eq!(kiss[24..32], 7u64.to_be_bytes(), "the kiss answers our request");
    daemon.stop();

    // A deny inside an allow wins by being longer; `local` allows the hub's own subnets.
    let keys = "allow = [\"local\"]\ndeny = [\"10.210.1.2/32\"]";
    let daemon = Daemon::start(SYHUB_NTP, &network.hub, &with_server_keys(keys));
    assert_eq!(
        probe(inside, "10.210.1.1:123"),
        None,
        "the denied host inside an allowed subnet was answered"
    );
    assert!(
        probe(outside, "203.0.113.1:123").is_some(),
        "a host on the hub's own subnet was refused"
    );
    daemon.stop();
}

#[test]
fn a_flood_is_held_back_while_a_regular_client_is_answered_and_memory_stays_bounded() {
    let _heavy = HEAVY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let network = Network::new(
        "flood",
        &[("10.211.1.2/24", "10.211.1.1/24"), ("10.211.2.2/24", "10.211.2.1/24")],
    );
    // A regular client here asks ten times a second, so the limit allows twenty.
    let limits = "[server.rate_limit]\nenabled = true\naverage = 0.05\nminimum = 0.04\nburst = 20\naction = \"kod\"\n";
    let config = test_config(&["0.0.0.0:123"], "", "")
        .replace("[server.rate_limit]\nenabled = false\n", limits);
    let daemon = Daemon::start(SYHUB_NTP, &network.hub, &config);
    let pid = daemon.process.pid();
    let rss = || rss_kb(pid);
    let rss_before = rss();

    // The flooder: 50 000 requests a second for 30 s, all from one address.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, kisses) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let flooder = {
        let (stop, sent, kisses) = (stop.clone(), sent.clone(), kisses.clone());
        network.clients[0].spawn_inside(move || {
            let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
            socket.set_nonblocking(true).unwrap();
            let started = Instant::now();
            let mut buf = [0u8; 512];
            let mut serial = 0u64;
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(30) {
                // 50 per millisecond.
                let due = started + Duration::from_micros(serial * 20);
                if Instant::now() < due {
                    std::thread::sleep(due - Instant::now());
                }
                serial += 1;
                if socket.send_to(&raw_request(4, 3, serial), "10.211.1.1:123").is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                while let Ok(len) = socket.recv(&mut buf) {
                    if len >= 48 && buf[1] == 0 && &buf[12..16] == b"RATE" {
                        kisses.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    // The regular client: ten queries a second for 30 s, from another host.
    let regular = network.clients[1].spawn_inside(|| {
        let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
        let (mut answered, mut asked) = (0, 0);
        let started = Instant::now();
        for n in 0..300u64 {
            let due = started + Duration::from_millis(n * 100);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            asked += 1;
            // An answer counts if it comes within a second (a late one to an earlier query is
            // skipped): what is measured is whether the flood crowds the client out.
            let serial = 1_000_000 + n;
            socket.send_to(&raw_request(4, 3, serial), "10.211.2.1:123").unwrap();
            let deadline = Instant::now() + Duration::from_secs(1);
            let mut buf = [0u8; 512];
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                socket.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
                match socket.recv(&mut buf) {
                    Ok(len) if len >= 48 && buf[1] != 0 && buf[24..32] == serial.to_be_bytes() => {
                        answered += 1;
                        break;
                    }
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
        }
        (answered, asked)
    });
    let (answered, asked) = regular.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    flooder.join().unwrap();
    let rss_after = rss();
    let status = daemon.status();
    let log = daemon.stop();

    let sent = sent.load(Ordering::Relaxed);
    let kisses = kisses.load(Ordering::Relaxed);
    eprintln!(
        "flood: {sent} sent, {kisses} kisses back; regular: {answered}/{asked}; RSS {rss_before} → {rss_after} kB"
    );
    assert!(
        answered * 100 >= asked * 99,
        "the regular client got only {answered} of {asked} answers:\n{log}"
    );
    assert!(sent >= 1_000_000, "the flood was only {sent} packets");
    // At most one kiss per 8 s (plus the answers of the first burst of 20).
    assert!(kisses <= 30 / 8 + 1, "{kisses} kisses to the flooder");
    assert!(status["requests"]["rate_limited"].as_u64().unwrap() >= sent / 2, "{status}");
    assert!(rss_after < rss_before + 8_192, "memory grew from {rss_before} kB to {rss_after} kB");
}

#[test]
fn a_sweep_of_forged_addresses_leaves_memory_bounded() {
    let _heavy = HEAVY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // A flooder forging 200 000 source addresses in its /64: the client table stays its size.
    let network = Network::new("sweep", &[("fd11:2::2/64", "fd11:2::1/64")]);
    std::thread::sleep(Duration::from_millis(1500)); // duplicate address detection
    let config = test_config(&["[::]:123"], "", "").replace(
        "[server.rate_limit]\nenabled = false\n",
        "[server.rate_limit]\nenabled = true\nclients = 65536\n",
    );
    let daemon = Daemon::start(SYHUB_NTP, &network.hub, &config);
    let pid = daemon.process.pid();
    let rss = || rss_kb(pid);
    let rss_before = rss();
    let sent = network.clients[0]
        .spawn_inside(|| {
            let socket = UdpSocket::bind("[::]:0").unwrap();
            let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
            // Bind-free forging: IPV6_FREEBIND and a source chosen per packet with sendmsg.
            socket2::SockRef::from(&socket).set_freebind_v6(true).expect("IPV6_FREEBIND");
            let mut sent = 0u32;
            for n in 0..200_000u32 {
                let mut source = [0u8; 16];
                source[..8].copy_from_slice(&[0xfd, 0x11, 0, 2, 0, 0, 0, 0]);
                source[12..].copy_from_slice(&(n + 10).to_be_bytes());
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr { s6_addr: source },
                    ipi6_ifindex: 0,
                };
                let cmsg = [nix::sys::socket::ControlMessage::Ipv6PacketInfo(&info)];
                let destination = nix::sys::socket::SockaddrIn6::from(
                    "[fd11:2::1]:123".parse::<std::net::SocketAddrV6>().unwrap(),
                );
                let packet = raw_request(4, 3, u64::from(n));
                let iov = [std::io::IoSlice::new(&packet)];
                if nix::sys::socket::sendmsg(
                    fd,
                    &iov,
                    &cmsg,
                    nix::sys::socket::MsgFlags::empty(),
                    Some(&destination),
                )
                .is_ok()
                {
                    sent += 1;
                }
                if n % 200 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            sent
        })
        .join()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let rss_after = rss();
    let status = daemon.status();
    let clients = {
        let socket = daemon.dir().join("control.sock");
        let output = run_with_timeout(
            {
                let mut command = std::process::Command::new(SYHUB_NTP);
                command.args(["clients", "--json", "--socket", path_str(&socket)]);
                command
            },
            Duration::from_secs(10),
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    daemon.stop();
    eprintln!(
        "sweep: {sent} forged sources; {} received; RSS {rss_before} → {rss_after} kB",
        status["requests"]["received"]
    );
    assert!(sent >= 190_000, "only {sent} forged packets sent");
    // The kernel drops some when the debug build falls behind; past 65 536 sources the table
    // must have replaced clients.
    assert!(status["requests"]["received"].as_u64().unwrap() >= 100_000, "{status}");
    assert!(clients.as_array().unwrap().len() <= 1000, "the devices list is capped");
    // The table is 65 536 slots of BYTES_PER_CLIENT: it may fill, it may not grow beyond that.
    let table_kb = (65_536 * syhub_ntp_proto::server::BYTES_PER_CLIENT / 1024) as u64;
    let bound = rss_before + table_kb + 4_096;
    assert!(
        rss_after < bound,
        "memory grew from {rss_before} kB to {rss_after} kB (bound {bound})"
    );
}

#[test]
fn malformed_input_gets_no_answer_while_good_requests_among_it_do() {
    let ns = NetNs::new("corpus");
    let daemon = Daemon::start(SYHUB_NTP, &ns, &test_config(&["127.0.0.1:123"], "", ""));
    let socket = ns.udp_socket("127.0.0.1:0");
    socket.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let good = raw_request(4, 3, 1);
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut packet = good.to_vec();
        f(&mut packet);
        packet
    };
    let mut corpus: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("one byte", vec![0x23]),
        ("47 bytes", good[..47].to_vec()),
        ("oversized (4 KB)", with(&|p| p.resize(4096, 0x55))),
    ];
    for version in [0u8, 5, 6, 7] {
        corpus.push(("bad version", raw_request(version, 3, 1).to_vec()));
    }
    for mode in [2u8, 4, 5, 6, 7] {
        corpus.push(("mode that is no request", raw_request(4, mode, 1).to_vec()));
    }
    for version in [2u8, 3, 4] {
        corpus.push(("mode 0 beyond NTPv1", raw_request(version, 0, 1).to_vec()));
    }
    let extension = |field_length: u16, total: usize| {
        with(&move |p| {
            let start = p.len();
            p.resize(start + total, 0);
            p[start + 2..start + 4].copy_from_slice(&field_length.to_be_bytes());
        })
    };
    corpus.push(("extension length 0", extension(0, 32)));
    corpus.push(("extension length not a multiple of 4", extension(30, 32)));
    corpus.push(("extension length past the end", extension(64, 32)));
    corpus.push(("extension length below 16", extension(12, 32)));
    for mac in [1usize, 8, 16, 23] {
        corpus.push((
            "MAC of a length no algorithm uses",
            with(&move |p| p.extend(std::iter::repeat_n(0x77, mac))),
        ));
    }
    let well_formed: Vec<(&str, Vec<u8>)> = vec![
        ("NTPv4 client", raw_request(4, 3, 11).to_vec()),
        ("NTPv3 symmetric active", raw_request(3, 1, 12).to_vec()),
        ("NTPv1 mode 0", raw_request(1, 0, 13).to_vec()),
        ("NTPv2 client", raw_request(2, 3, 14).to_vec()),
    ];
    let mut answered = 0;
    for (round, (name, packet)) in corpus.iter().enumerate() {
        assert_eq!(
            ask(&socket, "127.0.0.1:123", packet, Duration::from_millis(200)),
            None,
            "{name} was answered"
        );
        let (good_name, good) = &well_formed[round % well_formed.len()];
        let answer = ask(&socket, "127.0.0.1:123", good, Duration::from_secs(2))
            .unwrap_or_else(|| panic!("{good_name} went unanswered"));
        assert_eq!(answer.len(), 48);
        assert_eq!(answer[24..32], good[40..48], "{good_name}: origin");
        answered += 1;
    }
    let log = daemon.stop();
    assert_eq!(counter_in_log(&log, "answered"), answered);
    assert_eq!(
        counter_in_log(&log, "ignored"),
        corpus.len() as u64,
        "every malformed datagram, the empty one too, is counted as ignored"
    );
}

/// One `Name:\tvalue` line of /proc/PID/status (or of a thread's).
fn proc_field(status: &str, name: &str) -> String {
    status.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap_or("").trim().to_owned()
}

/// Every thread of `pid` runs as `uid` with no capabilities and no way to gain any.
fn assert_unprivileged(pid: i32, uid: &str) {
    let threads: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(threads.len() >= 2, "expected the serving thread too");
    for thread in threads {
        let status = std::fs::read_to_string(thread.join("status")).unwrap();
        let uids: Vec<&str> = proc_field(&status, "Uid")
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .leak()
            .iter()
            .map(String::as_str)
            .collect();
        assert!(uids.iter().all(|u| *u == uid), "{}: Uid {uids:?}", thread.display());
        for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
            assert_eq!(proc_field(&status, set), "0000000000000000", "{}: {set}", thread.display());
        }
        assert_eq!(proc_field(&status, "NoNewPrivs"), "1", "{}", thread.display());
    }
}

#[test]
fn started_as_root_it_drops_to_the_configured_user_after_binding() {
    let ns = NetNs::new("privdrop");
    let config = with_server_keys("user = \"nobody\"");
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config);
    let pid = daemon.process.pid();
    assert_unprivileged(pid, "65534");
    // Port 123 was bound before, so it still serves.
    let output = ns.run("ntpdig", &["-j", "-t", "2", "127.0.0.1"], Duration::from_secs(10));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let log = daemon.stop();
    assert!(log.contains("running as nobody with no capabilities"), "{log}");
}

#[test]
fn started_as_root_it_gives_its_own_directories_to_the_user_it_switches_to() {
    use std::os::unix::fs::MetadataExt;
    let ns = NetNs::new("privdirs");
    // As the reference-clock drop-in starts it: root, with the state directory root's.
    let state = TempDir::new("privdirs");
    let own = state.0.join("syhub-ntp");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::write(own.join("drift"), "1.500\n").unwrap();
    let config = with_server_keys("user = \"nobody\"")
        .replace("@DIR@/drift", path_str(&own.join("drift")))
        .replace("@DIR@/control.sock", "@DIR@/run/syhub-ntp/control.sock");
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config);
    let owner = |path: &std::path::Path| {
        let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        (m.uid(), m.gid())
    };
    let nobody = (65534, 65534);
    for path in [own.clone(), own.join("drift"), daemon.dir().join("run/syhub-ntp")] {
        assert_eq!(owner(&path), nobody, "{}", path.display());
    }
    let socket = daemon.dir().join("run/syhub-ntp/control.sock");
    assert_eq!(std::fs::symlink_metadata(&socket).unwrap().uid(), 65534);
    // Only directories called syhub-ntp: their parents stay root's.
    assert_eq!(owner(&state.0), (0, 0));
    assert_eq!(owner(&daemon.dir().join("run")), (0, 0));
    let log = daemon.stop();
    assert!(log.contains("to nobody") && log.contains("running as nobody"), "{log}");
}

#[test]
fn started_unprivileged_with_a_bind_capability_it_keeps_nothing_after_binding() {
    let ns = NetNs::new("unpriv");
    let dir = TempDir::new("unpriv");
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let config = dir.write_config("config.toml", &test_config(&["127.0.0.1:123"], "", ""));
    // As systemd would start it: User=nobody, AmbientCapabilities=CAP_NET_BIND_SERVICE.
    let mut command = ns.command("setpriv");
    command.args([
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        "--inh-caps",
        "+net_bind_service",
        "--ambient-caps",
        "+net_bind_service",
        SYHUB_NTP,
        "run",
        "--config",
        path_str(&config),
    ]);
    let mut daemon = Process::spawn(command);
    daemon.wait_for_line("serving NTP on 127.0.0.1:123", Duration::from_secs(10));
    assert_unprivileged(daemon.pid(), "65534");
    let output = ns.run("ntpdig", &["-j", "-t", "2", "127.0.0.1"], Duration::from_secs(10));
    assert!(output.status.success());
    let status = daemon.stop_with(nix::sys::signal::Signal::SIGTERM);
    assert!(status.success(), "{}", daemon.log());
}

#[test]
fn an_account_that_does_not_exist_is_a_clear_error() {
    let ns = NetNs::new("nouser");
    let dir = TempDir::new("nouser");
    let config = dir.write_config("config.toml", &with_server_keys("user = \"no-such-account\""));
    let output =
        ns.run(SYHUB_NTP, &["run", "--config", path_str(&config)], Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("the account \"no-such-account\" ([server] user) does not exist")
    );
}
