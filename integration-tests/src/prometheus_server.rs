//! A real Prometheus on loopback, scraping proxies as Istio's scrape
//! annotations say (`prometheus.io/path: /stats/prometheus` on the status
//! port, 15020), its data in a temporary directory; PromQL through its HTTP
//! API (`/api/v1/query`), as Grafana sends a panel's query.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use tempfile::TempDir;

use crate::binaries;
use crate::curl::Curl;
use crate::ports::free_addr;
use crate::process::Process;

/// How long Prometheus gets to open its storage and serve.
const STARTUP: Duration = Duration::from_secs(30);
/// How long one API request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A proxy to scrape: its status port, and the pod it stands for (the
/// labels Istio's `kubernetes-pods` job gives a target).
#[derive(Debug, Clone)]
pub struct ScrapeTarget {
    pub addr: SocketAddr,
    pub pod: String,
    pub namespace: String,
}

/// One series of an instant vector: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A running `prometheus`; killed on drop, its data removed.
pub struct Prometheus {
    process: Process,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` every `interval`, and waits
    /// until it is ready.
    pub fn start(targets: &[ScrapeTarget], interval: Duration) -> Result<Self> {
        let dir = tempfile::tempdir().context("creating Prometheus's temp dir")?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, scrape_config(targets, interval))
            .with_context(|| format!("writing {}", config.display()))?;
        let addr = free_addr()?;
        let mut command = Command::new(binaries::prometheus()?);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn");
        let process = Process::spawn("prometheus", command, dir.path())?;
        let mut prometheus = Self {
            process,
            addr,
            _dir: dir,
        };
        let ready = format!("http://{addr}/-/ready");
        prometheus.process.wait_until("ready", STARTUP, || {
            Curl::get(&ready)
                .max_time(REQUEST_TIMEOUT)
                .run()?
                .ensure_status(200)
                .map(|_| ())
        })?;
        Ok(prometheus)
    }

    /// Waits until the targets API shows every target `up` (its last
    /// scrape succeeded).
    pub fn wait_until_scraped(&mut self, timeout: Duration) -> Result<()> {
        let targets = format!("http://{}/api/v1/targets", self.addr);
        self.process
            .wait_until("scraping every target", timeout, || {
                let response = Curl::get(&targets).max_time(REQUEST_TIMEOUT).run()?;
                response.ensure_status(200)?;
                let body = response.json()?;
                let active = body["data"]["activeTargets"]
                    .as_array()
                    .context("no activeTargets in /api/v1/targets")?;
                ensure!(!active.is_empty(), "no active targets yet");
                for target in active {
                    ensure!(
                        target["health"] == "up",
                        "target {} is {} ({})",
                        target["scrapeUrl"],
                        target["health"],
                        target["lastError"]
                    );
                }
                Ok(())
            })
    }

    /// Evaluates `promql` now (`/api/v1/query`): the instant vector's
    /// series. A scalar or string result is an error; so is a query
    /// Prometheus rejects, with its message.
    pub fn query(&self, promql: &str) -> Result<Vec<Sample>> {
        let response = Curl::get(format!("http://{}/api/v1/query", self.addr))
            .max_time(REQUEST_TIMEOUT)
            .arg("-G")
            .arg("--data-urlencode")
            .arg(format!("query={promql}"))
            .run()?;
        let body = response
            .json()
            .with_context(|| format!("{promql}: {}", response.body))?;
        if body["status"] != "success" {
            bail!("{promql}: {} {}", body["errorType"], body["error"]);
        }
        ensure!(
            body["data"]["resultType"] == "vector",
            "{promql}: a {} instead of an instant vector",
            body["data"]["resultType"]
        );
        body["data"]["result"]
            .as_array()
            .context("no result array")?
            .iter()
            .map(sample)
            .collect()
    }

    /// Its logs so far.
    pub fn logs(&self) -> String {
        self.process.logs()
    }
}

/// `{"metric": {...}, "value": [time, "1.5"]}` → a sample.
fn sample(series: &Value) -> Result<Sample> {
    let labels = series["metric"]
        .as_object()
        .context("a series without labels")?
        .iter()
        .map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_string()))
        .collect();
    let value = series["value"][1]
        .as_str()
        .context("a series without a value")?;
    let value = value
        .parse()
        .with_context(|| format!("value {value:?} is not a number"))?;
    Ok(Sample { labels, value })
}

/// The configuration: one job scraping `/stats/prometheus` of every
/// target, each labelled with its pod and namespace.
fn scrape_config(targets: &[ScrapeTarget], interval: Duration) -> String {
    let interval = format!("{}ms", interval.as_millis());
    let mut config = format!(
        "global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n  \
         evaluation_interval: {interval}\nscrape_configs:\n- job_name: kubernetes-pods\n  \
         metrics_path: /stats/prometheus\n  static_configs:\n"
    );
    for target in targets {
        let _ = write!(
            config,
            "  - targets: ['{}']\n    labels: {{namespace: '{}', pod: '{}'}}\n",
            target.addr, target.namespace, target.pod
        );
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_scrapes_each_target_with_its_pod() {
        let config = scrape_config(
            &[ScrapeTarget {
                addr: "127.0.0.1:15020".parse().unwrap(),
                pod: "sleep".into(),
                namespace: "default".into(),
            }],
            Duration::from_secs(1),
        );
        let parsed: serde_yaml::Value = serde_yaml::from_str(&config).unwrap();
        assert_eq!(parsed["global"]["scrape_interval"], "1000ms");
        assert_eq!(parsed["global"]["scrape_timeout"], "1000ms");
        let job = &parsed["scrape_configs"][0];
        assert_eq!(job["metrics_path"], "/stats/prometheus");
        let target = &job["static_configs"][0];
        assert_eq!(target["targets"][0], "127.0.0.1:15020");
        assert_eq!(target["labels"]["pod"], "sleep");
        assert_eq!(target["labels"]["namespace"], "default");
    }

    #[test]
    fn a_series_reads_as_labels_and_a_number() {
        let series = serde_json::json!({
            "metric": {"destination_service": "edition.cnn.com"},
            "value": [1700000000.0, "2.5"]
        });
        let sample = sample(&series).unwrap();
        assert_eq!(sample.labels["destination_service"], "edition.cnn.com");
        assert_eq!(sample.value, 2.5);
        let nan = serde_json::json!({"metric": {}, "value": [0, "NaN"]});
        assert!(super::sample(&nan).unwrap().value.is_nan());
    }
}
