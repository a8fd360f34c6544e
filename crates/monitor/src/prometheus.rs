//! The status snapshot in the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write;
use syhub_ntp_status::{DevicesSummary, StatusSnapshot};

/// Renders `/metrics`.
pub fn render(status: &StatusSnapshot) -> String {
    let mut out = String::with_capacity(4096);
    let mut gauge = |name: &str, help: &str, value: f64| write_gauge(&mut out, name, help, value);
    gauge(
        "synchronised",
        "1 while serving time from synchronised sources.",
        bool_value(status.synchronised),
    );
    gauge(
        "stratum",
        "Stratum the server advertises (16: unsynchronised).",
        f64::from(status.stratum),
    );
    gauge("offset_seconds", "Estimated true time minus system clock.", status.offset_seconds);
    if let Some(uncertainty) = status.offset_uncertainty_seconds {
        gauge(
            "offset_uncertainty_seconds",
            "Standard deviation of the offset estimate (absent until a source is measured).",
            uncertainty,
        );
    }
    gauge(
        "jitter_seconds",
        "Spread of the selected sources around the system peer.",
        status.jitter_seconds,
    );
    gauge("frequency_ppm", "Frequency correction the clock needs, ppm.", status.frequency_ppm);
    gauge(
        "root_delay_seconds",
        "Round-trip delay to the primary reference.",
        status.root_delay_seconds,
    );
    gauge(
        "root_dispersion_seconds",
        "Dispersion to the primary reference.",
        status.root_dispersion_seconds,
    );
    gauge(
        "poll_seconds",
        "Poll interval advised to the sources.",
        2f64.powi(i32::from(status.poll_log2)),
    );
    gauge("uptime_seconds", "Seconds since the daemon started.", status.uptime_seconds);
    if let Some(ago) = status.last_update_seconds_ago {
        gauge("last_update_seconds", "Seconds since the clock estimate was last updated.", ago);
    }

    let _ = writeln!(
        out,
        "# HELP syhub_ntp_info Version, clock mode and synchronisation state.\n# TYPE syhub_ntp_info gauge"
    );
    let _ = writeln!(
        out,
        "syhub_ntp_info{{version=\"{}\",clock_mode=\"{}\",status=\"{}\"}} 1",
        label(&status.version),
        label(&status.clock_mode),
        label(&status.status)
    );

    let requests = &status.requests;
    let _ = writeln!(
        out,
        "# HELP syhub_ntp_requests_received_total NTP packets received.\n# TYPE syhub_ntp_requests_received_total counter"
    );
    let _ = writeln!(out, "syhub_ntp_requests_received_total {}", requests.received);
    let _ = writeln!(
        out,
        "# HELP syhub_ntp_requests_total NTP packets by what became of them.\n# TYPE syhub_ntp_requests_total counter"
    );
    for (result, count) in [
        ("answered", requests.answered),
        ("ignored", requests.ignored),
        ("denied", requests.denied),
        ("rate_limited", requests.rate_limited),
    ] {
        let _ = writeln!(out, "syhub_ntp_requests_total{{result=\"{result}\"}} {count}");
    }

    type Field = fn(&syhub_ntp_status::SourceStatus) -> Option<f64>;
    let per_source: [(&str, &str, Field); 7] = [
        (
            "source_reach",
            "Reachability register of each source (8 bits, latest poll lowest; 0 for a \
             configured name without a server).",
            |s| u8::from_str_radix(&s.reach, 8).ok().map(f64::from),
        ),
        ("source_selected", "1 for the system peer, 0 otherwise.", |s| {
            Some(bool_value(s.state == "system peer"))
        }),
        ("source_stratum", "Stratum of each source.", |s| s.stratum.map(f64::from)),
        ("source_offset_seconds", "Filtered offset of each source.", |s| s.offset_seconds),
        ("source_delay_seconds", "Filtered round-trip delay to each source.", |s| s.delay_seconds),
        ("source_jitter_seconds", "Jitter of each source.", |s| s.jitter_seconds),
        (
            "source_refused_answers",
            "Answers from each source that could not be used, since it started.",
            |s| Some(s.refused_answers as f64),
        ),
    ];
    for (name, help, field) in per_source {
        let _ = writeln!(out, "# HELP syhub_ntp_{name} {help}\n# TYPE syhub_ntp_{name} gauge");
        for source in &status.peers {
            if let Some(value) = field(source) {
                let _ = writeln!(
                    out,
                    "syhub_ntp_{name}{{name=\"{}\",address=\"{}\",state=\"{}\"}} {}",
                    label(&source.name),
                    label(&source.address),
                    label(&source.state),
                    number(value)
                );
            }
        }
    }
    out
}

/// Renders the devices' aggregates for `/metrics`: counts by state and the largest clock error,
/// never a per-address label.
pub fn render_devices(summary: &DevicesSummary) -> String {
    let mut out = String::with_capacity(512);
    let _ = writeln!(
        out,
        "# HELP syhub_ntp_devices Devices that asked for time recently, by the state of their \
         clock.\n# TYPE syhub_ntp_devices gauge"
    );
    for (state, count) in summary.by_state() {
        let _ = writeln!(out, "syhub_ntp_devices{{state=\"{state}\"}} {count}");
    }
    if let Some(largest) = summary.largest_error_seconds {
        write_gauge(
            &mut out,
            "devices_largest_clock_error_seconds",
            "The largest clock error of a device still asking (its one-way network delay \
             included).",
            largest,
        );
    }
    out
}

/// One gauge without labels: its help, its type and its value.
fn write_gauge(out: &mut String, name: &str, help: &str, value: f64) {
    let _ = writeln!(
        out,
        "# HELP syhub_ntp_{name} {help}\n# TYPE syhub_ntp_{name} gauge\nsyhub_ntp_{name} {}",
        number(value)
    );
}

fn bool_value(value: bool) -> f64 {
    if value { 1.0 } else { 0.0 }
}

/// A sample value: Prometheus spells the special values its own way.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{value}")
    }
}

/// A label value with backslash, quote and newline escaped.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use syhub_ntp_status::SourceStatus;

    #[test]
    fn devices_are_counted_by_state_without_addresses() {
        let summary = DevicesSummary {
            devices: 4,
            in_sync: 2,
            off: 1,
            unknown: 1,
            silent: 0,
            largest_error_seconds: Some(5.0),
        };
        let text = render_devices(&summary);
        assert!(text.contains("syhub_ntp_devices{state=\"in sync\"} 2\n"), "{text}");
        assert!(text.contains("syhub_ntp_devices{state=\"silent\"} 0\n"), "{text}");
        assert!(text.contains("syhub_ntp_devices_largest_clock_error_seconds 5\n"), "{text}");
        assert!(!text.contains("address"), "{text}");
        let none = render_devices(&DevicesSummary::default());
        assert!(!none.contains("largest"), "{none}");
    }

    #[test]
    fn renders_every_line_in_the_exposition_format() {
        let status = StatusSnapshot {
            synchronised: true,
            status: "synchronised".into(),
            stratum: 2,
            offset_seconds: -1.5e-5,
            clock_mode: "observe".into(),
            version: "0.1.0".into(),
            peers: vec![SourceStatus {
                name: "pool \"x\"".into(),
                address: "192.0.2.1:123".into(),
                state: "system peer".into(),
                reach: "377".into(),
                stratum: Some(1),
                offset_seconds: Some(2e-6),
                ..SourceStatus::default()
            }],
            ..StatusSnapshot::default()
        };
        let text = render(&status);
        assert!(text.contains("syhub_ntp_synchronised 1\n"), "{text}");
        assert!(text.contains("syhub_ntp_offset_seconds -0.000015\n"), "{text}");
        assert!(text.contains("syhub_ntp_source_reach{name=\"pool \\\"x\\\"\",address=\"192.0.2.1:123\",state=\"system peer\"} 255\n"), "{text}");
        assert!(text.contains("syhub_ntp_requests_total{result=\"rate_limited\"} 0\n"));
        // Every sample line is `name{labels} value` or `name value`, every family has HELP and TYPE.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(
                value.parse::<f64>().is_ok() || ["NaN", "+Inf", "-Inf"].contains(&value),
                "{line}"
            );
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "no TYPE for {name}");
        }
    }

    #[test]
    fn a_name_without_a_server_is_unreachable_and_has_no_offset_or_delay() {
        let status = StatusSnapshot {
            peers: vec![SourceStatus {
                name: "pool.lan".into(),
                kind: "pool".into(),
                state: "unresolved".into(),
                detail: Some("cannot resolve pool.lan".into()),
                reach: "0".into(),
                stratum: Some(16),
                reference_id: Some(".POOL.".into()),
                ..SourceStatus::default()
            }],
            ..StatusSnapshot::default()
        };
        let text = render(&status);
        let labels = "{name=\"pool.lan\",address=\"\",state=\"unresolved\"}";
        assert!(text.contains(&format!("syhub_ntp_source_reach{labels} 0\n")), "{text}");
        assert!(text.contains(&format!("syhub_ntp_source_selected{labels} 0\n")), "{text}");
        for family in ["offset_seconds", "delay_seconds", "jitter_seconds"] {
            assert!(!text.contains(&format!("syhub_ntp_source_{family}{{")), "{family}: {text}");
        }
    }
}
