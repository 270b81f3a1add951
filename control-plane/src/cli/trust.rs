//! The mesh's trust material as the commands set it up from the CA
//! directory: the certificate authority, the token key (and the tokens
//! `token create` mints with it), and who may call the secure port.

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use control_plane::auth::{Authenticator, KubernetesTokens, ServiceAccount, TokenSigningKey};
use control_plane::ca::{self, CertificateAuthority, RootSource};

use super::serve::ServeOptions;

/// `token create`: the token on stdout, nothing else.
pub fn create_token(
    ca_dir: &Path,
    namespace: &str,
    service_account: &str,
    ttl: Duration,
) -> anyhow::Result<()> {
    let account = ServiceAccount::new(namespace, service_account)?;
    let key = token_signing_key(ca_dir)?;
    println!("{}", key.mint(&account, SystemTime::now(), ttl)?);
    Ok(())
}

/// The token key in `ca_dir`, created on first need.
fn token_signing_key(ca_dir: &Path) -> anyhow::Result<TokenSigningKey> {
    let pem = ca::load_or_create_token_key(ca_dir)?;
    TokenSigningKey::from_pem(&pem)
        .with_context(|| format!("read {}", ca_dir.join(ca::TOKEN_KEY_FILE).display()))
}

/// The mesh CA in `ca_dir`, loaded or created (and `root-cert.pem` written).
pub fn certificate_authority(
    ca_dir: &Path,
    trust_domain: &str,
    ttl: Duration,
) -> anyhow::Result<CertificateAuthority> {
    let ca = CertificateAuthority::load_or_create(ca_dir, trust_domain, ttl)?;
    let action = match ca.source() {
        RootSource::Created(_) => "generated a root CA and saved it",
        RootSource::Loaded(_) => "loaded the root CA",
    };
    tracing::info!(
        dir = %ca_dir.display(),
        root = %ca_dir.join(ca::ROOT_CERT_FILE).display(),
        workload_cert_ttl = %humantime::format_duration(ttl),
        "{action}"
    );
    Ok(ca)
}

/// Who may call the secure port: the control plane's own tokens and, with
/// `--jwks`, a cluster's.
pub fn authenticator(options: &ServeOptions) -> anyhow::Result<Authenticator> {
    let own = token_signing_key(&options.ca_dir)?;
    let kubernetes = match (&options.jwks, &options.jwt_issuer) {
        (Some(jwks), Some(issuer)) => Some(KubernetesTokens::load(jwks, issuer)?),
        _ => None,
    };
    Ok(Authenticator::new(&own, kubernetes))
}
