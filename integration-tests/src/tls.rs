//! A certificate authority made for one test, and server certificates it
//! signs. Its certificate is written to a PEM file that curl (`--cacert`)
//! and Envoy (`trusted_ca`) can trust, readable by every user: proxies run
//! as uid 1337 read it for a DestinationRule's `caCertificates`.

use std::fs::{self, Permissions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CertifiedKey, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::{RootCertStore, ServerConfig};
use tempfile::TempDir;

/// A test CA: its key, its self-signed certificate and that certificate's
/// PEM file (removed on drop).
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    cert_path: PathBuf,
    _dir: TempDir,
}

impl TestCa {
    pub fn new() -> Result<Self> {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "mesh test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut params);
        let key = KeyPair::generate().context("generating the CA key")?;
        let issuer = CertifiedIssuer::self_signed(params, key).context("self-signing the CA")?;
        let dir = tempfile::tempdir().context("creating the CA's temp dir")?;
        // Only the certificate is written here; the key stays in memory.
        fs::set_permissions(dir.path(), Permissions::from_mode(0o755))
            .with_context(|| format!("opening {} to every user", dir.path().display()))?;
        let cert_path = dir.path().join("ca.pem");
        fs::write(&cert_path, issuer.pem())
            .with_context(|| format!("writing {}", cert_path.display()))?;
        fs::set_permissions(&cert_path, Permissions::from_mode(0o644))
            .with_context(|| format!("making {} readable", cert_path.display()))?;
        Ok(Self {
            issuer,
            cert_path,
            _dir: dir,
        })
    }

    /// A file holding the CA certificate, PEM-encoded.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// A server certificate for `names` (DNS names or IP addresses), signed
    /// by this CA.
    pub fn issue(&self, names: &[&str]) -> Result<CertifiedKey<KeyPair>> {
        let sans: Vec<String> = names.iter().map(ToString::to_string).collect();
        let mut params = CertificateParams::new(sans)
            .with_context(|| format!("certificate parameters for {names:?}"))?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        set_validity(&mut params);
        let signing_key = KeyPair::generate().context("generating a server key")?;
        let cert = params
            .signed_by(&signing_key, &self.issuer)
            .with_context(|| format!("signing a certificate for {names:?}"))?;
        Ok(CertifiedKey { cert, signing_key })
    }

    /// A client certificate for `name` (its CN and DNS SAN), signed by this
    /// CA and usable only for client authentication.
    pub fn issue_client(&self, name: &str) -> Result<CertifiedKey<KeyPair>> {
        let mut params = CertificateParams::new(vec![name.to_string()])
            .with_context(|| format!("certificate parameters for {name}"))?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        set_validity(&mut params);
        let signing_key = KeyPair::generate().context("generating a client key")?;
        let cert = params
            .signed_by(&signing_key, &self.issuer)
            .with_context(|| format!("signing a client certificate for {name}"))?;
        Ok(CertifiedKey { cert, signing_key })
    }

    /// The CA certificate, PEM-encoded.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A rustls server configuration presenting a certificate for `names`
    /// and offering the ALPN protocols `alpn`.
    pub fn server_config(&self, names: &[&str], alpn: &[&[u8]]) -> Result<Arc<ServerConfig>> {
        self.build_server_config(names, alpn, None)
    }

    /// Like [`TestCa::server_config`], and asking for a client certificate
    /// signed by this CA: one that is presented must verify, and a client
    /// without one is let in (nginx's `ssl_verify_client optional`), so
    /// that a test can tell which clients presented one.
    pub fn client_auth_server_config(
        &self,
        names: &[&str],
        alpn: &[&[u8]],
    ) -> Result<Arc<ServerConfig>> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.issuer.der().to_vec()))
            .context("trusting the test CA")?;
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .allow_unauthenticated()
        .build()
        .context("building the client certificate verifier")?;
        self.build_server_config(names, alpn, Some(verifier))
    }

    fn build_server_config(
        &self,
        names: &[&str],
        alpn: &[&[u8]],
        clients: Option<Arc<dyn ClientCertVerifier>>,
    ) -> Result<Arc<ServerConfig>> {
        let CertifiedKey { cert, signing_key } = self.issue(names)?;
        let chain = vec![CertificateDer::from(cert.der().to_vec())];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
        let builder =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .context("choosing TLS versions")?;
        let builder = match clients {
            Some(verifier) => builder.with_client_cert_verifier(verifier),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .context("building the TLS server configuration")?;
        config.alpn_protocols = alpn.iter().map(|proto| proto.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

/// A validity period every TLS stack accepts (no far-future dates).
fn set_validity(params: &mut CertificateParams) {
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2099, 1, 1);
}
