//! Serving NTS: the NTS-KE server (TLS 1.3 only, ALPN `ntske/1`) that hands each client its keys
//! and eight cookies, and the cookie keyring kept on disk and rotated daily. Handshakes are bounded
//! in number and time, and one whose client has not yet sent its request gives way to a newer
//! connection when all places are taken, so slow or silent clients cannot hold the server.

use crate::admission::{Admission, Place, Pool};
use crate::config::NtsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use syhub_ntp_proto::nts::cookie::{Keyring, NONCE_LEN, ServerKey};
use syhub_ntp_proto::nts::ke::{self, KeError, KeRequest};
use syhub_ntp_proto::nts::{EXPORTER_LABEL, KEY_LEN, SessionKeys, exporter_context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Cookies per KE exchange (RFC 8915 recommends 8).
const COOKIES_PER_EXCHANGE: usize = 8;
/// Handshakes served at once, across the listeners.
const HANDSHAKES: Pool = Pool { id: 0, places: 32 };
/// The whole exchange, TLS included, must finish within this.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed accept (descriptors exhausted), the pause before the next.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// How often the cookie key changes.
const ROTATION: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum NtsError {
    #[error("[nts] certificate is set but private_key is not")]
    NoKey,
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} holds no PEM certificate", .0.display())]
    NoCertificate(PathBuf),
    #[error("{} holds no PEM private key", .0.display())]
    NoPrivateKey(PathBuf),
    #[error("the certificate and key do not make a TLS server: {0}")]
    Tls(rustls::Error),
    #[error("cannot listen for NTS-KE on {address}: {source}")]
    Bind { address: SocketAddr, source: std::io::Error },
    #[error("cannot keep the NTS cookie keys in {}: {source}", path.display())]
    Keys { path: PathBuf, source: std::io::Error },
}

/// Everything NTS serving needs, made ready while still privileged.
pub(crate) struct NtsServer {
    acceptor: tokio_rustls::TlsAcceptor,
    listeners: Vec<std::net::TcpListener>,
    pub keyring: Arc<RwLock<Keyring>>,
    keys_file: PathBuf,
    /// The NTP port to announce when it is not 123.
    ntp_port: Option<u16>,
}

fn random_key() -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    // The kernel's generator does not fail once the system has booted.
    let _ = getrandom::fill(&mut key);
    key
}

/// The keyring in `path`, or a new one written there (mode 0600).
pub(crate) fn load_keyring(path: &Path) -> Result<Keyring, NtsError> {
    if let Some(keyring) = std::fs::read_to_string(path).ok().and_then(|t| Keyring::from_text(&t)) {
        return Ok(keyring);
    }
    let keyring = Keyring { current: ServerKey { id: 1, key: random_key() }, previous: None };
    syhub_ntp_state::atomic_file::write(path, keyring.to_text().as_bytes(), 0o600)
        .map_err(|source| NtsError::Keys { path: path.to_owned(), source })?;
    Ok(keyring)
}

/// Prepares NTS serving when `[nts] certificate` is set: TLS config, KE listeners, keyring.
pub(crate) fn prepare(config: &NtsConfig, ntp_port: u16) -> Result<Option<NtsServer>, NtsError> {
    let Some(certificate) = &config.certificate else { return Ok(None) };
    let key_path = config.private_key.as_ref().ok_or(NtsError::NoKey)?;
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| NtsError::Read { path: path.to_owned(), source })
    };
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&read(certificate)?).filter_map(Result::ok).collect();
    if chain.is_empty() {
        return Err(NtsError::NoCertificate(certificate.clone()));
    }
    let key = PrivateKeyDer::from_pem_slice(&read(key_path)?)
        .map_err(|_| NtsError::NoPrivateKey(key_path.clone()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(NtsError::Tls)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(NtsError::Tls)?;
    tls.alpn_protocols = vec![syhub_ntp_proto::nts::ALPN.to_vec()];
    let listeners = config
        .listen
        .iter()
        .map(|&address| {
            let bind = || -> std::io::Result<std::net::TcpListener> {
                let socket = socket2::Socket::new(
                    socket2::Domain::for_address(address),
                    socket2::Type::STREAM,
                    None,
                )?;
                if address.is_ipv6() {
                    socket.set_only_v6(true)?;
                }
                socket.set_reuse_address(true)?;
                socket.bind(&address.into())?;
                socket.listen(64)?;
                socket.set_nonblocking(true)?;
                Ok(socket.into())
            };
            bind().map_err(|source| NtsError::Bind { address, source })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let keyring = load_keyring(&config.keys_file)?;
    Ok(Some(NtsServer {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
        listeners,
        keyring: Arc::new(RwLock::new(keyring)),
        keys_file: config.keys_file.clone(),
        ntp_port: (ntp_port != 123).then_some(ntp_port),
    }))
}

impl NtsServer {
    /// Serves NTS-KE and rotates the cookie key until cancelled.
    pub(crate) async fn serve(self, cancel: CancellationToken) {
        let admission = Admission::new();
        let mut tasks = tokio::task::JoinSet::new();
        for listener in self.listeners {
            let Ok(listener) = TcpListener::from_std(listener) else { continue };
            let (acceptor, keyring, admission, cancel) =
                (self.acceptor.clone(), self.keyring.clone(), admission.clone(), cancel.clone());
            let ntp_port = self.ntp_port;
            tasks.spawn(async move {
                loop {
                    let accepted = tokio::select! {
                        _ = cancel.cancelled() => return,
                        accepted = listener.accept() => accepted,
                    };
                    let (stream, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            tracing::debug!("NTS-KE: cannot accept a connection: {error}");
                            tokio::time::sleep(ACCEPT_PAUSE).await;
                            continue;
                        }
                    };
                    let Some(place) = admission.admit(HANDSHAKES, None) else {
                        tracing::debug!(%peer, "NTS-KE: every place is being answered, closed");
                        continue;
                    };
                    let (acceptor, keyring) = (acceptor.clone(), keyring.clone());
                    tokio::spawn(async move {
                        let exchange = exchange(acceptor, stream, &keyring, ntp_port, &place);
                        let outcome = tokio::select! {
                            _ = place.evicted() => "gave way to a newer connection".to_owned(),
                            done = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange) => match done {
                                Ok(Ok(())) => "done".to_owned(),
                                Ok(Err(error)) => format!("failed: {error}"),
                                Err(_) => "timed out".to_owned(),
                            },
                        };
                        tracing::debug!(%peer, "NTS-KE exchange {outcome}");
                    });
                    // A connection that gave way closes before the next is accepted.
                    tokio::task::yield_now().await;
                }
            });
        }
        let (keyring, path) = (self.keyring.clone(), self.keys_file.clone());
        tasks.spawn(async move {
            let mut rotation = tokio::time::interval(ROTATION);
            rotation.tick().await;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = rotation.tick() => {}
                }
                let text = {
                    let Ok(mut ring) = keyring.write() else { return };
                    ring.rotate(random_key());
                    ring.to_text()
                };
                if let Err(error) =
                    syhub_ntp_state::atomic_file::write(&path, text.as_bytes(), 0o600)
                {
                    tracing::warn!(
                        "cannot keep the rotated NTS cookie key in {}: {error}",
                        path.display()
                    );
                }
            }
        });
        while tasks.join_next().await.is_some() {}
    }
}

/// One NTS-KE exchange: TLS, the client's request, keys from the exporter, the answer. Once the
/// request is in, the connection keeps its `place`.
async fn exchange(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    keyring: &RwLock<Keyring>,
    ntp_port: Option<u16>,
    place: &Place,
) -> std::io::Result<()> {
    let mut tls = acceptor.accept(stream).await?;
    let mut message = Vec::new();
    let mut buf = [0u8; 1024];
    let len = loop {
        match ke::message_len(&message) {
            Ok(Some(len)) => break Ok(len),
            Ok(None) => {}
            Err(error) => break Err(error),
        }
        let read = tls.read(&mut buf).await?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed mid-request",
            ));
        }
        message.extend_from_slice(&buf[..read]);
    };
    if !place.answering() {
        return Ok(());
    }
    let response = match len.and_then(|len| KeRequest::parse(&message[..len])) {
        Ok(request) => match request.chosen() {
            Some(aead) => {
                let keys = export_keys(tls.get_ref().1, aead)?;
                let cookies = {
                    let ring =
                        keyring.read().map_err(|_| std::io::Error::other("keyring poisoned"))?;
                    (0..COOKIES_PER_EXCHANGE)
                        .map(|_| {
                            let mut nonce = [0u8; NONCE_LEN];
                            let _ = getrandom::fill(&mut nonce);
                            ring.make_cookie(&keys, &nonce)
                        })
                        .collect::<Vec<_>>()
                };
                ke::encode_response(aead, &cookies, None, ntp_port)
            }
            None => ke::encode_error(KeError::NoCommonParameters.code()),
        },
        Err(error) => ke::encode_error(error.code()),
    };
    tls.write_all(&response).await?;
    tls.shutdown().await
}

fn export_keys(connection: &rustls::ServerConnection, aead: u16) -> std::io::Result<SessionKeys> {
    let export = |server_to_client| {
        connection
            .export_keying_material(
                [0u8; KEY_LEN],
                EXPORTER_LABEL,
                Some(&exporter_context(aead, server_to_client)),
            )
            .map_err(std::io::Error::other)
    };
    Ok(SessionKeys { c2s: export(false)?, s2c: export(true)? })
}
