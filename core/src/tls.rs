//! The one rustls client configuration used for HTTP, SMTP, IMAP and POP3.
//!
//! ring is the only crypto provider in the tree (docs/dependencies.md#one-crypto-provider). Certificates are verified against the
//! platform's roots (rustls-platform-verifier), plus extra CA certificates the host adds (the
//! sandbox's throw-away CA); where the platform has no roots, Mozilla's (webpki-roots) are used.
//! Verification is never switched off implicitly.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, ErrorKind, Result};

/// TLS settings.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Extra trusted CA certificates, PEM.
    pub extra_ca_pem: Vec<Vec<u8>>,
    /// Accept any certificate. Only when an account or the host says so explicitly.
    pub danger_accept_invalid_certs: bool,
}

/// The crypto provider (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn parse_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let mut rd = pem;
    let certs: std::result::Result<Vec<_>, _> = rustls_pemfile::certs(&mut rd).collect();
    let certs = certs.map_err(|e| {
        Error::invalid(
            "extra_ca",
            format!("CA certificate PEM could not be read: {e}"),
        )
    })?;
    if certs.is_empty() {
        return Err(Error::invalid(
            "extra_ca",
            "the CA PEM contains no certificate",
        ));
    }
    Ok(certs)
}

/// Build the client configuration.
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::new(ErrorKind::Tls, format!("TLS configuration: {e}")))?;
    let mut extra = Vec::new();
    for pem in &opts.extra_ca_pem {
        extra.extend(parse_pem(pem)?);
    }
    let config = if opts.danger_accept_invalid_certs {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider)))
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NotePresented(Lazy::new(extra, provider))))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// The certificate verifier, built when a first handshake needs it: loading the system's roots
/// (Linux: parsing the CA bundle) costs milliseconds that opening a client should not pay, and
/// many clients never make a TLS connection. Built once per process for the same extra CAs
/// ([`shared_verifier`]); a failure to build is the handshake's error.
#[derive(Debug)]
struct Lazy {
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
    built: std::sync::OnceLock<std::result::Result<Arc<dyn ServerCertVerifier>, String>>,
}

impl Lazy {
    fn new(extra: Vec<CertificateDer<'static>>, provider: Arc<CryptoProvider>) -> Lazy {
        Lazy {
            extra,
            provider,
            built: std::sync::OnceLock::new(),
        }
    }

    fn get(&self) -> std::result::Result<&dyn ServerCertVerifier, rustls::Error> {
        self.built
            .get_or_init(|| {
                shared_verifier(&self.extra, &self.provider).map_err(|e| e.message().to_string())
            })
            .as_ref()
            .map(|v| v.as_ref())
            .map_err(|m| rustls::Error::General(m.clone()))
    }
}

/// The verifier for `extra`, built once per process and shared by every client and connection
/// that trusts the same extra CAs (the system's roots are read once).
fn shared_verifier(
    extra: &[CertificateDer<'static>],
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>> {
    type Built = Vec<(Vec<CertificateDer<'static>>, Arc<dyn ServerCertVerifier>)>;
    static BUILT: std::sync::Mutex<Built> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT
        .lock()
        .map_err(|_| Error::internal("verifier cache poisoned"))?;
    if let Some((_, v)) = built.iter().find(|(e, _)| e.as_slice() == extra) {
        return Ok(v.clone());
    }
    let v = verifier(extra.to_vec(), provider.clone())?;
    built.push((extra.to_vec(), v.clone()));
    Ok(v)
}

/// The platform's verifier (Windows: crypt32's chain engine and the Trusted Root store; macOS:
/// the keychain; Linux: the system's CA bundle) with the extra CAs. Where the platform cannot take
/// extra roots (Wine's crypt32 refuses the chain-engine configuration that carries them), the
/// system's roots still go through the platform and the extra CAs through webpki. Where there is no
/// platform verifier at all, Mozilla's roots (webpki-roots) plus the extra CAs.
fn verifier(
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>> {
    use rustls_platform_verifier::Verifier;
    let platform = if extra.is_empty() {
        Verifier::new(provider.clone())
    } else {
        Verifier::new_with_extra_roots(extra.clone(), provider.clone())
    };
    match platform {
        Ok(v) => Ok(Arc::new(v)),
        Err(e) => match (extra.is_empty(), Verifier::new(provider.clone())) {
            (false, Ok(system)) => {
                tracing::debug!(
                    "the platform verifier cannot add extra roots ({e}); the extra CAs are checked on their own"
                );
                let extra = webpki(RootCertStore::empty(), extra, provider)?;
                Ok(Arc::new(SystemOrExtra { system, extra }))
            }
            _ => {
                tracing::warn!("no platform certificate verifier ({e}); using Mozilla's roots");
                let mozilla = RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                webpki(mozilla, extra, provider)
            }
        },
    }
}

/// A webpki verifier over `roots` plus `extra`.
fn webpki(
    mut roots: RootCertStore,
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>> {
    for c in extra {
        roots
            .add(c)
            .map_err(|e| Error::invalid("extra_ca", format!("CA certificate rejected: {e}")))?;
    }
    let v = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| Error::new(ErrorKind::Tls, format!("TLS verifier: {e}")))?;
    Ok(v)
}

/// The system's roots through the platform, then the extra CAs: a certificate the platform does
/// not know the issuer of is checked again against the extra CAs alone.
#[derive(Debug)]
struct SystemOrExtra {
    system: rustls_platform_verifier::Verifier,
    extra: Arc<dyn ServerCertVerifier>,
}

impl ServerCertVerifier for SystemOrExtra {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .system
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)) => self
                .extra
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.system.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.system.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.system.supported_verify_schemes()
    }
}

#[derive(Debug)]
struct AcceptAnything(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

tokio::task_local! {
    /// The issuer of a certificate the verifier refused, for the handshake running in this task.
    static PRESENTED: std::cell::RefCell<Option<String>>;
}

/// Run `f` (a TLS handshake, or a request that makes one) and say who issued a certificate that
/// was refused in it: a TLS-inspecting proxy's CA is named this way.
pub async fn noting_refused_issuer<F: std::future::Future>(f: F) -> (F::Output, Option<String>) {
    PRESENTED
        .scope(std::cell::RefCell::new(None), async {
            let out = f.await;
            let issuer = PRESENTED.with(|c| c.borrow_mut().take());
            (out, issuer)
        })
        .await
}

/// The issuer of a DER certificate, as an RFC 4514 name (`CN=…,O=…`).
pub fn issuer_of(der: &[u8]) -> Option<String> {
    use x509_cert::der::Decode;
    let c = x509_cert::Certificate::from_der(der).ok()?;
    Some(c.tbs_certificate.issuer.to_string())
}

/// The (lazily built) verifier, noting the issuer of a certificate it refuses (see
/// [`noting_refused_issuer`]).
#[derive(Debug)]
struct NotePresented(Lazy);

impl ServerCertVerifier for NotePresented {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let r = self
            .0
            .get()
            .and_then(|v| v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now));
        if r.is_err() {
            let _ = PRESENTED.try_with(|c| *c.borrow_mut() = issuer_of(end_entity));
        }
        r
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.get()?.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.get()?.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        match self.0.get() {
            Ok(v) => v.supported_verify_schemes(),
            Err(_) => self
                .0
                .provider
                .signature_verification_algorithms
                .supported_schemes(),
        }
    }
}
