//! The deployment files under `deploy/` are valid where they are used: the
//! systemd units by `systemd-analyze verify` (with the binaries' paths
//! pointed at the ones built here, since it checks them), the Kubernetes
//! manifests by the Kubernetes schema validator (`kubernetes-validate
//! --strict`), and both state Istio's conventions: istio-egressgateway's
//! labels, the proxy's uid 1337 and ports.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::binaries::{self, BinaryError};
use integration_tests::process;
use integration_tests::unit_file::systemd_dir;
use serde::Deserialize;
use serde_yaml::Value;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const UNITS: [&str; 3] = [
    "egress-mesh-control-plane.service",
    "egress-mesh-egress-gateway.service",
    "egress-mesh-sidecar.service",
];

fn kubernetes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

#[test]
fn systemd_analyze_verify_accepts_every_unit_without_a_warning() -> Result<()> {
    let analyze = match binaries::systemd_analyze() {
        Ok(path) => path,
        Err(BinaryError::NotFound { .. }) => {
            eprintln!(
                "SKIPPED systemd units: systemd-analyze is missing (scripts/install-test-deps.sh installs it)"
            );
            return Ok(());
        }
        Err(error) => return Err(error.into()),
    };
    let dir = tempfile::tempdir()?;
    let control_plane = binaries::control_plane()?;
    let data_plane = binaries::data_plane()?;
    for unit in UNITS {
        let text = fs::read_to_string(systemd_dir().join(unit))?
            .replace(
                "/usr/local/bin/control-plane",
                &control_plane.to_string_lossy(),
            )
            .replace("/usr/local/bin/data-plane", &data_plane.to_string_lossy());
        fs::write(dir.path().join(unit), text)?;
    }
    let mut command = Command::new(analyze);
    command
        .arg("verify")
        .args(UNITS.map(|unit| dir.path().join(unit)));
    let output = process::run("systemd-analyze", command, RUN_TIMEOUT)?;
    // A misspelt key is only a warning: any output is a failure.
    ensure!(
        output.success() && output.stderr.trim().is_empty() && output.stdout.trim().is_empty(),
        "systemd-analyze verify: {output:?}"
    );
    Ok(())
}

#[test]
fn the_kubernetes_manifests_pass_the_schema_validator() -> Result<()> {
    let validator = binaries::kubernetes_validate()?;
    let mut command = Command::new(validator);
    command.args(["--strict", "--quiet"]);
    for manifest in manifests()? {
        command.arg(manifest);
    }
    let output = process::run("kubernetes-validate", command, RUN_TIMEOUT)?;
    output
        .ensure_success()
        .context("kubernetes-validate --strict")?;
    ensure!(
        !output.stdout.contains("ERROR") && !output.stderr.contains("ERROR"),
        "{output:?}"
    );
    Ok(())
}

#[test]
fn the_egress_gateway_carries_the_labels_istio_installs_it_with() -> Result<()> {
    let documents = documents("egress-gateway.yaml")?;
    let deployment = find(&documents, "Deployment", "istio-egressgateway")?;
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    ensure!(labels["app"] == "istio-egressgateway", "{labels:?}");
    ensure!(labels["istio"] == "egressgateway", "{labels:?}");
    ensure!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"]
            == "istio-egressgateway-service-account"
    );
    let service = find(&documents, "Service", "istio-egressgateway")?;
    let ports: Vec<(i64, i64)> = service["spec"]["ports"]
        .as_sequence()
        .context("service ports")?
        .iter()
        .filter_map(|port| Some((port["port"].as_i64()?, port["targetPort"].as_i64()?)))
        .collect();
    ensure!(ports == [(80, 8080), (443, 8443)], "{ports:?}");
    Ok(())
}

#[test]
fn the_injected_sidecar_follows_istio_init_conventions() -> Result<()> {
    let documents = documents("sidecar-injection.yaml")?;
    let pod = &find(&documents, "Deployment", "sleep")?["spec"]["template"]["spec"];
    let init = container(&pod["initContainers"], "istio-init")?;
    let added = &init["securityContext"]["capabilities"]["add"];
    ensure!(
        added == &serde_yaml::from_str::<Value>("[NET_ADMIN, NET_RAW]")?,
        "{added:?}"
    );
    ensure!(init["securityContext"]["runAsUser"] == 0);
    let args = strings(&init["args"]);
    ensure!(args[0] == "init", "{args:?}");
    for arg in ["--proxy-uid=1337", "--proxy-gid=1337"] {
        ensure!(args.iter().any(|a| a == arg), "{arg} in {args:?}");
    }
    let proxy = container(&pod["containers"], "istio-proxy")?;
    ensure!(proxy["securityContext"]["runAsUser"] == 1337);
    ensure!(proxy["securityContext"]["runAsGroup"] == 1337);
    let mut ports: Vec<i64> = proxy["ports"]
        .as_sequence()
        .context("ports")?
        .iter()
        .filter_map(|port| port["containerPort"].as_i64())
        .collect();
    ports.sort_unstable();
    ensure!(
        ports == [15000, 15001, 15006, 15020, 15021, 15090],
        "{ports:?}"
    );
    let probe = &proxy["readinessProbe"]["httpGet"];
    ensure!(
        probe["path"] == "/healthz/ready" && probe["port"] == 15021,
        "the kubelet probes the health port, as Istio's injector sets it: {probe:?}"
    );
    Ok(())
}

fn manifests() -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(kubernetes_dir())?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|path| path.extension().is_some_and(|ext| ext == "yaml"));
    files.sort();
    ensure!(files.len() >= 3, "manifests: {files:?}");
    Ok(files)
}

fn documents(file: &str) -> Result<Vec<Value>> {
    let path = kubernetes_dir().join(file);
    let text = fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).context(file.to_string()))
        .collect()
}

fn find<'a>(documents: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    documents
        .iter()
        .find(|document| document["kind"] == kind && document["metadata"]["name"] == name)
        .with_context(|| format!("no {kind} {name}"))
}

fn container<'a>(containers: &'a Value, name: &str) -> Result<&'a Value> {
    containers
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|container| container["name"] == name)
        .with_context(|| format!("no container {name}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|item| item.as_str().map(str::to_string))
        .collect()
}
