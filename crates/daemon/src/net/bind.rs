//! Binding the server's listening sockets, with errors a user can act on.

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use syhub_ntp_sys::errno;
use syhub_ntp_sys::net::options;

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

/// Opens `count` UDP server sockets on `address` (IPv6 sockets are IPv6-only, so `0.0.0.0` and
/// `[::]` can both be bound), blocking, each with a large receive buffer. More than one share the
/// port through SO_REUSEPORT, the kernel spreading clients over them; the port is first bound
/// alone for a moment, so that another server already on it (even one sharing with SO_REUSEPORT)
/// is reported as in use rather than silently joined.
pub(crate) fn bind_server_sockets(
    address: SocketAddr,
    count: usize,
    receive_buffer: usize,
) -> Result<Vec<std::net::UdpSocket>, BindError> {
    if count > 1 {
        drop(bind_one(address, false, receive_buffer)?);
    }
    (0..count.max(1)).map(|_| bind_one(address, count > 1, receive_buffer)).collect()
}

fn bind_one(
    address: SocketAddr,
    share: bool,
    receive_buffer: usize,
) -> Result<std::net::UdpSocket, BindError> {
    let classify = |source: io::Error| match source.raw_os_error() {
        Some(errno::EACCES | errno::EPERM) => BindError::PermissionDenied(address),
        Some(errno::EADDRINUSE) => BindError::InUse(address),
        Some(errno::EADDRNOTAVAIL | errno::EAFNOSUPPORT) => {
            BindError::Unavailable { address, source }
        }
        _ => BindError::Other { address, source },
    };
    let socket = Socket::new(Domain::for_address(address), Type::DGRAM, Some(Protocol::UDP))
        .map_err(classify)?;
    if address.is_ipv6() {
        socket.set_only_v6(true).map_err(classify)?;
    }
    if share {
        socket.set_reuse_port(true).map_err(classify)?;
    }
    socket.bind(&address.into()).map_err(classify)?;
    let socket: std::net::UdpSocket = socket.into();
    if address.is_ipv4() {
        // Don't-fragment on replies (no reply comes near an MTU): the kernel then gives them IP ID
        // 0 instead of drawing one from its shared, hashed ID table for each datagram. A refusal
        // only leaves the kernel's default.
        let _ = options::set_dont_fragment_v4(socket.as_fd());
    }
    // Room for a burst of requests while a serving thread is busy: beyond the system's limit when
    // privileged (SO_RCVBUFFORCE), else as much as it allows. The kernel doubles what it is asked
    // for (half is bookkeeping) and reports the doubled figure, which is what the config names.
    super::udp::enable_arrival_info(&socket).map_err(classify)?;
    let asked = receive_buffer / 2;
    if options::set_receive_buffer_force(socket.as_fd(), asked).is_err() {
        let _ = SockRef::from(&socket).set_recv_buffer_size(asked);
    }
    Ok(socket)
}
