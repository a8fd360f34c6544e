//! The install manifest: every change `install` made, in order, so `uninstall` can undo exactly
//! those and nothing else. Kept at `/var/lib/syhub-ntp/install.json`, written whole each time.

use serde::{Deserialize, Serialize};

pub const MANIFEST_PATH: &str = "/var/lib/syhub-ntp/install.json";

/// One change to the system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A file we wrote where there was none. `data`: the user's data (config, keys, drift), kept
    /// by `uninstall` unless `--purge`.
    File { path: String, data: bool },
    /// A directory we created.
    Directory { path: String },
    /// The service account, created with systemd-sysusers.
    Account { name: String },
    /// A unit we enabled (and started, on a running system).
    Enabled { unit: String, started: bool },
    /// Another time service we disabled (and stopped, when it was running).
    Disabled { unit: String, was_active: bool },
    /// A firewall rule we added to the running firewall: the backend and the port, as
    /// `udp/123` or `tcp/4460`.
    Firewall { backend: String, rule: String },
    /// A line we added to a file that was there already (the include in /etc/nftables.conf, a
    /// rule in /etc/iptables/rules.v4, a port in our nftables file from an earlier install):
    /// uninstall takes out exactly that line, and the file is as it was before.
    /// `newline_added`: the file did not end in a newline, and one was put before the line.
    LineAdded {
        path: String,
        line: String,
        #[serde(default)]
        newline_added: bool,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub changes: Vec<Change>,
}

impl Manifest {
    pub fn new() -> Self {
        Self { version: 1, changes: Vec::new() }
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let manifest: Self = serde_json::from_slice(bytes)
            .map_err(|e| format!("the install manifest is not readable: {e}"))?;
        if manifest.version != 1 {
            return Err(format!("install manifest version {} is not known", manifest.version));
        }
        Ok(manifest)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    pub fn record(&mut self, change: Change) {
        if !self.changes.contains(&change) {
            self.changes.push(change);
        }
    }
}
