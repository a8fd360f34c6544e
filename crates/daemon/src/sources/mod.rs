//! Upstream sources in the daemon: a task per server that drives its protocol-core state over a
//! UDP socket, and the resolution of names (servers and pools) into such tasks.

pub mod nts;
mod resolve;
mod task;

pub use resolve::{Resolution, resolve_in_background};
pub use task::{
    HeardBroadcast, NtsSetup, SourceCommands, SourceEvent, SourceId, SourceReport, recv_or_pending,
    spawn_source,
};
