//! UDP sockets for NTP: binding the server's sockets, and the sources' sockets read with their
//! kernel receive timestamps. The system calls themselves (recvmsg, the serving threads' batches,
//! socket options) are in `syhub_ntp_sys::net`.

mod bind;
mod udp;

pub(crate) use bind::{BindError, bind_server_sockets};
pub(crate) use udp::{Received, TimestampedSocket};
