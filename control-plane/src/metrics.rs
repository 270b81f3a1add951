//! Prometheus metrics of the control plane, named and labelled as istiod
//! names them (pilot/pkg/xds/monitoring.go: counters without a `_total`
//! suffix, `type` as `cds`/`eds`/`lds`/`rds`/`sds`/`nds`), and the HTTP
//! endpoint that serves them (`GET /metrics`).

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
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use shared::accept::AcceptFailures;
use tokio::net::TcpListener;

use crate::config::ConfigSnapshot;
use crate::config::validate::tcp_over_http_count;

mod sum;

pub use sum::Sum;

type Label = Vec<(&'static str, String)>;

/// istiod's buckets for `pilot_xds_push_time` (seconds).
const PUSH_TIME_BUCKETS: [f64; 8] = [0.01, 0.1, 1.0, 3.0, 5.0, 10.0, 20.0, 30.0];
/// istiod's buckets for `pilot_proxy_convergence_time` (seconds).
const CONVERGENCE_BUCKETS: [f64; 8] = [0.1, 0.5, 1.0, 3.0, 5.0, 10.0, 20.0, 30.0];

/// Every metric the control plane exports.
pub struct Metrics {
    registry: Registry,
    pub connected_proxies: Gauge,
    /// `pilot_xds_pushes{type}`: responses sent.
    pub pushes: Family<Label, Sum>,
    /// `pilot_xds_push_time{type}`: seconds to build and send one response.
    pub push_time: Family<Label, Histogram>,
    /// `pilot_proxy_convergence_time`: seconds from a mesh change to the
    /// response that carries it.
    pub convergence_time: Histogram,
    /// `pilot_total_xds_rejects{type}`: NACKs.
    pub rejects: Family<Label, Sum>,
    /// `pilot_xds_{cds,eds,lds,rds}_reject{node,err}`: NACKs by proxy and
    /// status code, kept by istiod for older dashboards.
    pub rejects_by_node: [Family<Label, Gauge>; 4],
    /// `pilot_xds_expired_nonce{type}`: requests answering a response that
    /// is no longer the latest.
    pub expired_nonces: Family<Label, Sum>,
    /// Streams closed because their proxy did not take a response within
    /// the send timeout.
    pub write_timeouts: Sum,
    /// Configs not sent because they were too large, by the limit they
    /// exceeded (`per_proxy`, `per_response`).
    pub oversized_configs: Family<Label, Counter>,
    pub config_errors: Family<Label, Counter>,
    pub config_version: Gauge,
    /// TCP and TLS service ports an HTTP service hides on a wildcard
    /// sidecar listener, in the served config.
    pub tcp_over_http: Gauge,
    pub auth_failures: Family<Label, Counter>,
    pub csr_count: Sum,
    pub certs_issued: Sum,
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
        let pushes = Family::<Label, Sum>::default();
        registry.register(
            "pilot_xds_pushes",
            "Pilot build and send errors for lds, rds, cds and eds.",
            pushes.clone(),
        );
        let push_time = Family::<Label, Histogram>::new_with_constructor(
            (|| Histogram::new(PUSH_TIME_BUCKETS)) as fn() -> Histogram,
        );
        registry.register(
            "pilot_xds_push_time",
            "Total time in seconds Pilot takes to push lds, rds, cds and eds.",
            push_time.clone(),
        );
        let convergence_time = Histogram::new(CONVERGENCE_BUCKETS);
        registry.register(
            "pilot_proxy_convergence_time",
            "Delay in seconds between config change and a proxy receiving all required configuration.",
            convergence_time.clone(),
        );
        let rejects = Family::<Label, Sum>::default();
        registry.register(
            "pilot_total_xds_rejects",
            "Total number of XDS responses from pilot rejected by proxy.",
            rejects.clone(),
        );
        let rejects_by_node: [Family<Label, Gauge>; 4] = Default::default();
        for (short, family) in REJECT_GAUGES.iter().zip(&rejects_by_node) {
            registry.register(
                format!("pilot_xds_{short}_reject"),
                format!("Pilot rejected {} configs.", short.to_uppercase()),
                family.clone(),
            );
        }
        let expired_nonces = Family::<Label, Sum>::default();
        registry.register(
            "pilot_xds_expired_nonce",
            "Total number of XDS requests with an expired nonce.",
            expired_nonces.clone(),
        );
        let write_timeouts = Sum::default();
        registry.register(
            "pilot_xds_write_timeout",
            "Pilot XDS response write timeouts.",
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
        let csr_count = Sum::default();
        registry.register(
            "citadel_server_csr_count",
            "Certificate signing requests received",
            csr_count.clone(),
        );
        let certs_issued = Sum::default();
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
            convergence_time,
            rejects,
            rejects_by_node,
            expired_nonces,
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

/// The xDS types istiod keeps a `pilot_xds_<type>_reject` gauge for.
const REJECT_GAUGES: [&str; 4] = ["cds", "eds", "lds", "rds"];

impl Metrics {
    /// The `type` label istiod gives `type_url` (`GetMetricType`).
    pub fn type_label(type_url: &str) -> Label {
        vec![("type", metric_type(type_url).to_string())]
    }

    /// Counts a NACK of `type_url` from `node` with gRPC status `code`, as
    /// istiod does: in `pilot_total_xds_rejects` and, for CDS, EDS, LDS and
    /// RDS, in `pilot_xds_<type>_reject{node,err}`.
    pub fn rejected(&self, type_url: &str, node: &str, code: i32) {
        self.rejects
            .get_or_create(&Self::type_label(type_url))
            .inc();
        let short = metric_type(type_url);
        if let Some(index) = REJECT_GAUGES.iter().position(|t| *t == short) {
            let err = format!("{:?}", tonic::Code::from_i32(code));
            self.rejects_by_node[index]
                .get_or_create(&vec![("node", node.to_string()), ("err", err)])
                .inc();
        }
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

/// istiod's name of an xDS type in metric labels; an unknown type is
/// labelled with its URL, as istiod does.
pub fn metric_type(type_url: &str) -> &str {
    use shared::type_url::{CLUSTER, ENDPOINT, LISTENER, NAME_TABLE, ROUTE, SECRET};
    match type_url {
        CLUSTER => "cds",
        ENDPOINT => "eds",
        LISTENER => "lds",
        ROUTE => "rds",
        SECRET => "sds",
        NAME_TABLE => "nds",
        other => other,
    }
}

/// Serves `GET /metrics` on `listener` until the process exits; a failed
/// accept is handled by `failures` (out of file descriptors, the
/// connection is closed at once rather than retried).
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, failures: Arc<AcceptFailures>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                failures.handle(&listener, "metrics", error).await;
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

#[cfg(test)]
mod tests;
