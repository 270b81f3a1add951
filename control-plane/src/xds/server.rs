//! The two gRPC servers over one [`XdsContext`]: the secure one (TLS with
//! the mesh CA's serving certificate, a bearer token on every call; ADS,
//! CSDS, the CA API, the AccessLogService, health, reflection) and the
//! optional plaintext one
//! (ADS, CSDS, health, reflection: config only, no certificates).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, Stream};

use proto::istio_ca::istio_certificate_service_server::IstioCertificateServiceServer;
use proto::pb::envoy::service::accesslog::v3::access_log_service_server::AccessLogServiceServer;
use proto::pb::envoy::service::status::v3::client_status_discovery_service_server::ClientStatusDiscoveryServiceServer;
use tonic::service::InterceptorLayer;
use tonic::transport::server::Router;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use shared::accept::AcceptFailures;

use crate::auth::Authenticator;
use crate::ca::{CertificateAuthority, ServerCertificate};
use crate::egress::LiveInventory;

use super::XdsContext;
use super::access_log::AccessLog;
use super::ads::Ads;
use super::authn::Authenticate;
use super::certificates::Certificates;
use super::closable::Closable;
use super::csds::Csds;
use super::limits::MAX_MESSAGE_SIZE;

const ADS_SERVICE: &str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
const CSDS_SERVICE: &str = "envoy.service.status.v3.ClientStatusDiscoveryService";
const CA_SERVICE: &str = "istio.v1.auth.IstioCertificateService";
const ACCESS_LOG_SERVICE: &str = "envoy.service.accesslog.v3.AccessLogService";
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
/// How long a client may take to complete its TLS handshake: a connection
/// that never sends its ClientHello is dropped instead of held.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open calls get to finish once the server is told to stop (the
/// 5 s Istio gives a terminating proxy to drain).
pub(super) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the secure server needs besides the shared context.
pub struct SecureServer {
    pub ca: Arc<CertificateAuthority>,
    pub certificate: ServerCertificate,
    pub authenticator: Arc<Authenticator>,
    /// Where the AccessLogService records what proxies report.
    pub inventory: Arc<LiveInventory>,
}

/// Reflection v1 and v1alpha, for the services a server has (the secure
/// one's: the CA API and the AccessLogService).
fn reflection(
    secure: bool,
) -> (
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
) {
    let builder = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(proto::NDS_FILE_DESCRIPTOR_SET)
            .with_service_name(ADS_SERVICE)
            .with_service_name(CSDS_SERVICE)
            .with_service_name(HEALTH_SERVICE);
        if secure {
            builder = builder
                .register_encoded_file_descriptor_set(proto::CA_FILE_DESCRIPTOR_SET)
                .with_service_name(CA_SERVICE)
                .with_service_name(ACCESS_LOG_SERVICE);
        }
        builder
    };
    let v1 = builder()
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .build_v1()
        .expect("the embedded descriptor sets are valid");
    let v1alpha = builder()
        .with_service_name("grpc.reflection.v1alpha.ServerReflection")
        .build_v1alpha()
        .expect("the embedded descriptor sets are valid");
    (v1, v1alpha)
}

/// The services both servers have: ADS, CSDS, health and reflection.
async fn config_services<L>(
    builder: Server<L>,
    context: &Arc<XdsContext>,
    secure: bool,
) -> Router<L>
where
    L: Clone,
{
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<Ads>().await;
    health_reporter
        .set_serving::<ClientStatusDiscoveryServiceServer<Csds>>()
        .await;
    if secure {
        health_reporter
            .set_serving::<IstioCertificateServiceServer<Certificates>>()
            .await;
        health_reporter
            .set_serving::<AccessLogServiceServer<AccessLog>>()
            .await;
    }
    let (reflection_v1, reflection_v1alpha) = reflection(secure);
    let mut builder = builder;
    builder
        .add_service(Ads::new(context.clone()))
        .add_service(
            ClientStatusDiscoveryServiceServer::new(Csds::new(context.clone()))
                .max_decoding_message_size(MAX_MESSAGE_SIZE),
        )
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
}

/// Serves the secure port on `listener` until `shutdown` resolves.
pub async fn serve_secure(
    listener: tokio::net::TcpListener,
    context: Arc<XdsContext>,
    secure: SecureServer,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let shutdown = shutdown.shared();
    let identity = Identity::from_pem(&secure.certificate.cert_pem, secure.certificate.key_pem());
    let builder = Server::builder()
        .tls_config(
            ServerTlsConfig::new()
                .identity(identity)
                .timeout(TLS_HANDSHAKE_TIMEOUT),
        )?
        .layer(InterceptorLayer::new(Authenticate::new(
            secure.authenticator,
            context.metrics.clone(),
        )));
    let server = config_services(builder, &context, true)
        .await
        .add_service(IstioCertificateServiceServer::new(Certificates::new(
            context.clone(),
            secure.ca,
        )))
        .add_service(AccessLogServiceServer::new(AccessLog::new(
            context.clone(),
            secure.inventory,
        )))
        .serve_with_incoming_shutdown(
            incoming(listener, "secure xDS", context.accept_failures.clone()),
            shutdown.clone(),
        );
    until_drained(server, shutdown).await
}

/// The connections `listener` (the port `name`) accepts, each one closable
/// by the streams it carries. A failed accept is handled here, never
/// handed to tonic, which would retry it at once.
fn incoming(
    listener: tokio::net::TcpListener,
    name: &'static str,
    failures: Arc<AcceptFailures>,
) -> impl Stream<Item = std::io::Result<Closable>> + Send + 'static {
    futures::stream::unfold(listener, move |listener| {
        let failures = failures.clone();
        async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => return Some((Ok(Closable::new(stream)), listener)),
                    Err(error) => {
                        failures.handle(&listener, name, error).await;
                    }
                }
            }
        }
    })
}

/// Serves the plaintext port on `listener` until `shutdown` resolves.
pub async fn serve_plaintext(
    listener: tokio::net::TcpListener,
    context: Arc<XdsContext>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let shutdown = shutdown.shared();
    let server = config_services(Server::builder(), &context, false)
        .await
        .serve_with_incoming_shutdown(
            incoming(listener, "plaintext xDS", context.accept_failures.clone()),
            shutdown.clone(),
        );
    until_drained(server, shutdown).await
}

/// Runs `server`, cut short once it has had [`SHUTDOWN_GRACE`] to finish
/// after `shutdown`: ADS streams never end by themselves, and a proxy whose
/// stream is dropped reconnects (to this control plane's successor).
async fn until_drained<E>(
    server: impl Future<Output = Result<(), E>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), E> {
    tokio::select! {
        result = server => result,
        () = async {
            shutdown.await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::info!("closing the streams still open");
            Ok(())
        }
    }
}

/// Binds an xDS port; a conflict fails at startup.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
