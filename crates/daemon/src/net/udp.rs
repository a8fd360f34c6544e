//! A tokio UDP socket read with recvmsg(2) so each datagram comes with its kernel receive timestamp
//! (SO_TIMESTAMPNS) and, on wildcard sockets, the local address it was sent to (IP_PKTINFO /
//! IPV6_PKTINFO): the sources' sockets. The descriptions of a datagram are shared with the
//! serving threads' batches (`mmsg.rs`).

use super::mmsg;
use nix::sys::socket::{setsockopt, sockopt};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use syhub_ntp_clock::Clock;
use syhub_ntp_proto::NtpTimestamp;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// The local address a datagram arrived on, to send the reply from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrivedOn {
    /// `spec_dst` is the local address the kernel would answer from (the interface's address even
    /// for a broadcast request).
    V4 {
        spec_dst: Ipv4Addr,
        ifindex: i32,
    },
    V6 {
        address: Ipv6Addr,
        ifindex: u32,
    },
}

/// One received datagram.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub len: usize,
    pub peer: SocketAddr,
    /// When the kernel received it; `None` when the kernel gave no timestamp.
    pub kernel_time: Option<NtpTimestamp>,
    pub arrived_on: Option<ArrivedOn>,
    /// Longer than the buffer: the tail was cut off.
    pub truncated: bool,
}

/// A UDP socket with kernel receive timestamps where the kernel offers them.
#[derive(Debug)]
pub struct TimestampedSocket {
    socket: UdpSocket,
}

impl TimestampedSocket {
    /// Wraps a bound, non-blocking socket, turning on receive timestamps and (for wildcard
    /// addresses) packet info with [`enable_arrival_info`].
    pub fn new(socket: std::net::UdpSocket) -> io::Result<Self> {
        enable_arrival_info(&socket)?;
        Ok(Self { socket: UdpSocket::from_std(socket)? })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Connects to one peer so only its datagrams are received (client use).
    pub async fn connect(&self, peer: SocketAddr) -> io::Result<()> {
        self.socket.connect(peer).await
    }

    /// Receives one datagram into `buf`, with its receive time and destination.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let fd = self.socket.as_raw_fd();
        self.socket.async_io(Interest::READABLE, || mmsg::receive_one(fd, buf)).await
    }

    /// Sends `packet` to `peer`. `stamp` runs immediately before each send attempt, so a transmit
    /// timestamp it writes is as late as it can be.
    pub async fn send_stamped(
        &self,
        packet: &mut [u8],
        peer: SocketAddr,
        clock: &dyn Clock,
        stamp: impl Fn(&mut [u8], NtpTimestamp),
    ) -> io::Result<()> {
        let fd = self.socket.as_raw_fd();
        self.socket
            .async_io(Interest::WRITABLE, || {
                stamp(packet, clock.now());
                mmsg::send_one(fd, packet, peer)
            })
            .await
    }
}

/// Turns on kernel receive timestamps and, for a wildcard address (the returned `true`), packet
/// info. An option the kernel refuses is left off: nanosecond timestamps (SO_TIMESTAMPNS) fall
/// back to microsecond ones (SO_TIMESTAMP, all qemu-user implements), and without either the
/// receive time is read from the clock after receipt.
pub fn enable_arrival_info(socket: &std::net::UdpSocket) -> io::Result<bool> {
    let local = socket.local_addr()?;
    if setsockopt(socket, sockopt::ReceiveTimestampns, &true).is_err() {
        if setsockopt(socket, sockopt::ReceiveTimestamp, &true).is_ok() {
            tracing::info!(%local, "kernel receive timestamps in microseconds (SO_TIMESTAMPNS refused)");
        } else {
            tracing::warn!(%local, "kernel receive timestamps unavailable; using the clock after receipt");
        }
    }
    let wildcard = local.ip().is_unspecified();
    if wildcard {
        let pktinfo = match local {
            SocketAddr::V4(_) => setsockopt(socket, sockopt::Ipv4PacketInfo, &true),
            SocketAddr::V6(_) => setsockopt(socket, sockopt::Ipv6RecvPacketInfo, &true),
        };
        if let Err(error) = pktinfo {
            tracing::warn!(%local, %error, "cannot learn request destinations; replies use the kernel's choice of source address");
        }
    }
    Ok(wildcard)
}
