//! A fake Istio CA for tests: a root made by the test, and a TLS server on
//! `127.0.0.1` (its certificate for `istiod.istio-system.svc`, from that
//! root) serving `IstioCertificateService`. It signs each CSR for the
//! identity the CSR asks for, or answers as the test tells it, and records
//! every call with its `authorization` header.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use proto::istio_ca::istio_certificate_service_server::{
    IstioCertificateService, IstioCertificateServiceServer,
};
use proto::istio_ca::{IstioCertificateRequest, IstioCertificateResponse};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

use crate::identity::{SpiffeId, WorkloadCertificate};

/// A root certificate and its key.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    root_pem: String,
}

impl Default for TestCa {
    fn default() -> Self {
        let key = KeyPair::generate().expect("generate the root key");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "cluster.local");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let root = params.self_signed(&key).expect("sign the root");
        Self {
            root_pem: root.pem(),
            issuer: Issuer::new(params, key),
        }
    }
}

impl TestCa {
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// `[leaf, root]` (PEM) for the CSR, valid from now for `lifetime`,
    /// with the subject alt names the CSR asks for.
    pub fn sign(&self, csr_pem: &str, lifetime: Duration) -> Result<Vec<String>, rcgen::Error> {
        self.sign_backdated(csr_pem, lifetime, Duration::ZERO)
    }

    /// [`TestCa::sign`], with `not_before` set `backdate` before now, as
    /// CAs do for clock skew.
    pub fn sign_backdated(
        &self,
        csr_pem: &str,
        lifetime: Duration,
        backdate: Duration,
    ) -> Result<Vec<String>, rcgen::Error> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)?;
        let now = time::OffsetDateTime::now_utc();
        csr.params.not_before = now - backdate;
        csr.params.not_after = now + lifetime;
        csr.params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let leaf = csr.signed_by(&self.issuer)?;
        Ok(vec![leaf.pem(), self.root_pem.clone()])
    }

    /// A workload certificate for `id`, for a key made here, valid from now
    /// for `lifetime`.
    pub fn workload_certificate(&self, id: &SpiffeId, lifetime: Duration) -> WorkloadCertificate {
        let key = KeyPair::generate().expect("generate the workload key");
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![SanType::URI(
            id.to_string().try_into().expect("a SPIFFE id is ASCII"),
        )];
        let csr = params
            .serialize_request(&key)
            .and_then(|csr| csr.pem())
            .expect("a CSR");
        let chain = self.sign(&csr, lifetime).expect("sign the CSR");
        WorkloadCertificate::from_response(&chain, key, id, SystemTime::now())
            .expect("the test CA's certificate is valid")
    }

    /// A server certificate and key (PEM) for DNS `name`.
    pub fn server_identity(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().expect("generate the server key");
        let mut params =
            CertificateParams::new(vec![name.to_string()]).expect("a valid server name");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign the server certificate");
        (cert.pem(), key.serialize_pem())
    }
}

/// What the fake answers to `CreateCertificate`.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The signed chain, valid for this long.
    Sign(Duration),
    /// This chain, whatever the CSR.
    Chain(Vec<String>),
    /// This status.
    Refuse(Status),
}

/// One `CreateCertificate` call as the fake received it.
#[derive(Debug, Clone)]
pub struct Call {
    pub authorization: Option<String>,
    pub csr: String,
    pub validity_duration: i64,
}

#[derive(Clone)]
struct Service {
    ca: Arc<TestCa>,
    answer: Arc<Mutex<Answer>>,
    calls: Arc<Mutex<Vec<Call>>>,
}

/// A running fake CA (on the runtime it was started on).
pub struct FakeCa {
    address: SocketAddr,
    service: Service,
}

impl FakeCa {
    /// Serves TLS on `127.0.0.1:0` with a certificate for `server_name`.
    pub async fn start(server_name: &str, answer: Answer) -> std::io::Result<Self> {
        let ca = Arc::new(TestCa::default());
        let (cert, key) = ca.server_identity(server_name);
        let service = Service {
            ca,
            answer: Arc::new(Mutex::new(answer)),
            calls: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let server = Server::builder()
            .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
            .map_err(std::io::Error::other)?
            .add_service(IstioCertificateServiceServer::new(service.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener));
        tokio::spawn(server);
        Ok(Self { address, service })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn root_pem(&self) -> &str {
        self.service.ca.root_pem()
    }

    pub fn ca(&self) -> &TestCa {
        &self.service.ca
    }

    /// Answers the next calls with `answer`.
    pub fn answer(&self, answer: Answer) {
        *self.service.answer.lock() = answer;
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.service.calls.lock().clone()
    }
}

#[tonic::async_trait]
impl IstioCertificateService for Service {
    async fn create_certificate(
        &self,
        request: Request<IstioCertificateRequest>,
    ) -> Result<Response<IstioCertificateResponse>, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let request = request.into_inner();
        self.calls.lock().push(Call {
            authorization,
            csr: request.csr.clone(),
            validity_duration: request.validity_duration,
        });
        let answer = self.answer.lock().clone();
        let cert_chain = match answer {
            Answer::Sign(lifetime) => self
                .ca
                .sign(&request.csr, lifetime)
                .map_err(|e| Status::invalid_argument(format!("invalid CSR: {e}")))?,
            Answer::Chain(chain) => chain,
            Answer::Refuse(status) => return Err(status),
        };
        Ok(Response::new(IstioCertificateResponse { cert_chain }))
    }
}
