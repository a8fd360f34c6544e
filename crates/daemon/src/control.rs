//! The control socket's server: a Unix socket (never on the network) where local commands ask
//! for the status snapshot, one line-delimited JSON answer per request (the wire format is the
//! status crate's; its client is the client crate).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use syhub_ntp_status::control::{ControlRequest, MAX_REQUEST_LEN};
use syhub_ntp_status::{RequestTally, StatusSnapshot};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

/// Clients served at once; more wait.
const MAX_CLIENTS: usize = 8;
/// A client gets this long to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
#[error("cannot open the control socket {}: {source}", path.display())]
pub(crate) struct ControlSocketError {
    pub path: PathBuf,
    pub source: io::Error,
}

/// Binds the control socket at `path` (creating its directory, replacing a stale socket left by
/// a crash, refusing to replace anything else), readable and writable by owner and group.
pub(crate) fn bind(path: &Path) -> Result<UnixListener, ControlSocketError> {
    let error = |source| ControlSocketError { path: path.to_owned(), source };
    if let Some(directory) = path.parent() {
        std::fs::create_dir_all(directory).map_err(error)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if std::os::unix::fs::FileTypeExt::is_socket(&metadata.file_type()) => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(error(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another syhub-ntp is using it",
                )));
            }
            std::fs::remove_file(path).map_err(error)?;
        }
        Ok(_) => {
            return Err(error(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a file that is not a socket is in the way",
            )));
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path).map_err(error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(error)?;
    Ok(listener)
}

/// What the control socket answers from.
#[derive(Clone)]
pub(crate) struct ControlContext {
    pub status: watch::Receiver<StatusSnapshot>,
    pub counters: Arc<RequestTally>,
    pub devices: crate::devices::DevicesView,
}

/// Answers requests until cancelled, then removes the socket.
pub(crate) async fn serve(
    listener: UnixListener,
    path: PathBuf,
    context: ControlContext,
    cancel: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(permit) = slots.clone().acquire_owned().await else { break };
        let context = context.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, context)).await;
            drop(permit);
        });
    }
    let _ = std::fs::remove_file(&path);
}

async fn answer(stream: UnixStream, context: ControlContext) -> io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut line = String::new();
    BufReader::new(reader.take(MAX_REQUEST_LEN as u64)).read_line(&mut line).await?;
    let reply = match ControlRequest::parse(&line) {
        Ok(ControlRequest::Status) => {
            let status = context.status.borrow().with_counters(&context.counters);
            serde_json::to_string(&status)
        }
        Ok(ControlRequest::Clients) => serde_json::to_string(&context.devices.devices()),
        Err(refusal) => serde_json::to_string(&refusal),
    }
    .unwrap_or_default();
    writer.write_all(reply.as_bytes()).await?;
    writer.write_all(b"\n").await?;
    writer.shutdown().await
}
