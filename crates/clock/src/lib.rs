//! The system clock adapter: reading CLOCK_REALTIME, measuring its precision, finding out whether
//! the kernel lets us steer it, and steering it (through `syhub_ntp_sys::timex`). The only crate
//! that touches the clock.

#![forbid(unsafe_code)]

mod control;
mod kernel;
mod permission;
mod precision;
mod realtime;

pub use control::{ClockControl, ClockError, KernelSyncStatus, ObservingClock};
pub use kernel::{
    KernelClock, TickAndFrequency, join_frequency, kernel_leap_in_progress_or_done, split_frequency,
};
pub use permission::{SteerPermission, steer_permission};
pub use precision::measure_precision;
pub use realtime::{SystemClock, raw_monotonic};

use syhub_ntp_proto::NtpTimestamp;

/// A source of the current time. The daemon reads the system clock; tests use a fixed or
/// simulated one.
pub trait Clock: Send + Sync {
    /// The current time of this clock.
    fn now(&self) -> NtpTimestamp;
}
