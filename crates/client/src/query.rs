//! One query to an NTP server, as `ntpdate -q` does: resolve, send a request with a random cookie,
//! wait for the matching answer and evaluate it with the protocol core. The transmit time is read
//! just before the send and the answer's arrival is the kernel's timestamp.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};
use syhub_ntp_clock::{Clock, SystemClock};
use syhub_ntp_config::{BadTarget, Target, parse_target};
use syhub_ntp_proto::NtpTimestamp;
use syhub_ntp_proto::client::{ClientRequest, ResponseError, Sample, evaluate_response};
use syhub_ntp_proto::packet::HEADER_LEN;
use syhub_ntp_sys::net::{enable_arrival_info, receive_one};

/// After an ICMP error, the next look for an answer is this much later.
const REFUSED_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    BadTarget(#[from] BadTarget),
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: io::Error },
    #[error("{0} resolves to no address")]
    NoAddress(String),
    #[error("network error talking to {server}: {source}")]
    Io { server: SocketAddr, source: io::Error },
    #[error("no answer from {server} within {timeout:?}")]
    Timeout { server: SocketAddr, timeout: Duration },
    #[error("{server} answered with no usable time: {error}")]
    Refused { server: SocketAddr, error: ResponseError },
    #[error("cannot get random bytes for the request: {0}")]
    Random(String),
}

/// The outcome of one exchange.
#[derive(Debug, Clone, Copy)]
pub struct QueryOutcome {
    pub server: SocketAddr,
    pub sample: Sample,
    /// Whether the answer's arrival was timestamped by the kernel.
    pub kernel_timestamp: bool,
}

/// Resolves a target to one address (the first the resolver gives).
fn resolve(target: &Target) -> Result<SocketAddr, QueryError> {
    match target {
        Target::Address(address) => Ok(*address),
        Target::Name { host, port } => (host.as_str(), *port)
            .to_socket_addrs()
            .map_err(|source| QueryError::Resolve { host: host.clone(), source })?
            .next()
            .ok_or_else(|| QueryError::NoAddress(host.clone())),
    }
}

/// Queries `target` once and waits up to `timeout` for its answer (blocking).
pub fn query(target: &str, timeout: Duration) -> Result<QueryOutcome, QueryError> {
    let server = resolve(&parse_target(target)?)?;
    let deadline = Instant::now() + timeout;
    let io = |source| QueryError::Io { server, source };
    let local: SocketAddr =
        if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = UdpSocket::bind(local).map_err(io)?;
    // Without kernel timestamps the clock is read on receipt.
    let _ = enable_arrival_info(&socket);
    socket.connect(server).map_err(io)?;

    let request = ClientRequest::new(NtpTimestamp::from_bits(
        getrandom::u64().map_err(|e| QueryError::Random(e.to_string()))?,
    ));
    let mut packet = [0u8; HEADER_LEN];
    request.encode(&mut packet);
    let clock = SystemClock;
    let sent_at = clock.now();
    socket.send(&packet).map_err(io)?;

    let mut buf = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(QueryError::Timeout { server, timeout });
        }
        socket.set_read_timeout(Some(left)).map_err(io)?;
        let arrival = match receive_one(socket.as_fd(), &mut buf) {
            Ok(arrival) => arrival,
            Err(error)
                if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                return Err(QueryError::Timeout { server, timeout });
            }
            // An ICMP error (nothing listening there) is no answer: the wait goes on, as for a
            // lost reply.
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionRefused
                ) =>
            {
                if error.kind() == io::ErrorKind::ConnectionRefused {
                    std::thread::sleep(left.min(REFUSED_PAUSE));
                }
                continue;
            }
            Err(error) => return Err(io(error)),
        };
        let kernel_time = arrival.kernel_time.map(SystemClock::timestamp_from_kernel);
        let received_at = kernel_time.unwrap_or_else(|| clock.now());
        match evaluate_response(&request, sent_at, &buf[..arrival.len], received_at) {
            // A stale or forged answer is not ours: keep waiting for the real one.
            Err(ResponseError::OriginMismatch | ResponseError::Malformed(_)) => continue,
            Err(error) => return Err(QueryError::Refused { server, error }),
            Ok(sample) => {
                return Ok(QueryOutcome {
                    server,
                    sample,
                    kernel_timestamp: kernel_time.is_some(),
                });
            }
        }
    }
}
