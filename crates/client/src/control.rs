//! The client of the daemon's control socket, for the commands and operations that ask a running
//! daemon about itself. It speaks the wire format of the status crate, one request and one line
//! of JSON per connection.

use serde::de::DeserializeOwned;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;
use syhub_ntp_status::control::{ControlRefusal, ControlRequest};
use syhub_ntp_status::{ClientStatus, StatusSnapshot};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// How long connecting, and then the answer, may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the daemon at {}: {source} (is syhub-ntp running? is this the right --config?)", path.display())]
    Connect { path: PathBuf, source: io::Error },
    #[error("the daemon's answer could not be read: {0}")]
    Answer(String),
}

/// Asks the daemon at `path` for its status.
pub async fn request_status(path: &Path) -> Result<StatusSnapshot, ClientError> {
    request(path, ControlRequest::Status).await
}

/// Asks the daemon at `path` for its busiest clients.
pub async fn request_clients(path: &Path) -> Result<Vec<ClientStatus>, ClientError> {
    request(path, ControlRequest::Clients).await
}

async fn request<T: DeserializeOwned>(path: &Path, what: ControlRequest) -> Result<T, ClientError> {
    let connect = |source| ClientError::Connect { path: path.to_owned(), source };
    let stream = tokio::time::timeout(ANSWER_TIMEOUT, UnixStream::connect(path))
        .await
        .map_err(|_| connect(io::Error::new(io::ErrorKind::TimedOut, "timed out")))?
        .map_err(connect)?;
    let (reader, mut writer) = stream.into_split();
    writer
        .write_all(format!("{}\n", what.name()).as_bytes())
        .await
        .map_err(|e| ClientError::Answer(e.to_string()))?;
    let mut line = String::new();
    tokio::time::timeout(ANSWER_TIMEOUT, BufReader::new(reader).read_line(&mut line))
        .await
        .map_err(|_| ClientError::Answer("timed out".into()))?
        .map_err(|e| ClientError::Answer(e.to_string()))?;
    decode(&line)
}

/// One answer line: what was asked for, or the daemon's refusal as the error.
fn decode<T: DeserializeOwned>(line: &str) -> Result<T, ClientError> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| ClientError::Answer(e.to_string()))?;
    if value.get("error").is_some() {
        let refusal: ControlRefusal =
            serde_json::from_value(value).map_err(|e| ClientError::Answer(e.to_string()))?;
        return Err(ClientError::Answer(format!("the daemon refused: {}", refusal.error)));
    }
    serde_json::from_value(value).map_err(|e| ClientError::Answer(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_refusals_are_told_apart() {
        let status = StatusSnapshot { stratum: 2, ..StatusSnapshot::default() };
        let line = serde_json::to_string(&status).unwrap();
        assert_eq!(decode::<StatusSnapshot>(&line).unwrap(), status);
        assert_eq!(decode::<Vec<ClientStatus>>("[]\n").unwrap(), Vec::new());
        let refused = decode::<StatusSnapshot>(r#"{"error":"unknown request"}"#).unwrap_err();
        assert!(refused.to_string().contains("refused: unknown request"), "{refused}");
        assert!(decode::<StatusSnapshot>("not json").is_err());
    }

    #[tokio::test]
    async fn an_absent_daemon_is_reported_with_its_socket() {
        let path = std::env::temp_dir().join(format!("syhub-client-{}.sock", std::process::id()));
        let error = request_status(&path).await.unwrap_err();
        assert!(matches!(error, ClientError::Connect { .. }), "{error}");
        assert!(error.to_string().contains(path.to_str().unwrap()), "{error}");
    }
}
