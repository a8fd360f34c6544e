//! A tokio UDP socket read with recvmsg(2) so each datagram comes with its kernel receive timestamp
//! (SO_TIMESTAMPNS) and, on wildcard sockets, the local address it was sent to (IP_PKTINFO /
//! IPV6_PKTINFO): the sources' sockets. A datagram is described as the serving threads' batches
//! describe theirs (`syhub_ntp_sys::net`), with the receive time in NTP time.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use syhub_ntp_clock::{Clock, SystemClock};
use syhub_ntp_proto::NtpTimestamp;
use syhub_ntp_sys::net::{self as sys_net, Arrival, ArrivedOn, TimestampResolution};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// One received datagram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received {
    pub len: usize,
    pub peer: SocketAddr,
    /// When the kernel received it; `None` when the kernel gave no timestamp.
    pub kernel_time: Option<NtpTimestamp>,
    pub arrived_on: Option<ArrivedOn>,
    /// Longer than the buffer: the tail was cut off.
    pub truncated: bool,
}

impl From<Arrival> for Received {
    #[inline]
    fn from(arrival: Arrival) -> Self {
        Self {
            len: arrival.len,
            peer: arrival.peer,
            kernel_time: arrival.kernel_time.map(SystemClock::timestamp_from_kernel),
            arrived_on: arrival.arrived_on,
            truncated: arrival.truncated,
        }
    }
}

/// A UDP socket with kernel receive timestamps where the kernel offers them.
#[derive(Debug)]
pub(crate) struct TimestampedSocket {
    socket: UdpSocket,
}

impl TimestampedSocket {
    /// Wraps a bound, non-blocking socket, turning on receive timestamps and (for wildcard
    /// addresses) packet info with [`enable_arrival_info`].
    pub(crate) fn new(socket: std::net::UdpSocket) -> io::Result<Self> {
        enable_arrival_info(&socket)?;
        Ok(Self { socket: UdpSocket::from_std(socket)? })
    }

    /// Receives one datagram into `buf`, with its receive time and destination.
    pub(crate) async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let fd = self.socket.as_fd();
        let arrival =
            self.socket.async_io(Interest::READABLE, || sys_net::receive_one(fd, buf)).await?;
        Ok(Received::from(arrival))
    }

    /// Sends `packet` to `peer`. `stamp` runs immediately before each send attempt, so a transmit
    /// timestamp it writes is as late as it can be.
    pub(crate) async fn send_stamped(
        &self,
        packet: &mut [u8],
        peer: SocketAddr,
        clock: &dyn Clock,
        stamp: impl Fn(&mut [u8], NtpTimestamp),
    ) -> io::Result<()> {
        let fd = self.socket.as_fd();
        self.socket
            .async_io(Interest::WRITABLE, || {
                stamp(packet, clock.now());
                sys_net::send_one(fd, packet, peer)
            })
            .await
    }
}

/// Turns on kernel receive timestamps and, for a wildcard address (the returned `true`), packet
/// info. An option the kernel refuses is left off: nanosecond timestamps (SO_TIMESTAMPNS) fall
/// back to microsecond ones (SO_TIMESTAMP, all qemu-user implements), and without either the
/// receive time is read from the clock after receipt.
pub(super) fn enable_arrival_info(socket: &std::net::UdpSocket) -> io::Result<bool> {
    let info = sys_net::enable_arrival_info(socket)?;
    let local = info.local;
    match info.timestamps {
        TimestampResolution::Nanoseconds => {}
        TimestampResolution::Microseconds => {
            tracing::info!(%local, "kernel receive timestamps in microseconds (SO_TIMESTAMPNS refused)");
        }
        TimestampResolution::None => {
            tracing::warn!(%local, "kernel receive timestamps unavailable; using the clock after receipt");
        }
    }
    if let Some(error) = info.packet_info_refused {
        tracing::warn!(%local, %error, "cannot learn request destinations; replies use the kernel's choice of source address");
    }
    Ok(info.wildcard)
}
