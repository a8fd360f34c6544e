//! The devices view: the client log's records with their names and states, sorted for the
//! operator, for the control socket and the monitoring surfaces. Built only when asked for; the
//! serving path only records.

use crate::config::ClientsConfig;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use syhub_ntp_proto::server::{ClientAddress, ClientLog, ClientSummary, DevicePolicy};
use syhub_ntp_proto::time::Monotonic;
use syhub_ntp_status::{ClientStatus, ClockErrorSample, sort_devices};
use tokio::time::Instant;

/// The most devices one answer lists (the log holds at most its capacity anyway).
const MAX_LISTED: usize = 1000;

/// What builds the devices view, shared by every surface that shows it.
#[derive(Clone)]
pub struct DevicesView {
    clients: Arc<Mutex<ClientLog>>,
    /// The daemon's start, origin of the log's monotonic time.
    origin: Instant,
    policy: DevicePolicy,
    config: Arc<ClientsConfig>,
}

impl DevicesView {
    pub(crate) fn new(
        clients: Arc<Mutex<ClientLog>>,
        origin: Instant,
        config: &ClientsConfig,
    ) -> Self {
        let policy = DevicePolicy {
            in_sync_within: config.in_sync_within,
            silent_after_at_least: config.silent_after,
            ..DevicePolicy::default()
        };
        Self { clients, origin, policy, config: Arc::new(config.clone()) }
    }

    /// Every device on record, named, with its state, sorted as the table lists them.
    pub fn devices(&self) -> Vec<ClientStatus> {
        let now = Monotonic::from_duration(self.origin.elapsed());
        // The lock is held only to copy the records out.
        let summaries = self.clients.lock().map(|log| log.summaries(now)).unwrap_or_default();
        let names = self.names();
        let mut devices: Vec<ClientStatus> =
            summaries.into_iter().map(|summary| self.status(summary, &names)).collect();
        sort_devices(&mut devices);
        devices.truncate(MAX_LISTED);
        devices
    }

    /// The configured names over the leases file's.
    fn names(&self) -> BTreeMap<IpAddr, String> {
        let mut names = match &self.config.leases_file {
            Some(path) => syhub_ntp_state::leases::read(path),
            None => BTreeMap::new(),
        };
        names.extend(self.config.names.iter().map(|(a, n)| (*a, n.clone())));
        names
    }

    fn status(&self, summary: ClientSummary, names: &BTreeMap<IpAddr, String>) -> ClientStatus {
        let error = summary.clock_error.map(f64::from);
        let state =
            self.policy.state(f64::from(summary.last_seen_ago), f64::from(summary.interval), error);
        ClientStatus {
            address: shown(summary.address),
            name: names.get(&summary.address.ip).cloned(),
            state: state.name().to_owned(),
            requests: summary.requests,
            answered: summary.answered,
            rate_limited: summary.rate_limited,
            kissed: summary.kissed,
            last_seen_seconds_ago: summary.last_seen_ago,
            first_seen_seconds_ago: summary.first_seen_ago,
            interval_seconds: f64::from(summary.interval),
            version: summary.version,
            mode: summary.mode,
            clock_error_seconds: error,
            clock_errors: summary
                .clock_errors
                .iter()
                .map(|&(seconds_ago, error)| ClockErrorSample {
                    seconds_ago,
                    error_seconds: f64::from(error),
                })
                .collect(),
        }
    }
}

/// A client's address as the table shows it: a link-local one with the name of the interface it
/// was heard on (`fe80::99%eth0`), as `ping` takes it.
fn shown(client: ClientAddress) -> String {
    match client.scope {
        0 => client.ip.to_string(),
        scope => match syhub_ntp_sys::interfaces::name_of(scope) {
            Some(name) => format!("{}%{name}", client.ip),
            None => client.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syhub_ntp_proto::server::DeviceState;

    #[test]
    fn a_link_local_client_is_shown_with_its_interface() {
        let client = |text: &str| ClientAddress::of(text.parse().unwrap());
        let lo = syhub_ntp_sys::interfaces::index_of("lo").unwrap();
        assert_eq!(shown(client(&format!("[fe80::99%{lo}]:123"))), "fe80::99%lo");
        assert_eq!(shown(client("[fe80::99%999999]:123")), "fe80::99%999999", "an interface gone");
        assert_eq!(shown(client("192.168.1.40:123")), "192.168.1.40");
        assert_eq!(shown(client("[fd00::40]:123")), "fd00::40");
    }

    /// The core's states and the status crate's table order are one list: named the same,
    /// sorted the same.
    #[test]
    fn the_core_states_are_the_status_order() {
        let names = DeviceState::ALL.map(DeviceState::name);
        assert_eq!(names, syhub_ntp_status::STATES);
        let mut sorted = DeviceState::ALL;
        sorted.sort();
        assert_eq!(sorted, DeviceState::ALL);
    }
}
