//! Istio's Grafana dashboards as Grafana runs them: the panels' PromQL of
//! `fixtures/istio-dashboards.yaml` (verbatim from istio/istio), and the
//! substitution of Grafana's template variables into it.

use anyhow::{Context, Result, ensure};
use serde::Deserialize;

/// The dashboards' queries, with where each comes from.
const FIXTURE: &str = include_str!("../fixtures/istio-dashboards.yaml");

/// What Grafana puts for `$__rate_interval` with Prometheus scraping every
/// second: max(`$__interval` + the scrape interval, 4 × the scrape
/// interval), `$__interval` being the Mesh dashboard panels' 5s.
pub const RATE_INTERVAL: &str = "6s";

#[derive(Debug, Deserialize)]
struct Fixture {
    dashboards: Vec<Dashboard>,
}

/// One dashboard: its title, the file and commit it was taken from, and
/// the panel queries that apply to a source proxy's metrics.
#[derive(Debug, Deserialize)]
pub struct Dashboard {
    pub title: String,
    pub source: String,
    pub commit: String,
    pub panels: Vec<Panel>,
}

/// One query of a panel (`ref` is Grafana's refId), or of a template
/// variable (`Variable: <name>`).
#[derive(Debug, Deserialize)]
pub struct Panel {
    pub title: String,
    #[serde(rename = "ref")]
    pub ref_id: String,
    pub expr: String,
}

/// The dashboards of the fixture.
pub fn dashboards() -> Result<Vec<Dashboard>> {
    let fixture: Fixture =
        serde_yaml::from_str(FIXTURE).context("parsing fixtures/istio-dashboards.yaml")?;
    Ok(fixture.dashboards)
}

/// `expr` as Grafana sends it to Prometheus: `$__rate_interval` and each
/// variable of `vars` (name, value) replaced by its value, a variable
/// query's `query_result(...)` unwrapped. A single value goes in as it is
/// (Grafana escapes a multi-value variable's regex characters; a `.` in a
/// host matches itself either way). Fails if a variable is left.
pub fn substitute(expr: &str, vars: &[(&str, &str)]) -> Result<String> {
    let mut vars = vars.to_vec();
    // `$namespace` before `$name`, were both there.
    vars.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    let mut query = expr.replace("$__rate_interval", RATE_INTERVAL);
    for (name, value) in vars {
        query = query.replace(&format!("${name}"), value);
    }
    if let Some(inner) = query
        .strip_prefix("query_result(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        query = inner.to_string();
    }
    ensure!(
        !query.contains('$'),
        "a template variable has no value in {query}"
    );
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_substituted_as_grafana_does() {
        let query = substitute(
            r#"query_result(sum(istio_requests_total{source_workload=~"$workload", source_workload_namespace=~"$namespace"}[$__rate_interval]) by (destination_service))"#,
            &[("workload", "sleep"), ("namespace", "default")],
        )
        .unwrap();
        assert_eq!(
            query,
            r#"sum(istio_requests_total{source_workload=~"sleep", source_workload_namespace=~"default"}[6s]) by (destination_service)"#
        );
        let missing = substitute(r#"x{a="$service"}"#, &[]).unwrap_err();
        assert!(missing.to_string().contains("$service"), "{missing}");
    }

    #[test]
    fn every_dashboard_names_its_source_and_has_queries() {
        let dashboards = dashboards().unwrap();
        assert_eq!(dashboards.len(), 3);
        for dashboard in dashboards {
            assert!(
                dashboard.source.starts_with("manifests/addons/dashboards/"),
                "{}",
                dashboard.source
            );
            assert_eq!(dashboard.commit.len(), 40, "{}", dashboard.title);
            assert!(!dashboard.panels.is_empty(), "{}", dashboard.title);
        }
    }
}
