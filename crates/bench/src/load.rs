//! The load generator: many emulated NTP clients (distinct 127.x.y.z source addresses over several
//! source ports) sending mode-3 requests in sendmmsg batches, at a fixed rate or as fast as it can,
//! bounded in count and time. Answers are matched by the token each request carries in its transmit
//! timestamp (an NTP server returns it as the origin timestamp; an echo returns the request).

use crate::stats::Percentiles;
use serde::{Deserialize, Serialize};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};
use syhub_ntp_clock::{Clock, SystemClock};
use syhub_ntp_proto::NtpTimestamp;
use syhub_ntp_sys::net::options::{set_receive_buffer_force, set_send_buffer_force};
use syhub_ntp_sys::net::{ArrivedOn, ReceiveBatch, SendBatch, enable_arrival_info};
use syhub_ntp_sys::poll::{set_timer_slack, wait_readable};

/// What to send, how fast and for how long.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub server: SocketAddr,
    /// Requests per second; 0 sends as fast as the tool can (open loop).
    pub rate: f64,
    /// How long requests are sent.
    pub duration: Duration,
    /// At most this many requests in all.
    pub max_requests: u64,
    /// Distinct client addresses, 127.16.0.0 onwards (loopback servers only; 1 uses the kernel's
    /// choice of source address).
    pub clients: u32,
    /// Source ports (sockets) used in turn.
    pub sockets: usize,
    /// Requests per sendmmsg call; at a fixed rate, requests wait until this many are due.
    pub batch: usize,
    /// How long to wait for late answers after the last request.
    pub drain: Duration,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            server: SocketAddr::from((Ipv4Addr::LOCALHOST, 123)),
            rate: 10_000.0,
            duration: Duration::from_secs(2),
            max_requests: 10_000_000,
            clients: 4096,
            sockets: 4,
            batch: 16,
            drain: Duration::from_millis(300),
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    pub target_rate: f64,
    pub sent: u64,
    pub answered: u64,
    /// Fraction of requests not answered.
    pub loss: f64,
    /// Requests sent per second of sending.
    pub send_rate: f64,
    /// Answers per second of sending.
    pub answer_rate: f64,
    /// Request leaving the tool (clock read before sendmmsg) to answer received (kernel timestamp), µs.
    pub latency_us: Percentiles,
    /// Server processing: its transmit minus its receive timestamp, µs (NTP answers only).
    pub processing_us: Percentiles,
    /// Server transmit timestamp to the answer's kernel receive timestamp here, µs: on loopback,
    /// how long an answer waited after being stamped (NTP answers only).
    pub stamp_to_wire_us: Percentiles,
    /// Answers that were not mode 4 with our token, or came twice.
    pub unexpected: u64,
}

/// The requests in flight: slot `token % len` holds the token and when it left.
struct InFlight {
    slots: Vec<(u64, NtpTimestamp)>,
}

impl InFlight {
    /// Room for 2^21 requests: two seconds at a million per second.
    const LEN: usize = 1 << 21;

    fn new() -> Self {
        Self { slots: vec![(0, NtpTimestamp::ZERO); Self::LEN] }
    }

    fn sent(&mut self, token: u64, at: NtpTimestamp) {
        self.slots[token as usize % Self::LEN] = (token, at);
    }

    /// When `token` left, once: a second answer to the same request is not counted.
    fn answered(&mut self, token: u64) -> Option<NtpTimestamp> {
        let slot = &mut self.slots[token as usize % Self::LEN];
        if slot.0 != token || token == 0 {
            return None;
        }
        slot.0 = 0;
        Some(slot.1)
    }
}

fn client_address(index: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 16, 0, 0)) + index)
}

fn open_sockets(config: &LoadConfig) -> io::Result<Vec<UdpSocket>> {
    let any: SocketAddr = match config.server.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    (0..config.sockets.max(1))
        .map(|_| {
            let socket = UdpSocket::bind(any)?;
            socket.set_nonblocking(true)?;
            enable_arrival_info(&socket)?;
            // Refused without privilege, which only leaves the default buffers.
            let bytes = 8 << 20;
            let _ = set_receive_buffer_force(socket.as_fd(), bytes);
            let _ = set_send_buffer_force(socket.as_fd(), bytes);
            Ok(socket)
        })
        .collect()
}

/// Sleeps until a socket is readable or `timeout` passes, with nanosecond timer slack so that
/// pacing at tens of thousands of requests per second is even.
fn wait(sockets: &[UdpSocket], timeout: Duration) {
    // An interruption or error only ends the wait early; the loop looks again.
    let _ = wait_readable(sockets, timeout);
}

/// Runs one load and reports it.
pub fn run(config: &LoadConfig) -> io::Result<LoadReport> {
    // Only this thread's slack; a refusal leaves the default (50 µs).
    let _ = set_timer_slack(1);
    let sockets = open_sockets(config)?;
    let batch = config.batch.clamp(1, 64);
    let mut outgoing: Vec<SendBatch> =
        sockets.iter().map(|_| SendBatch::new(batch, true)).collect();
    let mut incoming = ReceiveBatch::new(64);
    let mut in_flight = InFlight::new();
    let clock = SystemClock;
    let loopback_clients = config.clients > 1 && config.server.ip().is_loopback();
    let expected = (config.rate * config.duration.as_secs_f64()) as usize;
    let capacity = expected.clamp(1024, config.max_requests as usize).min(20_000_000);
    let (mut latency, mut processing, mut wire) =
        (Vec::with_capacity(capacity), Vec::with_capacity(capacity), Vec::with_capacity(capacity));
    let (mut sent, mut answered, mut unexpected) = (0u64, 0u64, 0u64);
    let mut next_socket = 0;
    let start = Instant::now();
    let mut sending_time = config.duration;
    let mut drain_until = None;
    loop {
        let now = Instant::now();
        let elapsed = now - start;
        if drain_until.is_none() && (elapsed >= config.duration || sent >= config.max_requests) {
            sending_time = elapsed;
            drain_until = Some(now + config.drain);
        }
        if drain_until.is_some_and(|until| now >= until) {
            break;
        }
        let mut busy = false;
        if drain_until.is_none() {
            let due = if config.rate > 0.0 {
                ((elapsed.as_secs_f64() * config.rate) as u64).min(config.max_requests)
            } else {
                (sent + batch as u64).min(config.max_requests)
            };
            // At a fixed rate, wait until a whole batch is due (a batch of 1 sends each on time).
            let mut behind = due.saturating_sub(sent);
            while behind >= batch as u64 || (behind > 0 && config.rate <= 0.0) {
                let count = behind.min(batch as u64) as usize;
                let index = next_socket % sockets.len();
                next_socket += 1;
                let out = &mut outgoing[index];
                for slot in 0..count {
                    let token = sent + slot as u64 + 1;
                    let packet = out.buffer(slot);
                    packet[..48].fill(0);
                    packet[0] = 0x23; // leap 0, version 4, mode 3 (client)
                    packet[2] = 6; // poll 2^6 s
                    packet[40..48].copy_from_slice(&token.to_be_bytes());
                    let source = loopback_clients.then(|| {
                        let address = client_address(token as u32 % config.clients);
                        ArrivedOn::V4 { spec_dst: address, destination: address, ifindex: 0 }
                    });
                    out.address(slot, 48, config.server, source);
                }
                let leaving = clock.now();
                let (went, error) = out.send(sockets[index].as_fd(), 0..count);
                for slot in 0..went {
                    in_flight.sent(sent + slot as u64 + 1, leaving);
                }
                sent += went as u64;
                busy = true;
                if error.is_some() {
                    // The tool's own send buffer is full: that is its ceiling, not the server's loss.
                    break;
                }
                behind = due.saturating_sub(sent);
            }
        }
        for socket in &sockets {
            loop {
                let count = match incoming.receive(socket.as_fd()) {
                    Ok(count) => count,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    // An ICMP error queued on the socket (no server yet): not an answer.
                    Err(_) => 0,
                };
                for index in 0..count {
                    let Some((arrival, packet)) = incoming.datagram(index) else { continue };
                    let arrived = arrival
                        .kernel_time
                        .map_or_else(|| clock.now(), SystemClock::timestamp_from_kernel);
                    match read_answer(packet) {
                        Some(answer) => match in_flight.answered(answer.token) {
                            Some(left) => {
                                answered += 1;
                                latency.push((arrived - left).to_nanos());
                                if let Some((receive, transmit)) = answer.server_times {
                                    processing.push((transmit - receive).to_nanos());
                                    wire.push((arrived - transmit).to_nanos());
                                }
                            }
                            None => unexpected += 1,
                        },
                        None => unexpected += 1,
                    }
                }
                busy |= count > 0;
                if count < 64 {
                    break;
                }
            }
        }
        if !busy {
            let until_due = if drain_until.is_some() || config.rate <= 0.0 {
                Duration::from_millis(1)
            } else {
                let next = (sent + batch as u64) as f64 / config.rate;
                Duration::from_secs_f64((next - start.elapsed().as_secs_f64()).max(0.0))
            };
            wait(&sockets, until_due.min(Duration::from_millis(5)));
        }
    }
    let seconds = sending_time.as_secs_f64().max(1e-9);
    Ok(LoadReport {
        target_rate: config.rate,
        sent,
        answered,
        loss: if sent == 0 { 0.0 } else { 1.0 - answered as f64 / sent as f64 },
        send_rate: sent as f64 / seconds,
        answer_rate: answered as f64 / seconds,
        latency_us: Percentiles::of_nanos(&mut latency),
        processing_us: Percentiles::of_nanos(&mut processing),
        stamp_to_wire_us: Percentiles::of_nanos(&mut wire),
        unexpected,
    })
}

/// The token and, for an NTP answer, the server's receive and transmit timestamps.
struct AnswerSeen {
    token: u64,
    server_times: Option<(NtpTimestamp, NtpTimestamp)>,
}

fn read_answer(packet: &[u8]) -> Option<AnswerSeen> {
    if packet.len() < 48 {
        return None;
    }
    let field = |at: usize| {
        u64::from_be_bytes(packet[at..at + 8].try_into().expect("eight bytes of a 48-byte packet"))
    };
    match packet[0] & 7 {
        // A server's answer: our token is its origin timestamp. A kiss-o'-death (stratum 0 with
        // no time of the server's: zeros, or our own timestamp echoed) is counted but not timed;
        // an unsynchronised answer may also be stratum 0 and still carry the server's times.
        4 => Some(AnswerSeen {
            token: field(24),
            server_times: (packet[1] != 0
                || (field(40) != 0 && field(40) != field(24) && field(32) != 0))
                .then(|| (NtpTimestamp::from_bits(field(32)), NtpTimestamp::from_bits(field(40)))),
        }),
        // An echo of our request.
        3 => Some(AnswerSeen { token: field(40), server_times: None }),
        _ => None,
    }
}
