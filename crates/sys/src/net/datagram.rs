//! One datagram at a time, and what the kernel says about each: recvmsg(2) with its receive
//! timestamp (SO_TIMESTAMPNS, or SO_TIMESTAMP in microseconds) and destination (IP_PKTINFO /
//! IPV6_PKTINFO) read from the control messages, sendto(2), and the conversions between socket
//! addresses and their C structs that the batches share.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

/// A kernel timestamp as the kernel gave it: seconds and nanoseconds since the Unix epoch.
///
/// On 32-bit ARM `time_t` is 32 bits and the kernel truncates seconds after January 2038;
/// `seconds` then holds the truncated value, sign-extended (NTP time is modulo 2^32 seconds, so
/// it still converts to the right NTP timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelTime {
    pub seconds: i64,
    /// 0 to 999 999 999.
    pub nanos: u32,
}

impl KernelTime {
    /// From a `timespec`'s fields, whatever their width; nanoseconds out of range are clamped.
    #[inline]
    fn new(seconds: i64, nanos: i64) -> Self {
        Self { seconds, nanos: nanos.clamp(0, 999_999_999) as u32 }
    }
}

/// The local address a datagram arrived on, to send the reply from, and where it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrivedOn {
    /// `spec_dst` is the local address the kernel would answer from (the interface's address even
    /// for a broadcast request); `destination` is the header's destination (`ipi_addr`: the same
    /// as `spec_dst` for a unicast datagram, a broadcast address or group otherwise).
    V4 { spec_dst: Ipv4Addr, destination: Ipv4Addr, ifindex: i32 },
    /// `address` is the header's destination: one of ours, or a multicast group.
    V6 { address: Ipv6Addr, ifindex: u32 },
}

/// How one datagram arrived: its length, sender, kernel receive time and destination.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub len: usize,
    pub peer: SocketAddr,
    /// When the kernel received it; `None` when the kernel gave no timestamp.
    pub kernel_time: Option<KernelTime>,
    pub arrived_on: Option<ArrivedOn>,
    /// Longer than the buffer: the tail was cut off.
    pub truncated: bool,
}

/// Room for the control messages of one datagram (a timespec and a pktinfo struct), aligned as
/// `cmsghdr` requires: strict-alignment ARM faults on a byte-aligned buffer.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub(crate) struct ControlBuffer(pub(crate) [u8; 128]);

impl ControlBuffer {
    pub(crate) const EMPTY: Self = Self([0; 128]);
}

/// Reads the receive timestamp and packet info the kernel attached to `message` into `arrival`.
///
/// `message` must be one the kernel has just filled: its `msg_control` points at a live buffer
/// holding `msg_controllen` bytes of control messages (or is null with a zero length).
#[inline]
pub(crate) fn read_control_messages(message: &libc::msghdr, arrival: &mut Arrival) {
    // SAFETY: the kernel wrote `msg_controllen` bytes of well-formed control messages into the
    // buffer `msg_control` points to, which the caller keeps alive; CMSG_FIRSTHDR/CMSG_NXTHDR stay
    // within that length, and each payload is read unaligned, only when it is at least as long
    // as the type read.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(message);
        while !cmsg.is_null() {
            let level = (*cmsg).cmsg_level;
            let kind = (*cmsg).cmsg_type;
            let data = libc::CMSG_DATA(cmsg);
            let payload = ((*cmsg).cmsg_len as usize).saturating_sub(data as usize - cmsg as usize);
            match (level, kind) {
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS)
                    if payload >= size_of::<libc::timespec>() =>
                {
                    let ts = std::ptr::read_unaligned(data.cast::<libc::timespec>());
                    // `time_t` and `c_long` are 32 bits on 32-bit ARM, 64 elsewhere.
                    #[allow(clippy::useless_conversion)]
                    let time = KernelTime::new(i64::from(ts.tv_sec), i64::from(ts.tv_nsec));
                    arrival.kernel_time = Some(time);
                }
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMP)
                    if payload >= size_of::<libc::timeval>() =>
                {
                    let tv = std::ptr::read_unaligned(data.cast::<libc::timeval>());
                    #[allow(clippy::useless_conversion)]
                    let time = KernelTime::new(i64::from(tv.tv_sec), i64::from(tv.tv_usec) * 1000);
                    arrival.kernel_time = Some(time);
                }
                (libc::IPPROTO_IP, libc::IP_PKTINFO)
                    if payload >= size_of::<libc::in_pktinfo>() =>
                {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in_pktinfo>());
                    arrival.arrived_on = Some(ArrivedOn::V4 {
                        spec_dst: Ipv4Addr::from(u32::from_be(info.ipi_spec_dst.s_addr)),
                        destination: Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr)),
                        ifindex: info.ipi_ifindex,
                    });
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                    if payload >= size_of::<libc::in6_pktinfo>() =>
                {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    arrival.arrived_on = Some(ArrivedOn::V6 {
                        address: Ipv6Addr::from(info.ipi6_addr.s6_addr),
                        ifindex: info.ipi6_ifindex,
                    });
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(message, cmsg);
        }
    }
}

/// Receives one datagram on `fd` into `buf` with recvmsg(2), described as a batch describes each
/// of its own: for sockets that take one at a time. `buf`'s tail is cut off (and `truncated` set)
/// for a longer datagram.
pub fn receive_one(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Arrival> {
    // SAFETY: all-zero is a valid sockaddr_storage and msghdr (null pointers, zero lengths).
    let mut name: libc::sockaddr_storage = unsafe { zeroed() };
    let mut control = ControlBuffer::EMPTY;
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: as above.
    let mut message: libc::msghdr = unsafe { zeroed() };
    message.msg_name = (&raw mut name).cast();
    message.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    message.msg_iov = &raw mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.0.as_mut_ptr().cast();
    message.msg_controllen = size_of::<ControlBuffer>() as _;
    // SAFETY: the header points at locals (and `buf`) that outlive the call, with their lengths;
    // `fd` is open for the borrow.
    let len = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut message, 0) };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    let peer = socket_addr_of(&name, message.msg_namelen).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, "datagram without a source address")
    })?;
    let mut arrival = Arrival {
        len: (len as usize).min(buf.len()),
        peer,
        kernel_time: None,
        arrived_on: None,
        truncated: message.msg_flags & libc::MSG_TRUNC != 0,
    };
    read_control_messages(&message, &mut arrival);
    Ok(arrival)
}

/// Sends `packet` to `peer` on `fd` with sendto(2), from the kernel's choice of source address.
pub fn send_one(fd: BorrowedFd<'_>, packet: &[u8], peer: SocketAddr) -> io::Result<()> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut name: libc::sockaddr_storage = unsafe { zeroed() };
    let name_len = write_socket_addr(&mut name, peer);
    // SAFETY: `packet` and `name` outlive the call; the lengths given are theirs.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            packet.as_ptr().cast(),
            packet.len(),
            0,
            (&raw const name).cast(),
            name_len,
        )
    };
    if sent < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Receives one datagram on `fd` without waiting (MSG_DONTWAIT) into `buf`, and returns its full
/// length (MSG_TRUNC), which is more than `buf.len()` when its tail was cut off.
pub fn receive_full_length(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length; `fd` is open for the borrow.
    let received = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_TRUNC,
        )
    };
    if received < 0 { Err(io::Error::last_os_error()) } else { Ok(received as usize) }
}

/// Writes one control message of `value` at the start of `buffer`; returns the space it takes.
pub(crate) fn write_control<T: Copy>(
    buffer: &mut ControlBuffer,
    level: i32,
    kind: i32,
    value: &T,
) -> usize {
    // SAFETY: CMSG_SPACE is arithmetic on its argument only.
    let space = unsafe { libc::CMSG_SPACE(size_of::<T>() as u32) } as usize;
    assert!(space <= size_of::<ControlBuffer>());
    // Padding included: the kernel reads all of `space`.
    buffer.0[..space].fill(0);
    // SAFETY: all-zero is a valid msghdr. One describing `buffer` (large enough for one message of
    // `T`, as asserted) lets CMSG_FIRSTHDR find its first header, inside the buffer; the header's
    // fields and the payload are written within `space` bytes, the payload unaligned.
    unsafe {
        let mut message: libc::msghdr = zeroed();
        message.msg_control = buffer.0.as_mut_ptr().cast();
        message.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&message);
        (*cmsg).cmsg_level = level;
        (*cmsg).cmsg_type = kind;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<T>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<T>(), *value);
    }
    space
}

/// Writes `address` into `storage`; returns the length of the sockaddr written.
#[inline]
pub(crate) fn write_socket_addr(
    storage: &mut libc::sockaddr_storage,
    address: SocketAddr,
) -> libc::socklen_t {
    match address {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for every sockaddr type.
            unsafe { std::ptr::write((storage as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: v6.ip().octets() },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: as above.
            unsafe { std::ptr::write((storage as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// The address in `storage` (of which the kernel filled `len` bytes), if it is IPv4 or IPv6.
#[inline]
pub(crate) fn socket_addr_of(
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and it is long enough.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Wakes every thread blocked receiving on `fd` (Linux wakes readers of a UDP socket shut down
/// for reading, though the call itself reports ENOTCONN on an unconnected socket); later receives
/// return at once with nothing.
pub fn wake_receivers(fd: BorrowedFd<'_>) {
    // SAFETY: shutdown(2) on a descriptor open for the borrow; it touches no memory. The result is
    // deliberately unused (see above).
    unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RD) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::options;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn socket_addresses_survive_the_round_trip_through_their_c_structs() {
        for address in [
            "192.0.2.7:123".parse::<SocketAddr>().unwrap(),
            "[2001:db8::1]:4123".parse().unwrap(),
            SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 9, 0x12345, 3)),
        ] {
            // SAFETY: all-zero is a valid sockaddr_storage.
            let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
            let len = write_socket_addr(&mut storage, address);
            assert_eq!(socket_addr_of(&storage, len), Some(address));
            assert_eq!(socket_addr_of(&storage, len - 1), None, "too short for its family");
        }
    }

    #[test]
    fn one_datagram_comes_with_its_sender_timestamp_and_destination() {
        let server = UdpSocket::bind("0.0.0.0:0").unwrap();
        let info = options::enable_arrival_info(&server).unwrap();
        assert!(info.wildcard);
        assert!(info.packet_info_refused.is_none());
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        client.send_to(&[9; 60], (Ipv4Addr::LOCALHOST, port)).unwrap();
        let mut buf = [0u8; 48];
        let arrival = receive_one(server.as_fd(), &mut buf).unwrap();
        assert_eq!(arrival.peer, client.local_addr().unwrap());
        assert_eq!((arrival.len, arrival.truncated), (48, true));
        assert!(
            arrival.kernel_time.is_some_and(|t| t.seconds > 1_700_000_000 && t.nanos < 1e9 as u32)
        );
        assert!(matches!(
            arrival.arrived_on,
            Some(ArrivedOn::V4 { spec_dst, destination, .. })
                if spec_dst == Ipv4Addr::LOCALHOST && destination == Ipv4Addr::LOCALHOST
        ));
        assert_eq!(buf, [9; 48]);
    }

    #[test]
    fn send_one_reaches_the_peer() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        send_one(sender.as_fd(), b"tick", receiver.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 8];
        let (len, from) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..len], from), (&b"tick"[..], sender.local_addr().unwrap()));
    }

    #[test]
    fn the_full_length_of_a_longer_datagram_is_reported() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut buf = [0u8; 16];
        let error = receive_full_length(receiver.as_fd(), &mut buf).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock, "never waits");
        sender.send_to(&[3; 40], receiver.local_addr().unwrap()).unwrap();
        let mut received = receive_full_length(receiver.as_fd(), &mut buf);
        for _ in 0..100 {
            if received.as_ref().is_err_and(|e| e.kind() == io::ErrorKind::WouldBlock) {
                std::thread::sleep(std::time::Duration::from_millis(5));
                received = receive_full_length(receiver.as_fd(), &mut buf);
            }
        }
        assert_eq!(received.unwrap(), 40);
        assert_eq!(buf, [3; 16]);
    }

    #[test]
    fn out_of_range_nanoseconds_are_clamped() {
        assert_eq!(KernelTime::new(5, -1), KernelTime { seconds: 5, nanos: 0 });
        assert_eq!(KernelTime::new(5, 2_000_000_000).nanos, 999_999_999);
    }
}
