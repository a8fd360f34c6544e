//! One query to an NTP server, as `ntpdate -q` does: resolve, send a request with a random cookie,
//! wait for the matching answer and evaluate it with the protocol core.

use crate::net::TimestampedSocket;
use std::net::SocketAddr;
use std::time::Duration;
use syhub_ntp_clock::{Clock, SystemClock};
use syhub_ntp_proto::NtpTimestamp;
use syhub_ntp_proto::client::{ClientRequest, ResponseError, Sample, evaluate_response};
use syhub_ntp_proto::packet::HEADER_LEN;

pub const NTP_PORT: u16 = 123;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("bad server `{0}`: expected HOST, HOST:PORT, an IP address or [IPv6]:PORT")]
    BadTarget(String),
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

/// A server to ask: an address (kept whole, with any IPv6 scope) or a name to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Address(SocketAddr),
    Name { host: String, port: u16 },
}

/// Parses `HOST[:PORT]`: a name, an IPv4 address, an IPv6 address bare or as `[addr]:port`
/// (with `%scope` for link-local); the port defaults to 123.
pub fn parse_target(target: &str) -> Result<Target, QueryError> {
    let bad = || QueryError::BadTarget(target.to_owned());
    if let Ok(address) = target.parse::<SocketAddr>() {
        return Ok(Target::Address(address));
    }
    let bracketed = target.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(target);
    if let Ok(address) = format!("[{bracketed}]:{NTP_PORT}").parse::<SocketAddr>() {
        return Ok(Target::Address(address));
    }
    if let Ok(address) = format!("{target}:{NTP_PORT}").parse::<SocketAddr>() {
        return Ok(Target::Address(address));
    }
    let (host, port) = match target.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().map_err(|_| bad())?),
        None => (target, NTP_PORT),
    };
    let valid_name = !host.is_empty()
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if valid_name { Ok(Target::Name { host: host.to_owned(), port }) } else { Err(bad()) }
}

/// Resolves a target to one address (the first the resolver gives).
pub async fn resolve(target: &Target) -> Result<SocketAddr, QueryError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_like_ntpdate() {
        let ok = |t: &str| parse_target(t).unwrap();
        let name = |host: &str, port| Target::Name { host: host.into(), port };
        let address = |a: &str| Target::Address(a.parse().unwrap());
        assert_eq!(ok("pool.ntp.org"), name("pool.ntp.org", 123));
        assert_eq!(ok("hub.local:1123"), name("hub.local", 1123));
        assert_eq!(ok("192.168.1.10"), address("192.168.1.10:123"));
        assert_eq!(ok("127.0.0.1:11123"), address("127.0.0.1:11123"));
        assert_eq!(ok("::1"), address("[::1]:123"));
        assert_eq!(ok("[::1]"), address("[::1]:123"));
        assert_eq!(ok("[fe80::1]:123"), address("[fe80::1]:123"));
        let Target::Address(SocketAddr::V6(scoped)) = ok("[fe80::1%2]:123") else { panic!() };
        assert_eq!(scoped.scope_id(), 2, "the scope of a link-local address is kept");
        for bad in ["", "host:", "host:99999", "a b", "[::1", "host:port", ":123"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }
}
