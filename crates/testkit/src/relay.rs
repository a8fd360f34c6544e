//! A UDP relay that impairs traffic between NTP clients and a server (delay per direction, loss,
//! reordering) and can shift the server's timestamps by a known offset.
//!
//! This kernel has no netem, so a test puts a [`Relay`] inside its [`NetNs`]: clients talk to
//! [`Relay::listen_addr`], the relay forwards each client's datagrams to the upstream server from
//! a socket of that client's own and passes the answers back. Every datagram gets its own loss,
//! delay and hold-back draws from a seeded PRNG (one stream per direction), so runs repeat.
//!
//! With constant delays `up` (to the server) and `down` (back) and
//! [`server_shift`](RelayConfig::server_shift) `s`, an NTP client of an accurate server should
//! find an offset of `s + (up - down) / 2` seconds: the shift is the truth, the asymmetry the
//! error NTP cannot see. Delays count from the kernel's receive timestamp, so the relay's own
//! wake-up latency is inside them; what it adds beyond that (it sends a little after a datagram is
//! due, more when the machine is busy) it counts per direction as
//! [`lateness`](DirectionStats::lateness). Both relay threads run at a real-time priority when
//! they may (`chrt`), so other work on the machine barely delays them.

use std::collections::BTreeMap;
use std::io::IoSliceMut;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use nix::sys::time::TimeSpec;
use nix::time::{ClockId, clock_gettime};

use crate::{NetNs, enter_netns};

/// How many clients have an upstream socket of their own; past this, a new client takes the place
/// of the one heard from least recently.
const MAX_CLIENTS: usize = 64;
/// The longest any relay thread blocks before looking at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(20);
/// The delivery thread sleeps until this long before a datagram is due, then yields until it is.
const SPIN: Duration = Duration::from_micros(200);
/// The least extra delay of a held-back datagram.
const MIN_HOLD: Duration = Duration::from_millis(2);
/// One second in NTP's 32.32 fixed-point timestamps.
const NTP_SECOND: f64 = 4_294_967_296.0;
/// Bytes 32..48 of an NTP packet: the receive and transmit timestamps.
const SHIFTED_TIMESTAMPS: std::ops::Range<usize> = 32..48;

/// What happens to the datagrams travelling in one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Impairment {
    /// Delay added to every datagram.
    pub fixed: Duration,
    /// Mean of an exponentially distributed extra delay, drawn for each datagram (zero: none).
    pub random_mean: Duration,
    /// Probability (0 to 1) that a datagram is dropped.
    pub loss: f64,
    /// Probability (0 to 1) that a datagram is held back a further `max(4 × random_mean, 2 ms)`,
    /// so that datagrams sent after it can overtake it.
    pub reorder: f64,
}

impl Impairment {
    /// No delay, loss or reordering: datagrams pass as fast as the relay can forward them.
    pub const NONE: Self =
        Self { fixed: Duration::ZERO, random_mean: Duration::ZERO, loss: 0.0, reorder: 0.0 };
}

/// A relay's settings; [`Relay::set_config`] changes them while it runs. The default passes
/// everything unimpaired and unshifted.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RelayConfig {
    /// Seed of the random draws. Each direction has its own stream; both restart from this seed
    /// whenever the config is set.
    pub seed: u64,
    /// Impairment of datagrams from clients to the server.
    pub to_server: Impairment,
    /// Impairment of datagrams from the server back to clients.
    pub to_client: Impairment,
    /// Seconds added to the receive (bytes 32..40) and transmit (bytes 40..48) timestamps of NTP
    /// packets travelling back to clients, so the server appears `server_shift` seconds ahead
    /// (negative: behind). Taken when the answer reaches the relay. Only datagrams of at least
    /// 48 bytes with version 1 to 4 (bits 3–5 of byte 0) are touched, and a zero timestamp stays
    /// zero; every other byte passes unchanged.
    pub server_shift: f64,
}

/// Datagram counts for one direction since the relay started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Datagrams sent on. Counted just before the send, so the count already includes every
    /// datagram a receiver has got.
    pub forwarded: u64,
    /// Datagrams dropped by the `loss` setting or because sending them failed.
    pub dropped: u64,
    /// Datagrams held back by the `reorder` setting (also counted as forwarded once sent).
    pub held_back: u64,
    /// How much later than due the forwarded datagrams were sent, summed: the relay's own
    /// scheduling error, which a test can take out of what it measures.
    pub lateness: Duration,
}

impl DirectionStats {
    /// The mean lateness of the datagrams forwarded between `earlier` and `self`.
    pub fn mean_lateness_since(&self, earlier: &DirectionStats) -> Duration {
        let forwarded = self.forwarded.saturating_sub(earlier.forwarded).max(1);
        self.lateness.saturating_sub(earlier.lateness) / forwarded as u32
    }
}

/// Datagram counts per direction since the relay started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// From clients to the server.
    pub to_server: DirectionStats,
    /// From the server back to clients.
    pub to_client: DirectionStats,
}

/// A running relay; dropping it stops its two threads (within about 20 ms) and discards whatever
/// it still holds.
pub struct Relay {
    listen: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Relay {
    /// Starts a relay listening on `listen` (such as `"127.0.0.1:0"`) inside `ns`, forwarding to
    /// `upstream`, an address inside the same namespace. Panics if `listen` cannot be bound.
    pub fn start(ns: &NetNs, listen: &str, upstream: SocketAddr, config: RelayConfig) -> Self {
        let socket = ns.udp_socket(listen);
        socket.set_nonblocking(true).expect("nonblocking socket");
        stamp_arrivals(&socket);
        let listen = socket.local_addr().expect("relay address");
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            draws: Mutex::new(Draws::new(config)),
            queue: Mutex::new(BTreeMap::new()),
            queued: Condvar::new(),
            counts: Default::default(),
        });
        let receiver = Receiver {
            listen: Arc::new(socket),
            upstream,
            clients: Vec::new(),
            sequence: 0,
            shared: shared.clone(),
        };
        let ns_name = ns.name.clone();
        let delivery = shared.clone();
        let port = listen.port();
        let threads = vec![
            spawn(format!("relay-rx-{port}"), move || {
                enter_netns(&ns_name);
                realtime();
                receiver.run();
            }),
            spawn(format!("relay-tx-{port}"), move || {
                realtime();
                deliver(&delivery)
            }),
        ];
        Self { listen, shared, threads }
    }

    /// The address clients send to, inside the namespace.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Replaces the settings for datagrams arriving from now on (those already delayed keep their
    /// delivery time) and restarts the random streams from `config.seed`.
    pub fn set_config(&self, config: RelayConfig) {
        *lock(&self.shared.draws) = Draws::new(config);
    }

    /// Datagram counts per direction so far.
    pub fn stats(&self) -> RelayStats {
        let [to_server, to_client] = &self.shared.counts;
        RelayStats { to_server: to_server.snapshot(), to_client: to_client.snapshot() }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.queued.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Asks for real-time (FIFO) scheduling of the calling thread with `chrt` (util-linux), so that a
/// machine busy with other work delays the relay's deliveries by microseconds rather than
/// milliseconds; without the permission it carries on as an ordinary thread, and says so.
fn realtime() {
    let tid = nix::unistd::gettid().to_string();
    let set = std::process::Command::new("chrt")
        .args(["--fifo", "--pid", "10", &tid])
        .output()
        .is_ok_and(|output| output.status.success());
    if !set {
        eprintln!("relay: no real-time priority for thread {tid}; it may be late when busy");
    }
}

fn spawn(name: String, run: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new().name(name).spawn(run).expect("spawn a relay thread")
}

#[derive(Clone, Copy, Debug)]
enum Direction {
    ToServer,
    ToClient,
}

/// What both relay threads share.
struct Shared {
    stop: AtomicBool,
    draws: Mutex<Draws>,
    /// Datagrams waiting for delivery, by due time then arrival order.
    queue: Mutex<BTreeMap<(Instant, u64), Outgoing>>,
    /// Signalled when a datagram is queued or the relay stops.
    queued: Condvar,
    /// Indexed by `Direction`.
    counts: [Counts; 2],
}

#[derive(Default)]
struct Counts {
    forwarded: AtomicU64,
    dropped: AtomicU64,
    held_back: AtomicU64,
    late_nanos: AtomicU64,
}

impl Counts {
    fn snapshot(&self) -> DirectionStats {
        DirectionStats {
            forwarded: self.forwarded.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            held_back: self.held_back.load(Ordering::Relaxed),
            lateness: Duration::from_nanos(self.late_nanos.load(Ordering::Relaxed)),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// splitmix64: a tiny PRNG, plenty for test impairments.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Exponential with mean 1.
    fn exponential(&mut self) -> f64 {
        -(1.0 - self.uniform()).ln()
    }
}

/// The settings and their random streams, one per direction.
struct Draws {
    config: RelayConfig,
    streams: [SplitMix64; 2],
}

impl Draws {
    fn new(config: RelayConfig) -> Self {
        Self {
            config,
            streams: [
                SplitMix64(config.seed ^ 0x746F_5F73_6572_7665),
                SplitMix64(config.seed ^ 0x746F_5F63_6C69_656E),
            ],
        }
    }

    /// The fate of the next datagram in `direction`: `None` if it is lost, else its delay and
    /// whether it is held back. Always takes three draws, so one datagram's fate does not change
    /// the next one's.
    fn draw(&mut self, direction: Direction) -> Option<(Duration, bool)> {
        let impairment = match direction {
            Direction::ToServer => self.config.to_server,
            Direction::ToClient => self.config.to_client,
        };
        let stream = &mut self.streams[direction as usize];
        let lost = stream.uniform() < impairment.loss;
        let random = impairment.random_mean.mul_f64(stream.exponential());
        let held = stream.uniform() < impairment.reorder;
        if lost {
            return None;
        }
        let hold = if held { (impairment.random_mean * 4).max(MIN_HOLD) } else { Duration::ZERO };
        Some((impairment.fixed + random + hold, held))
    }
}

/// Adds `shift` seconds to the receive and transmit timestamps of an NTP packet, wrapping; a zero
/// timestamp stays zero, and anything that does not look like NTP is left alone.
fn shift_timestamps(packet: &mut [u8], shift: f64) {
    let version = packet.first().map(|first| (first >> 3) & 0b111);
    if packet.len() < SHIFTED_TIMESTAMPS.end || !matches!(version, Some(1..=4)) {
        return;
    }
    // Two's complement: adding the wrapped negative shift subtracts.
    let delta = (shift * NTP_SECOND).round() as i64 as u64;
    for field in packet[SHIFTED_TIMESTAMPS].chunks_exact_mut(8) {
        let timestamp = u64::from_be_bytes(field.try_into().expect("8 bytes"));
        if timestamp != 0 {
            field.copy_from_slice(&timestamp.wrapping_add(delta).to_be_bytes());
        }
    }
}

/// A datagram waiting for delivery.
struct Outgoing {
    direction: Direction,
    socket: Arc<UdpSocket>,
    to: SocketAddr,
    bytes: Vec<u8>,
}

impl Outgoing {
    fn send(self, due: Instant, counts: &[Counts; 2]) {
        let counts = &counts[self.direction as usize];
        counts.forwarded.fetch_add(1, Ordering::Relaxed);
        let late = Instant::now().saturating_duration_since(due);
        if self.socket.send_to(&self.bytes, self.to).is_err() {
            counts.forwarded.fetch_sub(1, Ordering::Relaxed);
            counts.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            let late = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX);
            counts.late_nanos.fetch_add(late, Ordering::Relaxed);
        }
    }
}

/// The delivery thread: sends each queued datagram when it is due.
fn deliver(shared: &Shared) {
    let mut queue = lock(&shared.queue);
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        match queue.first_key_value().map(|(&(due, _), _)| due) {
            Some(due) if due <= now => {
                let ((due, _), outgoing) = queue.pop_first().expect("a due datagram");
                drop(queue);
                outgoing.send(due, &shared.counts);
                queue = lock(&shared.queue);
            }
            Some(due) if due <= now + SPIN => {
                drop(queue);
                while Instant::now() < due {
                    std::thread::yield_now();
                }
                queue = lock(&shared.queue);
            }
            next => {
                let wait = next.map_or(STOP_CHECK, |due| (due - now - SPIN).min(STOP_CHECK));
                queue = shared
                    .queued
                    .wait_timeout(queue, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
    }
}

/// Asks the kernel to timestamp each datagram `socket` receives: in nanoseconds, or in
/// microseconds where that is refused (qemu-user implements only SO_TIMESTAMP).
fn stamp_arrivals(socket: &UdpSocket) {
    if setsockopt(socket, sockopt::ReceiveTimestampns, &true).is_err() {
        setsockopt(socket, sockopt::ReceiveTimestamp, &true).expect("kernel receive timestamps");
    }
}

/// Reads one datagram from the non-blocking `socket`: its length, sender, and when the kernel
/// received it, as an `Instant` (now, less how long ago that was by the real-time clock).
fn receive_stamped(
    socket: &UdpSocket,
    buffer: &mut [u8],
) -> std::io::Result<(usize, SocketAddr, Instant)> {
    let mut control = nix::cmsg_space!(TimeSpec);
    let mut iov = [IoSliceMut::new(buffer)];
    let message = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )?;
    let from = message.address.and_then(|address| socket_addr_of(&address)).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "datagram without a sender")
    })?;
    let kernel = message.cmsgs().ok().into_iter().flatten().find_map(|cmsg| match cmsg {
        ControlMessageOwned::ScmTimestampns(ts) => Some(ts),
        ControlMessageOwned::ScmTimestamp(tv) => {
            Some(TimeSpec::new(tv.tv_sec(), (tv.tv_usec() * 1000) as _))
        }
        _ => None,
    });
    let (realtime, now) = clocks_together();
    let received = kernel
        .and_then(|stamp| {
            let age =
                if realtime > stamp { Duration::from(realtime - stamp) } else { Duration::ZERO };
            now.checked_sub(age.min(STOP_CHECK))
        })
        .unwrap_or(now);
    Ok((message.bytes, from, received))
}

/// The real-time clock and the monotonic clock read as nearly together as the scheduler allows.
/// The monotonic reading comes after the real-time one, so a preemption between them can only
/// make a datagram's arrival look later (released late), never earlier.
fn clocks_together() -> (TimeSpec, Instant) {
    let mut best = None;
    for _ in 0..4 {
        let before = Instant::now();
        let realtime = clock_gettime(ClockId::CLOCK_REALTIME).expect("the real-time clock");
        let after = Instant::now();
        let gap = after - before;
        if best.as_ref().is_none_or(|(_, _, least)| gap < *least) {
            best = Some((realtime, after, gap));
        }
        if gap < Duration::from_micros(5) {
            break;
        }
    }
    let (realtime, after, _) = best.expect("at least one reading");
    (realtime, after)
}

fn socket_addr_of(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        Some(SocketAddr::from((v4.ip(), v4.port())))
    } else {
        address.as_sockaddr_in6().map(|v6| SocketAddr::from((v6.ip(), v6.port())))
    }
}

/// A client the relay has heard from, and the socket its datagrams go upstream from.
struct Client {
    address: SocketAddr,
    socket: Arc<UdpSocket>,
    last_heard: Instant,
}

/// The receiving thread's state: it reads the listening socket and every client's upstream socket.
struct Receiver {
    listen: Arc<UdpSocket>,
    upstream: SocketAddr,
    clients: Vec<Client>,
    /// Arrival order, to keep datagrams due at the same instant in order.
    sequence: u64,
    shared: Arc<Shared>,
}

impl Receiver {
    fn run(mut self) {
        let mut buffer = vec![0; 65_536];
        while !self.shared.stop.load(Ordering::Relaxed) {
            let readable = self.wait_readable();
            // Answers first: reading clients' datagrams may replace a client.
            for &index in readable.iter().filter(|&&index| index > 0) {
                self.read_answers(index - 1, &mut buffer);
            }
            if readable.first() == Some(&0) {
                self.read_requests(&mut buffer);
            }
        }
    }

    /// Indices of the sockets with something to read (0: the listening socket, 1 + i: client i's
    /// upstream socket), after waiting at most `STOP_CHECK`.
    fn wait_readable(&self) -> Vec<usize> {
        let sockets = std::iter::once(&self.listen).chain(self.clients.iter().map(|c| &c.socket));
        let mut fds: Vec<PollFd> =
            sockets.map(|socket| PollFd::new(socket.as_fd(), PollFlags::POLLIN)).collect();
        let timeout = PollTimeout::try_from(STOP_CHECK).expect("a short timeout");
        if poll(&mut fds, timeout).is_err() {
            return Vec::new(); // interrupted
        }
        fds.iter()
            .enumerate()
            .filter(|(_, fd)| fd.any().unwrap_or(true))
            .map(|(index, _)| index)
            .collect()
    }

    /// Queues what the server sent to client `index`'s socket, to go back to that client.
    fn read_answers(&mut self, index: usize, buffer: &mut [u8]) {
        let (socket, client) = (self.clients[index].socket.clone(), self.clients[index].address);
        while let Ok((length, from, received)) = receive_stamped(&socket, buffer) {
            if from == self.upstream {
                let listen = self.listen.clone();
                self.submit(Direction::ToClient, &buffer[..length], received, listen, client);
            }
        }
    }

    /// Queues what clients sent, to go to the server from each client's own socket.
    fn read_requests(&mut self, buffer: &mut [u8]) {
        while let Ok((length, from, received)) = receive_stamped(&self.listen, buffer) {
            let socket = self.upstream_socket(from, received);
            self.submit(Direction::ToServer, &buffer[..length], received, socket, self.upstream);
        }
    }

    /// The socket `client`'s datagrams go upstream from, opened on first use.
    fn upstream_socket(&mut self, client: SocketAddr, now: Instant) -> Arc<UdpSocket> {
        if let Some(known) = self.clients.iter_mut().find(|c| c.address == client) {
            known.last_heard = now;
            return known.socket.clone();
        }
        if self.clients.len() >= MAX_CLIENTS {
            let quietest = (0..self.clients.len())
                .min_by_key(|&index| self.clients[index].last_heard)
                .expect("clients");
            self.clients.swap_remove(quietest);
        }
        let any = if self.upstream.is_ipv4() {
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
        } else {
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
        };
        let socket = UdpSocket::bind(any).expect("bind an upstream socket");
        socket.set_nonblocking(true).expect("nonblocking socket");
        stamp_arrivals(&socket);
        let socket = Arc::new(socket);
        self.clients.push(Client { address: client, socket: socket.clone(), last_heard: now });
        socket
    }

    /// Draws the fate of a datagram that arrived at `received` and queues it to be sent from
    /// `socket` to `to`, or counts it as dropped.
    fn submit(
        &mut self,
        direction: Direction,
        datagram: &[u8],
        received: Instant,
        socket: Arc<UdpSocket>,
        to: SocketAddr,
    ) {
        let counts = &self.shared.counts[direction as usize];
        let (fate, shift) = {
            let mut draws = lock(&self.shared.draws);
            (draws.draw(direction), draws.config.server_shift)
        };
        let Some((delay, held)) = fate else {
            counts.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if held {
            counts.held_back.fetch_add(1, Ordering::Relaxed);
        }
        let mut bytes = datagram.to_vec();
        if let Direction::ToClient = direction {
            shift_timestamps(&mut bytes, shift);
        }
        self.sequence += 1;
        let outgoing = Outgoing { direction, socket, to, bytes };
        lock(&self.shared.queue).insert((received + delay, self.sequence), outgoing);
        self.shared.queued.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    const MS: Duration = Duration::from_millis(1);

    /// What the echo server did with one datagram.
    struct Seen {
        /// Just after receiving it.
        received: Instant,
        /// Just before sending it back.
        sent: Instant,
        from: SocketAddr,
        bytes: Vec<u8>,
    }

    /// A UDP echo server inside a namespace that reports every datagram it echoed.
    struct Echo {
        address: SocketAddr,
        seen: mpsc::Receiver<Seen>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Echo {
        fn start(ns: &NetNs) -> Self {
            Self::on(ns, "127.0.0.1:0")
        }

        fn on(ns: &NetNs, address: &str) -> Self {
            let socket = ns.udp_socket(address);
            socket.set_read_timeout(Some(STOP_CHECK)).unwrap();
            let address = socket.local_addr().unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let (report, seen) = mpsc::channel();
            let stopped = stop.clone();
            let thread = std::thread::spawn(move || {
                let mut buffer = [0; 2048];
                while !stopped.load(Ordering::Relaxed) {
                    if let Ok((length, from)) = socket.recv_from(&mut buffer) {
                        let received = Instant::now();
                        let sent = Instant::now();
                        socket.send_to(&buffer[..length], from).unwrap();
                        let bytes = buffer[..length].to_vec();
                        let _ = report.send(Seen { received, sent, from, bytes });
                    }
                }
            });
            Self { address, seen, stop, thread: Some(thread) }
        }

        /// The next datagram it echoed, waiting at most a second.
        fn next(&self) -> Seen {
            self.seen.recv_timeout(Duration::from_secs(1)).expect("the echo server got a datagram")
        }
    }

    impl Drop for Echo {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    /// `socket.recv`, retried when interrupted: with a read timeout set, Linux fails the call with
    /// EINTR if the process is stopped and continued, even without a signal handler.
    fn receive(socket: &UdpSocket, buffer: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match socket.recv(buffer) {
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                result => return result,
            }
        }
    }

    /// A UDP socket bound to `address` inside `ns`, or why not.
    fn bind_in(ns: &NetNs, address: SocketAddr) -> std::io::Result<UdpSocket> {
        let name = ns.name.clone();
        std::thread::spawn(move || {
            enter_netns(&name);
            UdpSocket::bind(address)
        })
        .join()
        .expect("bind thread")
    }

    /// Sends `payload` to `to` and waits (at most 2 s) for the answer: when it was sent, when
    /// the answer came and the answer.
    fn exchange(client: &UdpSocket, to: SocketAddr, payload: &[u8]) -> (Instant, Instant, Vec<u8>) {
        let mut buffer = [0; 2048];
        let sent = Instant::now();
        client.send_to(payload, to).unwrap();
        let length = receive(client, &mut buffer).expect("an answer");
        (sent, Instant::now(), buffer[..length].to_vec())
    }

    /// One-way delays of an exchange through the echo server: (there, back).
    fn one_way(echo: &Echo, client: &UdpSocket, to: SocketAddr) -> (Duration, Duration) {
        let (sent, answered, _) = exchange(client, to, b"ping");
        let seen = echo.next();
        (seen.received - sent, answered - seen.sent)
    }

    fn median(mut values: Vec<Duration>) -> Duration {
        values.sort();
        values[values.len() / 2]
    }

    fn micros(duration: Duration) -> f64 {
        duration.as_secs_f64() * 1e6
    }

    /// A 56-byte NTP version 4 server answer with distinct timestamps and 8 trailing bytes.
    fn ntp_answer() -> Vec<u8> {
        let mut packet: Vec<u8> = (0..56u32).map(|i| (i * 7 + 1) as u8).collect();
        packet[0] = 0b00_100_100; // leap 0, version 4, mode 4
        packet
    }

    fn config(to_server: Impairment, to_client: Impairment) -> RelayConfig {
        RelayConfig { seed: 7, to_server, to_client, server_shift: 0.0 }
    }

    fn delayed(fixed: Duration) -> Impairment {
        Impairment { fixed, ..Impairment::NONE }
    }

    fn lossy(loss: f64) -> Impairment {
        Impairment { loss, ..Impairment::NONE }
    }

    #[test]
    fn passes_datagrams_unchanged_with_little_added_latency() {
        let ns = NetNs::new("relay-clean");
        let echo = Echo::start(&ns);
        let relay = Relay::start(&ns, "127.0.0.1:0", echo.address, RelayConfig::default());
        let client = ns.udp_socket("127.0.0.1:0");

        let big: Vec<u8> = (0..1400).map(|i| (i * 31 % 251) as u8).collect();
        for payload in [b"hello".to_vec(), ntp_answer(), big] {
            let (_, _, answer) = exchange(&client, relay.listen_addr(), &payload);
            assert_eq!(echo.next().bytes, payload);
            assert_eq!(answer, payload);
        }

        let (mut direct, mut relayed) = (Vec::new(), Vec::new());
        for _ in 0..200 {
            direct.push(one_way(&echo, &client, echo.address));
            relayed.push(one_way(&echo, &client, relay.listen_addr()));
        }
        let medians = |samples: &[(Duration, Duration)]| {
            let there = median(samples.iter().map(|s| s.0).collect());
            let back = median(samples.iter().map(|s| s.1).collect());
            (there, back)
        };
        let ((direct_there, direct_back), (relayed_there, relayed_back)) =
            (medians(&direct), medians(&relayed));
        let round_trips =
            |samples: &[(Duration, Duration)]| median(samples.iter().map(|s| s.0 + s.1).collect());
        let added = round_trips(&relayed).saturating_sub(round_trips(&direct));
        println!(
            "relay bias (medians of 200): round trip +{:.0} µs; to server {:.0} µs vs {:.0} µs \
             direct, to client {:.0} µs vs {:.0} µs direct",
            micros(added),
            micros(relayed_there),
            micros(direct_there),
            micros(relayed_back),
            micros(direct_back),
        );
        assert!(added < MS, "the relay added {added:?} to the round trip");
        assert_eq!(relay.stats().to_server.forwarded, 203);
        assert_eq!(relay.stats().to_client.forwarded, 203);
    }

    #[test]
    fn shifts_only_the_timestamps_of_answers() {
        let ns = NetNs::new("relay-shift");
        let echo = Echo::start(&ns);
        let shifted = RelayConfig { server_shift: 0.0075, ..RelayConfig::default() };
        let relay = Relay::start(&ns, "127.0.0.1:0", echo.address, shifted);
        let client = ns.udp_socket("127.0.0.1:0");

        let packet = ntp_answer();
        let (_, _, answer) = exchange(&client, relay.listen_addr(), &packet);
        assert_eq!(echo.next().bytes, packet, "requests pass unshifted");
        assert_eq!(answer.len(), packet.len());
        assert_eq!(answer[..32], packet[..32]);
        assert_eq!(answer[48..], packet[48..]);
        let exact = 0.0075 * NTP_SECOND;
        for field in [32..40, 40..48] {
            let read = |bytes: &[u8]| u64::from_be_bytes(bytes[field.clone()].try_into().unwrap());
            let moved = read(&answer).wrapping_sub(read(&packet)) as i64 as f64;
            assert!((moved - exact).abs() <= 1.0, "{field:?} moved by {moved}");
        }
    }

    #[test]
    fn shifting_leaves_zero_timestamps_and_other_packets_alone() {
        let mut packet = ntp_answer();
        packet[32..40].fill(0);
        packet[40..48].copy_from_slice(&1u64.to_be_bytes());
        shift_timestamps(&mut packet, -2.0);
        assert_eq!(packet[32..40], [0; 8], "zero stays zero");
        let expected = 1u64.wrapping_sub(2 << 32);
        assert_eq!(packet[40..48], expected.to_be_bytes(), "wraps");

        let short = ntp_answer()[..47].to_vec();
        let mut version_0 = ntp_answer();
        version_0[0] = 0b00_000_100;
        let mut version_5 = ntp_answer();
        version_5[0] = 0b00_101_100;
        for untouched in [short, version_0, version_5] {
            let mut copy = untouched.clone();
            shift_timestamps(&mut copy, 1.0);
            assert_eq!(copy, untouched);
        }
    }

    #[test]
    fn fixed_delays_apply_per_direction() {
        let ns = NetNs::new("relay-delay");
        let echo = Echo::start(&ns);
        let settings = config(delayed(3 * MS), delayed(MS));
        let relay = Relay::start(&ns, "127.0.0.1:0", echo.address, settings);
        let client = ns.udp_socket("127.0.0.1:0");

        let samples: Vec<_> =
            (0..30).map(|_| one_way(&echo, &client, relay.listen_addr())).collect();
        for (name, setting, delays) in [
            ("to server", 3 * MS, samples.iter().map(|s| s.0).collect::<Vec<_>>()),
            ("to client", MS, samples.iter().map(|s| s.1).collect()),
        ] {
            let least = *delays.iter().min().unwrap();
            let middle = median(delays);
            println!(
                "{name}: set {:.0} µs, median {:.0} µs, least {:.0} µs",
                micros(setting),
                micros(middle),
                micros(least)
            );
            assert!(least >= setting, "{name}: delivered early, after {least:?}");
            // The least of 30 is the delay itself plus a scheduling latency that a busy machine
            // (or qemu) stretches to hundreds of µs, never to the other direction's 2 ms.
            assert!(
                least - setting <= Duration::from_millis(1),
                "{name}: least {least:?}, median {middle:?}, set {setting:?}"
            );
        }
    }

    #[test]
    fn loss_drops_everything_or_nothing() {
        let ns = NetNs::new("relay-loss");
        let echo = Echo::start(&ns);
        let relay =
            Relay::start(&ns, "127.0.0.1:0", echo.address, config(lossy(1.0), Impairment::NONE));
        let client = ns.udp_socket("127.0.0.1:0");
        client.set_read_timeout(Some(200 * MS)).unwrap();

        for _ in 0..20 {
            client.send_to(b"lost", relay.listen_addr()).unwrap();
        }
        assert!(receive(&client, &mut [0; 64]).is_err(), "an answer came back");
        assert!(echo.seen.try_recv().is_err(), "the server got a datagram");
        let stats = relay.stats().to_server;
        assert_eq!((stats.forwarded, stats.dropped), (0, 20));

        relay.set_config(config(lossy(0.0), Impairment::NONE));
        for _ in 0..20 {
            exchange(&client, relay.listen_addr(), b"kept");
            echo.next();
        }
        let stats = relay.stats();
        assert_eq!((stats.to_server.forwarded, stats.to_server.dropped), (20, 20));
        assert_eq!((stats.to_client.forwarded, stats.to_client.dropped), (20, 0));

        relay.set_config(config(Impairment::NONE, lossy(1.0)));
        for _ in 0..5 {
            client.send_to(b"answer lost", relay.listen_addr()).unwrap();
            echo.next();
        }
        assert!(receive(&client, &mut [0; 64]).is_err(), "an answer came back");
        assert_eq!(relay.stats().to_client.dropped, 5);
    }

    #[test]
    fn held_back_datagrams_are_overtaken() {
        let ns = NetNs::new("relay-reorder");
        let echo = Echo::start(&ns);
        let reordering = Impairment { reorder: 0.3, ..Impairment::NONE };
        let relay =
            Relay::start(&ns, "127.0.0.1:0", echo.address, config(reordering, Impairment::NONE));
        let client = ns.udp_socket("127.0.0.1:0");

        for number in 0..40u8 {
            client.send_to(&[number], relay.listen_addr()).unwrap();
        }
        let order: Vec<u8> = (0..40).map(|_| echo.next().bytes[0]).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..40).collect::<Vec<u8>>(), "all arrive");
        assert_ne!(order, sorted, "none overtaken");
        let held = relay.stats().to_server.held_back;
        assert!(held > 0 && held < 40, "{held} held back");
    }

    #[test]
    fn answers_go_back_to_their_own_client() {
        let ns = NetNs::new("relay-clients");
        let echo = Echo::start(&ns);
        let relay = Relay::start(&ns, "127.0.0.1:0", echo.address, RelayConfig::default());
        let clients: Vec<UdpSocket> =
            (0..=MAX_CLIENTS).map(|_| ns.udp_socket("127.0.0.1:0")).collect();

        let mut upstream_ports = [0; 3];
        for (number, client) in clients.iter().enumerate().take(3) {
            client.send_to(&[number as u8], relay.listen_addr()).unwrap();
        }
        for _ in 0..3 {
            let seen = echo.next();
            upstream_ports[usize::from(seen.bytes[0])] = seen.from.port();
        }
        for (number, client) in clients.iter().enumerate().take(3) {
            let mut answer = [0; 8];
            let length = receive(client, &mut answer).expect("an answer");
            assert_eq!(answer[..length], [number as u8], "client {number}");
        }

        // The 65th client takes the place of the first, which gets a new socket when it is back.
        for client in &clients[3..] {
            exchange(client, relay.listen_addr(), b"more");
            echo.next();
        }
        let (_, _, answer) = exchange(&clients[0], relay.listen_addr(), &[0]);
        assert_eq!(answer, [0]);
        assert_ne!(echo.next().from.port(), upstream_ports[0], "still mapped");
        exchange(&clients[2], relay.listen_addr(), &[2]);
        assert_eq!(echo.next().from.port(), upstream_ports[2], "forgotten too early");
    }

    #[test]
    fn relays_over_ipv6() {
        let ns = NetNs::new("relay-ipv6");
        let echo = Echo::on(&ns, "[::1]:0");
        let relay = Relay::start(&ns, "[::1]:0", echo.address, RelayConfig::default());
        let client = ns.udp_socket("[::1]:0");
        let (_, _, answer) = exchange(&client, relay.listen_addr(), b"six");
        assert_eq!(answer, b"six");
        assert!(echo.next().from.is_ipv6());
    }

    #[test]
    fn dropping_stops_its_threads_and_frees_the_port() {
        let ns = NetNs::new("relay-drop");
        let echo = Echo::start(&ns);
        let relay = Relay::start(
            &ns,
            "127.0.0.1:0",
            echo.address,
            config(Impairment::NONE, delayed(Duration::from_secs(10))),
        );
        let client = ns.udp_socket("127.0.0.1:0");
        client.send_to(b"answer held", relay.listen_addr()).unwrap();
        echo.next();
        let listen = relay.listen_addr();
        let names = [format!("relay-rx-{}", listen.port()), format!("relay-tx-{}", listen.port())];
        let running = || {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
                .filter(|comm| names.contains(&comm.trim_end().to_string()))
                .count()
        };
        assert_eq!(running(), 2);

        let started = Instant::now();
        drop(relay);
        let took = started.elapsed();
        assert!(took < 200 * MS, "dropping took {took:?}");
        let deadline = Instant::now() + Duration::from_secs(1);
        while running() > 0 {
            assert!(Instant::now() < deadline, "relay threads still running");
            std::thread::sleep(MS);
        }
        // A process another test is starting holds a copy of every descriptor until it execs.
        let deadline = Instant::now() + Duration::from_secs(1);
        while let Err(error) = bind_in(&ns, listen) {
            assert!(Instant::now() < deadline, "the port is still bound: {error}");
            std::thread::sleep(MS);
        }
    }

    #[test]
    fn draws_repeat_per_seed_and_follow_the_settings() {
        let impairment = Impairment { fixed: MS, random_mean: MS, loss: 0.25, reorder: 0.1 };
        let settings = config(impairment, Impairment::NONE);
        let run = |settings: RelayConfig, direction: Direction| {
            let mut draws = Draws::new(settings);
            (0..100_000).map(|_| draws.draw(direction)).collect::<Vec<_>>()
        };
        let fates = run(settings, Direction::ToServer);
        assert_eq!(fates, run(settings, Direction::ToServer), "same seed");
        let reseeded = RelayConfig { seed: 8, ..settings };
        assert_ne!(fates, run(reseeded, Direction::ToServer), "other seed");
        let mirrored = config(impairment, impairment);
        assert_ne!(fates, run(mirrored, Direction::ToClient), "other direction");

        let kept: Vec<_> = fates.iter().flatten().collect();
        let lost = 1.0 - kept.len() as f64 / fates.len() as f64;
        assert!((lost - 0.25).abs() < 0.01, "lost {lost}");
        let held = kept.iter().filter(|fate| fate.1).count() as f64 / kept.len() as f64;
        assert!((held - 0.1).abs() < 0.01, "held back {held}");
        let not_held: Vec<Duration> = kept.iter().filter(|f| !f.1).map(|f| f.0).collect();
        assert!(not_held.iter().all(|&delay| delay >= MS));
        let mean = not_held.iter().sum::<Duration>() / not_held.len() as u32;
        assert!(mean.abs_diff(2 * MS) < Duration::from_micros(50), "mean {mean:?}");
        let hold = MIN_HOLD.max(4 * MS);
        assert!(kept.iter().filter(|f| f.1).all(|f| f.0 >= MS + hold));
    }
}
