//! `[control]`: the local control socket that `syhub-ntp status` and other commands talk to.

use serde::Deserialize;
use std::path::PathBuf;

pub const DEFAULT_CONTROL_SOCKET: &str = "/run/syhub-ntp/control.sock";

/// Longest path a Unix socket address holds (`sun_path` is 108 bytes with its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// Path of the Unix socket; never on the network.
    #[serde(deserialize_with = "socket_path")]
    pub socket: PathBuf,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self { socket: PathBuf::from(DEFAULT_CONTROL_SOCKET) }
    }
}

/// An absolute path a Unix socket can be bound at: refused here rather than when the daemon
/// starts, so `config check` says so.
fn socket_path<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    let path = String::deserialize(d)?;
    let problem = if path.is_empty() {
        "the control socket needs a path"
    } else if !path.starts_with('/') {
        "expected an absolute path"
    } else if path.len() > MAX_SOCKET_PATH {
        "longer than the 107 bytes a Unix socket's path can have"
    } else if path.contains('\0') {
        "a path cannot contain a NUL character"
    } else {
        return Ok(PathBuf::from(path));
    };
    Err(serde::de::Error::custom(format!(
        "socket = {path:?}: {problem}, such as \"{DEFAULT_CONTROL_SOCKET}\""
    )))
}
