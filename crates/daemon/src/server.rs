//! The serving loop: receive a request with its kernel timestamp, let the protocol core answer it,
//! stamp the transmit time and send the reply from the address the request came to.

use crate::log_limit::{LogLimiter, held_back};
use crate::net::TimestampedSocket;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use syhub_ntp_clock::Clock;
use syhub_ntp_proto::server::{Answer, ClientLog, Ignored, SystemSnapshot, answer};
use syhub_ntp_proto::time::Monotonic;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Largest datagram read; longer ones are truncated and ignored. Room for NTS requests.
const RECEIVE_BUFFER_LEN: usize = 2048;

/// Counters of the serving path, shared by all serving tasks.
#[derive(Debug, Default)]
pub struct ServerCounters {
    pub received: AtomicU64,
    pub answered: AtomicU64,
    pub ignored: AtomicU64,
    pub send_errors: AtomicU64,
}

/// What every serving task shares.
#[derive(Clone)]
pub struct ServingContext {
    /// What the server advertises, published by the system task.
    pub system: watch::Receiver<SystemSnapshot>,
    pub clock: Arc<dyn Clock>,
    pub counters: Arc<ServerCounters>,
    /// Who asked, for `syhub-ntp clients` (and rate limiting).
    pub clients: Arc<Mutex<ClientLog>>,
    /// The daemon's start, origin of its monotonic time.
    pub origin: Instant,
}

/// Serves one socket until cancelled.
pub async fn serve(socket: TimestampedSocket, context: ServingContext, cancel: CancellationToken) {
    let ServingContext { system, clock, counters, clients, origin } = context;
    let mut log_limiter = LogLimiter::new(std::time::Duration::from_secs(600));
    let mut request = [0u8; RECEIVE_BUFFER_LEN];
    let mut reply = [0u8; RECEIVE_BUFFER_LEN];
    loop {
        let received = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            received = socket.recv(&mut request) => received,
        };
        let received = match received {
            Ok(received) => received,
            Err(error) => {
                // Rare (ICMP errors, memory pressure); a pause keeps a persistent one from spinning.
                if let Some(held) = log_limiter.allow(&error.to_string(), Instant::now()) {
                    tracing::warn!("receive error: {error}{}", held_back(held));
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        counters.received.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut clients) = clients.lock() {
            clients.record(Monotonic::from_duration(origin.elapsed()), received.peer.ip());
        }
        // Port 0 cannot be answered and is a classic reflection trick; truncated data is malformed.
        if received.peer.port() == 0 || received.truncated {
            counters.ignored.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let received_at = received.kernel_time.unwrap_or_else(|| clock.now());
        let snapshot = *system.borrow();
        match answer(&request[..received.len], received_at, &snapshot, &mut reply) {
            Answer::Reply(prepared) => {
                let sent = socket
                    .send_stamped(
                        &mut reply[..prepared.len],
                        received.peer,
                        received.arrived_on,
                        clock.as_ref(),
                        |out, now| prepared.stamp_transmit_time(out, now),
                    )
                    .await;
                match sent {
                    Ok(()) => counters.answered.fetch_add(1, Ordering::Relaxed),
                    Err(error) => {
                        tracing::debug!(peer = %received.peer, %error, "send failed");
                        counters.send_errors.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            Answer::Ignore(reason) => {
                counters.ignored.fetch_add(1, Ordering::Relaxed);
                if !matches!(reason, Ignored::Malformed(_) | Ignored::NotARequest { .. }) {
                    tracing::warn!(peer = %received.peer, ?reason, "request not answered");
                }
            }
        }
    }
}
