//! Operations on the hub itself: install and uninstall (config, account, systemd units, firewall,
//! other time services) recorded in a manifest so that everything done can be undone, all of it
//! under any root directory and as a dry run.

#![forbid(unsafe_code)]

pub mod backup;
pub mod clients_config;
pub mod diagnose;
pub mod firewall;
mod glob;
pub mod host;
pub mod install;
pub mod manifest;
pub mod ntp_conf;
pub mod services;
pub mod units;

pub use host::Host;
pub use manifest::{Change, Manifest};
