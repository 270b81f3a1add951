//! Reading the Prometheus text exposition that the control plane and the
//! agent serve: the sum of the series of one metric that carry given labels.

use std::collections::BTreeMap;

/// The sum of the series of metric `name` in `text` that carry every label
/// in `labels` (e.g. `pilot_xds_auth_failures_total` with
/// `reason="missing_token"`); `None` when there is no such series (a
/// labelled metric has none until first counted).
pub fn sum(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = parse_series(series)?;
            let wanted = series_name == name
                && labels.iter().all(|(key, value)| {
                    series_labels.get(*key).map(String::as_str) == Some(*value)
                });
            wanted.then(|| value.parse().ok())?
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// `name{key="value",..}` → the name and its labels.
fn parse_series(series: &str) -> Option<(&str, BTreeMap<String, String>)> {
    let Some((name, rest)) = series.split_once('{') else {
        return Some((series, BTreeMap::new()));
    };
    let mut labels = BTreeMap::new();
    let mut rest = rest.strip_suffix('}')?;
    while !rest.is_empty() {
        let (key, after_key) = rest.split_once("=\"")?;
        let end = after_key.find('"')?;
        labels.insert(key.to_string(), after_key[..end].to_string());
        rest = after_key[end + 1..].trim_start_matches(',');
    }
    Some((name, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_series() {
        let (name, labels) =
            parse_series(r#"xds_updates_total{type="clusters",result="rejected"}"#).unwrap();
        assert_eq!(name, "xds_updates_total");
        assert_eq!(labels["type"], "clusters");
        assert_eq!(labels["result"], "rejected");
        let (name, labels) = parse_series(
            r#"envoy_cluster_upstream_rq_total{envoy_cluster_name="outbound|80||a.b"}"#,
        )
        .unwrap();
        assert_eq!(name, "envoy_cluster_upstream_rq_total");
        assert_eq!(labels["envoy_cluster_name"], "outbound|80||a.b");
        let (name, labels) = parse_series("xds_connected").unwrap();
        assert_eq!((name, labels.len()), ("xds_connected", 0));
    }

    #[test]
    fn sums_the_series_with_the_labels_asked_for() {
        let text = "# TYPE pilot_xds_auth_failures_total counter\n\
                    pilot_xds_auth_failures_total{reason=\"missing_token\"} 2\n\
                    pilot_xds_auth_failures_total{reason=\"expired_token\"} 1\n\
                    pilot_xds 3\n";
        let failures = "pilot_xds_auth_failures_total";
        assert_eq!(sum(text, failures, &[]), Some(3.0));
        assert_eq!(
            sum(text, failures, &[("reason", "missing_token")]),
            Some(2.0)
        );
        assert_eq!(sum(text, failures, &[("reason", "node_mismatch")]), None);
        assert_eq!(sum(text, "pilot_xds", &[]), Some(3.0));
        assert_eq!(sum(text, "pilot_xds_pushes", &[]), None);
    }
}
