//! Accuracy benchmark (not a test): our daemon and `chronyd -x`, both in observe mode, follow the
//! same upstream through the same impairment relay for a fixed time; the relay shifts the
//! server's timestamps by a known amount, so the true offset is known. Prints the RMS and largest
//! error of both, side by side. Runs as root (network namespaces):
//!
//!     cargo bench --bench accuracy -- [--seconds 1800] [--warmup 300] [--minpoll 4] [--maxpoll 6] [--trace] [--direct]
//!
//! Both daemons' request counts are printed too: accuracy is compared at the load each puts on
//! its server.

use std::process::Command;
use std::time::{Duration, Instant};
use syhub_ntp_testkit::*;

const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");
const UPSTREAM_PORT: u16 = 11123;
const CHRONY_COMMAND_PORT: u16 = 11323;
/// The server's timestamps run this far ahead: the offset both daemons should find.
const SHIFT: f64 = 0.005;

struct Options {
    seconds: u64,
    warmup: u64,
    minpoll: i8,
    maxpoll: i8,
    /// Print both daemons' errors as they are sampled (to see how they move).
    trace: bool,
    /// No delay added by the relay: what is left is each daemon's own bias.
    direct: bool,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let mut options = Options {
        seconds: 1800,
        warmup: 300,
        minpoll: 4,
        maxpoll: 6,
        trace: flag("--trace"),
        direct: flag("--direct"),
    };
    for pair in args.windows(2) {
        match pair[0].as_str() {
            "--seconds" => options.seconds = pair[1].parse().expect("--seconds N"),
            "--warmup" => options.warmup = pair[1].parse().expect("--warmup N"),
            "--minpoll" => options.minpoll = pair[1].parse().expect("--minpoll N"),
            "--maxpoll" => options.maxpoll = pair[1].parse().expect("--maxpoll N"),
            _ => {}
        }
    }
    options
}

/// "2 ms ± 1 ms" each way: 1 ms fixed plus an exponential extra delay of mean 1 ms.
fn impaired(seed: u64) -> RelayConfig {
    let way = Impairment {
        fixed: Duration::from_millis(1),
        random_mean: Duration::from_millis(1),
        ..Impairment::NONE
    };
    RelayConfig { seed, to_server: way, to_client: way, server_shift: SHIFT }
}

/// The relay's own asymmetry: the median offset of direct queries through it with nothing added.
fn relay_bias(ns: &NetNs, relay: &Relay) -> f64 {
    relay.set_config(RelayConfig::default());
    let mut offsets: Vec<f64> = (0..21)
        .filter_map(|_| {
            let output = ns.run(
                SYHUB_NTP,
                &["query", "--json", &relay.listen_addr().to_string()],
                Duration::from_secs(5),
            );
            let json: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
            json["offset_seconds"].as_f64()
        })
        .collect();
    offsets.sort_by(f64::total_cmp);
    offsets.get(offsets.len() / 2).copied().expect("the relay answers queries")
}

/// chronyd -x following the relay, with a command port for `chronyc tracking`.
fn start_chrony_client(ns: &NetNs, dir: &TempDir, relay: &Relay, options: &Options) -> Process {
    let address = relay.listen_addr();
    let config = format!(
        "server {} port {} iburst minpoll {} maxpoll {}\nport 0\ncmdport {CHRONY_COMMAND_PORT}\n\
         bindcmdaddress 127.0.0.1\nbindcmdaddress /\ncmdallow 127.0.0.1\npidfile {}\n",
        address.ip(),
        address.port(),
        options.minpoll,
        options.maxpoll,
        path_str(&dir.0.join("client.pid"))
    );
    let path = dir.write("client.conf", &config);
    let mut command = ns.command("chronyd");
    command.args(["-x", "-d", "-u", "root", "-f"]).arg(&path);
    let mut process = Process::spawn(command);
    process.wait_for_line("Disabled control of system clock", Duration::from_secs(10));
    process
}

/// chronyd's estimate of NTP time minus the system clock ("System time" in `chronyc tracking`),
/// once it is synchronised.
fn chrony_offset(ns: &NetNs) -> Option<f64> {
    let output = ns.run(
        "chronyc",
        &["-h", "127.0.0.1", "-p", &CHRONY_COMMAND_PORT.to_string(), "-c", "tracking"],
        Duration::from_secs(5),
    );
    let line = String::from_utf8(output.stdout).ok()?;
    let fields: Vec<&str> = line.trim().split(',').collect();
    (fields.get(13) == Some(&"Normal")).then(|| fields.get(4)?.parse().ok())?
}

/// Requests our daemon has sent to its one source.
fn our_requests(status: &serde_json::Value) -> Option<u64> {
    status["peers"].as_array()?.first()?["requests_sent"].as_u64()
}

#[derive(Default)]
struct Errors(Vec<f64>);

impl Errors {
    fn rms(&self) -> f64 {
        (self.0.iter().map(|e| e * e).sum::<f64>() / self.0.len().max(1) as f64).sqrt()
    }
    fn mean(&self) -> f64 {
        self.0.iter().sum::<f64>() / self.0.len().max(1) as f64
    }
    fn max(&self) -> f64 {
        self.0.iter().map(|e| e.abs()).fold(0.0, f64::max)
    }
}

/// "chronyd 4.3" from `chronyd -v` ("chronyd (chrony) version 4.3 (+CMDMON ...)").
fn chrony_version() -> String {
    let output = Command::new("chronyd").arg("-v").output().ok();
    let text = output.and_then(|o| String::from_utf8(o.stdout).ok()).unwrap_or_default();
    match text.split_whitespace().nth(3) {
        Some(version) => format!("chronyd {version}"),
        None => "chronyd".into(),
    }
}

fn main() {
    let options = options();
    let ns = NetNs::new("accuracy");
    let _upstream = Chronyd::server(&ns, UPSTREAM_PORT, 1);
    let relay = Relay::start(
        &ns,
        "127.0.0.1:0",
        ([127, 0, 0, 1], UPSTREAM_PORT).into(),
        RelayConfig::default(),
    );
    let bias = relay_bias(&ns, &relay);
    let (path, config) = if options.direct {
        ("nothing added", RelayConfig { server_shift: SHIFT, ..RelayConfig::default() })
    } else {
        ("1 ms + 1 ms × Exp(1) each way", impaired(7))
    };
    relay.set_config(config);
    let before = relay.stats();
    let truth = SHIFT + bias;

    let dir = TempDir::new("accuracy");
    let source = format!(
        "[[source]]\nmode = \"server\"\naddress = \"{}\"\nminpoll = {}\nmaxpoll = {}\n\n",
        relay.listen_addr(),
        options.minpoll,
        options.maxpoll
    );
    let ours = Daemon::start(SYHUB_NTP, &ns, &test_config(&["127.0.0.1:123"], &source, ""));
    let _chrony = start_chrony_client(&ns, &dir, &relay, &options);

    eprintln!(
        "following chronyd through the relay ({path}, server +{:.1} ms, relay's own bias {:+.1} µs) for {} s; statistics after {} s",
        SHIFT * 1e3,
        bias * 1e6,
        options.seconds,
        options.warmup
    );
    let start = Instant::now();
    let (mut our_errors, mut chrony_errors) = (Errors::default(), Errors::default());
    while start.elapsed() < Duration::from_secs(options.seconds) {
        std::thread::sleep(Duration::from_secs(2));
        if start.elapsed() < Duration::from_secs(options.warmup) {
            continue;
        }
        let status = ours.status();
        if status["synchronised"] == true
            && let Some(offset) = status["offset_seconds"].as_f64()
        {
            our_errors.0.push(offset - truth);
        }
        if let Some(offset) = chrony_offset(&ns) {
            chrony_errors.0.push(offset - truth);
        }
        if options.trace {
            let peer = &status["peers"][0];
            eprintln!(
                "{:6.0} s  ours {:+8.1} µs (frequency {:+.3} ppm, poll 2^{}, filter {:+.1} µs)  chronyd {:+8.1} µs",
                start.elapsed().as_secs_f64(),
                (status["offset_seconds"].as_f64().unwrap_or(f64::NAN) - truth) * 1e6,
                status["frequency_ppm"].as_f64().unwrap_or(f64::NAN),
                status["poll_log2"],
                (peer["offset_seconds"].as_f64().unwrap_or(f64::NAN) - truth) * 1e6,
                chrony_errors.0.last().map_or(f64::NAN, |e| e * 1e6),
            );
        }
    }
    // Both daemons' requests pass the relay (chronyd answers `chronyc ntpdata` only on a Unix
    // socket in /run/chrony, which the benchmark does not create): chronyd's are the rest.
    let stats = relay.stats();
    let forwarded = stats.to_server.forwarded - before.to_server.forwarded;
    let ours_sent = our_requests(&ours.status());
    let requests = [ours_sent, ours_sent.map(|n| forwarded.saturating_sub(n))];
    eprintln!(
        "relay: {forwarded} requests forwarded, mean lateness {:.1} µs to the server and {:.1} µs \
         back",
        stats.to_server.mean_lateness_since(&before.to_server).as_secs_f64() * 1e6,
        stats.to_client.mean_lateness_since(&before.to_client).as_secs_f64() * 1e6,
    );
    ours.stop();

    println!(
        "accuracy: {} s through the relay, errors against the known offset, polling 2^{}..2^{} s",
        options.seconds, options.minpoll, options.maxpoll
    );
    println!(
        "{:<14} {:>12} {:>12} {:>12} {:>8} {:>9} {:>16}",
        "daemon", "RMS error", "mean error", "max error", "samples", "requests", "mean interval"
    );
    let version = chrony_version();
    for ((name, errors), requests) in
        [("syhub-ntp", &our_errors), (version.as_str(), &chrony_errors)].into_iter().zip(requests)
    {
        let interval = requests.map_or("?".to_owned(), |n| {
            format!("{:.0} s", options.seconds as f64 / n.max(1) as f64)
        });
        println!(
            "{:<14} {:>9.1} µs {:>9.1} µs {:>9.1} µs {:>8} {:>9} {:>16}",
            name,
            errors.rms() * 1e6,
            errors.mean() * 1e6,
            errors.max() * 1e6,
            errors.0.len(),
            requests.map_or("?".to_owned(), |n| n.to_string()),
            interval
        );
    }
    println!(
        "RMS ratio syhub-ntp / chronyd: {:.2}",
        our_errors.rms() / chrony_errors.rms().max(1e-12)
    );
}
