//! Monitoring of syhub-ntp: everything that only reads the daemon's status snapshot — its
//! history, the HTTP API and dashboard, Prometheus metrics and MQTT messages — so that every
//! surface reports the same numbers and none of them can slow the time service.

#![forbid(unsafe_code)]

pub mod history;
pub mod http;
pub mod mqtt;
pub mod prometheus;
