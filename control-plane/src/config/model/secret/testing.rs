//! Certificates, keys and Kubernetes Secret YAML made for tests.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A CA, and a certificate it issued with its key (PEM).
pub struct TestCredential {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCredential {
    /// A fresh CA and a certificate for `dns_name`.
    pub fn new(dns_name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "test CA");
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_pem = params.self_signed(&ca_key).expect("CA").pem();
        let issuer = Issuer::new(params, ca_key);
        let key = KeyPair::generate().expect("key");
        let cert_pem = CertificateParams::new(vec![dns_name.to_string()])
            .expect("params")
            .signed_by(&key, &issuer)
            .expect("certificate")
            .pem();
        Self {
            ca_pem,
            cert_pem,
            key_pem: key.serialize_pem(),
        }
    }

    /// A `kubernetes.io/tls` Secret `namespace/name` with this certificate
    /// and key, and the CA as `ca.crt` when `with_ca`, as `kubectl get
    /// secret -o yaml` prints it.
    pub fn tls_secret(&self, name: &str, namespace: &str, with_ca: bool) -> String {
        let mut data = vec![
            ("tls.crt", self.cert_pem.as_str()),
            ("tls.key", self.key_pem.as_str()),
        ];
        if with_ca {
            data.push(("ca.crt", self.ca_pem.as_str()));
        }
        secret_yaml(name, namespace, "kubernetes.io/tls", &data)
    }
}

/// Secret YAML with `data` base64-encoded.
pub fn secret_yaml(
    name: &str,
    namespace: &str,
    secret_type: &str,
    data: &[(&str, &str)],
) -> String {
    let mut yaml = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\ntype: {secret_type}\ndata:\n"
    );
    for (key, value) in data {
        yaml.push_str(&format!("  {key}: {}\n", STANDARD.encode(value)));
    }
    yaml
}
