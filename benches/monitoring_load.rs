//! Does monitoring slow the time service? Our daemon answers NTP as fast as a closed-loop load
//! lets it, first alone, then while the dashboard and `/metrics` are fetched 50 times a second;
//! prints answered requests per second and latency percentiles for both. Runs as root:
//!
//!     cargo bench --bench monitoring_load -- [--seconds 5] [--rounds 4] [--clients 4]

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use syhub_ntp_testkit::*;

const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

fn option(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2).find(|w| w[0] == name).map_or(default, |w| w[1].parse().expect("a number"))
}

/// One client thread: request, wait for the answer, repeat, until `stop`. Returns latencies (µs).
fn ntp_client(stop: Arc<AtomicBool>) -> Vec<u32> {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    socket.connect("127.0.0.1:123").expect("connect");
    let mut request = [0u8; 48];
    request[0] = (4 << 3) | 3;
    let mut answer = [0u8; 128];
    let mut latencies = Vec::with_capacity(1 << 20);
    let mut serial: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        serial += 1;
        request[40..48].copy_from_slice(&serial.to_be_bytes());
        let sent = Instant::now();
        if socket.send(&request).is_err() {
            continue;
        }
        // Only the answer to this request counts (a late one to an earlier request is skipped).
        while let Ok(len) = socket.recv(&mut answer) {
            if len >= 48 && answer[24..32] == serial.to_be_bytes() {
                latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                break;
            }
        }
    }
    latencies
}

/// Fetches `/` and `/metrics` alternately, 50 times a second, until `stop`. Returns how many.
fn http_poller(stop: Arc<AtomicBool>) -> u32 {
    let mut fetched = 0;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let path = if fetched % 2 == 0 { "/" } else { "/metrics" };
        if let Ok(mut stream) = TcpStream::connect("127.0.0.1:8123") {
            let _ = write!(stream, "GET {path} HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n");
            let mut body = Vec::new();
            if stream.read_to_end(&mut body).is_ok() && body.starts_with(b"HTTP/1.1 200") {
                fetched += 1;
            }
        }
        next += Duration::from_millis(20);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    fetched
}

struct Run {
    answered_per_second: f64,
    p50: u32,
    p99: u32,
    p999: u32,
    fetched: u32,
}

fn run(ns: &NetNs, clients: u64, seconds: u64, poll_http: bool) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let stop = stop.clone();
            ns.spawn_inside(move || ntp_client(stop))
        })
        .collect();
    let poller = poll_http.then(|| {
        let stop = stop.clone();
        ns.spawn_inside(move || http_poller(stop))
    });
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut latencies: Vec<u32> =
        workers.into_iter().flat_map(|w| w.join().expect("client")).collect();
    let fetched = poller.map_or(0, |p| p.join().expect("poller"));
    latencies.sort_unstable();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Run {
        answered_per_second: latencies.len() as f64 / seconds as f64,
        p50: percentile(0.5),
        p99: percentile(0.99),
        p999: percentile(0.999),
        fetched,
    }
}

fn main() {
    let seconds = option("--seconds", 5);
    let rounds = option("--rounds", 4);
    let clients = option("--clients", 4);
    let ns = NetNs::new("monload");
    let config =
        test_config(&["127.0.0.1:123"], "", "") + "\n[http]\nlisten = [\"127.0.0.1:8123\"]\n";
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config);
    run(&ns, clients, 2, false);
    // Alternate the two conditions so that drift in the machine's load falls on both alike.
    let (mut alone, mut polled) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        alone.push(run(&ns, clients, seconds, false));
        polled.push(run(&ns, clients, seconds, true));
    }
    daemon.stop();

    println!(
        "NTP answered with {clients} closed-loop clients, {rounds} alternating rounds of {seconds} s (release build)"
    );
    println!(
        "{:<34} {:>18} {:>8} {:>8} {:>9} {:>10}",
        "condition", "answers/s (± sd)", "p50 µs", "p99 µs", "p99.9 µs", "HTTP GETs"
    );
    let mean =
        |runs: &[Run], f: fn(&Run) -> f64| runs.iter().map(f).sum::<f64>() / runs.len() as f64;
    for (name, runs) in [("NTP only", &alone), ("NTP + dashboard & /metrics 50/s", &polled)] {
        let rate = mean(runs, |r| r.answered_per_second);
        let spread = (runs.iter().map(|r| (r.answered_per_second - rate).powi(2)).sum::<f64>()
            / runs.len() as f64)
            .sqrt();
        println!(
            "{:<34} {:>10.0} ± {:>5.0} {:>8.0} {:>8.0} {:>9.0} {:>10.0}",
            name,
            rate,
            spread,
            mean(runs, |r| f64::from(r.p50)),
            mean(runs, |r| f64::from(r.p99)),
            mean(runs, |r| f64::from(r.p999)),
            mean(runs, |r| f64::from(r.fetched)),
        );
    }
    println!(
        "throughput with monitoring: {:.1} % of without",
        100.0 * mean(&polled, |r| r.answered_per_second) / mean(&alone, |r| r.answered_per_second)
    );
}
