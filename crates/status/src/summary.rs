//! The status in one line, as `systemctl status` and `syhub-ntp test` show it.

use crate::StatusSnapshot;

/// "synchronised to ADDRESS at stratum N", "serving the local clock at stratum N", or
/// "unsynchronised: REASON".
pub fn status_line(status: &StatusSnapshot) -> String {
    match status.peers.iter().find(|p| p.state == "system peer") {
        Some(peer) if status.synchronised => {
            format!("synchronised to {} at stratum {}", peer.address, status.stratum)
        }
        _ if status.status == "local clock" => {
            format!("serving the local clock at stratum {}", status.stratum)
        }
        _ => format!(
            "unsynchronised: {}",
            status.reason.as_deref().unwrap_or("no source selected yet")
        ),
    }
}

/// The system offset as `status` shows it: the estimate and its standard deviation, or, before
/// any source was measured, that there is none (not `+0 s ± 1000 s`).
pub fn offset_text(status: &StatusSnapshot) -> String {
    match status.offset_uncertainty_seconds {
        Some(uncertainty) => format!("{:+.6} s ± {uncertainty:.6} s", status.offset_seconds),
        None if status.status == "local clock" => "not measured (serving the local clock)".into(),
        None => "not measured yet".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SourceStatus;

    #[test]
    fn one_line_for_each_state() {
        let peer = SourceStatus {
            address: "192.0.2.1:123".into(),
            state: "system peer".into(),
            ..SourceStatus::default()
        };
        let synchronised = StatusSnapshot {
            synchronised: true,
            status: "synchronised".into(),
            stratum: 3,
            peers: vec![peer],
            ..StatusSnapshot::default()
        };
        assert_eq!(status_line(&synchronised), "synchronised to 192.0.2.1:123 at stratum 3");
        let local = StatusSnapshot {
            status: "local clock".into(),
            stratum: 10,
            ..StatusSnapshot::default()
        };
        assert_eq!(status_line(&local), "serving the local clock at stratum 10");
        let waiting =
            StatusSnapshot { status: "unsynchronised".into(), ..StatusSnapshot::default() };
        assert_eq!(status_line(&waiting), "unsynchronised: no source selected yet");
    }

    #[test]
    fn the_offset_is_shown_only_once_measured() {
        let measured = StatusSnapshot {
            status: "synchronised".into(),
            offset_seconds: -0.000_125,
            offset_uncertainty_seconds: Some(0.000_04),
            ..StatusSnapshot::default()
        };
        assert_eq!(offset_text(&measured), "-0.000125 s ± 0.000040 s");
        // Serving the local clock from the start: nothing was measured, so no ± 1000 s.
        let local = StatusSnapshot {
            status: "local clock".into(),
            offset_uncertainty_seconds: None,
            ..StatusSnapshot::default()
        };
        assert_eq!(offset_text(&local), "not measured (serving the local clock)");
        let starting =
            StatusSnapshot { status: "unsynchronised".into(), ..StatusSnapshot::default() };
        assert_eq!(offset_text(&starting), "not measured yet");
        // In holdover, on the local clock after sources were measured, the estimate stands.
        let holdover = StatusSnapshot { offset_uncertainty_seconds: Some(0.5), ..local };
        assert_eq!(offset_text(&holdover), "+0.000000 s ± 0.500000 s");
        // JSON: null until measured, and a snapshot without the field reads as not measured.
        let json = serde_json::to_value(&starting).unwrap();
        assert!(json["offset_uncertainty_seconds"].is_null(), "{json}");
        let mut object = json.as_object().unwrap().clone();
        object.remove("offset_uncertainty_seconds");
        let read: StatusSnapshot = serde_json::from_value(object.into()).unwrap();
        assert_eq!(read.offset_uncertainty_seconds, None);
    }
}
