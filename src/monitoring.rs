//! The monitoring surfaces `syhub-ntp run` starts beside the daemon: the HTTP API, dashboard,
//! metrics and history, and MQTT. Made ready while the process is still privileged (ports bound,
//! the MQTT password read), started once the daemon's status feed exists; each only reads the
//! status, and a failure in any of them is logged and leaves the time service alone.

use std::sync::{Arc, Mutex};
use syhub_ntp_config::Config;
use syhub_ntp_daemon::runtime::StatusFeed;
use syhub_ntp_monitor::Devices;
use syhub_ntp_monitor::history::History;
use syhub_ntp_monitor::http::{self, HttpState};
use syhub_ntp_monitor::mqtt::{self, MqttSettings};

/// The surfaces the config asks for, ready to start.
pub(crate) struct Monitoring {
    http: Option<Vec<std::net::TcpListener>>,
    mqtt: Option<MqttSettings>,
}

impl Monitoring {
    /// Binds the HTTP ports and reads the MQTT password file (it may be readable by root only):
    /// call it before the daemon drops privileges. What cannot be prepared is off, with a warning.
    pub(crate) fn prepare(config: &Config) -> Self {
        let http = match http::bind(&config.http.listen) {
            Ok(listeners) if !listeners.is_empty() => Some(listeners),
            Ok(_) => None,
            Err(error) => {
                tracing::warn!("{error}; the dashboard, API and /metrics are off");
                None
            }
        };
        Self { http, mqtt: mqtt_settings(config) }
    }

    /// Starts the history recorder, the HTTP servers and the MQTT publisher in the daemon's task
    /// set; all of them end when the daemon's cancellation token fires.
    pub(crate) fn start(self, feed: StatusFeed<'_>) {
        let StatusFeed { status, counters, devices, cancel, tasks } = feed;
        let devices: Devices = Arc::new(move || devices.devices());
        let history = Arc::new(Mutex::new(History::day()));
        tasks.spawn(http::record_history(status.clone(), history.clone(), cancel.clone()));
        if let Some(listeners) = self.http {
            let state = HttpState {
                status: status.clone(),
                counters: counters.clone(),
                history,
                devices: devices.clone(),
            };
            let open_files = syhub_ntp_sys::limits::open_files();
            let cap = http::connection_cap(open_files);
            tracing::debug!(
                "HTTP: at most {cap} connections (open files limit {})",
                open_files.map_or("none".into(), |limit| limit.to_string())
            );
            tasks.spawn(http::serve(listeners, state, cap, cancel.clone()));
        }
        if let Some(settings) = self.mqtt {
            tasks.spawn(async move {
                if let Err(error) = mqtt::run(settings, status, counters, devices, cancel).await {
                    tracing::warn!("{error}; MQTT is off");
                }
            });
        }
    }
}

/// `[mqtt]` as the publisher needs it, password read; `None` when off or the password unreadable.
fn mqtt_settings(config: &Config) -> Option<MqttSettings> {
    let broker = config.mqtt.broker.as_ref()?;
    let password = match &config.mqtt.password_file {
        None => None,
        Some(path) => match std::fs::read_to_string(path) {
            Ok(password) => Some(password.trim_end_matches(['\r', '\n']).to_owned()),
            Err(error) => {
                tracing::warn!(
                    "cannot read the MQTT password file {}: {error}; MQTT is off",
                    path.display()
                );
                return None;
            }
        },
    };
    Some(MqttSettings {
        host: broker.host.clone(),
        port: broker.port,
        tls: broker.tls,
        username: config.mqtt.username.clone(),
        password,
        topic: config.mqtt.topic.clone(),
        interval: std::time::Duration::from_secs(config.mqtt.interval),
        home_assistant: config.mqtt.home_assistant,
        ca_file: config.mqtt.ca_file.clone(),
    })
}
