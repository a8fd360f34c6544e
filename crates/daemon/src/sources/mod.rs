//! Upstream sources in the daemon: a task per server that drives its protocol-core state over a
//! UDP socket, and the resolution of names (servers and pools) into such tasks.

mod drivers;
pub mod nts;
mod refclock;
mod resolve;
mod task;

pub(crate) use drivers::open_refclocks;
pub(crate) use refclock::{RefclockDriver, RefclockTaskSetup, spawn_refclock};
pub(crate) use resolve::{Resolution, resolve_in_background};
pub(crate) use task::{
    HeardBroadcast, NtsSetup, SourceCommands, SourceReport, SourceTaskSetup, recv_or_pending,
    spawn_source,
};
