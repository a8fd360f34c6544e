//! `syhub-ntp test` (diagnostics with PASS/WARN/FAIL and a fix for each failure) and
//! `syhub-ntp info` (versions, paths, sources, clients, counters).

use crate::output::{Colour, outln, paint};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use syhub_ntp_config::Config;
use syhub_ntp_ops::diagnose::{Verdict, diagnose};

#[derive(Debug, Args)]
pub(crate) struct TestArgs {
    /// Config file [default: /etc/syhub-ntp/config.toml, or the embedded default]
    #[arg(long, short, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print the checks as JSON
    #[arg(long)]
    json: bool,
}

pub(crate) fn run_test(args: TestArgs) -> ExitCode {
    let checks = diagnose(args.config.as_deref());
    let failed = checks.iter().any(|c| c.verdict == Verdict::Fail);
    if args.json {
        outln!("{}", serde_json::json!({ "ok": !failed, "checks": checks }));
    } else {
        let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for check in &checks {
            let (word, colour) = match check.verdict {
                Verdict::Pass => ("PASS", Colour::Green),
                Verdict::Warn => ("WARN", Colour::Yellow),
                Verdict::Fail => ("FAIL", Colour::Red),
            };
            outln!("{}  {:width$}  {}", paint(word, colour), check.name, check.detail);
            if let Some(fix) = check.fix.as_ref().filter(|_| check.verdict != Verdict::Pass) {
                outln!("      {:width$}  fix: {fix}", "");
            }
        }
    }
    if failed { ExitCode::from(super::EXIT_FAILURE) } else { ExitCode::SUCCESS }
}

#[derive(Debug, Args)]
pub(crate) struct InfoArgs {
    /// Config file [default: /etc/syhub-ntp/config.toml, or the embedded default]
    #[arg(long, short, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print as JSON
    #[arg(long)]
    json: bool,
}

pub(crate) fn run_info(args: InfoArgs) -> ExitCode {
    let loaded = match Config::load(args.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(error) => return super::fail(error),
    };
    let config = &loaded.config;
    let runtime = super::daemon::runtime();
    let status = runtime.block_on(syhub_ntp_client::request_status(&config.control.socket));
    let clients = runtime.block_on(syhub_ntp_client::request_clients(&config.control.socket));
    let drift = config
        .clock
        .drift_file
        .as_ref()
        .map(|p| (p.display().to_string(), syhub_ntp_state::drift::read(p).ok().flatten()));
    let json = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "binary": std::env::current_exe().ok().map(|p| p.display().to_string()),
        "config": loaded.source.to_string(),
        "control_socket": config.control.socket.display().to_string(),
        "drift_file": drift.as_ref().map(|(p, _)| p.clone()),
        "drift_ppm": drift.as_ref().and_then(|(_, ppm)| *ppm),
        "keys_file": config.auth.keys_file.as_ref().map(|p| p.display().to_string()),
        "listen": config.server.listen.as_slice().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "sources": config.sources.iter().map(|s| format!("{} {}", s.mode.name(), s.address)).collect::<Vec<_>>(),
        "daemon": status.as_ref().map(|s| s.status.clone()).map_err(|e| e.to_string()),
        "requests": status.as_ref().ok().map(|s| &s.requests),
        "uptime_seconds": status.as_ref().ok().map(|s| s.uptime_seconds),
        "clients": clients.as_ref().ok(),
    });
    if args.json {
        outln!("{json}");
        return ExitCode::SUCCESS;
    }
    let show = |key: &str, value: String| outln!("{key:16} {value}");
    show("version", format!("syhub-ntp {}", env!("CARGO_PKG_VERSION")));
    show("binary", json["binary"].as_str().unwrap_or("?").to_owned());
    show("config", loaded.source.to_string());
    show("control socket", config.control.socket.display().to_string());
    show(
        "drift file",
        match &drift {
            Some((path, Some(ppm))) => format!("{path} ({ppm:+.3} ppm)"),
            Some((path, None)) => format!("{path} (not written yet)"),
            None => "none".into(),
        },
    );
    show("keys file", json["keys_file"].as_str().unwrap_or("none").to_owned());
    show(
        "listen",
        json["listen"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", "))
            .unwrap_or_default(),
    );
    for source in config.sources.iter() {
        show("source", format!("{} {}", source.mode.name(), source.address));
    }
    match &status {
        Ok(status) => {
            show("daemon", status.status.clone());
            let r = &status.requests;
            show(
                "requests",
                format!(
                    "{} received, {} answered, {} ignored, {} denied, {} rate-limited",
                    r.received, r.answered, r.ignored, r.denied, r.rate_limited
                ),
            );
        }
        Err(error) => show("daemon", format!("not reachable: {error}")),
    }
    if let Ok(clients) = &clients {
        for client in clients.iter().take(10) {
            show("client", format!("{} ({} requests)", client.address, client.requests));
        }
    }
    ExitCode::SUCCESS
}
