//! One query to an NTP server, as `ntpdate -q` does: resolve, send a request with a random cookie,
//! wait for the matching answer and evaluate it with the protocol core.

use crate::net::TimestampedSocket;
use std::net::SocketAddr;
use std::time::Duration;
use syhub_ntp_clock::{Clock, SystemClock};
use syhub_ntp_config::{BadTarget, Target, parse_target};
use syhub_ntp_proto::NtpTimestamp;
use syhub_ntp_proto::client::{ClientRequest, ResponseError, Sample, evaluate_response};
use syhub_ntp_proto::packet::HEADER_LEN;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    BadTarget(#[from] BadTarget),
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: std::io::Error },
    #[error("{0} resolves to no address")]
    NoAddress(String),
    #[error("network error talking to {server}: {source}")]
    Io { server: SocketAddr, source: std::io::Error },
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
async fn resolve(target: &Target) -> Result<SocketAddr, QueryError> {
    match target {
        Target::Address(address) => Ok(*address),
        Target::Name { host, port } => tokio::net::lookup_host((host.as_str(), *port))
            .await
            .map_err(|source| QueryError::Resolve { host: host.clone(), source })?
            .next()
            .ok_or_else(|| QueryError::NoAddress(host.clone())),
    }
}

/// Queries `target` once and waits up to `timeout` for its answer.
pub async fn query(target: &str, timeout: Duration) -> Result<QueryOutcome, QueryError> {
    let server = resolve(&parse_target(target)?).await?;
    let io = |source| QueryError::Io { server, source };
    let local: SocketAddr =
        if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let std_socket = std::net::UdpSocket::bind(local).map_err(io)?;
    std_socket.set_nonblocking(true).map_err(io)?;
    let socket = TimestampedSocket::new(std_socket).map_err(io)?;
    socket.connect(server).await.map_err(io)?;

    let request = ClientRequest::new(NtpTimestamp::from_bits(
        getrandom::u64().map_err(|e| QueryError::Random(e.to_string()))?,
    ));
    let mut packet = [0u8; HEADER_LEN];
    request.encode(&mut packet);
    let clock = SystemClock;
    let sent_at = std::cell::Cell::new(NtpTimestamp::ZERO);
    socket
        .send_stamped(&mut packet, server, &clock, |_, now| sent_at.set(now))
        .await
        .map_err(io)?;

    let exchange = async {
        let mut buf = [0u8; 2048];
        loop {
            let received = socket.recv(&mut buf).await.map_err(io)?;
            let received_at = received.kernel_time.unwrap_or_else(|| clock.now());
            match evaluate_response(&request, sent_at.get(), &buf[..received.len], received_at) {
                // A stale or forged answer is not ours: keep waiting for the real one.
                Err(ResponseError::OriginMismatch | ResponseError::Malformed(_)) => continue,
                Err(error) => return Err(QueryError::Refused { server, error }),
                Ok(sample) => {
                    return Ok(QueryOutcome {
                        server,
                        sample,
                        kernel_timestamp: received.kernel_time.is_some(),
                    });
                }
            }
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| QueryError::Timeout { server, timeout })?
}
