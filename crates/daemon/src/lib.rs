//! The syhub-ntp daemon: loads the config, opens sockets with kernel timestamps and drives the
//! protocol core from tokio tasks on a single-threaded runtime.

#![forbid(unsafe_code)]

pub mod access;
pub mod atomic_file;
pub mod broadcast;
pub mod config;
pub mod control;
pub mod drift;
pub mod keygen;
pub mod keys;
pub mod leap_file;
pub mod log_limit;
pub mod net;
pub mod notify;
pub mod nts_ke;
pub mod privileges;
pub mod query;
pub mod runtime;
pub mod server;
pub mod sources;

pub mod system;
