//! Time types: NTP's 64-bit timestamp, signed 32.32 duration and 16.16 short format, and the
//! monotonic readings timers use.

mod duration;
mod monotonic;
mod short;
mod timestamp;

pub use duration::NtpDuration;
pub use monotonic::Monotonic;
pub use short::NtpShort;
pub use timestamp::{NtpTimestamp, UNIX_EPOCH_IN_NTP_SECONDS};
