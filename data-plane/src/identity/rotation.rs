//! Getting the certificate from the control plane's CA
//! (`IstioCertificateService/CreateCertificate`) and keeping it fresh: the
//! first one before anything needs it, then a new key and certificate at
//! half the current one's life, retried with backoff, louder as expiry
//! nears. Every certificate is published on a `watch` channel.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proto::istio_ca::IstioCertificateRequest;
use proto::istio_ca::istio_certificate_service_client::IstioCertificateServiceClient;
use tokio::sync::watch;

use super::SpiffeId;
use super::certificate::{ChainError, WorkloadCertificate};
use super::csr::signing_request;
use crate::xds::backoff::Backoff;
use crate::xds::{self, ControlPlane, refusal};

/// The lifetime asked for, Istio's default (`SECRET_TTL`); the control
/// plane may give less.
pub const REQUESTED_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// How long one certificate request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a certificate could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Connect(#[from] xds::Error),
    #[error("the control plane refused the certificate request: {}", refusal(.0))]
    Refused(tonic::Status),
    #[error("cannot generate the key or the certificate request: {0}")]
    Key(#[from] rcgen::Error),
    #[error("the control plane's certificate is unusable: {0}")]
    Chain(#[from] ChainError),
    #[error("the certificate request got no answer within {}s", REQUEST_TIMEOUT.as_secs())]
    Timeout,
}

/// The control plane's CA, as this proxy asks it for its certificate.
#[derive(Debug, Clone)]
pub struct CertificateAuthority {
    control_plane: ControlPlane,
    id: SpiffeId,
}

impl CertificateAuthority {
    /// Certificates for `id` from the CA behind `control_plane`.
    pub fn new(control_plane: ControlPlane, id: SpiffeId) -> Self {
        Self { control_plane, id }
    }

    /// One round: a new key, its CSR, the signed chain, checked.
    pub async fn issue(&self) -> Result<WorkloadCertificate, IdentityError> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.request())
            .await
            .map_err(|_| IdentityError::Timeout)?
    }

    async fn request(&self) -> Result<WorkloadCertificate, IdentityError> {
        let request = signing_request(&self.id)?;
        let channel = self.control_plane.connect().await?;
        let response = IstioCertificateServiceClient::new(channel)
            .create_certificate(IstioCertificateRequest {
                csr: request.csr_pem,
                validity_duration: i64::try_from(REQUESTED_LIFETIME.as_secs()).unwrap_or(i64::MAX),
                metadata: None,
            })
            .await
            .map_err(IdentityError::Refused)?
            .into_inner();
        let certificate = WorkloadCertificate::from_response(
            &response.cert_chain,
            request.key,
            &self.id,
            SystemTime::now(),
        )?;
        tracing::info!(
            spiffe_id = certificate.spiffe_id(),
            serial = certificate.serial(),
            expires = %humantime::format_rfc3339_seconds(certificate.not_after()),
            rotates = %humantime::format_rfc3339_seconds(certificate.rotation_time()),
            "workload certificate issued"
        );
        Ok(certificate)
    }

    /// Gets the first certificate (retried until issued), then keeps it fresh in a task of its
    /// own: the receiver always holds the current one. The task stops when
    /// every receiver is gone.
    pub async fn start(self) -> watch::Receiver<Arc<WorkloadCertificate>> {
        let first = Arc::new(self.issue_retrying(None).await);
        let (sender, receiver) = watch::channel(first);
        tokio::spawn(self.rotate(sender));
        receiver
    }

    /// Replaces the published certificate at half its life, for ever.
    async fn rotate(self, published: watch::Sender<Arc<WorkloadCertificate>>) {
        loop {
            let current = published.borrow().clone();
            tokio::select! {
                () = tokio::time::sleep(until(current.rotation_time(), SystemTime::now())) => {}
                () = published.closed() => return,
            }
            let next = tokio::select! {
                next = self.issue_retrying(Some(&current)) => next,
                () = published.closed() => return,
            };
            published.send_replace(Arc::new(next));
        }
    }

    /// A new certificate, retried with backoff until issued: the first one
    /// (`current` is `None`) or the one replacing `current`.
    async fn issue_retrying(&self, current: Option<&WorkloadCertificate>) -> WorkloadCertificate {
        let mut backoff = Backoff::default();
        loop {
            match self.issue().await {
                Ok(certificate) => return certificate,
                Err(error) => {
                    let delay = backoff.next_delay();
                    self.log_failure(&error, current, delay);
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One failed attempt: waiting for the first certificate, or renewing
    /// `current` with the time left before it expires (an error once it
    /// has).
    fn log_failure(
        &self,
        error: &IdentityError,
        current: Option<&WorkloadCertificate>,
        delay: Duration,
    ) {
        match current.map(|c| c.not_after().duration_since(SystemTime::now())) {
            None => tracing::warn!(
                spiffe_id = %self.id,
                %error,
                ?delay,
                "cannot get the workload certificate yet; mutual TLS waits for it; retrying"
            ),
            Some(Ok(left)) => tracing::warn!(
                spiffe_id = %self.id,
                %error,
                expires_in = %humantime::format_duration(whole_seconds(left)),
                ?delay,
                "cannot renew the workload certificate; retrying"
            ),
            Some(Err(_)) => tracing::error!(
                spiffe_id = %self.id,
                %error,
                ?delay,
                "the workload certificate has expired and cannot be renewed: peers refuse mutual TLS with this proxy until it is; retrying"
            ),
        }
    }
}

/// How long from `now` until `time` (zero if it has passed).
fn until(time: SystemTime, now: SystemTime) -> Duration {
    time.duration_since(now).unwrap_or(Duration::ZERO)
}

fn whole_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}
