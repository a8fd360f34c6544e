//! Monitoring of syhub-ntp: everything that only reads the daemon's status snapshot and devices view — its
//! history, the HTTP API and dashboard, Prometheus metrics and MQTT messages — so that every
//! surface reports the same numbers and none of them can slow the time service.

#![forbid(unsafe_code)]

pub mod history;
pub mod http;
pub mod mqtt;
pub mod prometheus;

/// The hub's devices, sorted as the table lists them, built when called (the daemon's devices
/// view): for `/api/ntp/clients`, the dashboard, `/metrics` aggregates and MQTT's summary.
pub type Devices = std::sync::Arc<dyn Fn() -> Vec<syhub_ntp_status::ClientStatus> + Send + Sync>;
