//! The control socket's server: a Unix socket (never on the network) where local commands ask
//! for the status snapshot, one line-delimited JSON answer per request (the wire format is the
//! status crate's; its client is the client crate). Every local user may ask for the status, as
//! `chronyc tracking` allows; the devices list (addresses) only root, the daemon's own account
//! and members of its group, judged by the peer's credentials. Each connection has two seconds
//! from accept to send its request, and one still silent gives way to a newer one of its user or
//! its pool (see `crate::admission`), so no user's idle connections can keep another's `status`
//! out, and none at all can keep out root's or the daemon's account's.

use crate::admission::{Admission, Place, Pool, Share};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use syhub_ntp_state::service_account::listed_in_group;
use syhub_ntp_status::control::{ControlRefusal, ControlRequest, MAX_REQUEST_LEN};
use syhub_ntp_status::{RequestTally, StatusSnapshot};
use syhub_ntp_sys::privileges;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// From accept to the whole request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// To write the answer, once the request is read.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// Root and the daemon's own account: places of their own, no user's share.
const TRUSTED: Pool = Pool { id: 0, places: 16 };
/// Every other local user.
const OTHERS: Pool = Pool { id: 1, places: 48 };
/// Places of one user in [`OTHERS`].
const PLACES_PER_USER: usize = 4;
/// After a failed accept (descriptors exhausted), the pause before the next.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

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
    // Privileges are dropped by now: this is the daemon's own account.
    let own_uid = privileges::effective_uid();
    let admission = Admission::new();
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let accepted_at = Instant::now();
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::debug!("control socket: cannot accept a connection: {error}");
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let Ok(peer) = stream.peer_cred() else { continue };
        let Some(place) = admit(&admission, peer.uid(), own_uid) else {
            tracing::debug!("control socket: no place for uid {}, closed", peer.uid());
            continue;
        };
        let context = context.clone();
        let asker = Asker { uid: peer.uid(), gid: peer.gid() };
        tokio::spawn(async move {
            tokio::select! {
                _ = place.evicted() => {}
                _ = answer(stream, asker, context, &place, accepted_at) => {}
            }
        });
        // A connection that gave way closes before the next is accepted.
        tokio::task::yield_now().await;
    }
    let _ = std::fs::remove_file(&path);
}

/// A place for a connection of user `uid` to a daemon running as `own_uid`.
fn admit(admission: &Admission, uid: u32, own_uid: u32) -> Option<Place> {
    if uid == 0 || uid == own_uid {
        admission.admit(TRUSTED, None)
    } else {
        admission.admit(OTHERS, Some(Share { uid, places: PLACES_PER_USER }))
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

/// Reads the request (by `accepted_at` + [`REQUEST_TIMEOUT`]) and writes its answer.
async fn answer(
    stream: UnixStream,
    asker: Asker,
    context: ControlContext,
    place: &Place,
    accepted_at: Instant,
) -> io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(reader.take(MAX_REQUEST_LEN as u64));
    tokio::time::timeout_at(accepted_at + REQUEST_TIMEOUT, reader.read_line(&mut line)).await??;
    if !place.answering() {
        return Ok(());
    }
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
    let write = async {
        writer.write_all(reply.as_bytes()).await?;
        writer.write_all(b"\n").await?;
        writer.shutdown().await
    };
    tokio::time::timeout(ANSWER_TIMEOUT, write).await?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The daemon's own account in these tests.
    const OWN: u32 = 999;

    #[tokio::test]
    async fn one_users_sixty_idle_connections_keep_out_no_one() {
        let admission = Admission::new();
        let idle: Vec<Place> = (0..60).filter_map(|_| admit(&admission, 1000, OWN)).collect();
        assert_eq!(idle.len(), 60, "each newer one gets in");
        assert_eq!(admission.served(), PLACES_PER_USER);
        let others: Vec<Place> =
            [1001, 0, OWN].map(|uid| admit(&admission, uid, OWN).unwrap()).into();
        assert!(others.iter().all(Place::answering));
        for place in &idle[60 - PLACES_PER_USER..] {
            assert!(!place.was_evicted().await);
        }
    }

    #[tokio::test]
    async fn other_users_together_cannot_crowd_out_root_or_the_daemons_account() {
        let admission = Admission::new();
        let crowd: Vec<Place> = (0..OTHERS.places as u32)
            .filter_map(|n| admit(&admission, 2000 + n / 4, OWN))
            .collect();
        assert_eq!(admission.served(), OTHERS.places);
        let trusted: Vec<Place> =
            (0..TRUSTED.places).filter_map(|n| admit(&admission, [0, OWN][n % 2], OWN)).collect();
        assert_eq!(trusted.len(), TRUSTED.places);
        for place in &crowd {
            assert!(!place.was_evicted().await, "no one made way for the trusted");
        }
        // A newcomer among the others takes the place of the oldest idle one of theirs.
        let newcomer = admit(&admission, 3000, OWN).unwrap();
        assert!(crowd[0].was_evicted().await && !crowd[1].was_evicted().await);
        assert!(newcomer.answering());
    }
}
