//! Resolving source names off the system task, with a time limit, so a dead resolver on an
//! offline hub never stalls synchronisation or serving.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;

/// Longest wait for one resolution.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The outcome of resolving the name of configured source `entry`.
#[derive(Debug)]
pub(crate) struct Resolution {
    pub entry: usize,
    pub result: Result<Vec<SocketAddr>, String>,
}

/// Resolves `host:port` in a task and sends the result on `results`.
pub(crate) fn resolve_in_background(
    entry: usize,
    host: String,
    port: u16,
    results: mpsc::Sender<Resolution>,
) {
    tokio::spawn(async move {
        let lookup = tokio::net::lookup_host((host.as_str(), port));
        let result = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
            Ok(Ok(addresses)) => {
                let mut unique: Vec<SocketAddr> = Vec::new();
                for address in addresses {
                    if !unique.contains(&address) {
                        unique.push(address);
                    }
                }
                if unique.is_empty() { Err(format!("{host} has no address")) } else { Ok(unique) }
            }
            Ok(Err(error)) => Err(format!("cannot resolve {host}: {error}")),
            Err(_) => {
                Err(format!("resolving {host} took more than {} s", RESOLVE_TIMEOUT.as_secs()))
            }
        };
        let _ = results.send(Resolution { entry, result }).await;
    });
}
