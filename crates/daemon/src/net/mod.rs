//! UDP sockets for NTP: kernel receive timestamps, the local address a request arrived on, and
//! sending from that address; batched receiving and sending for the serving threads.

mod bind;
pub mod mmsg;
mod udp;

pub use bind::{BindError, RECEIVE_BUFFER, bind_server_sockets, set_option};
pub use udp::{ArrivedOn, Received, TimestampedSocket, enable_arrival_info};
