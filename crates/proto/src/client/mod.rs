//! The client side of one NTP exchange: the request to send and the checks and arithmetic that turn
//! the answer into an offset and delay.

mod exchange;

pub use exchange::{
    ClientRequest, RequestPacket, ResponseError, Sample, evaluate_response, unusable_reason,
};

#[cfg(test)]
mod tests;
