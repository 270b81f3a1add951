//! Why a caller was refused: one variant per reason, each with the label
//! `pilot_xds_auth_failures_total{reason}` counts it under, the gRPC code
//! it gets, and a one-line message saying what to do. What a caller wrote
//! is quoted or escaped, so that it cannot forge log lines.

use tonic::{Code, Status};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no bearer token: send `authorization: Bearer <token>` with every call (mint one with `control-plane token create`, or mount a Kubernetes projected service-account token with audience istio-ca)"
    )]
    MissingToken,
    #[error(
        "the bearer token is malformed: {}; send a JWT as `authorization: Bearer <token>`",
        escape_controls(.0)
    )]
    MalformedToken(String),
    #[error(
        "the token expired at {at}; mint a new one with `control-plane token create` (a projected token is refreshed by the kubelet: re-read its file)"
    )]
    ExpiredToken { at: String },
    #[error(
        "the token is not valid before {at}; check the clocks of this host and of the token's issuer"
    )]
    NotYetValid { at: String },
    #[error(
        "the token's audience is {found}, not istio-ca; request a token with audience istio-ca"
    )]
    WrongAudience { found: String },
    #[error(
        "the token's signature does not verify: {}; mint it with `control-plane token create --ca-dir` of this control plane, or refresh the --jwks file (it is read again when it changes)",
        escape_controls(.0)
    )]
    BadSignature(String),
    #[error("the token's issuer {issuer:?} is not trusted; this control plane accepts {accepted}")]
    UnknownIssuer { issuer: String, accepted: String },
    #[error(
        "the node claims {claimed:?} but its token is for {token}; run the proxy with the namespace and service account of its token"
    )]
    NodeMismatch { claimed: String, token: String },
    /// `requested` names what the request asks for, each value quoted.
    #[error(
        "the CSR asks for {} but the token is for {token}; a proxy gets certificates only for its token's identity",
        escape_controls(requested)
    )]
    CsrIdentityMismatch { requested: String, token: String },
    #[error(
        "the certificate request is invalid: {}; send a PEM PKCS#10 CSR signed by its key",
        escape_controls(.0)
    )]
    InvalidCsr(String),
    #[error(
        "CSDS lists every proxy's config: it needs a token of namespace istio-system, not {caller} (mint one with `control-plane token create --namespace istio-system --service-account istioctl`)"
    )]
    CsdsNotAllowed { caller: String },
    #[error(
        "CSDS lists every proxy's config: {caller} is a gateway's service account (--gateway-service-account), not an operator's; use a token of another istio-system service account (mint one with `control-plane token create --namespace istio-system --service-account istioctl`)"
    )]
    CsdsNotForGateways { caller: String },
}

impl AuthError {
    /// The `reason` label of `pilot_xds_auth_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::MalformedToken(_) => "malformed_token",
            AuthError::ExpiredToken { .. } | AuthError::NotYetValid { .. } => "expired_token",
            AuthError::WrongAudience { .. } => "wrong_audience",
            AuthError::BadSignature(_) => "bad_signature",
            AuthError::UnknownIssuer { .. } => "unknown_issuer",
            AuthError::NodeMismatch { .. } => "node_mismatch",
            AuthError::CsrIdentityMismatch { .. } => "csr_identity_mismatch",
            AuthError::InvalidCsr(_) => "invalid_csr",
            AuthError::CsdsNotAllowed { .. } | AuthError::CsdsNotForGateways { .. } => {
                "csds_not_allowed"
            }
        }
    }

    /// UNAUTHENTICATED when the caller is not proven, PERMISSION_DENIED
    /// when it is proven but asks for what its identity does not allow,
    /// INVALID_ARGUMENT for a request that cannot be read.
    pub fn code(&self) -> Code {
        match self {
            AuthError::MissingToken
            | AuthError::MalformedToken(_)
            | AuthError::ExpiredToken { .. }
            | AuthError::NotYetValid { .. }
            | AuthError::WrongAudience { .. }
            | AuthError::BadSignature(_)
            | AuthError::UnknownIssuer { .. } => Code::Unauthenticated,
            AuthError::NodeMismatch { .. }
            | AuthError::CsrIdentityMismatch { .. }
            | AuthError::CsdsNotAllowed { .. }
            | AuthError::CsdsNotForGateways { .. } => Code::PermissionDenied,
            AuthError::InvalidCsr(_) => Code::InvalidArgument,
        }
    }

    /// The status a refused call ends with: the code and the message,
    /// prefixed with the reason label so that clients can match it.
    pub fn to_status(&self) -> Status {
        Status::new(self.code(), format!("{}: {self}", self.reason()))
    }
}

/// `text` with its control characters (newlines, escape sequences...)
/// escaped, for a reason that may quote what a caller sent.
fn escape_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
