//! UDP sockets for NTP: kernel receive timestamps, the local address a request arrived on, and
//! sending from that address.

mod bind;
mod udp;

pub use bind::{BindError, bind_server_socket};
pub use udp::{ArrivedOn, Received, TimestampedSocket};
