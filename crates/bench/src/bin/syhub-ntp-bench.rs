//! `syhub-ntp-bench`: serves the same load with syhub-ntp, chronyd, NTPsec, ntpd-rs and a UDP echo,
//! each in a network namespace of its own, and prints one comparison table (Markdown).
//! `scripts/bench.sh` finds or fetches the other servers and runs this.

#![forbid(unsafe_code)]

use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;
use syhub_ntp_bench::compare::{Kind, Plan, Programs, full_table_rss, run, table};

#[derive(Parser)]
#[command(
    about = "Side-by-side NTP server benchmark on loopback, one network namespace per server"
)]
struct Args {
    /// The syhub-ntp binary to measure (a release build).
    #[arg(long)]
    syhub: PathBuf,
    /// chronyd (Debian's chrony).
    #[arg(long)]
    chronyd: Option<PathBuf>,
    /// NTPsec's ntpd (unpacked from Debian's package).
    #[arg(long)]
    ntpsec: Option<PathBuf>,
    /// ntpd-rs's ntp-daemon.
    #[arg(long)]
    ntpd_rs: Option<PathBuf>,
    /// Seconds every server is left idle while its wakeups are counted.
    #[arg(long, default_value_t = 60)]
    idle: u64,
    /// Seconds per rate step.
    #[arg(long, default_value_t = 3.0)]
    step: f64,
    /// The fixed rate for CPU per answer and latency, requests per second.
    #[arg(long, default_value_t = 50_000.0)]
    fixed_rate: f64,
    /// Only these, comma-separated: syhub, chronyd, ntpsec, ntpd-rs, echo.
    #[arg(long, value_delimiter = ',')]
    servers: Vec<String>,
}

fn main() {
    let args = Args::parse();
    let here = std::env::current_exe().ok().and_then(|p| p.parent().map(PathBuf::from));
    let sibling = |name: &str| here.as_ref().map_or_else(|| PathBuf::from(name), |d| d.join(name));
    // Servers start in scratch directories: every path must be absolute.
    let absolute = |path: PathBuf| std::fs::canonicalize(&path).unwrap_or(path);
    let programs = Programs {
        syhub: absolute(args.syhub),
        load: sibling("syhub-ntp-load"),
        echo: sibling("syhub-ntp-echo"),
        chronyd: args.chronyd.map(absolute),
        ntpsec: args.ntpsec.map(absolute),
        ntpd_rs: args.ntpd_rs.map(absolute),
    };
    let plan = Plan {
        idle: Duration::from_secs(args.idle.clamp(1, 600)),
        step: Duration::from_secs_f64(args.step.clamp(0.5, 30.0)),
        fixed_rate: args.fixed_rate.clamp(1_000.0, 1e6),
        ..Plan::default()
    };
    let wanted = |name: &str| args.servers.is_empty() || args.servers.iter().any(|s| s == name);
    let kinds: Vec<Kind> = [
        ("syhub", Kind::SyhubDefault),
        ("syhub", Kind::Syhub(1)),
        ("syhub", Kind::Syhub(2)),
        ("chronyd", Kind::Chronyd),
        ("ntpsec", Kind::Ntpsec),
        ("ntpd-rs", Kind::NtpdRs),
        ("echo", Kind::Echo),
    ]
    .into_iter()
    .filter(|(name, _)| wanted(name))
    .map(|(_, kind)| kind)
    .collect();
    let outcome = run(&kinds, &programs, &plan, &mut |line| eprintln!("{line}"));
    let (rows, skipped) = (outcome.rows, outcome.skipped);
    let full = wanted("syhub").then(|| full_table_rss(&programs, &plan));
    println!("{}", table(&rows, &plan));
    for skip in skipped {
        println!("Not measured: {skip}");
    }
    if let Some((kb, wakeups)) = outcome.idle_default {
        println!(
            "syhub-ntp idle on the embedded default config: RSS {:.1} MB, {wakeups:.2} wakeups/s",
            kb as f64 / 1024.0
        );
    }
    match full {
        None => {}
        Some(Ok((kb, report))) => println!(
            "syhub-ntp with a full client table (131072 addresses, table of 65536) at {:.0}/s: peak RSS {:.1} MB, loss {:.2} %",
            plan.fixed_rate,
            kb as f64 / 1024.0,
            report.loss * 100.0
        ),
        Some(Err(error)) => println!("Full-table run failed: {error}"),
    }
    println!();
    for row in &rows {
        let ladder: Vec<String> = row
            .ladder
            .iter()
            .map(|(rate, loss)| format!("{:.0}k:{:.1}%", rate / 1e3, loss * 100.0))
            .collect();
        println!("ladder {}: {}", row.kind.name(), ladder.join(" "));
    }
}
