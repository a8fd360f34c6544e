//! The rules a request's addresses are checked against: the access list in force (the configured
//! rules plus the subnets on the hub's own interfaces, `local`) and the hub's own and broadcast
//! addresses (requests from those are never answered), re-read from the interfaces every minute
//! and republished to the serving threads when they change.

use crate::config::{AccessRule, ServerConfig};
use std::sync::Arc;
use std::time::Duration;
use syhub_ntp_proto::server::{AccessList, DEFAULT_EPHEMERAL_PORTS, HubAddresses, Prefix};
use syhub_ntp_sys::interfaces;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the interfaces are read again.
const REFRESH: Duration = Duration::from_secs(60);

/// What the serving threads check each request's addresses against.
#[derive(Debug)]
pub(crate) struct Rules {
    /// Who may ask.
    pub access: AccessList,
    /// The hub's own and broadcast addresses.
    pub hub: HubAddresses,
}

/// One reading of the hub's interfaces.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Interfaces {
    /// The subnets of its addresses (IPv4 and IPv6, link-local and loopback included).
    pub subnets: Vec<Prefix>,
    pub hub: HubAddresses,
}

impl Interfaces {
    /// The interfaces now; none if they cannot be read.
    pub(crate) fn now() -> Self {
        read_interfaces().unwrap_or_default()
    }
}

/// The interfaces now, or why they could not be read.
fn read_interfaces() -> std::io::Result<Interfaces> {
    let assigned = interfaces::try_assigned()?;
    let ports = match interfaces::ephemeral_ports() {
        Ok(ports) => ports,
        // No /proc/sys (a minimal container): the kernel's default.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => DEFAULT_EPHEMERAL_PORTS,
        Err(error) => return Err(error),
    };
    let subnets = interfaces::networks_of(&assigned)
        .into_iter()
        .filter_map(|network| Prefix::new(network.address, network.length).ok())
        .collect();
    let hub = HubAddresses::new(assigned.iter().map(|a| (a.address, a.length)), ports);
    Ok(Interfaces { subnets, hub })
}

/// What a reading of the interfaces changes: the interfaces to publish, if they are new. A failed
/// reading (out of file descriptors or memory) changes nothing: the last good one stays.
fn next_reading(read: std::io::Result<Interfaces>, known: &Interfaces) -> Option<Interfaces> {
    match read {
        Ok(current) if current != *known => Some(current),
        Ok(_) => None,
        Err(error) => {
            tracing::warn!(
                "cannot read the hub's interfaces ({error}): the subnets and addresses known stay \
                 in force"
            );
            None
        }
    }
}

/// The rules from `config`, with `local` standing for the subnets of `interfaces`.
pub(crate) fn build(config: &ServerConfig, interfaces: &Interfaces) -> Rules {
    let expand = |rules: &[AccessRule]| -> Vec<Prefix> {
        rules
            .iter()
            .flat_map(|rule| match rule {
                AccessRule::Prefix(prefix) => vec![*prefix],
                AccessRule::LocalNetworks => interfaces.subnets.clone(),
            })
            .collect()
    };
    Rules {
        access: AccessList::new(&expand(&config.allow), &expand(&config.deny)),
        hub: interfaces.hub.clone(),
    }
}

/// Whether the rules mention `local` at all.
pub(crate) fn uses_local_networks(config: &ServerConfig) -> bool {
    config.allow.iter().chain(&config.deny).any(|r| *r == AccessRule::LocalNetworks)
}

/// Re-reads the interfaces every minute and publishes new rules when they changed.
pub(crate) async fn keep_current(
    config: ServerConfig,
    mut known: Interfaces,
    publish: watch::Sender<Arc<Rules>>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(REFRESH) => {}
        }
        let Some(current) = next_reading(read_interfaces(), &known) else { continue };
        if current.subnets != known.subnets && uses_local_networks(&config) {
            let shown: Vec<String> = current.subnets.iter().map(ToString::to_string).collect();
            tracing::info!(
                "the hub's own subnets are now {}; clients in them are allowed",
                shown.join(", ")
            );
        }
        if current.hub != known.hub {
            let shown: Vec<String> = current.hub.own().iter().map(ToString::to_string).collect();
            tracing::debug!("the hub's own addresses are now {}", shown.join(", "));
        }
        publish.send_replace(Arc::new(build(&config, &current)));
        known = current;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syhub_ntp_proto::server::Access;

    #[test]
    fn local_stands_for_the_interfaces_and_loopback_is_among_them() {
        let interfaces = Interfaces::now();
        let subnets = &interfaces.subnets;
        assert!(subnets.iter().any(|p| p.to_string() == "127.0.0.0/8"), "{subnets:?}");
        assert!(!interfaces.hub.own().iter().any(|a| a.is_loopback()), "{:?}", interfaces.hub);
        let config =
            ServerConfig { allow: vec![AccessRule::LocalNetworks], ..ServerConfig::default() };
        let rules = build(&config, &interfaces);
        assert_eq!(rules.access.check("127.0.0.1".parse().unwrap()), Access::Allow);
        assert_eq!(rules.access.check("203.0.113.1".parse().unwrap()), Access::Deny);
        assert_eq!(rules.hub, interfaces.hub);
    }

    #[test]
    fn a_failed_reading_keeps_what_is_known_and_a_new_one_replaces_it() {
        let reading = |subnet: &str, own: &str| Interfaces {
            subnets: vec![subnet.parse().unwrap()],
            hub: HubAddresses::new([(own.parse().unwrap(), 24)], DEFAULT_EPHEMERAL_PORTS),
        };
        let known = reading("192.168.1.0/24", "192.168.1.5");
        let failed = Err(std::io::Error::from_raw_os_error(24)); // EMFILE
        assert_eq!(next_reading(failed, &known), None);
        assert_eq!(next_reading(Ok(known.clone()), &known), None);
        let moved = reading("10.0.0.0/8", "10.0.0.5");
        assert_eq!(next_reading(Ok(moved.clone()), &known), Some(moved));
        // A new address in a subnet already known is news too.
        let renumbered = reading("192.168.1.0/24", "192.168.1.6");
        assert_eq!(next_reading(Ok(renumbered.clone()), &known), Some(renumbered));
    }

    #[test]
    fn the_default_allows_private_ranges_and_refuses_the_internet() {
        let list = build(&ServerConfig::default(), &Interfaces::default()).access;
        for allowed in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.178.20",
            "169.254.1.1",
            "fd00::1",
            "fe80::1",
            "::1",
        ] {
            assert_eq!(list.check(allowed.parse().unwrap()), Access::Allow, "{allowed}");
        }
        for refused in ["8.8.8.8", "172.32.0.1", "2001:db8::1", "100.64.0.1"] {
            assert_eq!(list.check(refused.parse().unwrap()), Access::Deny, "{refused}");
        }
    }
}
