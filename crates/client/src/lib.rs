//! The clients of a syhub-ntp daemon and of NTP servers, shared by the commands and operations:
//! the control socket's client (`status`, `peers`, `clients`, `sync-check`, `test`, `info`) and one
//! NTP exchange with any server (`query`, and the diagnostics' checks of the upstreams).
#![forbid(unsafe_code)]

mod control;
mod query;

pub use control::{ClientError, request_clients, request_status};
pub use query::{QueryError, QueryOutcome, query};
