//! Running istio.io's egress tasks as parity tables: a row's config files
//! taken from `fixtures/docs` ([`crate::docs`]), what every task needs (the
//! test CA, the client credential it signed, the egress gateway's Service),
//! and one task at a time through [`crate::parity`]; the files of the
//! steps through an egress gateway, of either tab, in [`tabs`].

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use anyhow::{Context, Result};
use serde_yaml::Value;

use crate::docs::{ClientCredential, in_namespace, secret, snippet};
use crate::fixtures::ISTIO_EGRESS_GATEWAY_SERVICE;
use crate::netns;
use crate::parity::{self, Scenario};
use crate::tls::TestCa;

pub mod tabs;

/// A config file of a row: its name in the config directory, its YAML.
pub type File = (&'static str, String);

/// The snippet at `path` of `fixtures/docs`, under its own file name.
pub fn doc(path: &'static str) -> Result<File> {
    let name = path.rsplit('/').next().unwrap_or(path);
    Ok((name, snippet(path)?))
}

/// The snippet at `path` as `kubectl apply -n <namespace>` applies it.
pub fn doc_in(path: &'static str, namespace: &str) -> Result<File> {
    let (name, yaml) = doc(path)?;
    Ok((name, in_namespace(&yaml, namespace)?))
}

/// The Secret fixture at `path`, with the test CA's files.
pub fn secret_doc(path: &'static str, credential: &ClientCredential) -> Result<File> {
    let name = path.rsplit('/').next().unwrap_or(path);
    Ok((name, secret(path, credential)?))
}

/// The egress gateway's service as Istio's install creates it: the
/// Kubernetes Service `istio-egressgateway` in `istio-system`.
const GATEWAY_SERVICE_FILE: &str = "istio-egressgateway-service.yaml";

/// Where the egress gateway listens, in its pod, for its Service's ports
/// 80 and 443: the Service's target ports.
#[derive(Debug, Clone, Copy)]
pub struct GatewayPorts {
    pub http: u16,
    pub https: u16,
}

impl GatewayPorts {
    /// The target ports of Istio's egress gateway Service
    /// ([`ISTIO_EGRESS_GATEWAY_SERVICE`]).
    pub fn of_istio_service() -> Result<Self> {
        Ok(Self {
            http: target_port(ISTIO_EGRESS_GATEWAY_SERVICE, 80)?,
            https: target_port(ISTIO_EGRESS_GATEWAY_SERVICE, 443)?,
        })
    }
}

/// What every task needs: the test CA, the client credential it signed,
/// Istio's egress gateway's Service and its target ports.
pub struct Setup {
    pub ca: TestCa,
    pub credential: ClientCredential,
    pub targets: GatewayPorts,
    pub gateway_service: File,
}

impl Setup {
    pub fn new() -> Result<Self> {
        let ca = TestCa::new()?;
        let credential = ClientCredential::new(&ca)?;
        Ok(Self {
            ca,
            credential,
            targets: GatewayPorts::of_istio_service()?,
            gateway_service: istio_gateway_service(),
        })
    }
}

/// Istio's egress gateway Service as a config file.
pub fn istio_gateway_service() -> File {
    (
        GATEWAY_SERVICE_FILE,
        ISTIO_EGRESS_GATEWAY_SERVICE.to_string(),
    )
}

/// The `targetPort` of port `port` of the Kubernetes Service `yaml`.
fn target_port(yaml: &str, port: u16) -> Result<u16> {
    let service: Value = serde_yaml::from_str(yaml).context("parsing a Service")?;
    let ports = service["spec"]["ports"]
        .as_sequence()
        .context("a Service without spec.ports")?;
    let target = ports
        .iter()
        .find(|entry| entry["port"].as_u64() == Some(u64::from(port)))
        .and_then(|entry| entry["targetPort"].as_u64())
        .with_context(|| format!("the Service has no port {port} with a numeric targetPort"))?;
    u16::try_from(target).context("a targetPort beyond 65535")
}

/// One task at a time: each runs its own control plane, proxies and
/// servers, and the machine's cores are few.
static ONE_TASK_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs a task's rows through the agent and Envoy on one control plane,
/// prints the table, and fails on any row not as the task shows.
pub fn run_task(test: &str, rows: impl FnOnce(&Setup) -> Result<Vec<Scenario>>) -> Result<()> {
    if !netns::require_root(test) {
        return Ok(());
    }
    let _one = ONE_TASK_AT_A_TIME
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let started = Instant::now();
    let setup = Setup::new()?;
    let scenarios = rows(&setup)?;
    let report = parity::run(&scenarios, &setup.ca)?;
    println!("{report}");
    println!("runtime: {:.1?}", started.elapsed());
    // A panic, so that every process prints its logs.
    let failures = report.failures();
    assert!(failures.is_empty(), "{}\n\n{report}", failures.join("\n"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_listens_on_the_target_ports_of_istios_service() {
        assert_eq!(target_port(ISTIO_EGRESS_GATEWAY_SERVICE, 80).unwrap(), 8080);
        assert_eq!(
            target_port(ISTIO_EGRESS_GATEWAY_SERVICE, 443).unwrap(),
            8443
        );
        assert!(target_port(ISTIO_EGRESS_GATEWAY_SERVICE, 15443).is_err());
    }
}
