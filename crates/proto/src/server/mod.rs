//! The server side of NTP: the system state the server advertises and its answer to one request.

mod answer;
mod clients;
mod system;

pub use answer::{Answer, Ignored, Reply, answer};
pub use clients::{ClientLog, ClientSummary};
pub use system::{FREQUENCY_TOLERANCE, SystemSnapshot};

#[cfg(test)]
mod tests;
