//! The server side of NTP: the system state the server advertises and its answer to one request.

mod answer;
mod system;

pub use answer::{Answer, Ignored, Reply, answer};
pub use system::{FREQUENCY_TOLERANCE, SystemSnapshot};

#[cfg(test)]
mod tests;
