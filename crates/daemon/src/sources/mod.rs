//! Upstream sources in the daemon: a task per server that drives its protocol-core state over a
//! UDP socket, and the resolution of names (servers and pools) into such tasks.

mod drivers;
pub mod nts;
mod refclock;
mod resolve;
mod task;

pub use drivers::open_refclocks;
pub use refclock::{Reading, RefclockDriver, RefclockTaskSetup, spawn_refclock};
pub use resolve::{Resolution, resolve_in_background};
pub use task::{
    HeardBroadcast, NtsSetup, SourceCommands, SourceReport, SourceTaskSetup, recv_or_pending,
    spawn_source,
};
