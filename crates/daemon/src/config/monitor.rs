//! `[http]` and `[mqtt]`: the monitoring surfaces. Both are read-only views of the daemon.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use syhub_ntp_monitor::mqtt::Broker;

/// `[http]`: the JSON API, `/metrics` and the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// TCP addresses to listen on; empty turns HTTP off. Loopback by default: opening it to the
    /// LAN is a choice.
    pub listen: Vec<SocketAddr>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { listen: vec![SocketAddr::from(([127, 0, 0, 1], 8123))] }
    }
}

/// `[mqtt]`: status messages for the hub's MQTT bus; off unless `url` is set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawMqttConfig")]
pub struct MqttConfig {
    pub broker: Option<Broker>,
    pub username: Option<String>,
    /// File holding the password (kept out of the config so the config can be world-readable).
    pub password_file: Option<PathBuf>,
    pub topic: String,
    /// Seconds between status messages.
    pub interval: u64,
    pub home_assistant: bool,
    pub ca_file: Option<PathBuf>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            broker: None,
            username: None,
            password_file: None,
            topic: "syhub/ntp".into(),
            interval: 60,
            home_assistant: false,
            ca_file: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMqttConfig {
    url: Option<String>,
    username: Option<String>,
    password_file: Option<String>,
    topic: Option<String>,
    interval: Option<i64>,
    #[serde(default)]
    home_assistant: bool,
    ca_file: Option<String>,
}

impl TryFrom<RawMqttConfig> for MqttConfig {
    type Error = String;
    fn try_from(raw: RawMqttConfig) -> Result<Self, String> {
        let default = Self::default();
        let broker = match raw.url.as_deref() {
            None | Some("") => None,
            Some(url) => Some(Broker::parse(url)?),
        };
        let topic = raw.topic.unwrap_or(default.topic);
        if topic.is_empty()
            || topic.contains(['#', '+'])
            || topic.starts_with('/')
            || topic.ends_with('/')
        {
            return Err(format!(
                "topic {topic:?}: expected a topic prefix such as \"syhub/ntp\", without wildcards"
            ));
        }
        let interval = match raw.interval {
            None => default.interval,
            Some(seconds @ 1..=86_400) => seconds as u64,
            Some(seconds) => {
                return Err(format!("interval = {seconds}: expected 1 to 86400 seconds"));
            }
        };
        let path = |name: &str, value: Option<String>| match value {
            Some(path) if !path.starts_with('/') => {
                Err(format!("{name} = {path:?}: expected an absolute path"))
            }
            other => Ok(other.map(PathBuf::from)),
        };
        if raw.password_file.is_some() && raw.username.is_none() {
            return Err("password_file needs a username".into());
        }
        Ok(Self {
            broker,
            username: raw.username,
            password_file: path("password_file", raw.password_file)?,
            topic,
            interval,
            home_assistant: raw.home_assistant,
            ca_file: path("ca_file", raw.ca_file)?,
        })
    }
}
