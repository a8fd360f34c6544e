//! The machine's ceiling: a UDP echo that does nothing but return each datagram, batched with
//! recvmmsg/sendmmsg exactly as the daemon's serving threads are.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use syhub_ntp_sys::net::{ReceiveBatch, SendBatch};

/// Echoes on `address` until the process is ended.
pub fn serve(address: SocketAddr) -> io::Result<()> {
    let socket = UdpSocket::bind(address)?;
    let mut incoming = ReceiveBatch::new(32);
    let mut outgoing = SendBatch::new(32, false);
    loop {
        let count = match incoming.receive(socket.as_fd()) {
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        let mut pending = 0;
        for index in 0..count {
            let Some((arrival, bytes)) = incoming.datagram(index) else { continue };
            outgoing.buffer(pending)[..bytes.len()].copy_from_slice(bytes);
            outgoing.address(pending, bytes.len(), arrival.peer, None);
            pending += 1;
        }
        let _ = outgoing.send(socket.as_fd(), 0..pending);
    }
}
