//! Binding the server's listening sockets, with errors a user can act on.

use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Domain, Protocol, Socket, Type};

/// Receive buffer asked for on server sockets, bytes.
const RECEIVE_BUFFER: usize = 4 << 20;
use std::io;
use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "permission denied binding UDP {0}: ports below 1024 need root or CAP_NET_BIND_SERVICE \
         (run as root, or change [server] listen)"
    )]
    PermissionDenied(SocketAddr),
    #[error(
        "UDP {0} is already in use: another time server (chronyd, ntpd, ntpsec or systemd-timesyncd) \
         probably holds it; stop it (`syhub-ntp install` does so) or change [server] listen"
    )]
    InUse(SocketAddr),
    /// The address or its family is not available on this host (no IPv6, or not one of our addresses).
    #[error("cannot bind UDP {address}: {source}")]
    Unavailable { address: SocketAddr, source: io::Error },
    #[error("cannot bind UDP {address}: {source}")]
    Other { address: SocketAddr, source: io::Error },
}

/// Opens a UDP server socket on `address` (IPv6 sockets are IPv6-only, so `0.0.0.0` and `[::]` can
/// both be bound), non-blocking, ready for [`super::TimestampedSocket::new`] on the runtime that
/// will serve it.
pub fn bind_server_socket(address: SocketAddr) -> Result<std::net::UdpSocket, BindError> {
    let classify = |source: io::Error| match source.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => BindError::PermissionDenied(address),
        Some(libc::EADDRINUSE) => BindError::InUse(address),
        Some(libc::EADDRNOTAVAIL | libc::EAFNOSUPPORT) => {
            BindError::Unavailable { address, source }
        }
        _ => BindError::Other { address, source },
    };
    let socket = Socket::new(Domain::for_address(address), Type::DGRAM, Some(Protocol::UDP))
        .map_err(classify)?;
    if address.is_ipv6() {
        socket.set_only_v6(true).map_err(classify)?;
    }
    socket.set_nonblocking(true).map_err(classify)?;
    socket.bind(&address.into()).map_err(classify)?;
    // Room for a burst of requests while the serving loop is busy: beyond the default when
    // privileged (SO_RCVBUFFORCE), else as much as the system allows.
    let socket: std::net::UdpSocket = socket.into();
    if setsockopt(&socket, sockopt::RcvBufForce, &RECEIVE_BUFFER).is_err() {
        let _ = setsockopt(&socket, sockopt::RcvBuf, &RECEIVE_BUFFER);
    }
    Ok(socket)
}
