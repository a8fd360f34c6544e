//! The serving threads: receive a batch of requests with their kernel timestamps, let the protocol
//! core answer each, stamp the transmit times and send the replies from the addresses the requests
//! came to. No allocation and no lock per request; one lock of the client log per batch. Each
//! received request is counted once, as answered, ignored, denied or rate-limited.

use crate::access::Rules;
use crate::config::Refusal;
use crate::log_limit::{LogLimiter, held_back};
use crate::net::Received;
use crate::sources::HeardBroadcast;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use syhub_ntp_clock::Clock;
use syhub_ntp_clock::kernel_leap_in_progress_or_done;
use syhub_ntp_proto::auth::KeyStore;
use syhub_ntp_proto::nts::cookie::Keyring;
use syhub_ntp_proto::nts::fields::RANDOM_NEEDED;
use syhub_ntp_proto::packet::ReferenceId;
use syhub_ntp_proto::packet::{HEADER_LEN, MAX_MAC_LEN, NtpHeader};
use syhub_ntp_proto::server::{
    Access, AccessList, Admission, Answer, ClientAddress, ClientLog, Destination, HubAddresses,
    Ignored, RateLimit, Reply, RequestSeen, SystemSnapshot, Unanswerable, answer_kiss, answer_nts,
    answer_with_keys,
};
use syhub_ntp_proto::time::{Monotonic, NtpTimestamp};
use syhub_ntp_status::RequestTally;
use syhub_ntp_sys::net::{ArrivedOn, ReceiveBatch, SendBatch};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Counters of the serving path, shared by all serving threads and read live by monitoring.
pub(crate) type ServerCounters = RequestTally;

/// What every serving thread shares.
#[derive(Clone)]
pub(crate) struct ServingContext {
    /// What the server advertises, published by the system task.
    pub system: watch::Receiver<SystemSnapshot>,
    /// Who may ask and the hub's own addresses, republished when the interfaces change.
    pub rules: watch::Receiver<Arc<Rules>>,
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
pub(crate) struct ServingPolicy {
    pub deny_action: Refusal,
    /// `None`: no rate limit.
    pub rate_limit: Option<RateLimit>,
    pub rate_action: Refusal,
    /// Read each client's clock from its requests' transmit timestamps (`[clients]
    /// clock_error`).
    pub clock_errors: bool,
}

/// A client gets at most one kiss-o'-death this often, seconds.
const KISS_INTERVAL: u32 = 8;

/// Requests taken from the socket by one receive call. 32 covers a burst from a whole LAN waking
/// at once while keeping a worker's buffers (two slots of 2 KiB per request) small.
const BATCH: usize = 32;

/// One serving thread's state: what it read of the shared context, cached between batches.
struct Worker {
    context: ServingContext,
    /// The system snapshot, reread only when the system task has published a new one.
    snapshot: SystemSnapshot,
    rules: Arc<Rules>,
    /// The least poll a rate-limited client is asked for: the average interval.
    kiss_poll: i8,
    /// A datagram sent to a broadcast address or a multicast group reaches every socket of a
    /// shared port: only this worker of each listen address takes it (counts it, answers a
    /// broadcast request, passes a broadcast on); the others drop it uncounted.
    hears_broadcasts: bool,
    log_limiter: LogLimiter,
    /// Counts of the batch, added to the shared counters once per batch.
    tally: Tally,
}

#[derive(Default)]
struct Tally {
    received: u64,
    answered: u64,
    ignored: u64,
    denied: u64,
    rate_limited: u64,
    send_errors: u64,
}

/// What a received datagram becomes (with what its receipt said, read once).
#[derive(Clone, Copy)]
enum Verdict {
    /// Nothing (malformed, port 0, an unanswerable source or destination, a broadcast, or refused
    /// without a kiss).
    Skip,
    /// Refused: answer with this kiss code.
    Kiss(ReferenceId, Received),
    /// Answer it; with our (served) time of its receipt.
    Answer(Received, NtpTimestamp),
}

/// A serving thread's socket and buffers, made before the thread starts: serving a plain or signed
/// request then allocates nothing, so the thread gets no heap arena of its own (NTS answers,
/// forwarded broadcasts and log lines still allocate).
pub(crate) struct ServingSocket {
    socket: Arc<std::net::UdpSocket>,
    requests: ReceiveBatch,
    replies: SendBatch,
}

impl ServingSocket {
    pub(crate) fn new(socket: Arc<std::net::UdpSocket>) -> Self {
        let wildcard = socket.local_addr().is_ok_and(|a| a.ip().is_unspecified());
        Self {
            socket,
            requests: ReceiveBatch::new(BATCH),
            replies: SendBatch::new(BATCH, wildcard),
        }
    }
}

/// Serves on the calling thread until `stop` is set and the socket is shut down for reading
/// ([`syhub_ntp_sys::net::wake_receivers`]). `hears_broadcasts` is set for one socket per listen
/// address.
pub(crate) fn serve_socket(
    serving: ServingSocket,
    context: ServingContext,
    hears_broadcasts: bool,
    stop: &AtomicBool,
) {
    let ServingSocket { socket, mut requests, mut replies } = serving;
    let fd = socket.as_fd();
    let mut worker = Worker::new(context, hears_broadcasts);
    let mut verdicts = [Verdict::Skip; BATCH];
    // For each reply slot: the answer to stamp (None for a kiss, which carries no time of ours).
    let mut stamps: [Option<Reply>; BATCH] = [const { None }; BATCH];
    while !stop.load(Ordering::Relaxed) {
        let count = match requests.receive(fd) {
            Ok(count) => count,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => {
                // Rare (ICMP errors, memory pressure); a pause keeps a persistent one from spinning.
                worker.warn_limited(&error.to_string(), || format!("receive error: {error}"));
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
        };
        if stop.load(Ordering::Relaxed) {
            break;
        }
        worker.refresh();
        worker.judge(&requests, count, &mut verdicts);
        let mut pending = 0;
        for (index, verdict) in verdicts[..count].iter().enumerate() {
            let request = requests.bytes(index);
            let buffer = replies.buffer(pending);
            let (len, stamp, received) = match *verdict {
                Verdict::Skip => continue,
                Verdict::Kiss(code, received) => {
                    match answer_kiss(request, code, worker.kiss_poll, buffer) {
                        Some(len) => (len, None, received),
                        None => continue,
                    }
                }
                Verdict::Answer(received, received_at) => {
                    match worker.answer(&received, received_at, request, buffer) {
                        Some((len, stamp)) => (len, stamp, received),
                        None => continue,
                    }
                }
            };
            replies.address(pending, len, received.peer, received.arrived_on);
            stamps[pending] = stamp;
            pending += 1;
        }
        worker.send(fd, &mut replies, &mut stamps[..pending]);
        worker.flush_tally();
    }
}

impl Worker {
    fn new(mut context: ServingContext, hears_broadcasts: bool) -> Self {
        let snapshot = *context.system.borrow_and_update();
        let rules = context.rules.borrow_and_update().clone();
        let kiss_poll = context
            .policy
            .rate_limit
            .map_or(6, |l| l.average.max(1.0).log2().ceil().clamp(0.0, 17.0) as i8);
        Self {
            context,
            snapshot,
            rules,
            kiss_poll,
            hears_broadcasts,
            log_limiter: LogLimiter::new(std::time::Duration::from_secs(600)),
            tally: Tally::default(),
        }
    }

    /// Rereads the system snapshot and rules if they changed: one atomic load each when they did
    /// not, no lock.
    fn refresh(&mut self) {
        if self.context.system.has_changed().unwrap_or(false) {
            self.snapshot = *self.context.system.borrow_and_update();
        }
        if self.context.rules.has_changed().unwrap_or(false) {
            self.rules = self.context.rules.borrow_and_update().clone();
        }
    }

    /// Decides what becomes of each datagram of the batch: checks that need no state, then access
    /// and rate limits under one lock of the client log for the whole batch.
    fn judge(&mut self, requests: &ReceiveBatch, count: usize, verdicts: &mut [Verdict; BATCH]) {
        let now = Monotonic::from_duration(self.context.origin.elapsed());
        let Worker { context, rules, tally, hears_broadcasts, snapshot, log_limiter, .. } = self;
        let mut clients = context.clients.lock().ok();
        for (index, verdict) in verdicts[..count].iter_mut().enumerate() {
            *verdict = Verdict::Skip;
            let Some((arrival, request)) = requests.datagram(index) else { continue };
            let received = Received::from(arrival);
            // Sent to a broadcast address or a group, it reached every socket of the port: one
            // counts it and takes it, the others drop their copies.
            let destination = destination_of(&rules.hub, received.arrived_on);
            if destination != Destination::Unicast && !*hears_broadcasts {
                continue;
            }
            tally.received += 1;
            // Port 0 cannot be answered and is a classic reflection trick; truncated data is
            // malformed.
            if received.peer.port() == 0 || received.truncated {
                tally.ignored += 1;
                continue;
            }
            // The answer would go to many hosts, to none, or to the hub itself.
            if let Some(why) = rules.hub.check_source(received.peer) {
                tally.ignored += 1;
                report_unanswerable(log_limiter, received.peer, why);
                continue;
            }
            // A broadcast is never answered, so neither rate limits nor kisses apply: it goes to
            // the broadcast source if its sender is allowed, and is otherwise dropped.
            if request.len() >= HEADER_LEN && request[0] & 7 == 5 {
                tally.ignored += 1;
                if *hears_broadcasts {
                    forward_broadcast(context, &rules.access, &received, request);
                }
                continue;
            }
            // NTP clients ask one server; we are no manycast server.
            if destination == Destination::Multicast {
                tally.ignored += 1;
                continue;
            }
            let received_at = received.kernel_time.unwrap_or_else(|| context.clock.now());
            let received_at = snapshot.served_time(received_at, kernel_leap_in_progress_or_done);
            let seen = seen(request, received_at, context.policy.clock_errors);
            *verdict = match clients.as_deref_mut() {
                Some(clients) => admit(
                    &rules.access,
                    &context.policy,
                    tally,
                    (received, received_at),
                    now,
                    &seen,
                    clients,
                ),
                None => Verdict::Answer(received, received_at),
            };
        }
    }

    /// The protocol core's answer to an admitted request, written into `out`: its length, and the
    /// reply to stamp (none for a kiss, sent as it is).
    fn answer(
        &mut self,
        received: &Received,
        received_at: NtpTimestamp,
        request: &[u8],
        out: &mut [u8],
    ) -> Option<(usize, Option<Reply>)> {
        let keys = &self.context.keys;
        let peer = received.peer.ip();
        let answer = match &self.context.nts {
            // A packet too short for extension fields cannot be NTS: no need for the keyring.
            Some(keyring) if request.len() > HEADER_LEN + MAX_MAC_LEN => {
                let keyring = keyring.read().ok();
                let random = || {
                    let mut random = [0u8; RANDOM_NEEDED];
                    let _ = getrandom::fill(&mut random);
                    random
                };
                answer_nts(
                    request,
                    received_at,
                    &self.snapshot,
                    keys,
                    keyring.as_deref(),
                    peer,
                    random,
                    out,
                )
            }
            _ => answer_with_keys(request, received_at, &self.snapshot, keys, peer, out),
        };
        match answer {
            Answer::Reply(reply) => return Some((reply.len, Some(reply))),
            // The NTS NAK: no time served, so counted with the ignored requests.
            Answer::Kiss { len, code } => {
                self.tally.ignored += 1;
                self.info_limited("NTS NAK", || {
                    format!(
                        "an NTS request from {peer} holds a cookie we cannot open (made before \
                         the cookie keys changed): sent an NTS NAK ({}) so it keys again",
                        code.display_for_stratum(0)
                    )
                });
                return Some((len, None));
            }
            Answer::Ignore(Ignored::BadMac { key_id }) => {
                self.warn_limited("bad MAC", || {
                    format!(
                        "a request from {peer} signed with key {key_id} has a wrong MAC (a wrong \
                         key, or forged): not answered"
                    )
                });
            }
            Answer::Ignore(
                Ignored::Malformed(_) | Ignored::NotARequest { .. } | Ignored::Nts(_),
            ) => {}
            Answer::Ignore(reason) => {
                tracing::warn!(peer = %received.peer, ?reason, "request not answered");
            }
        }
        self.tally.ignored += 1;
        None
    }

    /// Stamps each reply and sends it at once, by itself: replies sent together in one call each
    /// leave after the kernel's work on the ones before (about 10 µs each on loopback here), which
    /// would put their transmit timestamps that far early. Never waits: a full send buffer
    /// (replies to unresolved neighbours hold it until resolution fails, seconds later) loses
    /// replies rather than stopping the reading. A server must keep reading; its clients retry.
    fn send(&mut self, fd: BorrowedFd<'_>, replies: &mut SendBatch, stamps: &mut [Option<Reply>]) {
        for index in 0..stamps.len() {
            if let Some(reply) = &stamps[index] {
                let now = self.context.clock.now();
                let now = self.snapshot.served_time(now, kernel_leap_in_progress_or_done);
                reply.stamp_transmit_time(replies.datagram(index), now);
            }
            // An answer that could not be sent counts as ignored (a kiss already counts as denied
            // or rate-limited), so each request stays in exactly one of the four counters.
            match replies.send(fd, index..index + 1) {
                (1, _) => self.tally.answered += u64::from(stamps[index].is_some()),
                (_, Some(error)) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    let lost = &stamps[index..];
                    self.tally.send_errors += lost.len() as u64;
                    self.tally.ignored += lost.iter().filter(|s| s.is_some()).count() as u64;
                    break;
                }
                (_, error) => {
                    tracing::debug!(?error, "send failed");
                    self.tally.send_errors += 1;
                    self.tally.ignored += u64::from(stamps[index].is_some());
                }
            }
        }
        for stamp in stamps.iter_mut() {
            *stamp = None;
        }
    }

    fn flush_tally(&mut self) {
        let tally = std::mem::take(&mut self.tally);
        let counters = &self.context.counters;
        for (counter, value) in [
            (&counters.received, tally.received),
            (&counters.answered, tally.answered),
            (&counters.ignored, tally.ignored),
            (&counters.denied, tally.denied),
            (&counters.rate_limited, tally.rate_limited),
            (&counters.send_errors, tally.send_errors),
        ] {
            if value > 0 {
                counter.fetch_add(value, Ordering::Relaxed);
            }
        }
    }

    fn warn_limited(&mut self, key: &str, message: impl FnOnce() -> String) {
        if let Some(held) = self.log_limiter.allow(key, Instant::now()) {
            tracing::warn!("{}{}", message(), held_back(held));
        }
    }

    fn info_limited(&mut self, key: &str, message: impl FnOnce() -> String) {
        if let Some(held) = self.log_limiter.allow(key, Instant::now()) {
            tracing::info!("{}{}", message(), held_back(held));
        }
    }
}

/// What the datagram that arrived so was sent to; unicast when the socket does not say (a socket
/// bound to one address gets no broadcasts).
fn destination_of(hub: &HubAddresses, arrived_on: Option<ArrivedOn>) -> Destination {
    match arrived_on {
        Some(ArrivedOn::V4 { spec_dst, destination, .. }) => {
            hub.destination(destination.into(), spec_dst.into())
        }
        Some(ArrivedOn::V6 { address, .. }) => hub.destination(address.into(), address.into()),
        None => Destination::Unicast,
    }
}

/// Says, at most once per kind every ten minutes, that requests from such a source are dropped.
fn report_unanswerable(
    log_limiter: &mut LogLimiter,
    peer: std::net::SocketAddr,
    why: Unanswerable,
) {
    let (key, what) = match why {
        Unanswerable::Unspecified => ("source unspecified", "the unspecified address"),
        Unanswerable::Broadcast => ("source broadcast", "a broadcast address"),
        Unanswerable::Multicast => ("source multicast", "a multicast group"),
        Unanswerable::Ipv4Mapped => ("source mapped", "an IPv4-mapped IPv6 address"),
        Unanswerable::OwnAddress => {
            ("source own", "one of the hub's own addresses at a service's port (forged?)")
        }
    };
    if let Some(held) = log_limiter.allow(key, Instant::now()) {
        tracing::warn!("a request from {peer}, {what}, is not answered{}", held_back(held));
    }
}

/// Passes a broadcast from an allowed sender to the broadcast sources.
fn forward_broadcast(
    context: &ServingContext,
    access: &AccessList,
    received: &Received,
    request: &[u8],
) {
    let Some(feed) = &context.broadcasts else { return };
    if access.check(received.peer.ip()) != Access::Allow {
        return;
    }
    let received_at = received.kernel_time.unwrap_or_else(|| context.clock.now());
    let _ = feed.try_send(HeardBroadcast {
        packet: request.to_vec(),
        from: received.peer,
        received_at,
    });
}

/// What a request says about its sender for the devices view: version, mode and, when clock
/// errors are read, its transmit timestamp with our (served) time of its receipt.
fn seen(request: &[u8], received_at: NtpTimestamp, clock_errors: bool) -> RequestSeen {
    let first = request.first().copied().unwrap_or(0);
    let clock = clock_errors
        .then(|| NtpHeader::transmit_time_of(request))
        .flatten()
        .map(|transmit| (transmit, received_at));
    RequestSeen { version: (first >> 3) & 7, mode: first & 7, clock }
}

/// Records the client with what its request says, under access control and its rate limit.
fn admit(
    access: &AccessList,
    policy: &ServingPolicy,
    tally: &mut Tally,
    (received, received_at): (Received, NtpTimestamp),
    now: Monotonic,
    seen: &RequestSeen,
    clients: &mut ClientLog,
) -> Verdict {
    let denied = access.check(received.peer.ip()) == Access::Deny;
    let admission = match &policy.rate_limit {
        _ if denied => Admission::Denied,
        Some(limit) => Admission::Limited(limit),
        None => Admission::Open,
    };
    let (index, answer) = clients.record(now, ClientAddress::of(received.peer), seen, admission);
    if answer {
        return Verdict::Answer(received, received_at);
    }
    let (action, code) = if denied {
        tally.denied += 1;
        (policy.deny_action, ReferenceId::KISS_DENY)
    } else {
        tally.rate_limited += 1;
        (policy.rate_action, ReferenceId::KISS_RATE)
    };
    if action == Refusal::Kod && clients.may_kiss(index, now, KISS_INTERVAL) {
        Verdict::Kiss(code, received)
    } else {
        Verdict::Skip
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn the_destination_is_read_from_the_arrival_info() {
        let hub = HubAddresses::new(
            [("192.168.1.20".parse().unwrap(), 24)],
            syhub_ntp_proto::server::DEFAULT_EPHEMERAL_PORTS,
        );
        let v4 = |destination: [u8; 4]| {
            let spec_dst = Ipv4Addr::new(192, 168, 1, 20);
            let destination = Ipv4Addr::from(destination);
            destination_of(&hub, Some(ArrivedOn::V4 { spec_dst, destination, ifindex: 2 }))
        };
        assert_eq!(v4([192, 168, 1, 20]), Destination::Unicast);
        assert_eq!(v4([192, 168, 1, 255]), Destination::Broadcast);
        assert_eq!(v4([255, 255, 255, 255]), Destination::Broadcast);
        assert_eq!(v4([224, 0, 1, 1]), Destination::Multicast);
        let v6 = |address: &str| {
            let address = address.parse().unwrap();
            destination_of(&hub, Some(ArrivedOn::V6 { address, ifindex: 2 }))
        };
        assert_eq!(v6("fd00::20"), Destination::Unicast);
        assert_eq!(v6("ff02::1"), Destination::Multicast);
        assert_eq!(
            destination_of(&hub, None),
            Destination::Unicast,
            "a socket bound to one address"
        );
    }
}
