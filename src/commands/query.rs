//! `syhub-ntp query HOST[:PORT]`: one exchange with any NTP server, printed for people or as JSON.

use super::{EXIT_FAILURE, EXIT_NO_USABLE_TIME};
use crate::output::{errln, outln};
use clap::Args;
use serde::Serialize;
use std::process::ExitCode;
use std::time::Duration;
use syhub_ntp_client::{QueryError, QueryOutcome, query};

#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// Server to ask: a name or address, with an optional port (default 123); IPv6 as [ADDR]:PORT
    #[arg(value_name = "HOST[:PORT]")]
    server: String,
    /// Seconds to wait for the answer
    #[arg(long, short, default_value_t = 3.0, value_parser = parse_timeout)]
    timeout: f64,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds <= 60.0 => Ok(seconds),
        _ => Err("expected a number of seconds between 0 and 60".into()),
    }
}

/// The printed result; the same fields for people and for JSON.
#[derive(Debug, Serialize)]
struct QueryReport {
    server: String,
    synchronised: bool,
    version: u8,
    stratum: u8,
    reference_id: String,
    leap: &'static str,
    offset_seconds: f64,
    delay_seconds: f64,
    root_delay_seconds: f64,
    root_dispersion_seconds: f64,
    root_distance_seconds: f64,
    precision_log2_seconds: i8,
    kernel_receive_timestamp: bool,
}

impl From<&QueryOutcome> for QueryReport {
    fn from(outcome: &QueryOutcome) -> Self {
        let sample = &outcome.sample;
        let server = &sample.server;
        Self {
            server: outcome.server.to_string(),
            synchronised: sample.server_synchronised(),
            version: server.version,
            stratum: server.stratum,
            reference_id: server.reference_id.display_for_stratum(server.stratum),
            leap: server.leap.name(),
            offset_seconds: sample.offset.to_seconds_f64(),
            delay_seconds: sample.delay.to_seconds_f64(),
            root_delay_seconds: server.root_delay.to_seconds_f64(),
            root_dispersion_seconds: server.root_dispersion.to_seconds_f64(),
            root_distance_seconds: sample.root_distance().to_seconds_f64(),
            precision_log2_seconds: server.precision,
            kernel_receive_timestamp: outcome.kernel_timestamp,
        }
    }
}

pub(crate) fn run(args: QueryArgs) -> ExitCode {
    let result = query(&args.server, Duration::from_secs_f64(args.timeout));
    match result {
        Ok(outcome) => {
            let report = QueryReport::from(&outcome);
            if args.json {
                outln!("{}", serde_json::to_string(&report).unwrap_or_default());
            } else {
                print_report(&report);
            }
            if report.synchronised {
                ExitCode::SUCCESS
            } else {
                if !args.json {
                    errln!("syhub-ntp: {} is not synchronised: do not use its time", report.server);
                }
                ExitCode::from(EXIT_NO_USABLE_TIME)
            }
        }
        Err(error) => {
            let code = match error {
                QueryError::Refused { .. } => EXIT_NO_USABLE_TIME,
                _ => EXIT_FAILURE,
            };
            if args.json {
                let json = serde_json::json!({ "server": args.server, "error": error.to_string() });
                outln!("{json}");
            } else {
                errln!("syhub-ntp: {error}");
            }
            ExitCode::from(code)
        }
    }
}

fn print_report(report: &QueryReport) {
    outln!("server         {} (NTPv{})", report.server, report.version);
    outln!("stratum        {}", report.stratum);
    outln!("reference id   {}", report.reference_id);
    outln!("leap           {}", report.leap);
    outln!("offset         {:+.6} s", report.offset_seconds);
    outln!("delay          {:.6} s", report.delay_seconds);
    outln!(
        "root distance  {:.6} s (root delay {:.6} s, root dispersion {:.6} s)",
        report.root_distance_seconds,
        report.root_delay_seconds,
        report.root_dispersion_seconds
    );
}
