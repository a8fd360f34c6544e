//! Steering the clock, behind a trait: the kernel clock steers, the observing clock never does,
//! and both read the kernel's frequency and synchronisation status.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockError {
    /// The kernel refuses (EPERM): no CAP_SYS_TIME.
    NotPermitted,
    Kernel(String),
}

impl fmt::Display for ClockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPermitted => write!(f, "the kernel does not permit it (no CAP_SYS_TIME)"),
            Self::Kernel(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for ClockError {}

/// What the kernel is told about synchronisation (for the RTC's 11-minute mode and adjtimex
/// users), as the system core decides it.
pub use syhub_ntp_proto::system::KernelSyncStatus;

/// Control of the system clock. Frequencies are corrections in s/s, positive = faster.
pub trait ClockControl: Send + Sync {
    /// The frequency correction in force.
    fn frequency(&self) -> Result<f64, ClockError>;
    /// Whether the kernel believes the clock synchronised (by anyone).
    fn kernel_synchronised(&self) -> Result<bool, ClockError>;
    /// Called once before steering: switches off other kernel disciplines.
    fn take_control(&self) -> Result<(), ClockError>;
    fn set_frequency(&self, correction: f64) -> Result<(), ClockError>;
    /// Moves the clock by `offset` seconds at once.
    fn step(&self, offset: f64) -> Result<(), ClockError>;
    fn set_sync_status(&self, status: &KernelSyncStatus) -> Result<(), ClockError>;
}

/// A clock that is only observed: reads the kernel, never changes anything.
#[derive(Debug)]
pub struct ObservingClock {
    kernel: crate::KernelClock,
}

impl ObservingClock {
    pub fn new(kernel_sync_override: Option<bool>) -> Self {
        Self { kernel: crate::KernelClock::new(kernel_sync_override) }
    }
}

impl ClockControl for ObservingClock {
    fn frequency(&self) -> Result<f64, ClockError> {
        self.kernel.frequency()
    }

    fn kernel_synchronised(&self) -> Result<bool, ClockError> {
        self.kernel.kernel_synchronised()
    }

    fn take_control(&self) -> Result<(), ClockError> {
        Ok(())
    }

    fn set_frequency(&self, _: f64) -> Result<(), ClockError> {
        Ok(())
    }

    fn step(&self, _: f64) -> Result<(), ClockError> {
        Ok(())
    }

    fn set_sync_status(&self, _: &KernelSyncStatus) -> Result<(), ClockError> {
        Ok(())
    }
}
