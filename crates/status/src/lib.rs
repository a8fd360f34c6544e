//! What the daemon says about itself, in the types every reader shares: the status snapshot, the
//! request counters, the one-line summary, and the control socket's wire format. The daemon
//! fills them in; the monitoring surfaces, the commands and the operations only read them. No I/O.
#![forbid(unsafe_code)]

pub mod control;
mod devices;
mod snapshot;
mod summary;

pub use devices::{
    ClientStatus, ClockErrorSample, DevicesSummary, STATES, magnitude, sort_devices,
};
pub use snapshot::{RequestCounters, RequestTally, SourceStatus, StatusSnapshot};
pub use summary::{offset_text, status_line};
