//! The syhub-ntp daemon: opens sockets with kernel timestamps and drives the protocol core from
//! tokio tasks on a single-threaded runtime. The binary starts it (`runtime`); the benchmarks
//! and tests reach the sockets (`net`) and the NTS client (`sources::nts`). Everything else is
//! the daemon's own.

#![forbid(unsafe_code)]

mod access;
mod admission;
mod broadcast;
mod control;
pub mod devices;
mod log_limit;
mod multicast;
mod net;
mod notify;
mod nts_ke;
mod privileges;
pub mod runtime;
mod server;
pub mod sources;
mod status;
mod system_task;
mod timebase;

// The config under the name the daemon's modules use for it.
use syhub_ntp_config as config;
