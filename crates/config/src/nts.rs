//! `[nts]`: serving Network Time Security (RFC 8915): the NTS-KE server's certificate and key,
//! where it listens, and where the cookie keys are kept across restarts.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

pub const DEFAULT_NTS_KEYS: &str = "/var/lib/syhub-ntp/nts-keys";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NtsConfig {
    /// PEM certificate chain; `None` (`""`, the default) turns NTS serving off.
    #[serde(deserialize_with = "super::optional_path")]
    pub certificate: Option<PathBuf>,
    /// PEM private key of the certificate.
    #[serde(deserialize_with = "super::optional_path")]
    pub private_key: Option<PathBuf>,
    /// TCP addresses of the NTS-KE server.
    pub listen: Vec<SocketAddr>,
    /// The server keys that seal cookies, kept so cookies survive a restart.
    pub keys_file: PathBuf,
}

impl Default for NtsConfig {
    fn default() -> Self {
        Self {
            certificate: None,
            private_key: None,
            listen: vec![
                SocketAddr::from(([0, 0, 0, 0], 4460)),
                SocketAddr::from(([0u16; 8], 4460)),
            ],
            keys_file: PathBuf::from(DEFAULT_NTS_KEYS),
        }
    }
}
