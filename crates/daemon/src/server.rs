//! The serving loop: receive a request with its kernel timestamp, let the protocol core answer it,
//! stamp the transmit time and send the reply from the address the request came to.

use crate::config::Refusal;
use crate::log_limit::{LogLimiter, held_back};
use crate::net::TimestampedSocket;
use crate::sources::HeardBroadcast;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use syhub_ntp_clock::Clock;
use syhub_ntp_monitor::status::RequestTally;
use syhub_ntp_proto::auth::KeyStore;
use syhub_ntp_proto::nts::cookie::Keyring;
use syhub_ntp_proto::nts::fields::RANDOM_NEEDED;
use syhub_ntp_proto::packet::ReferenceId;
use syhub_ntp_proto::packet::{HEADER_LEN, MAX_MAC_LEN};
use syhub_ntp_proto::server::{
    Access, AccessList, Answer, ClientLog, Ignored, RateLimit, SystemSnapshot, answer_kiss,
    answer_nts, answer_with_keys,
};
use syhub_ntp_proto::time::Monotonic;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Largest datagram read; longer ones are truncated and ignored. Room for NTS requests.
const RECEIVE_BUFFER_LEN: usize = 2048;

/// Counters of the serving path, shared by all serving tasks and read live by monitoring.
pub type ServerCounters = RequestTally;

/// What every serving task shares.
#[derive(Clone)]
pub struct ServingContext {
    /// What the server advertises, published by the system task.
    pub system: watch::Receiver<SystemSnapshot>,
    /// Who may ask, republished when the hub's subnets change.
    pub access: watch::Receiver<Arc<AccessList>>,
    pub policy: ServingPolicy,
    pub clock: Arc<dyn Clock>,
    pub counters: Arc<ServerCounters>,
    /// Who asked: for `syhub-ntp clients` and rate limiting.
    pub clients: Arc<Mutex<ClientLog>>,
    /// The daemon's start, origin of its monotonic time.
    pub origin: Instant,
    /// Trusted symmetric keys: signed requests get signed answers.
    pub keys: Arc<KeyStore>,
    /// Where broadcasts (mode 5) go, when a broadcast source listens for them.
    pub broadcasts: Option<mpsc::Sender<HeardBroadcast>>,
    /// The NTS cookie keys, when NTS is served.
    pub nts: Option<Arc<std::sync::RwLock<Keyring>>>,
}

/// How refused and too-frequent clients are treated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServingPolicy {
    pub deny_action: Refusal,
    /// `None`: no rate limit.
    pub rate_limit: Option<RateLimit>,
    pub rate_action: Refusal,
}

/// A client gets at most one kiss-o'-death this often, seconds.
const KISS_INTERVAL: u32 = 8;

/// What becomes of one datagram before the protocol core sees it.
enum Gate {
    Pass,
    /// Refused: answer with this kiss code if the policy and the kiss limit allow, else drop.
    Refuse(Option<ReferenceId>),
}

/// Serves one socket until cancelled.
pub async fn serve(socket: TimestampedSocket, context: ServingContext, cancel: CancellationToken) {
    let ServingContext {
        system,
        access,
        policy,
        clock,
        counters,
        clients,
        origin,
        keys,
        broadcasts,
        nts,
    } = context;
    let mut log_limiter = LogLimiter::new(std::time::Duration::from_secs(600));
    let mut request = [0u8; RECEIVE_BUFFER_LEN];
    let mut reply = [0u8; RECEIVE_BUFFER_LEN];
    // The least poll a rate-limited client is asked for: the average interval.
    let kiss_poll =
        policy.rate_limit.map_or(6, |l| l.average.max(1.0).log2().ceil().clamp(0.0, 17.0) as i8);
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
        // Port 0 cannot be answered and is a classic reflection trick; truncated data is malformed.
        if received.peer.port() == 0 || received.truncated {
            counters.ignored.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        // A broadcast is never answered, so neither rate limits nor kisses apply: it goes to the
        // broadcast source if its sender is allowed, and is otherwise dropped.
        if received.len >= 48 && request[0] & 7 == 5 {
            counters.ignored.fetch_add(1, Ordering::Relaxed);
            if let Some(feed) = &broadcasts
                && access.borrow().check(received.peer.ip()) == Access::Allow
            {
                let received_at = received.kernel_time.unwrap_or_else(|| clock.now());
                let _ = feed.try_send(HeardBroadcast {
                    packet: request[..received.len].to_vec(),
                    from: received.peer,
                    received_at,
                });
            }
            continue;
        }
        let gate = admit(received.peer.ip(), origin, &access, &policy, &clients, &counters);
        if let Gate::Refuse(kiss) = gate {
            if let Some(len) = kiss
                .and_then(|code| answer_kiss(&request[..received.len], code, kiss_poll, &mut reply))
            {
                // A kiss carries no time of ours: nothing to stamp.
                if socket
                    .send_stamped_now(
                        &mut reply[..len],
                        received.peer,
                        received.arrived_on,
                        clock.as_ref(),
                        |_, _| {},
                    )
                    .is_err()
                {
                    counters.send_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            continue;
        }
        let received_at = received.kernel_time.unwrap_or_else(|| clock.now());
        let snapshot = *system.borrow();
        let request = &request[..received.len];
        let peer = received.peer.ip();
        let answer = match &nts {
            // A packet too short for extension fields cannot be NTS: no need for the keyring.
            Some(keyring) if request.len() > HEADER_LEN + MAX_MAC_LEN => {
                let keyring = keyring.read().ok();
                let random = || {
                    let mut random = [0u8; RANDOM_NEEDED];
                    let _ = getrandom::fill(&mut random);
                    random
                };
                let keyring = keyring.as_deref();
                answer_nts(
                    request,
                    received_at,
                    &snapshot,
                    &keys,
                    keyring,
                    peer,
                    random,
                    &mut reply,
                )
            }
            _ => answer_with_keys(request, received_at, &snapshot, &keys, peer, &mut reply),
        };
        match answer {
            Answer::Reply(prepared) => {
                let sent = socket.send_stamped_now(
                    &mut reply[..prepared.len],
                    received.peer,
                    received.arrived_on,
                    clock.as_ref(),
                    |out, now| prepared.stamp_transmit_time(out, now),
                );
                match sent {
                    Ok(()) => counters.answered.fetch_add(1, Ordering::Relaxed),
                    Err(error) => {
                        tracing::debug!(peer = %received.peer, %error, "send failed");
                        counters.send_errors.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            Answer::Ignore(Ignored::BadMac { key_id }) => {
                counters.ignored.fetch_add(1, Ordering::Relaxed);
                if let Some(held) = log_limiter.allow("bad MAC", Instant::now()) {
                    tracing::warn!(
                        "a request from {} signed with key {key_id} has a wrong MAC (a wrong key, or \
                         forged): not answered{}",
                        received.peer.ip(),
                        held_back(held)
                    );
                }
            }
            Answer::Ignore(reason) => {
                counters.ignored.fetch_add(1, Ordering::Relaxed);
                if !matches!(
                    reason,
                    Ignored::Malformed(_) | Ignored::NotARequest { .. } | Ignored::Nts(_)
                ) {
                    tracing::warn!(peer = %received.peer, ?reason, "request not answered");
                }
            }
        }
    }
}

/// Records the client, then applies access control and its rate limit.
fn admit(
    address: IpAddr,
    origin: Instant,
    access: &watch::Receiver<Arc<AccessList>>,
    policy: &ServingPolicy,
    clients: &Mutex<ClientLog>,
    counters: &ServerCounters,
) -> Gate {
    let now = Monotonic::from_duration(origin.elapsed());
    let Ok(mut clients) = clients.lock() else { return Gate::Pass };
    let index = clients.record(now, address);
    let refuse = |clients: &mut ClientLog, action: Refusal, code: ReferenceId| {
        let kiss = action == Refusal::Kod && clients.may_kiss(index, now, KISS_INTERVAL);
        Gate::Refuse(kiss.then_some(code))
    };
    if access.borrow().check(address) == Access::Deny {
        counters.denied.fetch_add(1, Ordering::Relaxed);
        return refuse(&mut clients, policy.deny_action, ReferenceId::KISS_DENY);
    }
    if let Some(limit) = &policy.rate_limit
        && !clients.within_limit(index, now, limit)
    {
        counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        return refuse(&mut clients, policy.rate_action, ReferenceId::KISS_RATE);
    }
    Gate::Pass
}
