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
}
