//! Prometheus metrics of the control plane, named as istiod names them, and
//! the HTTP endpoint that serves them (`GET /metrics`).

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::config::ConfigSnapshot;
use crate::config::validate::tcp_over_http_count;

type Label = Vec<(&'static str, String)>;

/// Every metric the control plane exports.
pub struct Metrics {
    registry: Registry,
    pub connected_proxies: Gauge,
    pub pushes: Family<Label, Counter>,
    pub push_time: Histogram,
    pub rejects: Family<Label, Counter>,
    /// Streams closed because their proxy did not take a response within
    /// the send timeout.
    pub write_timeouts: Counter,
    /// Configs not sent because they were too large, by the limit they
    /// exceeded (`per_proxy`, `per_response`).
    pub oversized_configs: Family<Label, Counter>,
    pub config_errors: Family<Label, Counter>,
    pub config_version: Gauge,
    /// TCP and TLS service ports an HTTP service hides on a wildcard
    /// sidecar listener, in the served config.
    pub tcp_over_http: Gauge,
    pub auth_failures: Family<Label, Counter>,
    pub csr_count: Counter,
    pub certs_issued: Counter,
    /// Requests and connections in the egress inventory, by source
    /// workload, destination and decision (bounded as the inventory is).
    pub egress_connections: Family<Label, Counter>,
    pub egress_records: Gauge,
    pub egress_folded: Counter,
    pub access_log_entries_dropped: Family<Label, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let connected_proxies = Gauge::default();
        registry.register(
            "pilot_xds",
            "Number of proxies connected over ADS",
            connected_proxies.clone(),
        );
        let pushes = Family::<Label, Counter>::default();
        registry.register(
            "pilot_xds_pushes",
            "xDS responses sent, by type",
            pushes.clone(),
        );
        let push_time = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "pilot_proxy_convergence_time",
            "Seconds from a mesh change to the response that carries it",
            push_time.clone(),
        );
        let rejects = Family::<Label, Counter>::default();
        registry.register(
            "pilot_total_xds_rejects",
            "Responses proxies rejected (NACK), by type",
            rejects.clone(),
        );
        let write_timeouts = Counter::default();
        registry.register(
            "pilot_xds_write_timeout",
            "ADS connections closed because the proxy did not take a response within the send timeout",
            write_timeouts.clone(),
        );
        let oversized_configs = Family::<Label, Counter>::default();
        registry.register(
            "pilot_xds_config_size_exceeded",
            "Proxy configs not sent because they exceeded a size limit, by limit (per_proxy, per_response)",
            oversized_configs.clone(),
        );
        let config_errors = Family::<Label, Counter>::default();
        registry.register(
            "config_errors",
            "Config errors found at a load (a resource left out, a file that cannot be read), by kind",
            config_errors.clone(),
        );
        let config_version = Gauge::default();
        registry.register(
            "config_snapshot_version",
            "Version of the config snapshot being served",
            config_version.clone(),
        );
        let tcp_over_http = Gauge::default();
        registry.register(
            "pilot_conflict_outbound_listener_tcp_over_current_http",
            "Number of TCP or TLS service ports an HTTP service on the same port hides on the wildcard sidecar listener",
            tcp_over_http.clone(),
        );
        let auth_failures = Family::<Label, Counter>::default();
        registry.register(
            "pilot_xds_auth_failures",
            "Calls refused on the secure port (token, node identity, CSR, CSDS access), by reason",
            auth_failures.clone(),
        );
        let csr_count = Counter::default();
        registry.register(
            "citadel_server_csr_count",
            "Certificate signing requests received",
            csr_count.clone(),
        );
        let certs_issued = Counter::default();
        registry.register(
            "citadel_server_success_cert_issuance_count",
            "Workload certificates issued",
            certs_issued.clone(),
        );
        let egress_connections = Family::<Label, Counter>::default();
        registry.register(
            "egress_destination_connections",
            "Requests (HTTP) and connections (TCP, TLS) to a destination seen in proxies' access logs, by source workload, destination, port, protocol, the resource that handled them and the egress policy decision; destination \"other\" past the inventory bound",
            egress_connections.clone(),
        );
        let egress_records = Gauge::default();
        registry.register(
            "egress_inventory_records",
            "Records in the egress inventory, the other records included",
            egress_records.clone(),
        );
        let egress_folded = Counter::default();
        registry.register(
            "egress_inventory_folded",
            "Observations of a new destination folded into their source's other record because the inventory was full",
            egress_folded.clone(),
        );
        let access_log_entries_dropped = Family::<Label, Counter>::default();
        registry.register(
            "egress_access_log_entries_dropped",
            "Access log entries not recorded in the egress inventory, by reason",
            access_log_entries_dropped.clone(),
        );
        Self {
            registry,
            connected_proxies,
            pushes,
            push_time,
            rejects,
            write_timeouts,
            oversized_configs,
            config_errors,
            config_version,
            tcp_over_http,
            auth_failures,
            csr_count,
            certs_issued,
            egress_connections,
            egress_records,
            egress_folded,
            access_log_entries_dropped,
        }
    }
}

impl Metrics {
    pub fn type_label(type_url: &str) -> Label {
        vec![("type", shared::type_url::short_name(type_url).to_string())]
    }

    pub fn reason_label(reason: &str) -> Label {
        vec![("reason", reason.to_string())]
    }

    /// Records what a newly served config holds: its version and its
    /// outbound listener conflicts.
    pub fn served(&self, snapshot: &ConfigSnapshot) {
        self.config_version.set(snapshot.version as i64);
        self.tcp_over_http
            .set(i64::try_from(tcp_over_http_count(snapshot)).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Serves `GET /metrics` on `addr` until the process exits.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "metrics listener accept failed");
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(&req, &metrics)) }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, %peer, "metrics connection ended with an error");
            }
        });
    }
}

fn respond(req: &Request<hyper::body::Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, body) = match req.uri().path() {
        "/metrics" | "/stats/prometheus" => (StatusCode::OK, metrics.render()),
        "/ready" | "/healthz" => (StatusCode::OK, "ok\n".to_string()),
        _ => (
            StatusCode::NOT_FOUND,
            "not found: try /metrics\n".to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// Binds the metrics listener; a port conflict fails at startup.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
