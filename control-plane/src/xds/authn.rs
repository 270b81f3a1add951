//! Authentication on the secure port: every call's bearer token is
//! verified before any service sees it, and the verified caller travels in
//! the request's extensions. Every refusal, here or where a service checks
//! what the caller asks for, goes through [`refuse`]: one log line, the
//! metric, and the status.

use std::net::SocketAddr;
use std::sync::Arc;

use tonic::Status;
use tonic::service::Interceptor;

use crate::auth::{AuthError, Authenticator, ServiceAccount, bearer_token};
use crate::metrics::Metrics;

use super::closable::Peer;

/// A caller whose token verified: its service account and where it called
/// from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account: ServiceAccount,
    pub peer: Option<SocketAddr>,
}

/// The secure server's interceptor: a call without a valid token ends with
/// UNAUTHENTICATED; a valid one carries its [`Caller`].
#[derive(Clone)]
pub struct Authenticate {
    authenticator: Arc<Authenticator>,
    metrics: Arc<Metrics>,
}

impl Authenticate {
    pub fn new(authenticator: Arc<Authenticator>, metrics: Arc<Metrics>) -> Self {
        Self {
            authenticator,
            metrics,
        }
    }
}

impl Interceptor for Authenticate {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        let peer = Peer::of(request.extensions()).and_then(|p| p.remote_addr);
        let verified = match request.metadata().get("authorization") {
            None => Err(AuthError::MissingToken),
            Some(value) => value
                .to_str()
                .map_err(|_| AuthError::MalformedToken("the header is not ASCII".to_string()))
                .and_then(|value| bearer_token(Some(value)))
                .and_then(|token| self.authenticator.verify(token)),
        };
        match verified {
            Ok(account) => {
                request.extensions_mut().insert(Caller { account, peer });
                Ok(request)
            }
            Err(error) => Err(refuse(&self.metrics, peer, &error)),
        }
    }
}

/// Records a refusal (a `warn` line with the peer and the reason, never
/// the token, what the caller claimed escaped; `pilot_xds_auth_failures_total{reason}`)
/// and returns the status the call ends with.
pub fn refuse(metrics: &Metrics, peer: Option<SocketAddr>, error: &AuthError) -> Status {
    metrics
        .auth_failures
        .get_or_create(&Metrics::reason_label(error.reason()))
        .inc();
    tracing::warn!(
        peer = %peer_text(peer),
        reason = error.reason(),
        error = ?error.to_string(),
        "refused a call"
    );
    error.to_status()
}

/// A caller's address as log lines show it.
pub fn peer_text(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "unknown".to_string(), |p| p.to_string())
}
