//! Istio's standard metrics as a source proxy reports them
//! (`istio_requests_total`, `istio_tcp_*`), labelled by destination and by
//! the egress mark, with at most a configured number of distinct
//! unregistered destinations per proxy (the rest are folded into `other`).

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use parking_lot::Mutex;

use shared::egress::EgressPolicy;

/// What unregistered destinations past the cap are counted as.
pub const OTHER_DESTINATION: &str = "other";
/// The default cap on distinct unregistered destinations per proxy.
pub const DEFAULT_MAX_UNREGISTERED_DESTINATIONS: usize = 100;

/// The workload this proxy reports for (`source_workload`,
/// `source_workload_namespace`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceWorkload {
    pub workload: String,
    pub namespace: String,
}

impl SourceWorkload {
    /// The workload of pod `pod`, as Istio names it (see
    /// [`shared::egress::workload_name`]).
    pub fn of_pod(pod: &str, namespace: &str, labels: &BTreeMap<String, String>) -> Self {
        Self {
            workload: shared::egress::workload_name(pod, labels).to_string(),
            namespace: namespace.to_string(),
        }
    }
}

impl Default for SourceWorkload {
    fn default() -> Self {
        Self {
            workload: "unknown".into(),
            namespace: "unknown".into(),
        }
    }
}

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
    fn service_name(class: DestinationClass, service: &str) -> &str {
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
    Tcp,
}

/// Every label of a series but the destination service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    pub class: DestinationClass,
    pub protocol: Protocol,
    /// The HTTP status; 0 for TCP.
    pub response_code: u16,
    pub response_flags: &'static str,
    pub egress_policy: Option<EgressPolicy>,
}

/// The counters of one label set: `requests` for HTTP, the others for TCP.
#[derive(Debug, Default)]
pub struct Series {
    requests: AtomicU64,
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
    source_labels: String,
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
        let mut source_labels = String::from("reporter=\"source\",source_workload=\"");
        escape_into(&mut source_labels, &source.workload);
        source_labels.push_str("\",source_workload_namespace=\"");
        escape_into(&mut source_labels, &source.namespace);
        source_labels.push('"');
        Self {
            source_labels,
            max_unregistered,
            series: DashMap::new(),
            unregistered: Mutex::new(HashSet::new()),
            full: OnceLock::new(),
            other: OTHER_DESTINATION.into(),
        }
    }

    /// Counts one HTTP request.
    pub fn request(
        &self,
        destination: Destination<'_>,
        response_code: u16,
        response_flags: &'static str,
        egress_policy: Option<EgressPolicy>,
    ) {
        let shape = Shape {
            class: destination.class,
            protocol: Protocol::Http,
            response_code,
            response_flags,
            egress_policy,
        };
        let lookup = SeriesRef {
            service: destination.service,
            shape,
        };
        match self.series.get(&lookup as &dyn SeriesLabels) {
            Some(series) => series.requests.fetch_add(1, Relaxed),
            None => self
                .series(destination.service, shape)
                .requests
                .fetch_add(1, Relaxed),
        };
    }

    /// Counts one TCP connection opened; its series counts it closed.
    pub fn tcp_opened(
        &self,
        destination: Destination<'_>,
        response_flags: &'static str,
        egress_policy: Option<EgressPolicy>,
    ) -> Arc<Series> {
        let shape = Shape {
            class: destination.class,
            protocol: Protocol::Tcp,
            response_code: 0,
            response_flags,
            egress_policy,
        };
        let series = self.series(destination.service, shape);
        series.opened.fetch_add(1, Relaxed);
        series
    }

    /// The series of `service` with `shape`: one map lookup, without
    /// allocating, once the label set has been seen.
    fn series(&self, service: &str, shape: Shape) -> Arc<Series> {
        let lookup = SeriesRef { service, shape };
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
                shape,
            };
            if let Some(series) = self.series.get(&other as &dyn SeriesLabels) {
                return series.clone();
            }
            self.other.clone()
        };
        self.series
            .entry(SeriesKey { service, shape })
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
            (&*a.service, a.shape.response_code, a.shape.response_flags).cmp(&(
                &*b.service,
                b.shape.response_code,
                b.shape.response_flags,
            ))
        });
        type Read = fn(&Series) -> u64;
        let metrics: [(&str, Protocol, Read); 5] = [
            ("istio_requests_total", Protocol::Http, |s| {
                s.requests.load(Relaxed)
            }),
            ("istio_tcp_connections_opened_total", Protocol::Tcp, |s| {
                s.opened.load(Relaxed)
            }),
            ("istio_tcp_connections_closed_total", Protocol::Tcp, |s| {
                s.closed.load(Relaxed)
            }),
            ("istio_tcp_sent_bytes_total", Protocol::Tcp, |s| {
                s.sent.load(Relaxed)
            }),
            ("istio_tcp_received_bytes_total", Protocol::Tcp, |s| {
                s.received.load(Relaxed)
            }),
        ];
        for (metric, protocol, read) in metrics {
            let _ = writeln!(out, "# TYPE {metric} counter");
            for (key, counters) in series.iter().filter(|(k, _)| k.shape.protocol == protocol) {
                let _ = write!(out, "{metric}{{{},", self.source_labels);
                key.write_labels(out);
                let _ = writeln!(out, "}} {}", read(counters));
            }
        }
    }
}

/// A series' labels, owned.
#[derive(Debug, Clone)]
struct SeriesKey {
    service: Arc<str>,
    shape: Shape,
}

impl SeriesKey {
    fn write_labels(&self, out: &mut String) {
        let shape = &self.shape;
        out.push_str("destination_service=\"");
        escape_into(out, &self.service);
        out.push_str("\",destination_service_name=\"");
        escape_into(out, Destination::service_name(shape.class, &self.service));
        let protocol = match shape.protocol {
            Protocol::Http => "http",
            Protocol::Tcp => "tcp",
        };
        let _ = write!(
            out,
            "\",request_protocol=\"{protocol}\",response_code=\"{}\",response_flags=\"{}\",egress_policy=\"{}\"",
            shape.response_code,
            shape.response_flags,
            EgressPolicy::label(shape.egress_policy),
        );
    }
}

/// A series' labels, borrowed for a lookup.
struct SeriesRef<'a> {
    service: &'a str,
    shape: Shape,
}

/// What an owned and a borrowed series key share, so the map can be
/// searched with a borrowed one.
trait SeriesLabels {
    fn service(&self) -> &str;
    fn shape(&self) -> Shape;
}

impl SeriesLabels for SeriesKey {
    fn service(&self) -> &str {
        &self.service
    }
    fn shape(&self) -> Shape {
        self.shape
    }
}

impl SeriesLabels for SeriesRef<'_> {
    fn service(&self) -> &str {
        self.service
    }
    fn shape(&self) -> Shape {
        self.shape
    }
}

impl Hash for dyn SeriesLabels + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.service().hash(state);
        self.shape().hash(state);
    }
}

impl PartialEq for dyn SeriesLabels + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.service() == other.service() && self.shape() == other.shape()
    }
}

impl Eq for dyn SeriesLabels + '_ {}

impl Hash for SeriesKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self as &dyn SeriesLabels).hash(state);
    }
}

impl PartialEq for SeriesKey {
    fn eq(&self, other: &Self) -> bool {
        (self as &dyn SeriesLabels) == (other as &dyn SeriesLabels)
    }
}

impl Eq for SeriesKey {}

impl<'a> Borrow<dyn SeriesLabels + 'a> for SeriesKey {
    fn borrow(&self) -> &(dyn SeriesLabels + 'a) {
        self
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
