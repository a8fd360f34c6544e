//! Batched datagram I/O for the serving path: recvmmsg(2) fills a batch of preallocated slots, each
//! with its sender, kernel receive timestamp and destination address; sendmmsg(2) sends a run of
//! replies, each from the address its request arrived on. Nothing is allocated after creation.

use super::datagram::{
    Arrival, ArrivedOn, ControlBuffer, read_control_messages, socket_addr_of, write_control,
    write_socket_addr,
};
use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Largest datagram read; longer ones are flagged truncated. Room for NTS requests.
pub const SLOT_LEN: usize = 2048;

/// The bytes of a batch's datagrams, in anonymous pages mapped for it: the kernel provides them
/// zeroed on first touch, so an idle serving thread costs no memory for slots it never used (a
/// heap allocation may be cleared, and so touched, in full).
struct Slots {
    base: *mut u8,
    len: usize,
}

impl Slots {
    fn new(count: usize) -> Self {
        let len = count * SLOT_LEN;
        // SAFETY: a private anonymous mapping of `len` bytes, owned by this value and unmapped on
        // drop; no other mapping is touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        // Out of address space: the process cannot serve; the error says why.
        assert!(
            base != libc::MAP_FAILED,
            "cannot map {len} bytes for datagrams: {}",
            io::Error::last_os_error()
        );
        Self { base: base.cast(), len }
    }

    #[inline]
    fn slot(&self, index: usize) -> &[u8; SLOT_LEN] {
        assert!((index + 1) * SLOT_LEN <= self.len);
        // SAFETY: in bounds (asserted) of the mapping this value owns, which outlives the borrow;
        // a shared borrow of `self` excludes writers.
        unsafe { &*self.base.add(index * SLOT_LEN).cast::<[u8; SLOT_LEN]>() }
    }

    #[inline]
    fn slot_mut(&mut self, index: usize) -> &mut [u8; SLOT_LEN] {
        assert!((index + 1) * SLOT_LEN <= self.len);
        // SAFETY: as above, with the exclusive borrow of `self` making this the only reference.
        unsafe { &mut *self.base.add(index * SLOT_LEN).cast::<[u8; SLOT_LEN]>() }
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, to which no reference outlives `self`.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// Up to `capacity` datagrams received by one recvmmsg call.
pub struct ReceiveBatch {
    headers: Vec<libc::mmsghdr>,
    iovecs: Vec<libc::iovec>,
    names: Vec<libc::sockaddr_storage>,
    controls: Vec<ControlBuffer>,
    buffers: Slots,
    filled: usize,
    /// Entries whose lengths the kernel overwrote, to restore before the next receive.
    dirty: usize,
}

// SAFETY: the raw pointers inside (in the headers and the slots) point only into the batch's own
// allocations, which move with it; nothing else holds them.
unsafe impl Send for ReceiveBatch {}
// SAFETY: as for `ReceiveBatch`.
unsafe impl Send for SendBatch {}

impl ReceiveBatch {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let mut batch = Self {
            // SAFETY: all-zero is a valid value of these plain C structs (null pointers, zero lengths).
            headers: vec![unsafe { zeroed() }; capacity],
            // SAFETY: as above.
            iovecs: vec![unsafe { zeroed() }; capacity],
            // SAFETY: as above.
            names: vec![unsafe { zeroed() }; capacity],
            controls: vec![ControlBuffer::EMPTY; capacity],
            buffers: Slots::new(capacity),
            filled: 0,
            dirty: 0,
        };
        // The pointers stay valid for the batch's life: the vectors are never resized and their
        // heap storage does not move when the batch does.
        for i in 0..capacity {
            batch.iovecs[i] = libc::iovec {
                iov_base: batch.buffers.slot_mut(i).as_mut_ptr().cast(),
                iov_len: SLOT_LEN,
            };
            let message = &mut batch.headers[i].msg_hdr;
            message.msg_name = (&raw mut batch.names[i]).cast();
            message.msg_iov = &raw mut batch.iovecs[i];
            message.msg_iovlen = 1;
            message.msg_control = batch.controls[i].0.as_mut_ptr().cast();
            batch.reset(i);
        }
        batch
    }

    /// Restores the lengths the kernel overwrites when it fills entry `i`.
    #[inline]
    fn reset(&mut self, i: usize) {
        let header = &mut self.headers[i];
        header.msg_len = 0;
        header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        header.msg_hdr.msg_controllen = size_of::<ControlBuffer>() as _;
        header.msg_hdr.msg_flags = 0;
    }

    /// Waits for at least one datagram on `fd` (if it is blocking), then takes whatever else is
    /// already queued, up to the batch's capacity. Returns how many were received.
    pub fn receive(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        // Only the entries the last call filled were changed by the kernel.
        for i in 0..self.dirty {
            self.reset(i);
        }
        self.filled = 0;
        // SAFETY: every header points into this batch's own vectors and slots, which outlive the
        // call and are not resized; the lengths given are those of the buffers pointed to; `fd` is
        // open for the borrow.
        // The system call itself: musl's wrapper first clears padding in every header, which for a
        // batch of 32 costs more than the rest of a request's handling.
        let count = unsafe {
            libc::syscall(
                libc::SYS_recvmmsg,
                fd.as_raw_fd(),
                self.headers.as_mut_ptr(),
                self.headers.len() as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut::<libc::timespec>(),
            )
        };
        if count < 0 {
            // Whatever the kernel wrote before failing is restored next time.
            self.dirty = self.headers.len();
            return Err(io::Error::last_os_error());
        }
        self.filled = count as usize;
        self.dirty = self.filled;
        Ok(self.filled)
    }

    /// The bytes of the `index`th datagram of the last [`receive`](Self::receive) (empty past
    /// the last).
    #[inline]
    pub fn bytes(&self, index: usize) -> &[u8] {
        if index >= self.filled {
            return &[];
        }
        let len = (self.headers[index].msg_len as usize).min(SLOT_LEN);
        &self.buffers.slot(index)[..len]
    }

    /// The `index`th datagram of the last [`receive`](Self::receive): how it arrived, and its
    /// bytes. `None` for an entry without a sender (what a socket shut down for reading returns).
    #[inline]
    pub fn datagram(&self, index: usize) -> Option<(Arrival, &[u8])> {
        if index >= self.filled {
            return None;
        }
        let message = &self.headers[index].msg_hdr;
        let peer = socket_addr_of(&self.names[index], message.msg_namelen)?;
        let bytes = self.bytes(index);
        let mut arrival = Arrival {
            len: bytes.len(),
            peer,
            kernel_time: None,
            arrived_on: None,
            truncated: message.msg_flags & libc::MSG_TRUNC != 0,
        };
        // The kernel filled this entry's control buffer, which the batch owns, in `receive`.
        read_control_messages(message, &mut arrival);
        Some((arrival, bytes))
    }
}

/// Replies to send with sendmmsg: each slot holds a datagram, its destination and, on a wildcard
/// socket, the source address to send it from.
pub struct SendBatch {
    headers: Vec<libc::mmsghdr>,
    iovecs: Vec<libc::iovec>,
    names: Vec<libc::sockaddr_storage>,
    name_lens: Vec<libc::socklen_t>,
    controls: Vec<ControlBuffer>,
    control_lens: Vec<usize>,
    buffers: Slots,
    lens: Vec<usize>,
    /// The socket is bound to a wildcard address, so replies must name their source address.
    wildcard: bool,
}

impl SendBatch {
    pub fn new(capacity: usize, wildcard: bool) -> Self {
        let capacity = capacity.max(1);
        Self {
            // SAFETY: all-zero is a valid value of these plain C structs.
            headers: vec![unsafe { zeroed() }; capacity],
            // SAFETY: as above.
            iovecs: vec![unsafe { zeroed() }; capacity],
            // SAFETY: as above.
            names: vec![unsafe { zeroed() }; capacity],
            name_lens: vec![0; capacity],
            controls: vec![ControlBuffer::EMPTY; capacity],
            control_lens: vec![0; capacity],
            buffers: Slots::new(capacity),
            lens: vec![0; capacity],
            wildcard,
        }
    }

    #[inline]
    pub fn capacity(&self) -> usize {
        self.lens.len()
    }

    /// The buffer of slot `index`, to write a reply into.
    #[inline]
    pub fn buffer(&mut self, index: usize) -> &mut [u8; SLOT_LEN] {
        self.buffers.slot_mut(index)
    }

    /// Slot `index` holds `len` bytes for `peer`, to leave from the address the request arrived on.
    #[inline]
    pub fn address(
        &mut self,
        index: usize,
        len: usize,
        peer: SocketAddr,
        arrived_on: Option<ArrivedOn>,
    ) {
        self.lens[index] = len.min(SLOT_LEN);
        self.name_lens[index] = write_socket_addr(&mut self.names[index], peer);
        let control = &mut self.controls[index];
        self.control_lens[index] = match (self.wildcard, peer, arrived_on) {
            (true, SocketAddr::V4(_), Some(ArrivedOn::V4 { spec_dst, ifindex, .. })) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: ifindex,
                    ipi_spec_dst: libc::in_addr { s_addr: u32::from(spec_dst).to_be() },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                write_control(control, libc::IPPROTO_IP, libc::IP_PKTINFO, &info)
            }
            // A request to a multicast group is answered from the kernel's choice of address.
            (true, SocketAddr::V6(_), Some(ArrivedOn::V6 { address, ifindex }))
                if !address.is_multicast() =>
            {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr { s6_addr: address.octets() },
                    ipi6_ifindex: ifindex,
                };
                write_control(control, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &info)
            }
            _ => 0,
        };
    }

    /// The bytes of slot `index` as addressed.
    #[inline]
    pub fn datagram(&mut self, index: usize) -> &mut [u8] {
        let len = self.lens[index];
        &mut self.buffers.slot_mut(index)[..len]
    }

    /// Sends the slots in `range` on `fd` without waiting. Returns how many left, counting from
    /// the start of the range, and the error of the first one that could not be sent; fewer than
    /// all without an error means the caller should send the rest again.
    pub fn send(&mut self, fd: BorrowedFd<'_>, range: Range<usize>) -> (usize, Option<io::Error>) {
        let range = range.start..range.end.min(self.headers.len());
        if range.is_empty() {
            return (0, None);
        }
        for i in range.clone() {
            self.iovecs[i] = libc::iovec {
                iov_base: self.buffers.slot_mut(i).as_mut_ptr().cast(),
                iov_len: self.lens[i],
            };
            let header = &mut self.headers[i];
            header.msg_len = 0;
            let message = &mut header.msg_hdr;
            message.msg_name = (&raw mut self.names[i]).cast();
            message.msg_namelen = self.name_lens[i];
            message.msg_iov = &raw mut self.iovecs[i];
            message.msg_iovlen = 1;
            message.msg_control = if self.control_lens[i] == 0 {
                std::ptr::null_mut()
            } else {
                self.controls[i].0.as_mut_ptr().cast()
            };
            message.msg_controllen = self.control_lens[i] as _;
            message.msg_flags = 0;
        }
        // SAFETY: the headers in `range` point into this batch's own vectors and slots, which
        // outlive the call; every length given is that of the data written there; `fd` is open
        // for the borrow.
        // The system call itself: musl's wrapper sends message by message on 64-bit machines.
        let sent = unsafe {
            libc::syscall(
                libc::SYS_sendmmsg,
                fd.as_raw_fd(),
                self.headers[range.start..].as_mut_ptr(),
                range.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if sent < 0 {
            return (0, Some(io::Error::last_os_error()));
        }
        let sent = sent as usize;
        if sent < range.len() {
            // sendmmsg stops at the first failure and reports only what went; sending the one that
            // failed by itself tells why (or, if the trouble has passed, sends it).
            let (retried, error) = self.send(fd, range.start + sent..range.start + sent + 1);
            return match error {
                Some(error) => (sent, Some(error)),
                None => (sent + retried, None),
            };
        }
        (sent, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::options;
    use std::net::{Ipv4Addr, UdpSocket};
    use std::os::fd::AsFd;

    fn pair() -> (UdpSocket, UdpSocket) {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Kernel timestamps as the daemon asks for them (microseconds where, as under qemu-user,
        // nanoseconds are refused), and the destination even on a specific address.
        options::enable_arrival_info(&server).unwrap();
        options::set_packet_info_v4(server.as_fd(), true).unwrap();
        (server, client)
    }

    fn unix_nanos(time: crate::net::KernelTime) -> i128 {
        time.seconds as i128 * 1_000_000_000 + time.nanos as i128
    }

    fn now_nanos() -> i128 {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        since.as_nanos() as i128
    }

    #[test]
    fn a_batch_takes_every_queued_datagram_with_sender_timestamp_and_destination() {
        let (server, client) = pair();
        for i in 0..5u8 {
            client.send_to(&[i; 48], server.local_addr().unwrap()).unwrap();
        }
        let mut batch = ReceiveBatch::new(8);
        let mut seen = 0;
        while seen < 5 {
            let count = batch.receive(server.as_fd()).unwrap();
            for i in 0..count {
                let (arrival, bytes) = batch.datagram(i).unwrap();
                assert_eq!(bytes, &[seen as u8; 48]);
                assert_eq!(arrival.peer, client.local_addr().unwrap());
                assert!(arrival.kernel_time.is_some());
                assert!(matches!(
                    arrival.arrived_on,
                    Some(ArrivedOn::V4 { spec_dst, .. }) if spec_dst == Ipv4Addr::LOCALHOST
                ));
                assert!(!arrival.truncated);
                seen += 1;
            }
        }
        assert!(batch.datagram(5).is_none());
        assert!(batch.bytes(5).is_empty());
    }

    #[test]
    fn microsecond_kernel_timestamps_are_read_as_well() {
        // What a socket gets where SO_TIMESTAMPNS is refused (qemu-user): SO_TIMESTAMP alone.
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        options::set_timestamps_us(server.as_fd(), true).unwrap();
        let before = now_nanos();
        client.send_to(&[1; 48], server.local_addr().unwrap()).unwrap();
        let mut batch = ReceiveBatch::new(1);
        assert_eq!(batch.receive(server.as_fd()).unwrap(), 1);
        let after = now_nanos();
        let stamp =
            unix_nanos(batch.datagram(0).unwrap().0.kernel_time.expect("a kernel timestamp"));
        // Microsecond resolution: the stamp may read up to 1 µs before `before`.
        assert!(stamp >= before - 1_000 && stamp <= after, "{stamp} not in {before}..{after}");
        assert_eq!(stamp % 1_000, 0, "microseconds, not nanoseconds");
    }

    #[test]
    fn an_oversized_datagram_is_flagged_truncated() {
        let (server, client) = pair();
        client.send_to(&[7; SLOT_LEN + 10], server.local_addr().unwrap()).unwrap();
        let mut batch = ReceiveBatch::new(2);
        assert_eq!(batch.receive(server.as_fd()).unwrap(), 1);
        let (arrival, bytes) = batch.datagram(0).unwrap();
        assert!(arrival.truncated);
        assert_eq!(bytes.len(), SLOT_LEN);
    }

    #[test]
    fn a_send_batch_reaches_each_destination_from_the_arrival_address() {
        let server = UdpSocket::bind("0.0.0.0:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let clients: Vec<UdpSocket> =
            (0..3).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
        let mut batch = SendBatch::new(4, true);
        assert_eq!(batch.capacity(), 4);
        for (i, client) in clients.iter().enumerate() {
            batch.buffer(i)[..3].copy_from_slice(&[i as u8; 3]);
            let arrived_on = Some(ArrivedOn::V4 {
                spec_dst: Ipv4Addr::LOCALHOST,
                destination: Ipv4Addr::LOCALHOST,
                ifindex: 0,
            });
            batch.address(i, 3, client.local_addr().unwrap(), arrived_on);
        }
        assert_eq!(batch.datagram(1), &[1, 1, 1]);
        assert_eq!(batch.send(server.as_fd(), 0..3).0, 3);
        for (i, client) in clients.iter().enumerate() {
            let mut buf = [0u8; 16];
            let (len, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..len], &[i as u8; 3]);
            assert_eq!(from, SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        }
    }

    #[test]
    fn a_failed_send_reports_how_many_left_and_why() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = SendBatch::new(3, false);
        batch.address(0, 1, client.local_addr().unwrap(), None);
        // Port 0 cannot be sent to: the second datagram fails, the first has left.
        batch.address(1, 1, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), None);
        batch.address(2, 1, client.local_addr().unwrap(), None);
        let (sent, error) = batch.send(server.as_fd(), 0..3);
        assert_eq!(sent, 1);
        assert!(error.is_some());
    }

    #[test]
    fn shutting_down_wakes_a_blocked_receiver() {
        let (server, _client) = pair();
        let server = std::sync::Arc::new(server);
        let waiting = server.clone();
        let thread = std::thread::spawn(move || {
            let mut batch = ReceiveBatch::new(4);
            let count = batch.receive(waiting.as_fd()).unwrap();
            (0..count).filter_map(|i| batch.datagram(i)).count()
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        crate::net::wake_receivers(server.as_fd());
        assert_eq!(thread.join().unwrap(), 0);
    }
}
