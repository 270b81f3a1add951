//! Running istio.io's egress tasks as parity tables: a row's config files
//! taken from `fixtures/docs` ([`crate::docs`]), what every task needs (the
//! test CA, the client credential it signed, the egress gateway's ports),
//! and one task at a time through [`crate::parity`]; the files of the
//! steps through an egress gateway, of either tab, in [`tabs`].

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use anyhow::Result;

use crate::docs::{ClientCredential, in_namespace, secret, snippet};
use crate::fixtures::{GatewayPort, egress_gateway_service};
use crate::netns;
use crate::parity::{self, Scenario};
use crate::ports::free_port;
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

/// Where the egress gateway listens on the host for its service's ports
/// 80 and 443 (the host's own 80 and 443 are the external servers').
#[derive(Debug, Clone, Copy)]
pub struct GatewayPorts {
    pub http: u16,
    pub https: u16,
}

/// What every task needs: the test CA, the client credential it signed,
/// the gateway's target ports and Istio's egress gateway's in-mesh service.
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
        let targets = GatewayPorts {
            http: free_port()?,
            https: free_port()?,
        };
        let gateway_service = (
            "egressgateway-service.yaml",
            egress_gateway_service(&[
                GatewayPort::new(80, "HTTP").target(targets.http),
                GatewayPort::new(443, "HTTPS").target(targets.https),
            ])?,
        );
        Ok(Self {
            ca,
            credential,
            targets,
            gateway_service,
        })
    }
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
