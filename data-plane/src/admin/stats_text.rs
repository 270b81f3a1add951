//! `/stats` in Envoy's own formats, from the Prometheus exposition every
//! stats source renders: the tags Envoy extracts into Prometheus labels go
//! back into the dotted name (`envoy_cluster_upstream_cx_total
//! {envoy_cluster_name="c"}` is `cluster.c.upstream_cx_total`), other
//! labels are written as Istio's stats names carry them
//! (`reporter=.=source;.;istio_requests_total`). Text: counters and gauges
//! as `name: value` sorted by name, then histograms as `name: P0(…) …`;
//! JSON: `{"stats": [{"name", "value"}…, {"histograms": …}]}`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use regex::Regex;
use serde_json::{Value, json};

/// The quantiles Envoy computes for a histogram, in percent.
const QUANTILES: [f64; 10] = [0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 100.0];

/// Envoy's tags that name a scope: the label, the Prometheus name's prefix
/// after `envoy_`, and the scope it stands for in the dotted name.
const SCOPE_TAGS: [(&str, &str, &str); 5] = [
    ("envoy_cluster_name", "cluster_", "cluster"),
    ("envoy_http_conn_manager_prefix", "http_", "http"),
    ("envoy_listener_address", "listener_", "listener"),
    ("envoy_listener_prefix", "listener_", "listener"),
    ("envoy_tcp_prefix", "tcp_", "tcp"),
];

/// The response code class tag: Envoy's `upstream_rq_2xx` is
/// `upstream_rq_xx{envoy_response_code_class="2"}`.
const CODE_CLASS_TAG: &str = "envoy_response_code_class";
/// The response code tag (`retry.upstream_rq_503`).
const CODE_TAG: &str = "envoy_response_code";

/// Name segments that are scopes of their own in Envoy's dotted names,
/// where Prometheus joins them with `_`.
const SUBSCOPES: [(&str, &str); 12] = [
    ("circuit_breakers_default_", "circuit_breakers.default."),
    ("outlier_detection_", "outlier_detection."),
    ("ssl_", "ssl."),
    ("fault_", "fault."),
    ("cors_", "cors."),
    ("listener_manager_", "listener_manager."),
    ("cluster_manager_", "cluster_manager."),
    ("server_", "server."),
    ("tls_inspector_", "tls_inspector."),
    (
        "access_logs_grpc_access_log_",
        "access_logs.grpc_access_log.",
    ),
    ("runtime_", "runtime."),
    ("retry_upstream_", "retry.upstream_"),
];

/// One stat in Envoy's naming.
#[derive(Debug, Clone, PartialEq)]
pub enum Stat {
    /// A counter or a gauge.
    Value(f64),
    /// A histogram: its cumulative buckets (upper bound, count) and count.
    Histogram {
        buckets: Vec<(f64, f64)>,
        count: f64,
    },
}

/// The stats of a Prometheus exposition by Envoy name, those matching
/// `filter` only.
pub fn parse(prometheus: &str, filter: Option<&Regex>) -> BTreeMap<String, Stat> {
    let mut histograms: Vec<String> = Vec::new();
    let mut stats = BTreeMap::new();
    for line in prometheus.lines() {
        if let Some(family) = line.strip_prefix("# TYPE ") {
            if let Some(name) = family.strip_suffix(" histogram") {
                histograms.push(name.to_string());
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((name, mut labels, value)) = sample(line) else {
            continue;
        };
        let family = histograms
            .iter()
            .find(|h| name.strip_prefix(h.as_str()).is_some_and(is_histogram_part));
        match family {
            Some(family) => {
                let part = &name[family.len()..];
                let bound = take(&mut labels, "le");
                let key = envoy_name(family, labels);
                let Stat::Histogram { buckets, count } =
                    stats.entry(key).or_insert_with(|| Stat::Histogram {
                        buckets: Vec::new(),
                        count: 0.0,
                    })
                else {
                    continue;
                };
                match (part, bound) {
                    ("_bucket", Some(bound)) => {
                        let bound = if bound == "+Inf" {
                            f64::INFINITY
                        } else {
                            bound.parse().unwrap_or(f64::INFINITY)
                        };
                        buckets.push((bound, value));
                    }
                    ("_count", _) => *count = value,
                    _ => {}
                }
            }
            None => {
                stats.insert(envoy_name(name, labels), Stat::Value(value));
            }
        }
    }
    if let Some(filter) = filter {
        stats.retain(|name, _| filter.is_match(name));
    }
    stats
}

fn is_histogram_part(suffix: &str) -> bool {
    matches!(suffix, "_bucket" | "_sum" | "_count")
}

/// Envoy's text: counters and gauges by name, then histograms by name.
pub fn text(stats: &BTreeMap<String, Stat>) -> String {
    let mut out = String::new();
    for (name, stat) in stats {
        if let Stat::Value(value) = stat {
            let _ = writeln!(out, "{name}: {}", number(*value));
        }
    }
    for (name, stat) in stats {
        if let Stat::Histogram { buckets, count } = stat {
            let _ = write!(out, "{name}:");
            if *count == 0.0 {
                out.push_str(" No recorded values");
            } else {
                for (quantile, value) in QUANTILES.iter().zip(quantiles(buckets, *count)) {
                    let _ = write!(out, " P{quantile}(nan,{})", number(value));
                }
            }
            out.push('\n');
        }
    }
    out
}

/// Envoy's JSON: `{"stats": [{"name", "value"}…]}`, histograms last in
/// one `{"histograms": {"supported_quantiles", "computed_quantiles"}}`.
pub fn json(stats: &BTreeMap<String, Stat>) -> Value {
    let mut list: Vec<Value> = Vec::new();
    let mut computed = Vec::new();
    for (name, stat) in stats {
        match stat {
            Stat::Value(value) => list.push(json!({ "name": name, "value": json_number(*value) })),
            Stat::Histogram { buckets, count } => {
                let values: Vec<Value> = quantiles(buckets, *count)
                    .into_iter()
                    .map(|value| json!({ "interval": null, "cumulative": value }))
                    .collect();
                computed.push(json!({ "name": name, "values": values }));
            }
        }
    }
    if !computed.is_empty() {
        list.push(json!({ "histograms": {
            "supported_quantiles": QUANTILES,
            "computed_quantiles": computed,
        }}));
    }
    json!({ "stats": list })
}

/// Envoy's name of the Prometheus series `name{labels}`.
pub fn envoy_name(name: &str, mut labels: Vec<(String, String)>) -> String {
    let Some(rest) = name.strip_prefix("envoy_") else {
        return tagged(labels, name.to_string());
    };
    let mut rest = rest.to_string();
    if let Some(class) = take(&mut labels, CODE_CLASS_TAG) {
        let base = rest.strip_suffix("_xx").unwrap_or(&rest);
        rest = format!("{base}_{class}xx");
    }
    if let Some(code) = take(&mut labels, CODE_TAG) {
        rest = format!("{rest}_{code}");
    }
    for (tag, prefix, scope) in SCOPE_TAGS {
        if let Some(after) = rest.strip_prefix(prefix)
            && let Some(value) = take(&mut labels, tag)
        {
            let dotted = format!("{scope}.{value}.{}", subscopes(after));
            return tagged(labels, dotted);
        }
    }
    let dotted = subscopes(&rest);
    tagged(labels, dotted)
}

/// `rest` with its sub-scopes dotted.
fn subscopes(rest: &str) -> String {
    SUBSCOPES
        .iter()
        .find_map(|(prefix, dotted)| {
            rest.strip_prefix(prefix)
                .map(|after| format!("{dotted}{}", subscopes(after)))
        })
        .unwrap_or_else(|| rest.to_string())
}

/// `name` behind the labels no tag of Envoy stands for, as Istio's stats
/// names carry them.
fn tagged(labels: Vec<(String, String)>, name: String) -> String {
    let mut out = String::new();
    for (key, value) in labels {
        let _ = write!(out, "{key}=.={value};.;");
    }
    out + &name
}

fn take(labels: &mut Vec<(String, String)>, key: &str) -> Option<String> {
    let index = labels.iter().position(|(k, _)| k == key)?;
    Some(labels.remove(index).1)
}

/// A series' labels, in order.
type Labels = Vec<(String, String)>;

/// One sample line: name, labels, value.
fn sample(line: &str) -> Option<(&str, Labels, f64)> {
    let (series, value) = line.trim_end().rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let Some((name, labels)) = series.split_once('{') else {
        return Some((series, Vec::new(), value));
    };
    let labels = labels.strip_suffix('}')?;
    Some((name, parse_labels(labels)?, value))
}

/// `k="v",k2="v2"`, with Prometheus's escapes in the values.
fn parse_labels(mut text: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    while !text.is_empty() {
        let (key, after) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (index, c) = chars.next()?;
            match c {
                '"' => break index,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        labels.push((key.trim_start_matches(',').to_string(), value));
        text = after[end + 1..].trim_start_matches(',');
    }
    Some(labels)
}

/// The quantiles of a histogram from its cumulative buckets, linear
/// within a bucket (an open last bucket gives its lower bound).
fn quantiles(buckets: &[(f64, f64)], count: f64) -> Vec<f64> {
    if count == 0.0 {
        return vec![f64::NAN; QUANTILES.len()];
    }
    QUANTILES
        .iter()
        .map(|q| {
            let rank = count * q / 100.0;
            let mut lower = (0.0, 0.0);
            for &(bound, cumulative) in buckets {
                if cumulative >= rank && cumulative > 0.0 {
                    if !bound.is_finite() {
                        return lower.0;
                    }
                    let width = cumulative - lower.1;
                    let within = if width > 0.0 {
                        (rank - lower.1) / width
                    } else {
                        0.0
                    };
                    return lower.0 + (bound - lower.0) * within;
                }
                lower = (bound, cumulative);
            }
            lower.0
        })
        .collect()
}

/// A value as Envoy prints it: integers without a fraction.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

fn json_number(value: f64) -> Value {
    if value.fract() == 0.0 && (0.0..1e15).contains(&value) {
        json!(value as u64)
    } else {
        json!(value)
    }
}

#[cfg(test)]
mod tests;
