//! `[local]`: serving the hub's own clock when no upstream source is usable.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalConfig {
    pub enabled: bool,
    pub stratum: LocalStratum,
    pub mode: LocalMode,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self { enabled: true, stratum: LocalStratum(10), mode: LocalMode::Holdover }
    }
}

/// When the local clock may be served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalMode {
    /// Only once the clock has been synchronised since boot (a Pi has no real-time clock).
    #[default]
    Holdover,
    /// Always: air-gapped hubs with a good real-time clock.
    Always,
}

/// A stratum a server may announce for its local clock: 1 to 15.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct LocalStratum(u8);

impl LocalStratum {
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for LocalStratum {
    type Error = String;
    fn try_from(stratum: i64) -> Result<Self, String> {
        match u8::try_from(stratum) {
            Ok(s @ 1..=15) => Ok(Self(s)),
            _ => Err(format!("stratum {stratum} is out of range: expected 1 to 15")),
        }
    }
}
