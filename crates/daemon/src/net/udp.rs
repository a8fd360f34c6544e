//! A tokio UDP socket read with recvmsg(2) so each datagram comes with its kernel receive timestamp
//! (SO_TIMESTAMPNS) and, on wildcard sockets, the local address it was sent to (IP_PKTINFO /
//! IPV6_PKTINFO); replies are sent from that same address.

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, SockaddrIn6, SockaddrStorage,
    recvmsg, sendmsg, setsockopt, sockopt,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use syhub_ntp_clock::{Clock, SystemClock};
use syhub_ntp_proto::NtpTimestamp;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Room for the control messages we ask for (a timespec and a pktinfo struct), aligned as
/// `cmsghdr` requires: strict-alignment ARM fails on a byte-aligned buffer.
#[repr(C, align(8))]
struct ControlBuffer([u8; 128]);

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
    /// Bound to a wildcard address, so replies must name their source address.
    wildcard: bool,
}

impl TimestampedSocket {
    /// Wraps a bound, non-blocking socket, turning on receive timestamps and (for wildcard
    /// addresses) packet info with [`enable_arrival_info`].
    pub fn new(socket: std::net::UdpSocket) -> io::Result<Self> {
        let wildcard = enable_arrival_info(&socket)?;
        Ok(Self { socket: UdpSocket::from_std(socket)?, wildcard })
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
        self.socket.async_io(Interest::READABLE, || self.try_recv(buf)).await
    }

    fn try_recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let mut control = ControlBuffer([0; 128]);
        let mut iov = [IoSliceMut::new(buf)];
        let message = recvmsg::<SockaddrStorage>(
            self.socket.as_raw_fd(),
            &mut iov,
            Some(&mut control.0),
            MsgFlags::empty(),
        )
        .map_err(io::Error::from)?;
        let peer = message.address.as_ref().and_then(socket_addr_of).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "datagram without a source address")
        })?;
        let mut received = Received {
            len: message.bytes,
            peer,
            kernel_time: None,
            arrived_on: None,
            truncated: message.flags.contains(MsgFlags::MSG_TRUNC),
        };
        // A truncated control buffer loses the timestamp, not the datagram.
        if let Ok(control_messages) = message.cmsgs() {
            for control_message in control_messages {
                match control_message {
                    ControlMessageOwned::ScmTimestampns(ts) => {
                        received.kernel_time =
                            Some(SystemClock::timestamp_from_timespec(ts.tv_sec(), ts.tv_nsec()));
                    }
                    ControlMessageOwned::Ipv4PacketInfo(info) => {
                        received.arrived_on = Some(ArrivedOn::V4 {
                            spec_dst: Ipv4Addr::from(u32::from_be(info.ipi_spec_dst.s_addr)),
                            ifindex: info.ipi_ifindex,
                        });
                    }
                    ControlMessageOwned::Ipv6PacketInfo(info) => {
                        received.arrived_on = Some(ArrivedOn::V6 {
                            address: Ipv6Addr::from(info.ipi6_addr.s6_addr),
                            ifindex: info.ipi6_ifindex,
                        });
                    }
                    _ => {}
                }
            }
        }
        Ok(received)
    }

    /// Sends `packet[..len]` to `peer` from the address the request arrived on. `stamp` runs
    /// immediately before each send attempt, so a transmit timestamp it writes is as late as it can be.
    pub async fn send_stamped(
        &self,
        packet: &mut [u8],
        peer: SocketAddr,
        arrived_on: Option<ArrivedOn>,
        clock: &dyn Clock,
        stamp: impl Fn(&mut [u8], NtpTimestamp),
    ) -> io::Result<()> {
        let source = if self.wildcard { arrived_on } else { None };
        self.socket
            .async_io(Interest::WRITABLE, || {
                stamp(packet, clock.now());
                self.try_send(packet, peer, source)
            })
            .await
    }

    /// Like [`send_stamped`](Self::send_stamped) but never waits: when the socket's send buffer
    /// is full (replies to unresolved neighbours hold it until resolution fails, seconds later)
    /// this fails at once with `WouldBlock` and the reply is lost, rather than the serving loop
    /// stopping to read. A server must keep reading; its clients retry.
    pub fn send_stamped_now(
        &self,
        packet: &mut [u8],
        peer: SocketAddr,
        arrived_on: Option<ArrivedOn>,
        clock: &dyn Clock,
        stamp: impl FnOnce(&mut [u8], NtpTimestamp),
    ) -> io::Result<()> {
        let source = if self.wildcard { arrived_on } else { None };
        self.socket.try_io(Interest::WRITABLE, || {
            stamp(packet, clock.now());
            self.try_send(packet, peer, source)
        })
    }

    fn try_send(
        &self,
        packet: &[u8],
        peer: SocketAddr,
        source: Option<ArrivedOn>,
    ) -> io::Result<()> {
        let fd = self.socket.as_raw_fd();
        let iov = [IoSlice::new(packet)];
        let sent = match (peer, source) {
            (SocketAddr::V4(peer), Some(ArrivedOn::V4 { spec_dst, ifindex })) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: ifindex,
                    ipi_spec_dst: libc::in_addr { s_addr: u32::from(spec_dst).to_be() },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                let cmsg = [ControlMessage::Ipv4PacketInfo(&info)];
                sendmsg(fd, &iov, &cmsg, MsgFlags::empty(), Some(&SockaddrIn::from(peer)))
            }
            (SocketAddr::V6(peer), Some(ArrivedOn::V6 { address, ifindex }))
                if !address.is_multicast() =>
            {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr { s6_addr: address.octets() },
                    ipi6_ifindex: ifindex,
                };
                let cmsg = [ControlMessage::Ipv6PacketInfo(&info)];
                sendmsg(fd, &iov, &cmsg, MsgFlags::empty(), Some(&SockaddrIn6::from(peer)))
            }
            (SocketAddr::V4(peer), _) => {
                sendmsg(fd, &iov, &[], MsgFlags::empty(), Some(&SockaddrIn::from(peer)))
            }
            (SocketAddr::V6(peer), _) => {
                sendmsg(fd, &iov, &[], MsgFlags::empty(), Some(&SockaddrIn6::from(peer)))
            }
        };
        sent.map(drop).map_err(io::Error::from)
    }
}

/// Turns on kernel receive timestamps and, for a wildcard address (the returned `true`), packet
/// info. An option the kernel refuses (old kernels, qemu-user) is left off: receive times are then
/// read from the clock after receipt.
pub fn enable_arrival_info(socket: &std::net::UdpSocket) -> io::Result<bool> {
    let local = socket.local_addr()?;
    if setsockopt(socket, sockopt::ReceiveTimestampns, &true).is_err() {
        tracing::warn!(%local, "kernel receive timestamps unavailable; using the clock after receipt");
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

fn socket_addr_of(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::new(IpAddr::V4(v4.ip()), v4.port()));
    }
    let v6 = address.as_sockaddr_in6()?;
    Some(SocketAddr::V6(std::net::SocketAddrV6::new(
        v6.ip(),
        v6.port(),
        v6.flowinfo(),
        v6.scope_id(),
    )))
}
