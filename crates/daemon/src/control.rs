//! The control socket's server: a Unix socket (never on the network) where local commands ask
//! for the status snapshot, one line-delimited JSON answer per request (the wire format is the
//! status crate's; its client is the client crate). Every local user may ask for the status, as
//! `chronyc tracking` allows; the devices list (addresses) only root, the daemon's own account
//! and members of its group, judged by the peer's credentials. No user can hold more than a few
//! of the connections served at once, so none can starve the others.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use syhub_ntp_state::service_account::listed_in_group;
use syhub_ntp_status::control::{ControlRefusal, ControlRequest, MAX_REQUEST_LEN};
use syhub_ntp_status::{RequestTally, StatusSnapshot};
use syhub_ntp_sys::privileges;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

/// Clients served at once; more wait.
const MAX_CLIENTS: usize = 64;
/// Connections one user other than root is served at once; more are closed at once.
const MAX_PER_USER: usize = 4;
/// A client gets this long to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
#[error("cannot open the control socket {}: {source}", path.display())]
pub(crate) struct ControlSocketError {
    pub path: PathBuf,
    pub source: io::Error,
}

/// Binds the control socket at `path` (creating its directory, replacing a stale socket left by
/// a crash, refusing to replace anything else), open to every local user (what each may ask is
/// decided per request).
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
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(error)?;
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
    let per_user: Arc<Mutex<HashMap<u32, usize>>> = Arc::default();
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(peer) = stream.peer_cred() else { continue };
        let Some(held) = UserSlot::take(&per_user, peer.uid()) else { continue };
        let Ok(permit) = slots.clone().acquire_owned().await else { break };
        let context = context.clone();
        let asker = Asker { uid: peer.uid(), gid: peer.gid() };
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, asker, context)).await;
            drop((permit, held));
        });
    }
    let _ = std::fs::remove_file(&path);
}

/// One user's hold on the connections served: released when dropped.
struct UserSlot {
    per_user: Arc<Mutex<HashMap<u32, usize>>>,
    uid: u32,
}

impl UserSlot {
    /// A slot for `uid`, unless it already holds its share (root always gets one).
    fn take(per_user: &Arc<Mutex<HashMap<u32, usize>>>, uid: u32) -> Option<Self> {
        let mut counts = per_user.lock().ok()?;
        let count = counts.entry(uid).or_default();
        if uid != 0 && *count >= MAX_PER_USER {
            return None;
        }
        *count += 1;
        Some(Self { per_user: per_user.clone(), uid })
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.per_user.lock()
            && let Some(count) = counts.get_mut(&self.uid)
        {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.uid);
            }
        }
    }
}

/// Who asks, by the kernel's word (SO_PEERCRED).
#[derive(Debug, Clone, Copy)]
struct Asker {
    uid: u32,
    gid: u32,
}

impl Asker {
    /// Whether this asker may see the devices list: root, the daemon's own account, or a member
    /// of the daemon's group (its primary group, or listed in /etc/group).
    fn may_list_devices(self) -> bool {
        let (uid, gid) = (privileges::effective_uid(), privileges::effective_gid());
        self.uid == 0
            || self.uid == uid
            || self.gid == gid
            || listed_in_group(Path::new("/"), self.uid, gid)
    }
}

async fn answer(stream: UnixStream, asker: Asker, context: ControlContext) -> io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut line = String::new();
    BufReader::new(reader.take(MAX_REQUEST_LEN as u64)).read_line(&mut line).await?;
    let reply = match ControlRequest::parse(&line) {
        Ok(ControlRequest::Status) => {
            let status = context.status.borrow().with_counters(&context.counters);
            serde_json::to_string(&status)
        }
        Ok(ControlRequest::Clients) if asker.may_list_devices() => {
            serde_json::to_string(&context.devices.devices())
        }
        Ok(ControlRequest::Clients) => serde_json::to_string(&ControlRefusal {
            error: "the devices list shows the hub's clients' addresses: ask as root or as a \
                    member of the daemon's group (syhub-ntp)"
                .into(),
        }),
        Err(refusal) => serde_json::to_string(&refusal),
    }
    .unwrap_or_default();
    writer.write_all(reply.as_bytes()).await?;
    writer.write_all(b"\n").await?;
    writer.shutdown().await
}
