//! `syhub-ntp-load`: sends NTP requests from many emulated clients and reports answers per
//! second, loss and latency percentiles. Bounded in time and count; stops by itself.

#![forbid(unsafe_code)]

use clap::Parser;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;
use syhub_ntp_bench::load::{LoadConfig, run};

#[derive(Parser)]
#[command(about = "NTP load generator: many emulated clients, sendmmsg/recvmmsg batches")]
struct Args {
    /// The server to load.
    #[arg(long, default_value = "127.0.0.1:123")]
    server: SocketAddr,
    /// Requests per second; 0 sends as fast as possible.
    #[arg(long, default_value_t = 10_000.0)]
    rate: f64,
    /// Seconds of sending (at most 600).
    #[arg(long, default_value_t = 2.0)]
    duration: f64,
    /// At most this many requests.
    #[arg(long, default_value_t = 10_000_000)]
    max_requests: u64,
    /// Distinct client addresses (127.16.0.0 onwards; loopback servers only).
    #[arg(long, default_value_t = 4096)]
    clients: u32,
    /// Source ports used in turn.
    #[arg(long, default_value_t = 4)]
    sockets: usize,
    /// Requests per sendmmsg call (1 to 64).
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn main() {
    let args = Args::parse();
    let duration_ok = args.duration > 0.0 && args.duration <= 600.0;
    let rate_ok = (0.0..=1e8).contains(&args.rate);
    if !(duration_ok && rate_ok) {
        eprintln!("error: --duration must be in (0, 600] seconds and --rate in [0, 1e8]");
        std::process::exit(2);
    }
    if args.clients == 0 || args.clients > 1 << 24 {
        eprintln!("error: --clients must be 1 to 16777216");
        std::process::exit(2);
    }
    let config = LoadConfig {
        server: args.server,
        rate: args.rate,
        duration: Duration::from_secs_f64(args.duration),
        max_requests: args.max_requests,
        clients: args.clients,
        sockets: args.sockets.clamp(1, 64),
        batch: args.batch,
        ..LoadConfig::default()
    };
    let report = match run(&config) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    };
    // A reader that went away (`| head`) is not an error of the load.
    let mut out = std::io::stdout().lock();
    let _ = if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report).expect("report serialises"))
    } else {
        writeln!(
            out,
            "sent {} ({:.0}/s), answered {} ({:.0}/s), loss {:.3} %\n\
             latency µs: p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}\n\
             server processing µs: p50 {:.1}  p99 {:.1}  p99.9 {:.1}\n\
             stamp to wire µs: p50 {:.1}  p99 {:.1}  p99.9 {:.1}",
            report.sent,
            report.send_rate,
            report.answered,
            report.answer_rate,
            report.loss * 100.0,
            report.latency_us.p50,
            report.latency_us.p99,
            report.latency_us.p999,
            report.latency_us.max,
            report.processing_us.p50,
            report.processing_us.p99,
            report.processing_us.p999,
            report.stamp_to_wire_us.p50,
            report.stamp_to_wire_us.p99,
            report.stamp_to_wire_us.p999,
        )
    };
}
