//! `[http]` and `[mqtt]`: the monitoring surfaces. Both are read-only views of the daemon.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

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

/// A broker from an `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl Broker {
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(format!("{url:?}: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"));
        };
        if rest.contains('@') {
            // Not quoted: what comes before the @ is a user name and likely a password.
            return Err("a user name or password in the URL is not supported (nor shown here): \
                        set username, and password_file to a file holding the password"
                .into());
        }
        let rest = rest.trim_end_matches('/');
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) =
                v6.split_once(']').ok_or_else(|| format!("{url:?}: unclosed [ in the address"))?;
            let port = match after.strip_prefix(':') {
                Some(port) => port.parse().map_err(|_| format!("{url:?}: bad port"))?,
                None if after.is_empty() => default_port,
                None => return Err(format!("{url:?}: unexpected {after:?} after the address")),
            };
            (host.to_owned(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => {
                    (host.to_owned(), port.parse().map_err(|_| format!("{url:?}: bad port"))?)
                }
                None => (rest.to_owned(), default_port),
            }
        };
        let valid = !host.is_empty()
            && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c));
        if !valid || port == 0 {
            return Err(format!("{url:?}: expected a host name or address and a port 1-65535"));
        }
        Ok(Self { tls, host, port })
    }
}

impl std::fmt::Display for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", if self.tls { "mqtts" } else { "mqtt" }, self.host, self.port)
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
            // "url = ..." first, so the error points at the url.
            Some(url) => Some(Broker::parse(url).map_err(|error| format!("url = {error}"))?),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse_with_default_ports() {
        assert_eq!(
            Broker::parse("mqtt://localhost").unwrap(),
            Broker { tls: false, host: "localhost".into(), port: 1883 }
        );
        assert_eq!(
            Broker::parse("mqtts://broker.lan:8884/").unwrap(),
            Broker { tls: true, host: "broker.lan".into(), port: 8884 }
        );
        assert_eq!(
            Broker::parse("mqtt://[::1]:1884").unwrap(),
            Broker { tls: false, host: "::1".into(), port: 1884 }
        );
        assert_eq!(Broker::parse("mqtt://192.168.1.2").unwrap().port, 1883);
        for bad in [
            "http://x",
            "mqtt://",
            "mqtt://host:0",
            "mqtt://host:port",
            "mqtt://a b",
            "mqtt://[::1",
            "mqtt://user:s3cret@broker",
        ] {
            let error = Broker::parse(bad).unwrap_err();
            assert!(!error.contains("s3cret"), "{error}");
        }
    }
}
