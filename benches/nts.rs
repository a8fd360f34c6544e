//! What NTS costs: answered requests per second for plain NTP and for NTS (cookie, 7
//! placeholders, authenticator) from one closed-loop client each, and NTS-KE handshakes per
//! second, against our daemon and, beside it, chronyd serving NTS. Runs as root:
//!
//!     cargo bench --bench nts -- [--seconds 5] [--handshakes 200]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use syhub_ntp_daemon::sources::nts::{Association, key_exchange, tls_config};
use syhub_ntp_testkit::*;

const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

fn option(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2).find(|w| w[0] == name).map_or(default, |w| w[1].parse().expect("a number"))
}

/// Answers per second from one closed-loop client sending what `next` makes, to `server`.
fn closed_loop(
    server: SocketAddr,
    seconds: u64,
    mut next: impl FnMut(u64) -> Vec<u8>,
    mut accept: impl FnMut(&[u8]) -> bool,
) -> f64 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    socket.connect(server).expect("connect");
    let mut buf = [0u8; 2048];
    let started = Instant::now();
    let (mut serial, mut answered) = (0u64, 0u64);
    while started.elapsed() < Duration::from_secs(seconds) {
        serial += 1;
        let request = next(serial);
        if socket.send(&request).is_err() {
            continue;
        }
        while let Ok(len) = socket.recv(&mut buf) {
            if len >= 48 && buf[24..32] == serial.to_be_bytes() {
                if accept(&buf[..len]) {
                    answered += 1;
                }
                break;
            }
        }
    }
    answered as f64 / started.elapsed().as_secs_f64()
}

fn header(serial: u64) -> [u8; 48] {
    let mut header = [0u8; 48];
    header[0] = 0x23;
    header[40..48].copy_from_slice(&serial.to_be_bytes());
    header
}

/// Key exchanges per second with the NTS-KE server at `ke`, and the last association.
fn handshakes(
    runtime: &tokio::runtime::Runtime,
    ca: &std::path::Path,
    ke: SocketAddr,
    count: u64,
) -> (f64, Association) {
    let tls = tls_config(Some(ca), None).expect("TLS client");
    let started = Instant::now();
    let mut last = None;
    for _ in 0..count {
        last = Some(
            runtime.block_on(key_exchange(tls.clone(), "127.0.0.1", ke)).expect("key exchange"),
        );
    }
    (count as f64 / started.elapsed().as_secs_f64(), last.expect("at least one"))
}

fn main() {
    let seconds = option("--seconds", 5);
    let count = option("--handshakes", 200);
    let ns = NetNs::new("ntsbench");
    let dir = TempDir::new("ntsbench");
    let made = std::process::Command::new(SYHUB_NTP)
        .args(["nts-certificate", "--self-signed", "127.0.0.1", "--out-dir"])
        .arg(&dir.0)
        .status()
        .expect("nts-certificate");
    assert!(made.success());
    let ca = dir.0.join("cert.pem");
    let config = test_config(&["127.0.0.1:123"], "", "")
        + &format!(
            "\n[nts]\ncertificate = \"{0}/cert.pem\"\nprivate_key = \"{0}/key.pem\"\nlisten = [\"127.0.0.1:4460\"]\nkeys_file = \"{0}/nts-keys\"\n",
            dir.0.display()
        );
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config);
    let chrony_extra = format!(
        "ntsservercert {0}/cert.pem\nntsserverkey {0}/key.pem\nntsdumpdir {0}\nntsport 4461\nntsprocesses 0",
        dir.0.display()
    );
    let _chronyd = Chronyd::server_with(&ns, 11123, 1, &chrony_extra);

    let results = ns
        .spawn_inside(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let mut rows = Vec::new();
            for (name, ntp, ke) in [
                ("syhub-ntp", "127.0.0.1:123", "127.0.0.1:4460"),
                ("chronyd 4.3", "127.0.0.1:11123", "127.0.0.1:4461"),
            ] {
                let ntp: SocketAddr = ntp.parse().unwrap();
                let (ke_rate, association) = handshakes(&runtime, &ca, ke.parse().unwrap(), count);
                let plain = closed_loop(ntp, seconds, |s| header(s).to_vec(), |_| true);
                let server = association.ntp_server;
                let cell = std::cell::RefCell::new(association);
                let nts = closed_loop(
                    server,
                    seconds,
                    |s| cell.borrow_mut().protect(&header(s)).unwrap_or_default(),
                    |answer| cell.borrow_mut().accept(answer).is_ok(),
                );
                rows.push((name, plain, nts, ke_rate));
            }
            rows
        })
        .join()
        .expect("bench thread");
    daemon.stop();

    println!(
        "one closed-loop client on loopback, {seconds} s each; {count} NTS-KE handshakes in a row (release build)"
    );
    println!(
        "{:<12} {:>16} {:>16} {:>10} {:>16}",
        "server", "plain answers/s", "NTS answers/s", "NTS/plain", "KE handshakes/s"
    );
    for (name, plain, nts, ke) in results {
        println!("{name:<12} {plain:>16.0} {nts:>16.0} {:>9.0}% {ke:>16.1}", 100.0 * nts / plain);
    }
}
