//! UDP for NTP: batches of datagrams received with recvmmsg(2) and sent with sendmmsg(2)
//! (`batch`), one datagram at a time with the same description of its arrival (`datagram`), and
//! the socket options that make the kernel stamp and address each one (`options`).

mod batch;
mod datagram;
pub mod options;

pub use batch::{ReceiveBatch, SLOT_LEN, SendBatch};
pub use datagram::{
    Arrival, ArrivedOn, KernelTime, receive_full_length, receive_one, send_one, wake_receivers,
};
pub use options::{ArrivalInfo, TimestampResolution, enable_arrival_info};
