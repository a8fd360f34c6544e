//! NTP time types: the 64-bit timestamp, the signed 32.32 duration and the 16.16 short format.

mod duration;
mod short;
mod timestamp;

pub use duration::NtpDuration;
pub use short::NtpShort;
pub use timestamp::{NtpTimestamp, UNIX_EPOCH_IN_NTP_SECONDS};
