//! NTS with a real peer: chronyd, as an NTS client trusting our self-signed certificate, takes our
//! authenticated time, and keys again when our cookie keys change (the NTS NAK); a tampered NTS
//! request gets no answer, a cookie we cannot open an NTS NAK.

use std::path::Path;
use std::time::Duration;
use syhub_ntp_testkit::*;

/// The binary under test.
const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

/// A certificate for 127.0.0.1 made by our own command, in `dir`.
fn certificate(dir: &TempDir) {
    let output = std::process::Command::new(SYHUB_NTP)
        .args(["nts-certificate", "--self-signed", "127.0.0.1", "--out-dir"])
        .arg(&dir.0)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

fn nts_config(dir: &Path) -> String {
    test_config(&["127.0.0.1:123"], "", "")
        + &format!(
            "\n[nts]\ncertificate = \"{0}/cert.pem\"\nprivate_key = \"{0}/key.pem\"\nlisten = [\"127.0.0.1:4460\"]\nkeys_file = \"{0}/nts-keys\"\n",
            dir.display()
        )
}

#[test]
fn chronyd_takes_our_time_over_nts() {
    let ns = NetNs::new("nts");
    let dir = TempDir::new("nts");
    certificate(&dir);
    let daemon = Daemon::start(SYHUB_NTP, &ns, &nts_config(&dir.0));
    let trusted = format!("ntstrustedcerts {}/cert.pem", dir.0.display());
    let dump = format!("ntsdumpdir {}", dir.0.display());
    let output = ns.run(
        "chronyd",
        &["-Q", "-t", "20", "-f", "/dev/null", "server 127.0.0.1 iburst nts", &trusted, &dump],
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.contains("System clock wrong by"),
        "chronyd over NTS:\n{stderr}"
    );
    let log = daemon.stop();
    assert!(counter_in_log(&log, "answered") >= 1, "{log}");
    // The cookie keys are on disk, private, for the next start.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.0.join("nts-keys")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

/// Fields of `chronyc -c authdata`: name, mode, key id (for NTS, the number of the association,
/// one more at each key exchange), key type, key length, seconds since the last key exchange, key
/// exchange attempts, NAK (whether the last response was one), cookies held, cookie length.
const AUTHDATA_ASSOCIATION: usize = 2;
const AUTHDATA_LAST_KE: usize = 5;
const AUTHDATA_NAK: usize = 7;
const AUTHDATA_COOKIES: usize = 8;

/// A number in `chronyc -c authdata` output; 0 when absent.
fn authdata_field(authdata: &str, index: usize) -> u64 {
    authdata.trim().split(',').nth(index).and_then(|f| f.parse().ok()).unwrap_or(0)
}

/// chronyd as an NTS client of our server on 127.0.0.1, polling every 2^`poll` s, never touching
/// the clock (`-x`), with its command socket in `dir` (which only its owner may enter).
fn chronyd_nts_client(ns: &NetNs, dir: &TempDir, poll: i8) -> (Process, std::path::PathBuf) {
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let socket = dir.0.join("chronyd.sock");
    let conf = dir.write(
        "chrony.conf",
        &format!(
            "server 127.0.0.1 iburst nts port 123 ntsport 4460 minpoll {poll} maxpoll {poll}
\
             ntstrustedcerts {0}/cert.pem\nntsdumpdir {0}\nbindcmdaddress {1}\ncmdport 0\n\
             pidfile {0}/chronyd.pid\ndriftfile {0}/chrony.drift\n",
            dir.0.display(),
            socket.display()
        ),
    );
    let mut command = ns.command("chronyd");
    command.args(["-x", "-d", "-u", "root", "-f"]).arg(&conf);
    (Process::spawn(command), socket)
}

/// `chronyc -c COMMAND` (addresses as numbers) against chronyd's socket.
fn chronyc(ns: &NetNs, socket: &Path, command: &str) -> String {
    let output =
        ns.run("chronyc", &["-h", path_str(socket), "-n", "-c", command], Duration::from_secs(10));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// How many NTS-KE exchanges our daemon completed, from its (debug) log.
fn key_exchanges(daemon: &Daemon) -> usize {
    daemon.process.log().lines().filter(|l| l.contains("NTS-KE exchange done")).count()
}

#[test]
fn chronyd_keys_again_when_our_cookie_keys_change() {
    let ns = NetNs::new("ntsnak");
    let dir = TempDir::new("ntsnak");
    certificate(&dir);
    let daemon = Daemon::start(SYHUB_NTP, &ns, &nts_config(&dir.0));
    // Polling every 8 s: with its cookies unanswered, chronyd keys again only when they run out,
    // some 40 s or more later; the NAK makes it do so at once.
    let (mut chronyd, socket) = chronyd_nts_client(&ns, &dir, 3);
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while !(daemon.status()["requests"]["answered"].as_u64() >= Some(2)
        && authdata_field(&chronyc(&ns, &socket, "authdata"), AUTHDATA_COOKIES) > 0)
    {
        assert!(std::time::Instant::now() < deadline, "chronyd never took our time over NTS");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(key_exchanges(&daemon), 1, "{}", daemon.process.log());
    let before = chronyc(&ns, &socket, "authdata");
    let log = daemon.stop();
    assert_eq!(counter_in_log(&log, "ignored"), 0, "{log}");

    // The cookie keys are lost (a new keys file): every cookie chronyd holds is now unknown.
    std::fs::remove_file(dir.0.join("nts-keys")).unwrap();
    let changed = std::time::Instant::now();
    let daemon = Daemon::start(SYHUB_NTP, &ns, &nts_config(&dir.0));
    let (mut nak_at, mut ke_at) = (None, None);
    let answered_at = loop {
        let elapsed = changed.elapsed();
        assert!(
            elapsed < Duration::from_secs(60),
            "chronyd did not get our time again within 60 s (NAK after {nak_at:?}, key exchange \
             after {ke_at:?}); chronyc authdata: {}\nour log:\n{}",
            chronyc(&ns, &socket, "authdata"),
            daemon.process.log()
        );
        let requests = &daemon.status()["requests"];
        if nak_at.is_none() && daemon.process.log().contains("sent an NTS NAK (NTSN)") {
            nak_at = Some(elapsed);
        }
        if ke_at.is_none() && key_exchanges(&daemon) >= 1 {
            ke_at = Some(elapsed);
        }
        if requests["answered"].as_u64() >= Some(1) {
            break elapsed;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let authdata = chronyc(&ns, &socket, "authdata");
    eprintln!(
        "cookie keys changed; NTS NAK sent after {nak_at:?}, new NTS-KE after {ke_at:?}, \
         authenticated time again after {answered_at:?}; chronyc authdata: {}",
        authdata.trim()
    );
    let ke_at = ke_at.expect("a new key exchange before the answer");
    assert!(nak_at.is_some(), "no NAK sent");
    // Keyed again well before its cookies would have run out (without the NAK, chronyd 4.3 took
    // 42 s here), and says so.
    assert!(ke_at < Duration::from_secs(25), "new NTS-KE only after {ke_at:?}");
    assert!(
        authdata_field(&authdata, AUTHDATA_LAST_KE) <= answered_at.as_secs() + 1,
        "chronyd's last key exchange is older than the key change: {authdata}"
    );
    assert!(authdata_field(&authdata, AUTHDATA_COOKIES) > 0, "{authdata}");
    assert_eq!(
        authdata_field(&authdata, AUTHDATA_ASSOCIATION),
        authdata_field(&before, AUTHDATA_ASSOCIATION) + 1,
        "one new association: before {before}, after {authdata}"
    );
    chronyd.stop_with(nix::sys::signal::Signal::SIGTERM);
    daemon.stop();
}

#[test]
fn chronyc_authdata_shows_the_nts_association() {
    let ns = NetNs::new("ntsauth");
    let dir = TempDir::new("ntsauth");
    certificate(&dir);
    let daemon = Daemon::start(SYHUB_NTP, &ns, &nts_config(&dir.0));
    let (mut chronyd, socket) = chronyd_nts_client(&ns, &dir, 0);
    // Wait for chronyd to take a few authenticated samples and select us.
    let (mut authdata, mut sources) = (String::new(), String::new());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        authdata = chronyc(&ns, &socket, "authdata");
        sources = chronyc(&ns, &socket, "sources");
        let selected = sources.starts_with("^,*") || sources.starts_with("^,+");
        if authdata_field(&authdata, AUTHDATA_COOKIES) > 0 && selected {
            break;
        }
    }
    let fields: Vec<&str> = authdata.trim().split(',').collect();
    assert_eq!(fields.get(1), Some(&"NTS"), "chronyc authdata: {authdata}");
    assert_eq!(fields.get(AUTHDATA_NAK), Some(&"0"), "NAK: {authdata}");
    assert!(authdata_field(&authdata, AUTHDATA_COOKIES) > 0, "cookies: {authdata}");
    eprintln!("chronyc authdata: {}", authdata.trim());
    assert!(sources.starts_with("^,*") || sources.starts_with("^,+"), "chronyc sources: {sources}");
    chronyd.stop_with(nix::sys::signal::Signal::SIGTERM);
    daemon.stop();
}

#[test]
fn our_nts_client_synchronises_from_chronyd_serving_nts() {
    let ns = NetNs::new("ntscli");
    let dir = TempDir::new("ntscli");
    certificate(&dir);
    let extra = format!(
        "ntsservercert {0}/cert.pem\nntsserverkey {0}/key.pem\nntsdumpdir {0}\nntsport 4460",
        dir.0.display()
    );
    let _chronyd = Chronyd::server_with(&ns, 11123, 1, &extra);
    let source = |ca: &str| {
        format!(
            "[[source]]\nmode = \"nts\"\naddress = \"127.0.0.1\"\nca_file = \"{ca}\"\nminpoll = 1\nmaxpoll = 1\n\n"
        )
    };
    let trusted = format!("{}/cert.pem", dir.0.display());
    let daemon =
        Daemon::start(SYHUB_NTP, &ns, &test_config(&["127.0.0.1:123"], &source(&trusted), ""));
    let status = daemon.wait_for_status(Duration::from_secs(40), "synchronised over NTS", |s| {
        s["synchronised"] == true
    });
    assert_eq!(status["peers"][0]["kind"], "nts", "{status}");
    // chronyd's local stratum 1, plus one: the time came from chronyd's NTP port, which its
    // NTS-KE server named.
    assert_eq!(status["stratum"], 2, "{status}");
    assert_eq!(status["peers"][0]["address"], "127.0.0.1:4460", "{status}");
    daemon.stop();

    // A certificate we do not trust: no key exchange, no time.
    let stranger = TempDir::new("ntscli-other");
    certificate(&stranger);
    let other = format!("{}/cert.pem", stranger.0.display());
    let daemon =
        Daemon::start(SYHUB_NTP, &ns, &test_config(&["127.0.0.1:123"], &source(&other), ""));
    std::thread::sleep(Duration::from_secs(8));
    let status = daemon.status();
    assert_eq!(status["synchronised"], false, "{status}");
    let log = daemon.stop();
    assert!(log.contains("NTS-KE"), "{log}");
}

/// Keys and cookies from our own NTS-KE server, through the daemon's NTS client code.
fn key_exchange_with(ns: &NetNs, dir: &TempDir) -> syhub_ntp_daemon::sources::nts::Association {
    let ca = dir.0.join("cert.pem");
    let thread = ns.spawn_inside(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let tls = syhub_ntp_daemon::sources::nts::tls_config(Some(&ca), None).unwrap();
        runtime.block_on(syhub_ntp_daemon::sources::nts::key_exchange(
            tls,
            "127.0.0.1",
            "127.0.0.1:4460".parse().unwrap(),
        ))
    });
    thread.join().unwrap().expect("key exchange with our server")
}

/// Checks that `nak` is the NTS NAK to `request` (RFC 8915 section 5.7), byte by byte: a
/// kiss-o'-death (leap 3, version 4, mode 4, stratum 0, code NTSN) carrying none of our time, then
/// the request's unique identifier field (its first, 36 bytes) and nothing else.
fn assert_nts_nak(nak: &[u8], request: &[u8]) {
    assert_eq!(nak.len(), 48 + 36, "{nak:02x?}");
    assert!(nak.len() < request.len());
    assert_eq!((nak[0], nak[1]), (0xe4, 0), "leap, version, mode; stratum");
    assert_eq!(&nak[12..16], b"NTSN");
    assert_eq!(&nak[16..24], &[0; 8], "reference time");
    for at in [24, 32, 40] {
        assert_eq!(&nak[at..at + 8], &request[40..48], "the request's transmit time at byte {at}");
    }
    assert_eq!(&nak[48..52], &[0x01, 0x04, 0, 36], "a unique identifier field");
    assert_eq!(&nak[48..], &request[48..84], "the unique identifier echoed");
}

#[test]
fn tampered_nts_requests_get_no_answer_and_unknown_cookies_a_nak() {
    let ns = NetNs::new("ntstamper");
    let dir = TempDir::new("ntstamper");
    certificate(&dir);
    let daemon = Daemon::start(SYHUB_NTP, &ns, &nts_config(&dir.0));
    let mut association = key_exchange_with(&ns, &dir);
    assert_eq!(association.cookies.len(), 8, "eight cookies per exchange");
    assert_eq!(association.ntp_server.to_string(), "127.0.0.1:123");

    let socket = ns.udp_socket("127.0.0.1:0");
    socket.set_read_timeout(Some(Duration::from_millis(800))).unwrap();
    let mut header = [0u8; 48];
    header[0] = 0x23;
    header[40..48].copy_from_slice(&77u64.to_be_bytes());
    let mut buf = [0u8; 2048];
    let mut exchange = |packet: &[u8]| -> Option<Vec<u8>> {
        socket.send_to(packet, "127.0.0.1:123").unwrap();
        socket.recv(&mut buf).ok().map(|len| buf[..len].to_vec())
    };

    // A good request: an answer as long as the request, authenticated, with cookies.
    let request = association.protect(&header).unwrap();
    let answer = exchange(&request).expect("an answer to a good NTS request");
    assert_eq!(answer.len(), request.len());
    association.accept(&answer).expect("the answer checks");
    assert_eq!(association.cookies.len(), 8, "the jar is full again");

    // One bit changed in the header, or in the authenticated unique identifier: nothing.
    for at in [44, 60] {
        let mut tampered = association.protect(&header).unwrap();
        tampered[at] ^= 1;
        assert_eq!(exchange(&tampered), None, "a request altered at byte {at} was answered");
    }
    // A cookie we never made (one byte of it changed): the NTS NAK, nothing more.
    let mut forged = association.protect(&header).unwrap();
    forged[48 + 36 + 4 + 30] ^= 1;
    let nak = exchange(&forged).expect("an NTS NAK to a forged cookie");
    assert_nts_nak(&nak, &forged);
    assert!(socket.recv(&mut buf).is_err(), "a second answer to the forged cookie");
    let log = daemon.stop();
    let counter = |key| counter_in_log(&log, key);
    assert_eq!((counter("received"), counter("answered"), counter("ignored")), (4, 1, 3), "{log}");
}

#[test]
fn a_request_with_a_cookie_from_before_a_key_change_gets_an_nts_nak() {
    let ns = NetNs::new("ntsreplay");
    let dir = TempDir::new("ntsreplay");
    certificate(&dir);
    let daemon = Daemon::start(SYHUB_NTP, &ns, &nts_config(&dir.0));
    let mut association = key_exchange_with(&ns, &dir);
    let mut header = [0u8; 48];
    header[0] = 0x23;
    header[40..48].copy_from_slice(&0x1234_5678_9abc_def0_u64.to_be_bytes());
    let old = association.protect(&header).unwrap();
    // The same request without its authenticator: malformed, whatever its cookie.
    let unauthenticated = old[..48 + 36 + 4 + 104].to_vec();
    daemon.stop();

    // A new keys file: the daemon starts with a cookie key it never had before.
    std::fs::remove_file(dir.0.join("nts-keys")).unwrap();
    let daemon = Daemon::start(SYHUB_NTP, &ns, &nts_config(&dir.0));
    let socket = ns.udp_socket("127.0.0.1:0");
    socket.set_read_timeout(Some(Duration::from_millis(800))).unwrap();
    let mut buf = [0u8; 2048];
    socket.send_to(&old, "127.0.0.1:123").unwrap();
    let len = socket.recv(&mut buf).expect("an NTS NAK to a cookie from before the key change");
    let nak = buf[..len].to_vec();
    assert_nts_nak(&nak, &old);
    assert!(socket.recv(&mut buf).is_err(), "one answer only");
    // The client reads it as a NAK (and keys again).
    assert_eq!(association.accept(&nak), Err(syhub_ntp_proto::nts::fields::NtsAnswerError::Nak));
    socket.send_to(&unauthenticated, "127.0.0.1:123").unwrap();
    assert!(socket.recv(&mut buf).is_err(), "a malformed NTS request was answered");
    // A fresh key exchange gives cookies the server opens: time again.
    let mut association = key_exchange_with(&ns, &dir);
    let request = association.protect(&header).unwrap();
    socket.send_to(&request, "127.0.0.1:123").unwrap();
    let len = socket.recv(&mut buf).expect("an answer after keying again");
    association.accept(&buf[..len]).expect("an authenticated answer");
    let log = daemon.stop();
    assert!(log.contains("sent an NTS NAK (NTSN)"), "{log}");
    let counter = |key| counter_in_log(&log, key);
    assert_eq!((counter("received"), counter("answered"), counter("ignored")), (3, 1, 2), "{log}");
}

#[test]
fn an_expired_certificate_is_refused_unless_certificate_time_is_ignored() {
    let ns = NetNs::new("ntsexp");
    let dir = TempDir::new("ntsexp");
    // A certificate for 127.0.0.1 that expired in 2021, as a hub booting in 2020 would see valid.
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    dir.write("cert.pem", &cert.pem());
    dir.write("key.pem", &key.serialize_pem());
    let extra = format!(
        "ntsservercert {0}/cert.pem\nntsserverkey {0}/key.pem\nntsdumpdir {0}\nntsport 4460",
        dir.0.display()
    );
    let _chronyd = Chronyd::server_with(&ns, 11123, 1, &extra);
    let source = |ignore: bool| {
        format!(
            "[[source]]\nmode = \"nts\"\naddress = \"127.0.0.1\"\nca_file = \"{}/cert.pem\"\n\
             ignore_certificate_time = {ignore}\nminpoll = 1\nmaxpoll = 1\n\n",
            dir.0.display()
        )
    };
    let strict =
        Daemon::start(SYHUB_NTP, &ns, &test_config(&["127.0.0.1:123"], &source(false), ""));
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(strict.status()["synchronised"], false);
    let log = strict.stop();
    assert!(log.contains("NTS-KE") && log.to_lowercase().contains("expired"), "{log}");

    let lenient =
        Daemon::start(SYHUB_NTP, &ns, &test_config(&["127.0.0.1:123"], &source(true), ""));
    lenient.wait_for_status(Duration::from_secs(40), "synchronised despite the dates", |s| {
        s["synchronised"] == true
    });
    lenient.stop();
}

/// 100 connections to NTS-KE that never start TLS: the server holds at most 32 of them, a real
/// key exchange gets in at once (the oldest silent one gives way), and all are closed within the
/// exchange's 10 s.
#[test]
fn silent_key_exchange_connections_keep_no_one_out() {
    use std::io::Read;
    let ns = NetNs::new("ntssilent");
    let dir = TempDir::new("ntssilent");
    certificate(&dir);
    let daemon = Daemon::start(SYHUB_NTP, &ns, &nts_config(&dir.0));
    let pid = daemon.process.pid();
    let descriptors = || std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    let before = descriptors();
    let started = std::time::Instant::now();
    let silent: Vec<std::net::TcpStream> = ns
        .spawn_inside(|| {
            (0..100).map(|_| std::net::TcpStream::connect("127.0.0.1:4460").unwrap()).collect()
        })
        .join()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let during = descriptors();
    assert!(
        during <= before + 32 + 2,
        "{during} descriptors with silent connections, {before} before"
    );

    let exchange_started = std::time::Instant::now();
    let association = key_exchange_with(&ns, &dir);
    assert_eq!(association.cookies.len(), 8);
    assert!(
        exchange_started.elapsed() < Duration::from_secs(5),
        "the key exchange waited {:?} for a place",
        exchange_started.elapsed()
    );
    for mut stream in silent {
        let left = (started + Duration::from_secs(20))
            .saturating_duration_since(std::time::Instant::now());
        stream.set_read_timeout(Some(left.max(Duration::from_millis(10)))).unwrap();
        let read = stream.read(&mut [0u8; 64]);
        assert!(
            matches!(&read, Ok(0))
                || read.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "a silent connection stayed open: {read:?}"
        );
    }
    daemon.stop();
}
