//! The UDP socket options that socket2 does not offer, each with its value type fixed: kernel
//! receive timestamps, packet info (the destination of each datagram), don't-fragment, buffers
//! beyond the system's limit, and the interface multicast leaves by.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// setsockopt(2) with an `int` value.
fn set_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    set(fd, level, name, &value)
}

/// setsockopt(2) with a value of a plain C type (no padding, so every byte passed is initialised).
fn set<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a live, initialised T and its exact size is passed; the kernel only reads
    // it. `fd` is open for the borrow.
    let result = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if result == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// SO_TIMESTAMPNS: a nanosecond receive timestamp with each datagram.
pub fn set_timestamps_ns(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, on.into())
}

/// SO_TIMESTAMP: a microsecond receive timestamp with each datagram (all qemu-user implements).
pub fn set_timestamps_us(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMP, on.into())
}

/// IP_PKTINFO: the local address and interface of each IPv4 datagram.
pub fn set_packet_info_v4(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, on.into())
}

/// IPV6_RECVPKTINFO: the local address and interface of each IPv6 datagram.
pub fn set_packet_info_v6(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, on.into())
}

/// IP_MTU_DISCOVER = IP_PMTUDISC_DO: IPv4 datagrams leave with don't-fragment set (and, for
/// datagrams far below the MTU, with IP ID 0).
pub fn set_dont_fragment_v4(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_int(fd, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, libc::IP_PMTUDISC_DO)
}

/// SO_RCVBUFFORCE: a receive buffer of `bytes` (which the kernel doubles), beyond the system's
/// limit; needs CAP_NET_ADMIN.
pub fn set_receive_buffer_force(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, clamp_int(bytes))
}

/// SO_SNDBUFFORCE: as [`set_receive_buffer_force`], for the send buffer.
pub fn set_send_buffer_force(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    set_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, clamp_int(bytes))
}

fn clamp_int(bytes: usize) -> libc::c_int {
    libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX)
}

/// IP_MULTICAST_IF by interface index (`struct ip_mreqn`): the interface IPv4 multicast leaves
/// by; 0 lets the routing table decide.
pub fn set_multicast_interface_v4(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    let request = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: ifindex as libc::c_int,
    };
    set(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &request)
}

/// How precise the kernel's receive timestamps on a socket are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampResolution {
    Nanoseconds,
    /// SO_TIMESTAMPNS refused (qemu-user), SO_TIMESTAMP taken.
    Microseconds,
    /// Both refused: the receive time must be read from the clock after receipt.
    None,
}

/// What [`enable_arrival_info`] could turn on.
#[derive(Debug)]
pub struct ArrivalInfo {
    pub local: SocketAddr,
    pub timestamps: TimestampResolution,
    /// Bound to a wildcard address: packet info was asked for, and replies must name their source.
    pub wildcard: bool,
    /// Why the kernel refused packet info on a wildcard socket (replies then leave from the
    /// kernel's choice of source address).
    pub packet_info_refused: Option<io::Error>,
}

/// Turns on kernel receive timestamps (nanoseconds, else microseconds) and, for a wildcard
/// address, packet info. An option the kernel refuses is left off and reported.
pub fn enable_arrival_info(socket: &UdpSocket) -> io::Result<ArrivalInfo> {
    let local = socket.local_addr()?;
    let fd = socket.as_fd();
    let timestamps = if set_timestamps_ns(fd, true).is_ok() {
        TimestampResolution::Nanoseconds
    } else if set_timestamps_us(fd, true).is_ok() {
        TimestampResolution::Microseconds
    } else {
        TimestampResolution::None
    };
    let wildcard = local.ip().is_unspecified();
    let packet_info_refused = if wildcard {
        match local {
            SocketAddr::V4(_) => set_packet_info_v4(fd, true),
            SocketAddr::V6(_) => set_packet_info_v6(fd, true),
        }
        .err()
    } else {
        None
    };
    Ok(ArrivalInfo { local, timestamps, wildcard, packet_info_refused })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// getsockopt(2) of an `int` option, to check what was set.
    fn get_int(socket: &UdpSocket, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        let mut value: libc::c_int = -1;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` and `len` are live and describe each other.
        let result = unsafe {
            libc::getsockopt(socket.as_raw_fd(), level, name, (&raw mut value).cast(), &mut len)
        };
        assert_eq!(result, 0, "{}", io::Error::last_os_error());
        value
    }

    #[test]
    fn options_are_set_as_asked() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = socket.as_fd();
        set_timestamps_us(fd, true).unwrap();
        assert_eq!(get_int(&socket, libc::SOL_SOCKET, libc::SO_TIMESTAMP), 1);
        set_packet_info_v4(fd, true).unwrap();
        assert_eq!(get_int(&socket, libc::IPPROTO_IP, libc::IP_PKTINFO), 1);
        set_packet_info_v4(fd, false).unwrap();
        assert_eq!(get_int(&socket, libc::IPPROTO_IP, libc::IP_PKTINFO), 0);
        set_dont_fragment_v4(fd).unwrap();
        assert_eq!(get_int(&socket, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER), libc::IP_PMTUDISC_DO);
        // qemu-user, which runs these tests for the Pi, does not pass IP_MULTICAST_IF on.
        if let Err(error) = set_multicast_interface_v4(fd, 0) {
            assert_eq!(error.raw_os_error(), Some(libc::ENOPROTOOPT), "{error}");
        }
    }

    #[test]
    fn a_wildcard_socket_gets_timestamps_and_packet_info() {
        let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
        let info = enable_arrival_info(&socket).unwrap();
        assert!(info.wildcard);
        assert!(info.packet_info_refused.is_none());
        assert_ne!(info.timestamps, TimestampResolution::None);
        assert_eq!(get_int(&socket, libc::IPPROTO_IP, libc::IP_PKTINFO), 1);
        let specific = UdpSocket::bind("127.0.0.1:0").unwrap();
        let info = enable_arrival_info(&specific).unwrap();
        assert!(!info.wildcard);
        assert_eq!(get_int(&specific, libc::IPPROTO_IP, libc::IP_PKTINFO), 0);
    }

    #[test]
    fn ipv6_packet_info_is_asked_for_on_an_ipv6_wildcard() {
        // Hosts without IPv6 cannot bind [::]; nothing to check there.
        let Ok(socket) = UdpSocket::bind("[::]:0") else { return };
        let info = enable_arrival_info(&socket).unwrap();
        assert!(info.wildcard && info.packet_info_refused.is_none());
        assert_eq!(get_int(&socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO), 1);
    }
}
