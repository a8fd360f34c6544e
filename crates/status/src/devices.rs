//! The hub's devices as every surface shows them: one [`ClientStatus`] per client (its state,
//! its clock error and trend, its habits), the order an operator reads them in, and the counts by
//! state that the dashboard's header, Prometheus and MQTT publish (no addresses).

use serde::{Deserialize, Serialize};

/// The states, in the order the table lists them: what needs attention first.
pub const STATES: [&str; 4] = ["off", "silent", "unknown", "in sync"];

/// One clock error of a device: how long ago, and our receive time minus its transmit time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClockErrorSample {
    pub seconds_ago: u32,
    pub error_seconds: f64,
}

/// One client of the server as `syhub-ntp clients` reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientStatus {
    pub address: String,
    /// From `[clients] names` or the DHCP leases file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// "in sync", "off", "unknown" or "silent".
    #[serde(default)]
    pub state: String,
    pub requests: u32,
    #[serde(default)]
    pub answered: u32,
    pub rate_limited: u32,
    #[serde(default)]
    pub kissed: u32,
    pub last_seen_seconds_ago: u32,
    pub first_seen_seconds_ago: u32,
    /// The usual seconds between its requests (0: one request so far).
    #[serde(default)]
    pub interval_seconds: f64,
    /// NTP version and mode of its last request.
    #[serde(default)]
    pub version: u8,
    #[serde(default)]
    pub mode: u8,
    /// Our receive time minus its transmit time for its last request, seconds (positive: the
    /// device is behind). It includes the request's one-way network delay, so the device is
    /// behind by up to that much less; `None` when the request did not carry its clock.
    #[serde(default)]
    pub clock_error_seconds: Option<f64>,
    /// Its clock errors over time, oldest first, the latest last.
    #[serde(default)]
    pub clock_errors: Vec<ClockErrorSample>,
}

impl ClientStatus {
    /// Where it goes in the table: by state (off first), then the largest error first.
    fn rank(&self) -> (usize, std::cmp::Reverse<u64>) {
        let state = STATES.iter().position(|s| *s == self.state).unwrap_or(STATES.len());
        let error = self.clock_error_seconds.map_or(0, |e| (e.abs() * 1e9) as u64);
        (state, std::cmp::Reverse(error))
    }

    /// "+5.002 s ahead", "1.2 ms behind": the error as an operator reads it.
    pub fn describe_error(&self) -> Option<String> {
        let error = self.clock_error_seconds?;
        let way = if error > 0.0 { "behind" } else { "ahead" };
        Some(format!("{} {way}", magnitude(error.abs())))
    }
}

/// Sorts devices as the table lists them: by state (off, silent, unknown, in sync), the largest
/// error first, then by address.
pub fn sort_devices(devices: &mut [ClientStatus]) {
    devices
        .sort_unstable_by(|a, b| a.rank().cmp(&b.rank()).then_with(|| a.address.cmp(&b.address)));
}

/// `seconds` with a unit a person reads at a glance: "850 µs", "12.3 ms", "5.00 s", "3.2 h",
/// "56 years".
pub fn magnitude(seconds: f64) -> String {
    match seconds {
        s if s < 1e-3 => format!("{:.0} µs", s * 1e6),
        s if s < 1.0 => format!("{:.1} ms", s * 1e3),
        s if s < 600.0 => format!("{s:.2} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s if s < 3.0 * 86_400.0 => format!("{:.1} h", s / 3600.0),
        s if s < 730.0 * 86_400.0 => format!("{:.0} days", s / 86_400.0),
        s => format!("{:.0} years", s / (365.25 * 86_400.0)),
    }
}

/// The devices counted by state, and the largest clock error among those that said theirs:
/// what may be published beyond the hub (no addresses).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DevicesSummary {
    pub devices: u32,
    pub in_sync: u32,
    pub off: u32,
    pub unknown: u32,
    pub silent: u32,
    /// The largest |clock error| of a device that is not silent, seconds.
    pub largest_error_seconds: Option<f64>,
}

impl DevicesSummary {
    /// The counts by state, in the order the summary line and `/metrics` give them.
    pub fn by_state(&self) -> [(&'static str, u32); 4] {
        [
            ("in sync", self.in_sync),
            ("off", self.off),
            ("unknown", self.unknown),
            ("silent", self.silent),
        ]
    }

    pub fn of(devices: &[ClientStatus]) -> Self {
        let count = |state: &str| devices.iter().filter(|d| d.state == state).count() as u32;
        let largest_error_seconds = devices
            .iter()
            .filter(|d| d.state != "silent")
            .filter_map(|d| d.clock_error_seconds.map(f64::abs))
            .reduce(f64::max);
        Self {
            devices: devices.len() as u32,
            in_sync: count("in sync"),
            off: count("off"),
            unknown: count("unknown"),
            silent: count("silent"),
            largest_error_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(address: &str, state: &str, error: Option<f64>) -> ClientStatus {
        ClientStatus {
            address: address.into(),
            state: state.into(),
            clock_error_seconds: error,
            ..ClientStatus::default()
        }
    }

    #[test]
    fn devices_are_listed_by_state_then_largest_error_and_counted() {
        let mut devices = vec![
            device("10.0.0.1", "in sync", Some(0.002)),
            device("10.0.0.2", "off", Some(-5.0)),
            device("10.0.0.3", "unknown", None),
            device("10.0.0.4", "off", Some(120.0)),
            device("10.0.0.5", "silent", Some(900.0)),
            device("10.0.0.6", "in sync", Some(-0.03)),
        ];
        sort_devices(&mut devices);
        let order: Vec<&str> = devices.iter().map(|d| d.address.as_str()).collect();
        assert_eq!(order, ["10.0.0.4", "10.0.0.2", "10.0.0.5", "10.0.0.3", "10.0.0.6", "10.0.0.1"]);
        let summary = DevicesSummary::of(&devices);
        assert_eq!((summary.devices, summary.in_sync, summary.off), (6, 2, 2));
        assert_eq!((summary.unknown, summary.silent), (1, 1));
        assert_eq!(summary.largest_error_seconds, Some(120.0), "the silent one's is stale");
        assert_eq!(DevicesSummary::of(&[]).largest_error_seconds, None);
    }

    #[test]
    fn errors_read_as_a_person_says_them() {
        assert_eq!(device("a", "off", Some(-5.0)).describe_error().unwrap(), "5.00 s ahead");
        assert_eq!(
            device("a", "in sync", Some(0.0123)).describe_error().unwrap(),
            "12.3 ms behind"
        );
        assert_eq!(magnitude(0.00085), "850 µs");
        assert_eq!(magnitude(11_000.0), "3.1 h");
        assert_eq!(magnitude(1.77e9), "56 years");
        assert_eq!(device("a", "unknown", None).describe_error(), None);
    }
}
