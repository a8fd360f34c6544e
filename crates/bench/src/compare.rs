//! The side-by-side server benchmark: each server (ours, chronyd, NTPsec, ntpd-rs and the UDP echo
//! ceiling) runs alone in a network namespace of its own under `setpriv --bounding-set -sys_time`,
//! and the load generator, inside the same namespace, asks it on loopback. Measured per server:
//! idle memory and wakeups (all servers at once), CPU per answer and latency at a fixed rate, the
//! highest rate answered with under 1 % loss on a rate ladder that all servers climb rung by rung
//! together, peak memory, and user-space instructions per answer under callgrind.

use crate::load::LoadReport;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use syhub_ntp_testkit::{Chronyd, NetNs, Process, TempDir, path_str, run_with_timeout};

/// The programs compared; a missing one is left out of the table with the reason.
#[derive(Debug, Clone)]
pub struct Programs {
    pub syhub: PathBuf,
    pub load: PathBuf,
    pub echo: PathBuf,
    pub chronyd: Option<PathBuf>,
    pub ntpsec: Option<PathBuf>,
    pub ntpd_rs: Option<PathBuf>,
}

/// How long and how hard.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Idle time watched for wakeups (all servers at once).
    pub idle: Duration,
    /// Length of each rate step.
    pub step: Duration,
    /// The fixed rate at which CPU per answer and latency are compared.
    pub fixed_rate: f64,
    /// First rung of the ladder.
    pub ladder_start: f64,
    /// Loss under which a rate counts as served.
    pub max_loss: f64,
    /// Distinct client addresses the load comes from.
    pub clients: u32,
    /// Socket receive buffer every server gets, bytes (the kernel's default, which the others use).
    pub receive_buffer: usize,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(60),
            step: Duration::from_secs(3),
            fixed_rate: 50_000.0,
            ladder_start: 20_000.0,
            max_loss: 0.01,
            clients: 4096,
            receive_buffer: 212_992,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Ours with this many serving threads.
    Syhub(u8),
    /// Ours on the embedded default config, idle only.
    SyhubDefault,
    Chronyd,
    Ntpsec,
    NtpdRs,
    Echo,
}

impl Kind {
    pub fn name(self) -> String {
        match self {
            Kind::Syhub(1) => "syhub-ntp, 1 thread".into(),
            Kind::Syhub(n) => format!("syhub-ntp, {n} threads"),
            Kind::SyhubDefault => "syhub-ntp, default config".into(),
            Kind::Chronyd => "chronyd".into(),
            Kind::Ntpsec => "NTPsec ntpd".into(),
            Kind::NtpdRs => "ntpd-rs".into(),
            Kind::Echo => "UDP echo".into(),
        }
    }
}

/// One server's results.
#[derive(Debug, Clone)]
pub struct Row {
    pub kind: Kind,
    pub binary_bytes: u64,
    pub idle_rss_kb: u64,
    pub idle_wakeups_per_s: f64,
    /// At the fixed rate.
    pub fixed: LoadReport,
    /// Server CPU time per answer at the fixed rate, µs.
    pub cpu_per_answer_us: f64,
    /// Highest rate of the ladder answered with under the loss limit, and whether the load tool
    /// (not the server) stopped the ladder by not reaching the next rung.
    pub max_rate: f64,
    pub tool_limited: bool,
    pub ladder: Vec<(f64, f64)>,
    pub peak_rss_kb: u64,
    /// User-space instructions per answer under callgrind, when valgrind could run it.
    pub instructions: Option<f64>,
}

/// A server running in its namespace.
struct Running {
    process: Process,
    ns: NetNs,
    _dir: TempDir,
}

fn proc_status_kb(pid: i32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time (ns) and times scheduled of every thread of `pid`, by thread id.
fn schedstat(pid: i32) -> Vec<(u64, u64, u64)> {
    let mut threads = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return threads };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else { continue };
        let text = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        let fields: Vec<u64> = text.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        if let [cpu, _, runs] = fields[..] {
            threads.push((tid, cpu, runs));
        }
    }
    threads
}

/// CPU time (ns) and times scheduled between two readings: threads in both count their
/// difference, threads new in the second all of theirs (a thread that ended between the two
/// readings is missed).
fn schedstat_delta(before: &[(u64, u64, u64)], after: &[(u64, u64, u64)]) -> (u64, u64) {
    after.iter().fold((0, 0), |(cpu, runs), &(tid, cpu_after, runs_after)| {
        let (cpu_before, runs_before) =
            before.iter().find(|(t, _, _)| *t == tid).map_or((0, 0), |&(_, c, r)| (c, r));
        (cpu + cpu_after.saturating_sub(cpu_before), runs + runs_after.saturating_sub(runs_before))
    })
}

fn start(kind: Kind, programs: &Programs, plan: &Plan) -> Result<Running, String> {
    start_under(kind, programs, plan, None)
}

/// Starts `kind` in a new namespace, under `valgrind ARGS` when given, and waits until it answers.
fn start_under(
    kind: Kind,
    programs: &Programs,
    plan: &Plan,
    valgrind: Option<&[String]>,
) -> Result<Running, String> {
    let ns = NetNs::new("bench");
    let dir = TempDir::new("bench");
    let (program, args): (PathBuf, Vec<String>) = match kind {
        Kind::Syhub(_) | Kind::SyhubDefault => {
            let config = syhub_config(kind, &programs.syhub, &dir, plan)?;
            (
                programs.syhub.clone(),
                vec!["run".into(), "--config".into(), path_str(&config).into()],
            )
        }
        Kind::Chronyd => {
            let chronyd = programs.chronyd.as_ref().ok_or("chronyd not found")?;
            let path = dir.write("chrony.conf", &Chronyd::config(&dir, 123, 10, ""));
            let args = ["-x", "-d", "-u", "root", "-f", path_str(&path)];
            (chronyd.clone(), args.iter().map(|a| (*a).into()).collect())
        }
        Kind::Ntpsec => {
            let ntpd = programs.ntpsec.as_ref().ok_or("NTPsec's ntpd not found")?;
            let config = format!(
                // `restrict default` alone held each loopback client to about 20 requests (NTPsec
                // 1.2.2); an explicit entry for 127/8 without flags lets the load through.
                "restrict default\nrestrict -6 default\nrestrict 127.0.0.0 mask 255.0.0.0\n\
                 disable ntp\ndriftfile {}\n",
                path_str(&dir.0.join("drift"))
            );
            let path = dir.write("ntp.conf", &config);
            (ntpd.clone(), vec!["-n".into(), "-c".into(), path_str(&path).into()])
        }
        Kind::NtpdRs => {
            let daemon = programs.ntpd_rs.as_ref().ok_or("ntpd-rs not found")?;
            let config = "[observability]\nlog-level = \"warn\"\n\n[[server]]\nlisten = \"0.0.0.0:123\"\n\n\
                          [synchronization]\nlocal-stratum = 1\n";
            let path = dir.write("ntp.toml", config);
            (daemon.clone(), vec!["-c".into(), path_str(&path).into()])
        }
        Kind::Echo => (programs.echo.clone(), vec!["127.0.0.1:123".into()]),
    };
    let mut command = match valgrind {
        Some(valgrind_args) => {
            let mut command = ns.command("valgrind");
            command.args(valgrind_args).arg(&program);
            command
        }
        None => ns.command(path_str(&program)),
    };
    command.args(&args);
    command.current_dir(&dir.0);
    let process = Process::spawn(command);
    let running = Running { process, ns, _dir: dir };
    // Ready when it answers (slowly under valgrind).
    let patience = Duration::from_secs(if valgrind.is_some() { 90 } else { 15 });
    let deadline = Instant::now() + patience;
    loop {
        let probe = load(&running, programs, 200.0, Duration::from_millis(200), 1, 1);
        if probe.as_ref().is_ok_and(|r| r.answered > 0) {
            return Ok(running);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not answer within {patience:?}: {}\n{}",
                kind.name(),
                probe.err().unwrap_or_default(),
                running.process.log()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The embedded default config, with only what keeps it off this machine's own files changed
/// (control socket, drift file). For the load: the thread count, the same receive buffer as the
/// others, the local clock served at stratum 10 (as chronyd's `local stratum 10`) and a rate limit
/// that stays on but lets each emulated client ask 1000 times a second.
fn syhub_config(kind: Kind, syhub: &Path, dir: &TempDir, plan: &Plan) -> Result<PathBuf, String> {
    let output = Command::new(syhub)
        .args(["config", "default"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", syhub.display()))?;
    let mut config = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut edits = vec![
        (
            "/run/syhub-ntp/control.sock".to_owned(),
            path_str(&dir.0.join("control.sock")).to_owned(),
        ),
        ("/var/lib/syhub-ntp/drift".to_owned(), path_str(&dir.0.join("drift")).to_owned()),
    ];
    if let Kind::Syhub(threads) = kind {
        for (from, to) in [
            ("\nthreads = 0\n".to_owned(), format!("\nthreads = {threads}\n")),
            (
                "\nreceive_buffer = 4194304\n".to_owned(),
                format!("\nreceive_buffer = {}\n", plan.receive_buffer),
            ),
            ("\naverage = 8\n".to_owned(), "\naverage = 0.001\n".to_owned()),
            ("\nminimum = 2\n".to_owned(), "\nminimum = 0\n".to_owned()),
            ("\nburst = 8\n".to_owned(), "\nburst = 1000\n".to_owned()),
            ("\nmode = \"holdover\"\n".to_owned(), "\nmode = \"always\"\n".to_owned()),
        ] {
            edits.push((from, to));
        }
    }
    for (from, to) in edits {
        if !config.contains(&from) {
            return Err(format!("the default config no longer has {from:?}: update the benchmark"));
        }
        config = config.replacen(&from, &to, 1);
    }
    Ok(dir.write("config.toml", &config))
}

/// Runs the load generator inside the server's namespace.
fn load(
    server: &Running,
    programs: &Programs,
    rate: f64,
    duration: Duration,
    clients: u32,
    batch: usize,
) -> Result<LoadReport, String> {
    let mut command = server.ns.command(path_str(&programs.load));
    command.args([
        "--server",
        "127.0.0.1:123",
        "--rate",
        &rate.to_string(),
        "--duration",
        &duration.as_secs_f64().to_string(),
        "--clients",
        &clients.to_string(),
        "--batch",
        &batch.to_string(),
        "--json",
    ]);
    let output = run_with_timeout(command, duration + Duration::from_secs(20));
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let value: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("load tool output: {e}"))?;
    serde_json::from_value(value).map_err(|e| format!("load tool output: {e}"))
}

/// Measures every server in turn; `report` is told of each step as it happens.
pub fn run(
    kinds: &[Kind],
    programs: &Programs,
    plan: &Plan,
    report: &mut dyn FnMut(&str),
) -> Outcome {
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let mut idle_default = None;
    // Idle first, all at once: memory and wakeups of servers left alone.
    let mut idle = Vec::new();
    for &kind in kinds {
        match start(kind, programs, plan) {
            Ok(running) => idle.push((kind, running)),
            Err(error) => skipped.push(format!("{}: {error}", kind.name())),
        }
    }
    report(&format!("idle: watching {} servers for {} s", idle.len(), plan.idle.as_secs()));
    std::thread::sleep(Duration::from_secs(2));
    let before: Vec<_> = idle.iter().map(|(_, r)| schedstat(r.process.pid())).collect();
    std::thread::sleep(plan.idle);
    let mut contenders = Vec::new();
    for ((kind, running), before) in idle.into_iter().zip(before) {
        let pid = running.process.pid();
        let (_, runs) = schedstat_delta(&before, &schedstat(pid));
        let idle_rss_kb = proc_status_kb(pid, "VmRSS:");
        let wakeups = runs as f64 / plan.idle.as_secs_f64();
        report(&format!("{}: idle RSS {idle_rss_kb} kB, {wakeups:.2} wakeups/s", kind.name()));
        if kind == Kind::SyhubDefault {
            idle_default = Some((idle_rss_kb, wakeups));
            continue;
        }
        match fixed_rate(kind, &running, programs, plan, report) {
            Ok((fixed, cpu_per_answer_us)) => {
                let row = Row {
                    kind,
                    binary_bytes: binary_size(kind, programs),
                    idle_rss_kb,
                    idle_wakeups_per_s: wakeups,
                    fixed,
                    cpu_per_answer_us,
                    max_rate: 0.0,
                    tool_limited: false,
                    ladder: Vec::new(),
                    peak_rss_kb: 0,
                    instructions: None,
                };
                contenders.push((running, row, Climb::default()));
            }
            Err(error) => skipped.push(format!("{}: {error}", kind.name())),
        }
    }
    climb_together(&mut contenders, programs, plan, report);
    for (running, mut row, climb) in contenders {
        row.peak_rss_kb = proc_status_kb(running.process.pid(), "VmHWM:");
        drop(running);
        row.max_rate = climb.best;
        row.tool_limited = climb.tool_limited;
        match instructions_per_answer(row.kind, programs, plan, 3) {
            Ok(count) => {
                report(&format!("{}: {count:.0} instructions per answer", row.kind.name()));
                row.instructions = Some(count);
            }
            Err(error) => report(&format!("{}: callgrind: {error}", row.kind.name())),
        }
        rows.push(row);
    }
    Outcome { rows, skipped, idle_default }
}

/// Everything one run measured.
pub struct Outcome {
    pub rows: Vec<Row>,
    /// Servers left out, and why.
    pub skipped: Vec<String>,
    /// Ours idle on the embedded default config: RSS kB and wakeups per second.
    pub idle_default: Option<(u64, f64)>,
}

/// CPU per answer and latency at the plan's fixed rate, sent evenly one request at a time.
fn fixed_rate(
    kind: Kind,
    running: &Running,
    programs: &Programs,
    plan: &Plan,
    report: &mut dyn FnMut(&str),
) -> Result<(LoadReport, f64), String> {
    let pid = running.process.pid();
    let before = schedstat(pid);
    let fixed = load(running, programs, plan.fixed_rate, Duration::from_secs(3), plan.clients, 1)?;
    let (cpu, _) = schedstat_delta(&before, &schedstat(pid));
    let cpu_per_answer_us = cpu as f64 / 1e3 / fixed.answered.max(1) as f64;
    report(&format!(
        "{}: at {:.0}/s: {:.2} µs CPU per answer, loss {:.3} %, latency p99 {:.1} µs, processing p99 {:.1} µs",
        kind.name(),
        plan.fixed_rate,
        cpu_per_answer_us,
        fixed.loss * 100.0,
        fixed.latency_us.p99,
        fixed.processing_us.p99
    ));
    Ok((fixed, cpu_per_answer_us))
}

/// One server's way up the rate ladder.
#[derive(Debug, Default)]
struct Climb {
    best: f64,
    /// The first rung not served (infinite while climbing).
    failed_at: Option<f64>,
    tool_limited: bool,
}

/// The ladder, every server on a rung before any goes to the next, so that a noisy spell of the
/// machine falls on all of them alike: up by a quarter while served (a failed rung is tried once
/// more), then every 4 % between the last rung served and the first failed. The best rate served
/// counts.
fn climb_together(
    contenders: &mut [(Running, Row, Climb)],
    programs: &Programs,
    plan: &Plan,
    report: &mut dyn FnMut(&str),
) {
    let served = |r: &LoadReport| r.loss < plan.max_loss;
    let reached = |r: &LoadReport, rate: f64| r.send_rate >= 0.97 * rate;
    let mut step = |running: &Running, row: &mut Row, rate: f64| -> Option<LoadReport> {
        match load(running, programs, rate, plan.step, plan.clients, 16) {
            Ok(result) => {
                row.ladder.push((rate, result.loss));
                report(&format!(
                    "{}: {rate:.0}/s sent {:.0}/s, answered {:.0}/s, loss {:.2} %",
                    row.kind.name(),
                    result.send_rate,
                    result.answer_rate,
                    result.loss * 100.0
                ));
                Some(result)
            }
            Err(error) => {
                report(&format!("{}: load failed: {error}", row.kind.name()));
                None
            }
        }
    };
    let mut rate = plan.ladder_start;
    while rate <= 5e6 && contenders.iter().any(|(_, _, c)| c.failed_at.is_none()) {
        for (running, row, climb) in contenders.iter_mut().filter(|(_, _, c)| c.failed_at.is_none())
        {
            let Some(mut result) = step(running, row, rate) else {
                climb.failed_at = Some(rate);
                continue;
            };
            if reached(&result, rate) && !served(&result) {
                result = step(running, row, rate).unwrap_or(result);
            }
            if !reached(&result, rate) || !served(&result) {
                climb.tool_limited = !reached(&result, rate) && served(&result);
                climb.failed_at = Some(rate);
            } else {
                climb.best = rate;
            }
        }
        rate *= 1.25;
    }
    for rung in 1.. {
        let mut any = false;
        for (running, row, climb) in contenders.iter_mut() {
            let Some(failed_at) = climb.failed_at else { continue };
            let last_coarse = failed_at / 1.25;
            let rate = last_coarse * 1.04f64.powi(rung);
            if climb.tool_limited || climb.best == 0.0 || rate >= failed_at {
                continue;
            }
            any = true;
            if let Some(result) = step(running, row, rate)
                && served(&result)
                && reached(&result, rate)
            {
                climb.best = climb.best.max(rate);
            }
        }
        if !any {
            break;
        }
    }
}

fn binary_size(kind: Kind, programs: &Programs) -> u64 {
    let path = match kind {
        Kind::Syhub(_) | Kind::SyhubDefault => Some(&programs.syhub),
        Kind::Chronyd => programs.chronyd.as_ref(),
        Kind::Ntpsec => programs.ntpsec.as_ref(),
        Kind::NtpdRs => programs.ntpd_rs.as_ref(),
        Kind::Echo => Some(&programs.echo),
    };
    path.and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len())
}

/// Memory with a full client table: requests from more addresses than the table holds.
pub fn full_table_rss(programs: &Programs, plan: &Plan) -> Result<(u64, LoadReport), String> {
    let running = start(Kind::Syhub(1), programs, plan)?;
    let result = load(&running, programs, plan.fixed_rate, Duration::from_secs(5), 131_072, 16)?;
    Ok((proc_status_kb(running.process.pid(), "VmHWM:"), result))
}

/// User-space instructions per answer, counted by callgrind (repeatable whatever else the machine
/// does): the count over a load of `requests` at 2000/s, less the count over as long idle.
pub fn instructions_per_answer(
    kind: Kind,
    programs: &Programs,
    plan: &Plan,
    seconds: u64,
) -> Result<f64, String> {
    let dir = TempDir::new("callgrind");
    let out = dir.0.join("callgrind.out.%p");
    let valgrind =
        ["--tool=callgrind".to_owned(), format!("--callgrind-out-file={}", path_str(&out))];
    let running = start_under(kind, programs, plan, Some(&valgrind))?;
    let pid = running.process.pid();
    let control = |what: &str| -> Result<(), String> {
        let output = Command::new("callgrind_control")
            .args([what, &pid.to_string()])
            .output()
            .map_err(|e| format!("callgrind_control: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into())
        }
    };
    let newest_total = || -> Result<u64, String> {
        let newest = std::fs::read_dir(&dir.0)
            .map_err(|e| e.to_string())?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains('.'))
            .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
            .ok_or("no callgrind dump")?;
        let text = std::fs::read_to_string(newest.path()).map_err(|e| e.to_string())?;
        text.lines()
            .find_map(|l| l.strip_prefix("totals: ").or_else(|| l.strip_prefix("summary: ")))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| "no totals in the callgrind dump".to_owned())
    };
    let duration = Duration::from_secs(seconds);
    control("-z")?;
    std::thread::sleep(duration);
    control("-d")?;
    std::thread::sleep(Duration::from_millis(500));
    let idle = newest_total()?;
    control("-z")?;
    let report = load(&running, programs, 2000.0, duration, plan.clients, 1)?;
    control("-d")?;
    std::thread::sleep(Duration::from_millis(500));
    let loaded = newest_total()?;
    if report.answered == 0 {
        return Err("nothing answered under callgrind".into());
    }
    Ok(loaded.saturating_sub(idle) as f64 / report.answered as f64)
}

/// The comparison as one table, with our ratios to each.
pub fn table(rows: &[Row], plan: &Plan) -> String {
    // Ours: the thread count that served most.
    let ours = rows
        .iter()
        .filter(|r| matches!(r.kind, Kind::Syhub(_)))
        .max_by(|a, b| a.max_rate.total_cmp(&b.max_rate));
    let mut out = format!(
        "| server | answers/s, <{:.0} % loss | syhub-ntp ÷ it | CPU µs/answer at {:.0}k/s | it ÷ syhub-ntp | \
         instructions/answer | it ÷ syhub-ntp | latency p99 µs | processing p99 µs | stamp→wire p99 µs | \
         idle RSS | peak RSS | idle wakeups/s | binary |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        plan.max_loss * 100.0,
        plan.fixed_rate / 1e3
    );
    for row in rows {
        let throughput_ratio =
            ours.map_or(String::new(), |o| format!("{:.2}", o.max_rate / row.max_rate));
        let cpu_ratio = ours.map_or(String::new(), |o| {
            format!("{:.2}", row.cpu_per_answer_us / o.cpu_per_answer_us)
        });
        let instructions = row.instructions.map_or("–".into(), |i| format!("{i:.0}"));
        let instructions_ratio = match (row.instructions, ours.and_then(|o| o.instructions)) {
            (Some(theirs), Some(ours)) => format!("{:.2}", theirs / ours),
            _ => "–".into(),
        };
        let ntp = row.kind != Kind::Echo;
        let or_dash = |value: f64| if ntp { format!("{value:.1}") } else { "–".into() };
        out.push_str(&format!(
            "| {} | {:.0}{} | {} | {:.2} | {} | {} | {} | {:.1} | {} | {} | {:.1} MB | {:.1} MB | {:.2} | {:.2} MB |\n",
            row.kind.name(),
            row.max_rate,
            if row.tool_limited { " (tool-limited)" } else { "" },
            throughput_ratio,
            row.cpu_per_answer_us,
            cpu_ratio,
            instructions,
            instructions_ratio,
            row.fixed.latency_us.p99,
            or_dash(row.fixed.processing_us.p99),
            or_dash(row.fixed.stamp_to_wire_us.p99),
            row.idle_rss_kb as f64 / 1024.0,
            row.peak_rss_kb as f64 / 1024.0,
            row.idle_wakeups_per_s,
            row.binary_bytes as f64 / 1e6,
        ));
    }
    out
}
