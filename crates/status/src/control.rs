//! The control socket's wire format, shared by the daemon that answers and the commands that ask:
//! the client sends one request name on a line; the daemon answers with one line of JSON (the
//! answer's type below, or a [`ControlRefusal`]) and closes the connection.

use serde::{Deserialize, Serialize};

/// The longest request line the daemon reads, bytes.
pub const MAX_REQUEST_LEN: usize = 256;

/// What a local command may ask the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRequest {
    /// The status snapshot with live counters: answered with a [`crate::StatusSnapshot`].
    Status,
    /// The busiest clients served recently: answered with a list of [`crate::ClientStatus`].
    Clients,
}

impl ControlRequest {
    /// Every request there is.
    pub const ALL: [Self; 2] = [Self::Status, Self::Clients];

    /// The request's name, as sent on its line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Clients => "clients",
        }
    }

    /// The request a line names (whitespace around it ignored), or the refusal to send back.
    pub fn parse(line: &str) -> Result<Self, ControlRefusal> {
        let name = line.trim();
        Self::ALL.into_iter().find(|request| request.name() == name).ok_or_else(|| {
            let known: Vec<String> =
                Self::ALL.iter().map(|request| format!("{:?}", request.name())).collect();
            ControlRefusal {
                error: format!("unknown request {name:?}; try {}", known.join(" or ")),
            }
        })
    }
}

/// The daemon's answer to a request it does not serve: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRefusal {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_known_by_name_and_others_refused() {
        for request in ControlRequest::ALL {
            assert_eq!(ControlRequest::parse(&format!("{}\n", request.name())), Ok(request));
        }
        let refusal = ControlRequest::parse("peers").unwrap_err();
        assert_eq!(refusal.error, "unknown request \"peers\"; try \"status\" or \"clients\"");
    }
}
