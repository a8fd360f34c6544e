//! The system clock adapter: reading CLOCK_REALTIME through libc, measuring its precision, and
//! finding out whether the kernel lets us steer it. The only crate that touches the clock.

mod permission;
mod precision;
mod system;

pub use permission::{SteerPermission, steer_permission};
pub use precision::measure_precision;
pub use system::SystemClock;

use syhub_ntp_proto::NtpTimestamp;

/// A source of the current time. The daemon reads the system clock; tests use a fixed or
/// simulated one.
pub trait Clock: Send + Sync {
    /// The current time of this clock.
    fn now(&self) -> NtpTimestamp;
}
