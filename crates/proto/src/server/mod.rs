//! The server side of NTP: the system state the server advertises and its answer to one request.

mod access;
mod addresses;
mod answer;
mod broadcast;
mod clients;
mod devices;
mod keyed_hash;
mod snapshot;

pub use access::{Access, AccessList, Prefix};
pub use addresses::{DEFAULT_EPHEMERAL_PORTS, Destination, HubAddresses, Unanswerable};
pub use answer::{Answer, Ignored, Reply, answer, answer_kiss, answer_nts, answer_with_keys};
pub use broadcast::broadcast_packet;
pub use clients::{
    Admission, BYTES_PER_CLIENT, ClientAddress, ClientIndex, ClientLog, ClientSummary, ERROR_TREND,
    RateLimit, RequestSeen,
};
pub use devices::{DevicePolicy, DeviceState, TransmitReading, read_transmit};
pub use snapshot::{FREQUENCY_TOLERANCE, SystemSnapshot};

#[cfg(test)]
mod tests;
