//! `[control]`: the local control socket that `syhub-ntp status` and other commands talk to.

use serde::Deserialize;
use std::path::PathBuf;

pub const DEFAULT_CONTROL_SOCKET: &str = "/run/syhub-ntp/control.sock";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// Path of the Unix socket; never on the network.
    pub socket: PathBuf,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self { socket: PathBuf::from(DEFAULT_CONTROL_SOCKET) }
    }
}
