//! MQTT: the status as retained JSON on `<topic>/status` every interval and at once when the sync
//! state or selected source changes; the devices' counts by state on `<topic>/devices` (retained,
//! no addresses) every interval; `online`/`offline` on `<topic>/availability` (with a last
//! will); optional Home Assistant discovery. A dead broker costs a reconnect with backoff, never
//! a delayed NTP answer: publishing never waits.

use crate::Devices;
use rumqttc::{
    AsyncClient, Event, LastWill, MqttOptions, Packet, QoS, TlsConfiguration, Transport,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use syhub_ntp_status::{DevicesSummary, RequestTally, StatusSnapshot};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Reconnect waits from 1 s doubling to a minute.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));
/// Requests queued towards the broker; more are dropped while it is slow or away.
const QUEUE: usize = 32;

/// Where and how to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttSettings {
    /// The broker's host name or address, and port.
    pub host: String,
    pub port: u16,
    /// Whether to speak TLS to it (`mqtts://`).
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Topic prefix: `<topic>/status`, `<topic>/availability`.
    pub topic: String,
    pub interval: Duration,
    pub home_assistant: bool,
    /// A CA certificate (PEM) to trust for `mqtts://` instead of the system's.
    pub ca_file: Option<PathBuf>,
}

impl MqttSettings {
    /// The broker as a URL, for messages.
    fn broker_url(&self) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MqttSetupError {
    #[error("cannot read the MQTT CA file {}: {source}", path.display())]
    CaFile { path: PathBuf, source: std::io::Error },
    #[error("the MQTT CA file {} holds no usable certificate", .0.display())]
    NoCertificate(PathBuf),
}

/// The TLS client configuration: the given CA, or the system's trusted roots.
fn tls_config(ca_file: Option<&PathBuf>) -> Result<rustls::ClientConfig, MqttSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|source| MqttSetupError::CaFile { path: path.clone(), source })?;
            for certificate in CertificateDer::pem_slice_iter(&pem).flatten() {
                let _ = roots.add(certificate);
            }
            if roots.is_empty() {
                return Err(MqttSetupError::NoCertificate(path.clone()));
            }
        }
        None => {
            for certificate in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(certificate);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| MqttSetupError::NoCertificate(PathBuf::new()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// The machine's name, for the client id and Home Assistant's device.
fn node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| {
            name.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect::<String>()
        })
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "hub".into())
}

/// Runs the publisher until cancelled. `counters` are read at each publication, for live request
/// counters and uptime.
pub async fn run(
    settings: MqttSettings,
    mut status: watch::Receiver<StatusSnapshot>,
    counters: Arc<RequestTally>,
    devices: Devices,
    cancel: CancellationToken,
) -> Result<(), MqttSetupError> {
    let node = node_name();
    let availability = format!("{}/availability", settings.topic);
    let status_topic = format!("{}/status", settings.topic);
    let devices_topic = format!("{}/devices", settings.topic);
    let mut options =
        MqttOptions::new(format!("syhub-ntp-{node}"), settings.host.clone(), settings.port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_last_will(LastWill::new(&availability, "offline", QoS::AtLeastOnce, true));
    if let Some(username) = &settings.username {
        options.set_credentials(username.clone(), settings.password.clone().unwrap_or_default());
    }
    if settings.tls {
        let config = tls_config(settings.ca_file.as_ref())?;
        options
            .set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(config))));
    }
    let (client, mut events) = AsyncClient::new(options, QUEUE);
    let publish = |topic: &str, payload: String| {
        // Never wait: with the broker away, the queue fills and further messages are dropped.
        let _ = client.try_publish(topic, QoS::AtLeastOnce, true, payload.into_bytes());
    };
    let publish_status = |status: &StatusSnapshot| {
        let status = status.with_counters(&counters);
        publish(&status_topic, serde_json::to_string(&status).unwrap_or_default());
    };
    let publish_devices = || {
        let summary = DevicesSummary::of(&devices());
        publish(&devices_topic, serde_json::to_string(&summary).unwrap_or_default());
    };

    let mut ticks = tokio::time::interval(settings.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = BACKOFF.0;
    let mut last_error: Option<String> = None;
    let mut last_key = sync_key(&status.borrow());
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            event = events.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!("MQTT connected to {}", settings.broker_url());
                    backoff = BACKOFF.0;
                    last_error = None;
                    publish(&availability, "online".into());
                    if settings.home_assistant {
                        for (topic, config) in discovery(&node, &settings.topic) {
                            publish(&topic, config.to_string());
                        }
                    }
                    publish_status(&status.borrow());
                    publish_devices();
                }
                Ok(_) => {}
                Err(error) => {
                    let error = error.to_string();
                    if last_error.as_ref() != Some(&error) {
                        tracing::warn!("MQTT broker {} unavailable: {error}; retrying with backoff", settings.broker_url());
                        last_error = Some(error);
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF.1);
                }
            },
            _ = ticks.tick() => {
                publish_status(&status.borrow());
                publish_devices();
            }
            changed = status.changed() => {
                if changed.is_err() {
                    break;
                }
                // At once on a change of sync state or selected source; otherwise at the interval.
                let key = sync_key(&status.borrow_and_update());
                if key != last_key {
                    last_key = key;
                    publish_status(&status.borrow());
                }
            }
        }
    }
    // Say goodbye cleanly (the last will is for when we cannot), giving it a moment to leave.
    publish(&availability, "offline".into());
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while events.poll().await.is_ok() {}
    })
    .await;
    Ok(())
}

/// What must be published at once when it changes: the state and the selected source.
fn sync_key(status: &StatusSnapshot) -> (String, Option<String>) {
    let peer = status.peers.iter().find(|p| p.state == "system peer").map(|p| p.address.clone());
    (status.status.clone(), peer)
}

/// Home Assistant MQTT discovery: sensors for the offset, stratum and state, and a binary sensor
/// for synchronisation, reading the retained status message; sensors for the devices out of sync
/// and silent, reading the retained devices message.
fn discovery(node: &str, topic: &str) -> Vec<(String, serde_json::Value)> {
    let device = serde_json::json!({
        "identifiers": [format!("syhub-ntp-{node}")],
        "name": format!("SyHub time server ({node})"),
        "manufacturer": "SyHub",
        "model": "syhub-ntp",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    let entity_on = |message: &str,
                     component: &str,
                     key: &str,
                     name: &str,
                     template: &str,
                     extra: serde_json::Value| {
        let mut config = serde_json::json!({
            "name": name,
            "unique_id": format!("syhub_ntp_{node}_{key}"),
            "object_id": format!("syhub_ntp_{key}"),
            "state_topic": format!("{topic}/{message}"),
            "value_template": template,
            "availability_topic": format!("{topic}/availability"),
            "device": device.clone(),
        });
        if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
            config.extend(extra.clone());
        }
        (format!("homeassistant/{component}/syhub_ntp_{node}/{key}/config"), config)
    };
    let entity = |component: &str, key: &str, name: &str, template: &str, extra| {
        entity_on("status", component, key, name, template, extra)
    };
    let count = serde_json::json!({ "state_class": "measurement" });
    vec![
        entity(
            "sensor",
            "offset",
            "NTP offset",
            "{{ (value_json.offset_seconds * 1000) | round(3) }}",
            serde_json::json!({ "unit_of_measurement": "ms", "state_class": "measurement" }),
        ),
        entity(
            "sensor",
            "stratum",
            "NTP stratum",
            "{{ value_json.stratum }}",
            serde_json::json!({ "state_class": "measurement" }),
        ),
        entity("sensor", "status", "NTP status", "{{ value_json.status }}", serde_json::json!({})),
        entity(
            "binary_sensor",
            "synchronised",
            "NTP synchronised",
            "{{ 'ON' if value_json.synchronised else 'OFF' }}",
            serde_json::json!({ "payload_on": "ON", "payload_off": "OFF" }),
        ),
        entity_on(
            "devices",
            "sensor",
            "devices_off",
            "Devices out of sync",
            "{{ value_json.off }}",
            count.clone(),
        ),
        entity_on(
            "devices",
            "sensor",
            "devices_silent",
            "Devices silent",
            "{{ value_json.silent }}",
            count,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_assistant_discovery_points_at_the_status_topic() {
        let entities = discovery("hub1", "syhub/ntp");
        assert_eq!(entities.len(), 6);
        let (topic, config) = &entities[0];
        assert_eq!(topic, "homeassistant/sensor/syhub_ntp_hub1/offset/config");
        assert_eq!(config["state_topic"], "syhub/ntp/status");
        assert_eq!(config["availability_topic"], "syhub/ntp/availability");
        assert_eq!(config["device"]["identifiers"][0], "syhub-ntp-hub1");
        assert!(entities.iter().any(|(t, _)| t.starts_with("homeassistant/binary_sensor/")));
        let (topic, config) = &entities[4];
        assert_eq!(topic, "homeassistant/sensor/syhub_ntp_hub1/devices_off/config");
        assert_eq!(config["state_topic"], "syhub/ntp/devices");
        assert_eq!(config["value_template"], "{{ value_json.off }}");
    }
}
