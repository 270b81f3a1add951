//! Istio's standard metrics as a source proxy reports them
//! (`istio_requests_total`, `istio_request_duration_milliseconds`,
//! `istio_request_bytes`, `istio_response_bytes`, `istio_tcp_*`), with
//! Istio's labels, by destination (its service and the workload behind the
//! upstream host) and by the egress mark, with at most a
//! configured number of distinct unregistered destinations per proxy (the
//! rest are folded into `other`).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use parking_lot::Mutex;

use shared::egress::EgressPolicy;
use shared::workload::EndpointWorkload;

use crate::upstream::Principals;

/// What unregistered destinations past the cap are counted as.
pub const OTHER_DESTINATION: &str = "other";
/// The default cap on distinct unregistered destinations per proxy.
pub const DEFAULT_MAX_UNREGISTERED_DESTINATIONS: usize = 100;

mod histogram;
mod key;
mod peer;

use histogram::Histogram;
use key::{SeriesKey, SeriesLabels, SeriesRef};
pub use peer::SourceWorkload;

/// Which destination a request or connection went to, as the metrics
/// label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestinationClass {
    /// A ServiceEntry's host (an `outbound|...` cluster).
    Registered,
    /// No ServiceEntry; sent out (ALLOW_ANY, or dry run).
    Passthrough,
    /// No ServiceEntry; refused (REGISTRY_ONLY).
    BlackHole,
    /// Answered locally without a cluster or a mark (no route).
    Unknown,
}

/// A destination: the ServiceEntry host, or what was observed of an
/// unregistered one (its Host, SNI or IP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination<'a> {
    pub class: DestinationClass,
    pub service: &'a str,
}

impl<'a> Destination<'a> {
    /// The destination of traffic that went to `cluster` (none: a local
    /// reply) under `policy`, having observed `observed` (Host, SNI or IP).
    pub fn of(cluster: Option<&'a str>, observed: &'a str, policy: Option<EgressPolicy>) -> Self {
        if let Some(name) = cluster.and_then(shared::naming::ClusterName::parse) {
            return Self {
                class: DestinationClass::Registered,
                service: name.host,
            };
        }
        let blocked = policy == Some(EgressPolicy::Blocked)
            || cluster == Some(shared::naming::BLACKHOLE_CLUSTER);
        let class = match (blocked, cluster, policy) {
            (true, _, _) => DestinationClass::BlackHole,
            (false, None, None) => DestinationClass::Unknown,
            (false, _, _) => DestinationClass::Passthrough,
        };
        Self {
            class,
            service: observed,
        }
    }

    /// `destination_service_name`: the ServiceEntry's host (Istio names a
    /// ServiceEntry's service by its host), or the fall-through cluster's
    /// name.
    pub(super) fn service_name(class: DestinationClass, service: &str) -> &str {
        match class {
            DestinationClass::Registered => service,
            DestinationClass::Passthrough => shared::naming::PASSTHROUGH_CLUSTER,
            DestinationClass::BlackHole => shared::naming::BLACKHOLE_CLUSTER,
            DestinationClass::Unknown => "unknown",
        }
    }
}

/// The host of an HTTP authority, without its port (an IPv6 address keeps
/// its brackets).
pub fn host(authority: &str) -> &str {
    match authority.rsplit_once(':') {
        Some((host, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains(':') || host.ends_with(']')) =>
        {
            host
        }
        _ => authority,
    }
}

/// `request_protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Http,
    /// HTTP whose request's `content-type` is `application/grpc…`.
    Grpc,
    Tcp,
}

/// Every label of a series but the destination service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    pub class: DestinationClass,
    pub protocol: Protocol,
    /// The HTTP status; 0 for TCP.
    pub response_code: u16,
    /// `grpc_response_status`: the response's `grpc-status`, if it had one.
    pub grpc_status: Option<u8>,
    pub response_flags: &'static str,
    pub egress_policy: Option<EgressPolicy>,
}

/// What is known of the upstream peer: the workload its endpoint names,
/// and the identities on the TLS connection to it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Peer<'a> {
    pub workload: Option<&'a Arc<EndpointWorkload>>,
    pub principals: Option<&'a Arc<Principals>>,
}

/// One HTTP request, as its stream ended.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub destination: Destination<'a>,
    pub peer: Peer<'a>,
    pub protocol: Protocol,
    pub response_code: u16,
    pub grpc_status: Option<u8>,
    pub response_flags: &'static str,
    pub egress_policy: Option<EgressPolicy>,
    /// From the request's first byte to the response's last, in ms.
    pub duration_ms: f64,
    /// The request body's size.
    pub request_bytes: u64,
    /// The response body's size.
    pub response_bytes: u64,
}

/// The counters of one label set: `requests` and the distributions for
/// HTTP, the others for TCP.
#[derive(Debug, Default)]
pub struct Series {
    requests: AtomicU64,
    duration: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
    opened: AtomicU64,
    closed: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
}

impl Series {
    /// A TCP connection of this series closed, having received `received`
    /// bytes from its client (the request) and sent it `sent` (the
    /// response), as Istio's TCP byte counters count them.
    pub fn tcp_closed(&self, received: u64, sent: u64) {
        self.closed.fetch_add(1, Relaxed);
        self.sent.fetch_add(sent, Relaxed);
        self.received.fetch_add(received, Relaxed);
    }
}

/// The metrics of one proxy.
pub struct IstioStats {
    /// `reporter="source",source_workload="…",source_workload_namespace="…"`.
    source_head: String,
    /// `source_app="…",…,source_canonical_revision="…"`, which follow
    /// `source_principal`.
    source_tail: String,
    max_unregistered: usize,
    series: DashMap<SeriesKey, Arc<Series>>,
    /// The unregistered destinations given a series of their own, while the
    /// cap has room.
    unregistered: Mutex<HashSet<Arc<str>>>,
    /// The same destinations once the cap is reached: from then on no other
    /// is admitted, and they are read without the lock.
    full: OnceLock<HashSet<Arc<str>>>,
    other: Arc<str>,
}

impl Default for IstioStats {
    fn default() -> Self {
        Self::new(
            &SourceWorkload::default(),
            DEFAULT_MAX_UNREGISTERED_DESTINATIONS,
        )
    }
}

impl IstioStats {
    pub fn new(source: &SourceWorkload, max_unregistered: usize) -> Self {
        Self {
            source_head: source.head_labels(),
            source_tail: source.tail_labels(),
            max_unregistered,
            series: DashMap::new(),
            unregistered: Mutex::new(HashSet::new()),
            full: OnceLock::new(),
            other: OTHER_DESTINATION.into(),
        }
    }

    /// Counts one HTTP request whose stream ended, in its counter and
    /// distributions.
    pub fn request(&self, request: &Request<'_>) {
        let shape = Shape {
            class: request.destination.class,
            protocol: request.protocol,
            response_code: request.response_code,
            grpc_status: request.grpc_status,
            response_flags: request.response_flags,
            egress_policy: request.egress_policy,
        };
        let lookup = SeriesRef {
            service: request.destination.service,
            peer: request.peer,
            shape,
        };
        let record = |series: &Series| {
            series.requests.fetch_add(1, Relaxed);
            series.duration.record(request.duration_ms);
            series.request_bytes.record(request.request_bytes as f64);
            series.response_bytes.record(request.response_bytes as f64);
        };
        match self.series.get(&lookup as &dyn SeriesLabels) {
            Some(series) => record(&series),
            None => record(&self.series(request.destination.service, request.peer, shape)),
        }
    }

    /// Counts one TCP connection opened (to `peer`); its series counts it
    /// closed.
    pub fn tcp_opened(
        &self,
        destination: Destination<'_>,
        peer: Peer<'_>,
        response_flags: &'static str,
        egress_policy: Option<EgressPolicy>,
    ) -> Arc<Series> {
        let shape = Shape {
            class: destination.class,
            protocol: Protocol::Tcp,
            response_code: 0,
            grpc_status: None,
            response_flags,
            egress_policy,
        };
        let series = self.series(destination.service, peer, shape);
        series.opened.fetch_add(1, Relaxed);
        series
    }

    /// The series of `service` and `peer` with `shape`: one map lookup,
    /// without allocating, once the label set has been seen.
    fn series(&self, service: &str, peer: Peer<'_>, shape: Shape) -> Arc<Series> {
        let lookup = SeriesRef {
            service,
            peer,
            shape,
        };
        if let Some(series) = self.series.get(&lookup as &dyn SeriesLabels) {
            return series.clone();
        }
        let service = if shape.class == DestinationClass::Registered {
            Arc::from(service)
        } else if let Some(admitted) = self.admit_unregistered(service) {
            admitted
        } else {
            let other = SeriesRef {
                service: OTHER_DESTINATION,
                peer,
                shape,
            };
            if let Some(series) = self.series.get(&other as &dyn SeriesLabels) {
                return series.clone();
            }
            self.other.clone()
        };
        self.series
            .entry(SeriesKey {
                service,
                workload: peer.workload.cloned(),
                principals: peer.principals.cloned(),
                shape,
            })
            .or_default()
            .clone()
    }

    /// `service` if it has a series of its own or the cap leaves room for
    /// it, else `None` (it is counted as `other`). Registered destinations
    /// never come here. Once the cap is reached, no lock is taken.
    fn admit_unregistered(&self, service: &str) -> Option<Arc<str>> {
        if let Some(full) = self.full.get() {
            return full.get(service).cloned();
        }
        let mut seen = self.unregistered.lock();
        if let Some(full) = self.full.get() {
            return full.get(service).cloned();
        }
        if let Some(admitted) = seen.get(service) {
            return Some(admitted.clone());
        }
        if seen.len() >= self.max_unregistered {
            let _ = self.full.set(std::mem::take(&mut *seen));
            return None;
        }
        let admitted: Arc<str> = Arc::from(service);
        seen.insert(admitted.clone());
        Some(admitted)
    }

    /// Prometheus text exposition.
    pub fn render(&self, out: &mut String) {
        let mut series: Vec<_> = self
            .series
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        series.sort_by(|(a, _), (b, _)| {
            (
                &*a.service,
                a.workload.as_deref(),
                a.principals.as_deref(),
                a.shape.response_code,
                a.shape.response_flags,
            )
                .cmp(&(
                    &*b.service,
                    b.workload.as_deref(),
                    b.principals.as_deref(),
                    b.shape.response_code,
                    b.shape.response_flags,
                ))
        });
        let is_http = |key: &SeriesKey| key.shape.protocol != Protocol::Tcp;
        let labelled = |key: &SeriesKey| {
            let mut labels = self.source_head.clone();
            let principals = key.principals.as_deref();
            labels.push(',');
            peer::write_source_principal(&mut labels, principals);
            labels.push(',');
            labels.push_str(&self.source_tail);
            labels.push(',');
            peer::write_destination_labels(&mut labels, key.workload.as_deref(), principals);
            labels.push(',');
            key.write_labels(&mut labels);
            labels
        };
        let series: Vec<(String, bool, Arc<Series>)> = series
            .into_iter()
            .map(|(key, counters)| (labelled(&key), is_http(&key), counters))
            .collect();
        type Read = fn(&Series) -> u64;
        let counters: [(&str, bool, Read); 5] = [
            ("istio_requests_total", true, |s| s.requests.load(Relaxed)),
            ("istio_tcp_connections_opened_total", false, |s| {
                s.opened.load(Relaxed)
            }),
            ("istio_tcp_connections_closed_total", false, |s| {
                s.closed.load(Relaxed)
            }),
            ("istio_tcp_sent_bytes_total", false, |s| {
                s.sent.load(Relaxed)
            }),
            ("istio_tcp_received_bytes_total", false, |s| {
                s.received.load(Relaxed)
            }),
        ];
        for (metric, http, read) in counters {
            let _ = writeln!(out, "# TYPE {metric} counter");
            for (labels, _, counters) in series.iter().filter(|(_, h, _)| *h == http) {
                let _ = writeln!(out, "{metric}{{{labels}}} {}", read(counters));
            }
        }
        type Distribution = fn(&Series) -> &Histogram;
        let distributions: [(&str, Distribution); 3] = [
            ("istio_request_duration_milliseconds", |s| &s.duration),
            ("istio_request_bytes", |s| &s.request_bytes),
            ("istio_response_bytes", |s| &s.response_bytes),
        ];
        for (metric, read) in distributions {
            let _ = writeln!(out, "# TYPE {metric} histogram");
            for (labels, _, counters) in series.iter().filter(|(_, http, _)| *http) {
                read(counters).render(out, metric, labels);
            }
        }
    }
}

/// Appends `value` escaped as a Prometheus label value.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod dashboard_tests;
