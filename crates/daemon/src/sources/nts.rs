//! An NTS source's client side: key establishment with the NTS-KE server over TLS 1.3 (its
//! certificate checked against the system's roots or a given CA file), then each request carried
//! with a cookie and authenticated, each answer checked and its fresh cookies kept. A NAK or an
//! empty cookie jar means a new key exchange before the next request.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use syhub_ntp_proto::nts::cookie::NONCE_LEN;
use syhub_ntp_proto::nts::fields::{MAX_COOKIES, NtsAnswerError, check_answer, client_request};
use syhub_ntp_proto::nts::ke::{KeRequest, KeResponse, message_len};
use syhub_ntp_proto::nts::{EXPORTER_LABEL, KEY_LEN, SessionKeys, exporter_context};
use syhub_ntp_proto::packet::HEADER_LEN;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts certificates outside their validity period until the clock has been synchronised
/// (chrony's `nocerttimecheck`), for a hub whose clock is not yet right (a Pi without a real-time
/// clock boots in the past); everything else is checked as usual, and dates too once synchronised.
#[derive(Debug)]
struct IgnoreCertificateTime {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    clock_trusted: Arc<AtomicBool>,
}

impl ServerCertVerifier for IgnoreCertificateTime {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if self.clock_trusted.load(Ordering::Relaxed) {
            return verdict;
        }
        match verdict {
            Err(Error::InvalidCertificate(
                CertificateError::Expired
                | CertificateError::NotValidYet
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYetContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The TLS client for NTS-KE: roots from `ca_file` or the system, TLS 1.3, ALPN `ntske/1`.
/// With `ignore_certificate_time_until`, certificate dates are not checked until that flag is
/// set (the clock synchronised).
pub fn tls_config(
    ca_file: Option<&Path>,
    ignore_certificate_time_until: Option<Arc<AtomicBool>>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            for certificate in CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok) {
                roots.add(certificate).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("{} holds no PEM certificate", path.display()));
            }
        }
        None => {
            for certificate in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(certificate);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = Arc::new(roots);
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?;
    let mut config = if let Some(clock_trusted) = ignore_certificate_time_until {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| e.to_string())?;
        let verifier = IgnoreCertificateTime { inner, clock_trusted };
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    } else {
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![syhub_ntp_proto::nts::ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// The keys and cookies of a working association, and where to send NTP.
pub struct Association {
    pub keys: SessionKeys,
    pub cookies: Vec<Vec<u8>>,
    pub ntp_server: SocketAddr,
    /// The unique identifier of the request in flight.
    pending: Option<[u8; 32]>,
}

/// One NTS-KE exchange with `host` at `ke_server`.
pub async fn key_exchange(
    tls: Arc<rustls::ClientConfig>,
    host: &str,
    ke_server: SocketAddr,
) -> Result<Association, String> {
    let exchange = async {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| format!("{host}: {e}"))?;
        let stream = tokio::net::TcpStream::connect(ke_server)
            .await
            .map_err(|e| format!("cannot connect to {ke_server}: {e}"))?;
        let connector = tokio_rustls::TlsConnector::from(tls);
        let mut stream =
            connector.connect(name, stream).await.map_err(|e| format!("TLS with {host}: {e}"))?;
        stream.write_all(&KeRequest::encode_client()).await.map_err(|e| e.to_string())?;
        let mut message = Vec::new();
        let mut buf = [0u8; 2048];
        let len = loop {
            if let Some(len) = message_len(&message).map_err(|e| e.to_string())? {
                break len;
            }
            let read = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
            if read == 0 {
                return Err("the NTS-KE server closed before its answer ended".to_owned());
            }
            message.extend_from_slice(&buf[..read]);
        };
        let response = KeResponse::parse(&message[..len]).map_err(|e| format!("NTS-KE: {e}"))?;
        let connection = stream.get_ref().1;
        let export = |s2c| {
            connection
                .export_keying_material(
                    [0u8; KEY_LEN],
                    EXPORTER_LABEL,
                    Some(&exporter_context(response.aead, s2c)),
                )
                .map_err(|e| e.to_string())
        };
        let keys = SessionKeys { c2s: export(false)?, s2c: export(true)? };
        let port = response.port.unwrap_or(123);
        let ntp_server = match &response.server {
            None => SocketAddr::new(ke_server.ip(), port),
            Some(name) => tokio::net::lookup_host((name.as_str(), port))
                .await
                .map_err(|e| format!("cannot resolve {name}: {e}"))?
                .next()
                .ok_or_else(|| format!("{name} resolves to no address"))?,
        };
        Ok(Association { keys, cookies: response.cookies, ntp_server, pending: None })
    };
    tokio::time::timeout(KE_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("NTS-KE with {ke_server} timed out"))?
}

impl Association {
    /// The request for `header` with a cookie and enough placeholders to fill the jar again;
    /// `None` when the jar is empty (time for a new key exchange).
    pub fn protect(&mut self, header: &[u8]) -> Option<Vec<u8>> {
        let header: &[u8; HEADER_LEN] = header.get(..HEADER_LEN)?.try_into().ok()?;
        let cookie = self.cookies.pop()?;
        let mut random = [0u8; 32 + NONCE_LEN];
        getrandom::fill(&mut random).ok()?;
        let mut unique_id = [0u8; 32];
        unique_id.copy_from_slice(&random[..32]);
        let nonce: [u8; NONCE_LEN] = random[32..].try_into().ok()?;
        let placeholders = MAX_COOKIES.saturating_sub(self.cookies.len() + 1);
        self.pending = Some(unique_id);
        Some(client_request(header, &unique_id, &cookie, placeholders, &self.keys, &nonce))
    }

    /// Checks an answer against the request in flight; its cookies go into the jar.
    pub fn accept(&mut self, answer: &[u8]) -> Result<(), NtsAnswerError> {
        let unique_id = self.pending.ok_or(NtsAnswerError::WrongUniqueId)?;
        let cookies = check_answer(answer, &unique_id, &self.keys)?;
        self.pending = None;
        self.cookies.extend(cookies);
        self.cookies.truncate(MAX_COOKIES);
        Ok(())
    }
}
