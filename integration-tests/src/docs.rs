//! istio.io's egress tasks as published (`fixtures/docs/`, one file per
//! snippet, byte for byte) and what the docs' shell and `kubectl` do to a
//! snippet before the API server sees it: expand `$VARIABLES`, put the
//! document in the namespace of `kubectl apply -n`, and base64 the files
//! of `kubectl create secret --from-file`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_yaml::Value;

use crate::tls::TestCa;

/// `fixtures/docs`: a directory per task, and `reference/` for the
/// reference pages' examples.
pub fn docs_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docs")).to_path_buf()
}

/// The snippet `<task>/<file>` of `fixtures/docs`, as published.
pub fn snippet(path: &str) -> Result<String> {
    let file = docs_dir().join(path);
    fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))
}

/// `yaml` as the shell expands a here-document: each `$NAME` and
/// `${NAME}` of `values` replaced by its value.
pub fn expand(yaml: &str, values: &[(&str, String)]) -> String {
    values.iter().fold(yaml.to_string(), |yaml, (name, value)| {
        yaml.replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value)
    })
}

/// `yaml` as `kubectl apply -n <namespace>` sends it: every document
/// without a namespace of its own gets `namespace` (comments are not kept;
/// kubectl drops them too).
pub fn in_namespace(yaml: &str, namespace: &str) -> Result<String> {
    let mut documents = Vec::new();
    for document in yaml.split("\n---\n") {
        let mut value: Value = serde_yaml::from_str(document).context("parsing a docs snippet")?;
        if let Some(metadata) = value
            .get_mut("metadata")
            .and_then(Value::as_mapping_mut)
            .filter(|metadata| !metadata.contains_key("namespace"))
        {
            metadata.insert("namespace".into(), namespace.into());
        }
        documents.push(serde_yaml::to_string(&value).context("writing a docs snippet")?);
    }
    Ok(documents.join("---\n"))
}

/// The files of the docs' `kubectl create secret generic ... --from-file`
/// commands, made by a test CA instead of the docs' openssl commands: the
/// CA certificate (`example.com.crt`), and a client certificate and key
/// (`client.example.com.crt`, `.key`) it signed.
pub struct ClientCredential {
    ca_crt: String,
    tls_crt: String,
    tls_key: String,
}

impl ClientCredential {
    /// A client certificate for `client.example.com`, signed by `ca`.
    pub fn new(ca: &TestCa) -> Result<Self> {
        let client = ca.issue_client("client.example.com")?;
        Ok(Self {
            ca_crt: ca.cert_pem(),
            tls_crt: client.cert.pem(),
            tls_key: client.signing_key.serialize_pem(),
        })
    }

    /// The values a Secret fixture's `${CA_CRT_BASE64}`, `${TLS_CRT_BASE64}`
    /// and `${TLS_KEY_BASE64}` take: the files, base64-encoded as kubectl
    /// writes a Secret's `data`.
    pub fn secret_values(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CA_CRT_BASE64", STANDARD.encode(&self.ca_crt)),
            ("TLS_CRT_BASE64", STANDARD.encode(&self.tls_crt)),
            ("TLS_KEY_BASE64", STANDARD.encode(&self.tls_key)),
        ]
    }
}

/// The Secret fixture at `path` with `credential`'s files in it.
pub fn secret(path: &str, credential: &ClientCredential) -> Result<String> {
    Ok(expand(&snippet(path)?, &credential.secret_values()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_replaces_both_shell_forms() {
        assert_eq!(
            expand(
                "addresses:\n- $PROXY_IP/32\nport: ${PROXY_PORT}\n",
                &[
                    ("PROXY_IP", "10.0.0.5".into()),
                    ("PROXY_PORT", "3128".into())
                ]
            ),
            "addresses:\n- 10.0.0.5/32\nport: 3128\n"
        );
    }

    #[test]
    fn kubectl_namespace_fills_only_documents_without_one() {
        let yaml = "kind: DestinationRule\nmetadata:\n  name: a # comment\nspec: {}\n---\nkind: Secret\nmetadata:\n  name: b\n  namespace: default\n";
        let applied = in_namespace(yaml, "istio-system").unwrap();
        let namespaces: Vec<Value> = applied
            .split("\n---\n")
            .map(|document| serde_yaml::from_str::<Value>(document).unwrap())
            .map(|document| document["metadata"]["namespace"].clone())
            .collect();
        assert_eq!(namespaces, ["istio-system", "default"]);
    }

    #[test]
    fn every_secret_placeholder_is_filled() {
        let ca = TestCa::new().unwrap();
        let credential = ClientCredential::new(&ca).unwrap();
        for path in [
            "egress-tls-origination/client_credential_secret.yaml",
            "egress-gateway-tls-origination/configure_mutual_tls_origination_for_egress_traffic_1.yaml",
            "egress-gateway-tls-origination-sds/configure_simple_tls_origination_for_egress_traffic_1.yaml",
        ] {
            let yaml = secret(path, &credential).unwrap();
            assert!(!yaml.contains("${"), "{path}: {yaml}");
            let secret: Value = serde_yaml::from_str(&yaml).unwrap();
            let ca_crt = secret["data"]["ca.crt"].as_str().unwrap();
            let pem = String::from_utf8(STANDARD.decode(ca_crt).unwrap()).unwrap();
            assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        }
    }
}
