//! Token claims in the shape of a Kubernetes projected service-account
//! token, so that one reading serves the control plane's own tokens and a
//! cluster's: `iss`, `sub: system:serviceaccount:NS:SA`, `aud`, times, and
//! `kubernetes.io: {namespace, serviceaccount: {name}}`.

use serde::{Deserialize, Serialize};

use super::account::ServiceAccount;
use super::error::AuthError;

/// The issuer of the tokens this control plane mints.
pub const ISSUER: &str = "egress-mesh-control-plane";
/// The audience every accepted token must name (istiod's CA audience).
pub const AUDIENCE: &str = "istio-ca";
/// The prefix of a service account's `sub` in Kubernetes tokens.
const SUBJECT_PREFIX: &str = "system:serviceaccount:";

/// The `kubernetes.io` claim (other members, such as `pod`, are ignored).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KubernetesClaim {
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub serviceaccount: Option<NamedObject>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NamedObject {
    #[serde(default)]
    pub name: String,
}

/// What `token create` signs.
#[derive(Debug, Serialize)]
pub struct MintedClaims {
    pub iss: &'static str,
    pub sub: String,
    pub aud: [&'static str; 1],
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaim,
}

impl MintedClaims {
    pub fn new(account: &ServiceAccount, issued_at: u64, expires_at: u64) -> Self {
        Self {
            iss: ISSUER,
            sub: subject(account),
            aud: [AUDIENCE],
            iat: issued_at,
            nbf: issued_at,
            exp: expires_at,
            kubernetes: KubernetesClaim {
                namespace: account.namespace.clone(),
                serviceaccount: Some(NamedObject {
                    name: account.name.clone(),
                }),
            },
        }
    }
}

/// What verification reads from a presented token (the audience and
/// signature are checked by `jsonwebtoken`; the members here name the
/// account and explain a refusal).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PresentedClaims {
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub aud: Option<serde_json::Value>,
    #[serde(default)]
    pub exp: Option<u64>,
    #[serde(default)]
    pub nbf: Option<u64>,
    #[serde(default, rename = "kubernetes.io")]
    pub kubernetes: Option<KubernetesClaim>,
}

impl PresentedClaims {
    /// The service account the claims name: `kubernetes.io` (namespace and
    /// serviceaccount.name), else `sub` (`system:serviceaccount:NS:SA`).
    /// When both are present they must agree.
    pub fn service_account(&self) -> Result<ServiceAccount, AuthError> {
        let from_subject = self.sub.as_deref().and_then(|sub| {
            let (namespace, name) = sub.strip_prefix(SUBJECT_PREFIX)?.split_once(':')?;
            Some((namespace, name))
        });
        let from_kubernetes = self.kubernetes.as_ref().and_then(|k| {
            let name = k.serviceaccount.as_ref()?.name.as_str();
            (!k.namespace.is_empty() && !name.is_empty()).then_some((k.namespace.as_str(), name))
        });
        let (namespace, name) = match (from_kubernetes, from_subject) {
            (Some(kubernetes), Some(subject)) if kubernetes != subject => {
                return Err(AuthError::MalformedToken(format!(
                    "its kubernetes.io claim names {:?} but its sub names {:?}",
                    format!("{}/{}", kubernetes.0, kubernetes.1),
                    format!("{}/{}", subject.0, subject.1)
                )));
            }
            (Some(account), _) | (None, Some(account)) => account,
            (None, None) => {
                return Err(AuthError::MalformedToken(format!(
                    "it names no service account (kubernetes.io.namespace and kubernetes.io.serviceaccount.name, or sub {SUBJECT_PREFIX}NS:SA)"
                )));
            }
        };
        ServiceAccount::new(namespace, name).map_err(|e| AuthError::MalformedToken(e.to_string()))
    }

    /// The audience, as a refusal quotes it.
    pub fn audience(&self) -> String {
        match &self.aud {
            None => "missing".to_string(),
            Some(aud) => aud.to_string(),
        }
    }
}

/// `system:serviceaccount:NS:SA`.
pub fn subject(account: &ServiceAccount) -> String {
    format!("{SUBJECT_PREFIX}{}:{}", account.namespace, account.name)
}
