//! Time types: NTP's 64-bit timestamp, signed 32.32 duration and 16.16 short format, the
//! monotonic readings timers use, and UTC calendar dates.

mod calendar;
mod duration;
mod monotonic;
mod short;
mod timestamp;

pub use calendar::{civil_date, days_from_civil, next_month_start, utc_date};
pub use duration::NtpDuration;
pub use monotonic::Monotonic;
pub use short::NtpShort;
pub use timestamp::{NtpTimestamp, UNIX_EPOCH_IN_NTP_SECONDS};
