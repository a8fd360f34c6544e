//! The access list in force: the configured rules plus the subnets on the hub's own interfaces
//! (`local`), re-read every minute and republished to the serving thread when they change.

use crate::config::{AccessRule, ServerConfig};
use std::sync::Arc;
use std::time::Duration;
use syhub_ntp_proto::server::{AccessList, Prefix};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the interfaces are read again.
const REFRESH: Duration = Duration::from_secs(60);

/// The subnets of the hub's own interface addresses (IPv4 and IPv6, link-local included).
pub(crate) fn local_networks() -> Vec<Prefix> {
    read_local_networks().unwrap_or_default()
}

/// [`local_networks`], or why the interfaces could not be read.
fn read_local_networks() -> std::io::Result<Vec<Prefix>> {
    Ok(syhub_ntp_sys::interfaces::try_networks()?
        .into_iter()
        .filter_map(|network| Prefix::new(network.address, network.length).ok())
        .collect())
}

/// What a reading of the interfaces changes: the subnets to publish, if they are new. A failed
/// reading (out of file descriptors or memory) changes nothing: the last good list stays.
fn next_subnets(read: std::io::Result<Vec<Prefix>>, known: &[Prefix]) -> Option<Vec<Prefix>> {
    match read {
        Ok(current) if current != known => Some(current),
        Ok(_) => None,
        Err(error) => {
            tracing::warn!(
                "cannot read the hub's interfaces ({error}): the subnets known stay allowed"
            );
            None
        }
    }
}

/// The access list from `config`, with `local` standing for `local_networks`.
pub(crate) fn build(config: &ServerConfig, local_networks: &[Prefix]) -> AccessList {
    let expand = |rules: &[AccessRule]| -> Vec<Prefix> {
        rules
            .iter()
            .flat_map(|rule| match rule {
                AccessRule::Prefix(prefix) => vec![*prefix],
                AccessRule::LocalNetworks => local_networks.to_vec(),
            })
            .collect()
    };
    AccessList::new(&expand(&config.allow), &expand(&config.deny))
}

/// Whether the rules mention `local` at all (else there is nothing to keep current).
pub(crate) fn uses_local_networks(config: &ServerConfig) -> bool {
    config.allow.iter().chain(&config.deny).any(|r| *r == AccessRule::LocalNetworks)
}

/// Re-reads the interfaces every minute and publishes a new list when the subnets change.
pub(crate) async fn keep_current(
    config: ServerConfig,
    mut known: Vec<Prefix>,
    publish: watch::Sender<Arc<AccessList>>,
    cancel: CancellationToken,
) {
    if !uses_local_networks(&config) {
        return;
    }
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(REFRESH) => {}
        }
        if let Some(current) = next_subnets(read_local_networks(), &known) {
            let shown: Vec<String> = current.iter().map(ToString::to_string).collect();
            tracing::info!(
                "the hub's own subnets are now {}; clients in them are allowed",
                shown.join(", ")
            );
            publish.send_replace(Arc::new(build(&config, &current)));
            known = current;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syhub_ntp_proto::server::Access;

    #[test]
    fn local_stands_for_the_interfaces_and_loopback_is_among_them() {
        let networks = local_networks();
        assert!(networks.iter().any(|p| p.to_string() == "127.0.0.0/8"), "{networks:?}");
        let config =
            ServerConfig { allow: vec![AccessRule::LocalNetworks], ..ServerConfig::default() };
        let list = build(&config, &networks);
        assert_eq!(list.check("127.0.0.1".parse().unwrap()), Access::Allow);
        assert_eq!(list.check("203.0.113.1".parse().unwrap()), Access::Deny);
    }

    #[test]
    fn a_failed_reading_keeps_the_subnets_known_and_a_new_list_replaces_them() {
        let known = vec![Prefix::new("192.168.1.0".parse().unwrap(), 24).unwrap()];
        let failed = Err(std::io::Error::from_raw_os_error(24)); // EMFILE
        assert_eq!(next_subnets(failed, &known), None);
        assert_eq!(next_subnets(Ok(known.clone()), &known), None);
        let moved = vec![Prefix::new("10.0.0.0".parse().unwrap(), 8).unwrap()];
        assert_eq!(next_subnets(Ok(moved.clone()), &known), Some(moved));
    }

    #[test]
    fn the_default_allows_private_ranges_and_refuses_the_internet() {
        let list = build(&ServerConfig::default(), &[]);
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
