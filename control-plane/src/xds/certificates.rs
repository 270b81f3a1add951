//! Istio's CA API on the secure port
//! (`istio.v1.auth.IstioCertificateService/CreateCertificate`): a CSR in,
//! the chain for the caller's own identity out (leaf first, root last).

use std::sync::Arc;
use std::time::Duration;

use proto::istio_ca::istio_certificate_service_server::IstioCertificateService;
use proto::istio_ca::{IstioCertificateRequest, IstioCertificateResponse};
use tonic::{Request, Response, Status};

use crate::auth::AuthError;
use crate::ca::{CertificateAuthority, CsrError, SpiffeId};

use super::XdsContext;
use super::authn::{Caller, peer_text, refuse};

/// The metadata key Istio uses to ask for another identity's certificate.
const IMPERSONATED_IDENTITY: &str = "ImpersonatedIdentity";

pub struct Certificates {
    context: Arc<XdsContext>,
    ca: Arc<CertificateAuthority>,
}

impl Certificates {
    pub fn new(context: Arc<XdsContext>, ca: Arc<CertificateAuthority>) -> Self {
        Self { context, ca }
    }

    fn sign(
        &self,
        caller: &Caller,
        request: &IstioCertificateRequest,
    ) -> Result<IstioCertificateResponse, Status> {
        let metrics = &self.context.metrics;
        let refused = |error: AuthError| refuse(metrics, caller.peer, &error);
        let identity = SpiffeId {
            trust_domain: self
                .context
                .publisher
                .current()
                .snapshot
                .mesh
                .trust_domain
                .clone(),
            namespace: caller.account.namespace.clone(),
            service_account: caller.account.name.clone(),
        };
        if let Some(fields) = request.metadata.as_ref().map(|m| &m.fields)
            && !fields.is_empty()
        {
            return Err(refused(match fields.get(IMPERSONATED_IDENTITY) {
                Some(other) => AuthError::CsrIdentityMismatch {
                    requested: format!("{other:?} ({IMPERSONATED_IDENTITY})"),
                    token: identity.to_string(),
                },
                None => AuthError::InvalidCsr(format!(
                    "metadata {:?} is not supported; send the CSR alone",
                    fields.keys().collect::<Vec<_>>()
                )),
            }));
        }
        let requested = u64::try_from(request.validity_duration)
            .ok()
            .filter(|seconds| *seconds > 0)
            .map(Duration::from_secs);
        match self.ca.sign_csr(&identity, &request.csr, requested) {
            Ok(signed) => {
                metrics.certs_issued.inc();
                tracing::info!(
                    %identity,
                    peer = %peer_text(caller.peer),
                    not_after = %humantime::format_rfc3339_seconds(signed.not_after),
                    "signed a workload certificate"
                );
                Ok(IstioCertificateResponse {
                    cert_chain: signed.chain,
                })
            }
            Err(CsrError::Invalid(reason)) => Err(refused(AuthError::InvalidCsr(reason))),
            Err(CsrError::IdentityMismatch { requested }) => {
                Err(refused(AuthError::CsrIdentityMismatch {
                    requested,
                    token: identity.to_string(),
                }))
            }
            Err(CsrError::Issue(error)) => {
                tracing::error!(%identity, %error, "cannot sign a workload certificate");
                Err(Status::internal(format!(
                    "the CA cannot sign certificates: {error}"
                )))
            }
        }
    }
}

#[tonic::async_trait]
impl IstioCertificateService for Certificates {
    async fn create_certificate(
        &self,
        request: Request<IstioCertificateRequest>,
    ) -> Result<Response<IstioCertificateResponse>, Status> {
        self.context.metrics.csr_count.inc();
        let caller = request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| {
                Status::unauthenticated("certificates are issued on the secure port only")
            })?;
        self.sign(&caller, request.get_ref()).map(Response::new)
    }
}
