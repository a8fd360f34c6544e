//! NTS with a real peer: chronyd, as an NTS client trusting our self-signed certificate, takes our
//! authenticated time; a tampered NTS request and a made-up cookie get no answer.

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

#[test]
fn chronyc_authdata_shows_the_nts_association() {
    let ns = NetNs::new("ntsauth");
    let dir = TempDir::new("ntsauth");
    certificate(&dir);
    let daemon = Daemon::start(SYHUB_NTP, &ns, &nts_config(&dir.0));
    // chronyd wants its command socket in a directory only its owner can enter.
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let socket = dir.0.join("chronyd.sock");
    let conf = dir.write(
        "chrony.conf",
        &format!(
            "server 127.0.0.1 iburst nts minpoll 0 maxpoll 0\nntstrustedcerts {0}/cert.pem\nntsdumpdir {0}\n\
             bindcmdaddress {1}\ncmdport 0\npidfile {0}/chronyd.pid\ndriftfile {0}/chrony.drift\n",
            dir.0.display(),
            socket.display()
        ),
    );
    let mut command = ns.command("chronyd");
    command.args(["-x", "-d", "-u", "root", "-f"]).arg(&conf);
    let mut chronyd = Process::spawn(command);
    // Wait for chronyd to take a few authenticated samples.
    let mut authdata = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(2));
        let output = ns.run(
            "chronyc",
            &["-h", path_str(&socket), "-N", "-c", "authdata"],
            Duration::from_secs(10),
        );
        authdata = String::from_utf8_lossy(&output.stdout).into_owned();
        // CSV: name, mode, key id, type, key length, last KE ago, KE attempts, cookies, NAKs, ...
        let fields: Vec<&str> = authdata.trim().split(',').collect();
        if fields.get(1) == Some(&"NTS")
            && fields.get(7).is_some_and(|c| c.parse::<u32>().is_ok_and(|c| c > 0))
        {
            break;
        }
    }
    let fields: Vec<&str> = authdata.trim().split(',').collect();
    assert_eq!(fields.get(1), Some(&"NTS"), "chronyc authdata: {authdata}");
    assert_eq!(fields.get(7), Some(&"0"), "NAKs: {authdata}");
    eprintln!("chronyc -N authdata: {}", authdata.trim());
    let sources = ns.run(
        "chronyc",
        &["-h", path_str(&socket), "-n", "-c", "sources"],
        Duration::from_secs(10),
    );
    let sources = String::from_utf8_lossy(&sources.stdout).into_owned();
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

#[test]
fn tampered_nts_requests_and_unknown_cookies_get_no_answer() {
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
    // A cookie we never made (one byte of it changed): nothing.
    let mut forged = association.protect(&header).unwrap();
    forged[48 + 36 + 4 + 30] ^= 1;
    assert_eq!(exchange(&forged), None, "a request with a forged cookie was answered");
    daemon.stop();
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
