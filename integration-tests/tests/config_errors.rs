//! Invalid config never reaches proxies, and never takes valid config down
//! with it: while a connected proxy holds the served config, a resource with
//! a YAML syntax error or an unknown field is left out alone (one log line
//! naming the file and the field, `config_errors_total` counted, nothing of
//! it pushed) until it is fixed, and the valid resources beside it are
//! served. A dangling subset is a warning, as istiod gives it: the
//! VirtualService is served and `validate` exits 0, or 1 with `--strict`.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::ads::{self, resource_names};
use integration_tests::control_plane::{self, ConfigDir, ControlPlane};
use integration_tests::fixtures::HTTPBIN_SERVICE_ENTRY;
use integration_tests::grpcurl::client_statuses;
use integration_tests::process::assert_eventually;
use shared::type_url::CLUSTER as CLUSTER_TYPE;

/// How long a reload, its log line or a response may take.
const RELOAD: Duration = Duration::from_secs(10);
/// How long "no response" must last to count as nothing pushed.
const QUIET: Duration = Duration::from_secs(1);

/// httpbin.org's DestinationRule with subsets `subsets`.
fn httpbin_destination_rule(subsets: &[&str]) -> String {
    let subsets: String = subsets
        .iter()
        .map(|name| format!("  - name: {name}\n    labels:\n      version: {name}\n"))
        .collect();
    format!(
        "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin-ext
spec:
  host: httpbin.org
  subsets:
{subsets}"
    )
}

/// A ServiceEntry for `host:80` over HTTP, its hosts under `hosts_field`
/// (`hosts`, or a misspelling).
fn service_entry(name: &str, hosts_field: &str, host: &str) -> String {
    format!(
        "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: {name}
spec:
  {hosts_field}:
  - {host}
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: DNS
"
    )
}

/// A ServiceEntry whose `hosts` list is never closed.
const YAML_SYNTAX_ERROR: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: unclosed
spec:
  hosts: [unclosed.example
  ports:
  - number: 80
";

/// A VirtualService sending httpbin.org to a subset no DestinationRule
/// defines.
const DANGLING_SUBSET: &str = include_str!("../fixtures/httpbin-dangling-subset.yaml");
/// Where [`DANGLING_SUBSET`]'s warning points.
const DANGLING_FIELD: &str = "spec.http[0].route[0].destination.subset";

/// One way to break the config, and how to fix it.
struct Breakage {
    /// The file the test writes, broken then fixed.
    file: &'static str,
    broken: String,
    /// What the error line must say besides the file name.
    names: &'static str,
    /// The file `fixed` is written to (the broken one, or another).
    fix_file: &'static str,
    fixed: String,
    /// The cluster the fix adds.
    new_cluster: &'static str,
}

fn breakages() -> Vec<Breakage> {
    vec![
        Breakage {
            file: "unclosed.yaml",
            broken: YAML_SYNTAX_ERROR.to_string(),
            names: "syntax error",
            fix_file: "unclosed.yaml",
            fixed: service_entry("unclosed", "hosts", "unclosed.example"),
            new_cluster: "outbound|80||unclosed.example",
        },
        Breakage {
            file: "typo.yaml",
            broken: service_entry("typo", "hostz", "typo.example"),
            names: "spec.hostz",
            fix_file: "typo.yaml",
            fixed: service_entry("typo", "hosts", "typo.example"),
            new_cluster: "outbound|80||typo.example",
        },
    ]
}

/// The directory every case starts from: httpbin.org with subset `v1`.
fn good_config() -> Result<ConfigDir> {
    let config = ConfigDir::new()?;
    config.write("httpbin.yaml", HTTPBIN_SERVICE_ENTRY)?;
    config.write(
        "httpbin-destinationrule.yaml",
        &httpbin_destination_rule(&["v1"]),
    )?;
    Ok(config)
}

/// The lines of `logs` that name `file` and say `names`.
fn error_lines(logs: &str, file: &str, names: &str) -> Vec<String> {
    logs.lines()
        .filter(|line| line.contains(file) && line.contains(names))
        .map(str::to_string)
        .collect()
}

/// `config_errors_total`, summed over its `kind` labels: no series is
/// exported before the first error, which counts as 0.
fn errors_counted(control_plane: &ControlPlane) -> Result<f64> {
    Ok(control_plane.metric("config_errors_total")?.unwrap_or(0.0))
}

fn counter(control_plane: &ControlPlane, name: &str) -> Result<f64> {
    control_plane
        .metric(name)?
        .with_context(|| format!("the control plane exports no {name}"))
}

#[test]
fn invalid_files_leave_the_served_config_in_place_until_fixed() -> Result<()> {
    let config = good_config()?;
    let control_plane = ControlPlane::start(config.path(), None)?;
    let grpcurl = control_plane.grpcurl()?;
    let (node_id, mut client) = ads::watch_clusters_as_sleep(&control_plane)?;
    let first = client.expect_response(RELOAD)?;
    client.ack(&first)?;
    let mut served: BTreeSet<String> = resource_names(&first)?.into_iter().collect();
    assert!(served.contains("outbound|80|v1|httpbin.org"), "{served:?}");

    for breakage in breakages() {
        let file = breakage.file;
        let errors_before = errors_counted(&control_plane)?;
        let version_before = counter(&control_plane, "config_snapshot_version")?;

        config.write(file, &breakage.broken)?;
        assert_eventually(RELOAD, || {
            let lines = error_lines(&control_plane.logs(), file, breakage.names);
            ensure!(
                !lines.is_empty(),
                "no log line names {file} and {}",
                breakage.names
            );
            Ok(())
        });
        client
            .expect_silence(QUIET)
            .with_context(|| format!("{file}: the invalid config was pushed"))?;
        let lines = error_lines(&control_plane.logs(), file, breakage.names);
        assert_eq!(lines.len(), 1, "{file}: one error line: {lines:#?}");
        assert_eq!(
            errors_counted(&control_plane)?,
            errors_before + 1.0,
            "{file}"
        );
        assert_eq!(
            counter(&control_plane, "config_snapshot_version")?,
            version_before,
            "{file}"
        );
        let held = client_statuses(&grpcurl.client_status(&node_id.to_string(), CLUSTER_TYPE)?);
        let expected: BTreeSet<(String, String)> = served
            .iter()
            .map(|name| (name.clone(), "ACKED".to_string()))
            .collect();
        assert_eq!(
            held, expected,
            "{file}: CSDS still shows the served clusters"
        );

        config.write(breakage.fix_file, &breakage.fixed)?;
        let update = client
            .expect_response(RELOAD)
            .with_context(|| format!("{file}: the fix was not pushed"))?;
        client.ack(&update)?;
        let names: BTreeSet<String> = resource_names(&update)?.into_iter().collect();
        assert_eq!(
            names.difference(&served).collect::<Vec<_>>(),
            [breakage.new_cluster],
            "{file}: the fix is served"
        );
        assert!(
            counter(&control_plane, "config_snapshot_version")? > version_before,
            "{file}"
        );
        served = names;
    }
    Ok(())
}

#[test]
fn validate_names_the_bad_file_and_field() -> Result<()> {
    let good = good_config()?;
    let output = control_plane::validate(good.path(), None)?;
    assert_eq!(output.code(), Some(0), "{output:?}");

    for breakage in breakages() {
        let config = good_config()?;
        config.write(breakage.file, &breakage.broken)?;
        let output = control_plane::validate(config.path(), None)?;
        assert_eq!(output.code(), Some(1), "{}: {output:?}", breakage.file);
        let lines = error_lines(
            &format!("{}{}", output.stdout, output.stderr),
            breakage.file,
            breakage.names,
        );
        assert_eq!(lines.len(), 1, "{}: {output:?}", breakage.file);
    }
    Ok(())
}

#[test]
fn a_bad_resource_is_left_out_and_the_rest_of_its_file_served() -> Result<()> {
    let config = good_config()?;
    let control_plane = ControlPlane::start(config.path(), None)?;
    let (_node_id, mut client) = ads::watch_clusters_as_sleep(&control_plane)?;
    let first = client.expect_response(RELOAD)?;
    client.ack(&first)?;
    let served: BTreeSet<String> = resource_names(&first)?.into_iter().collect();
    let errors_before = errors_counted(&control_plane)?;

    let good = service_entry("good", "hosts", "good.example");
    let bad = service_entry("bad", "hostz", "bad.example");
    config.write("mixed.yaml", &format!("{good}---\n{bad}"))?;
    let update = client
        .expect_response(RELOAD)
        .context("the valid resource beside the bad one was not pushed")?;
    client.ack(&update)?;
    let names: BTreeSet<String> = resource_names(&update)?.into_iter().collect();
    assert_eq!(
        names.difference(&served).collect::<Vec<_>>(),
        ["outbound|80||good.example"],
        "only the valid ServiceEntry is served"
    );
    assert_eventually(RELOAD, || {
        let lines = error_lines(&control_plane.logs(), "mixed.yaml", "spec.hostz");
        ensure!(
            lines.len() == 1,
            "one error line names the bad resource: {lines:#?}"
        );
        Ok(())
    });
    assert_eq!(errors_counted(&control_plane)?, errors_before + 1.0);

    let fixed = service_entry("bad", "hosts", "bad.example");
    config.write("mixed.yaml", &format!("{good}---\n{fixed}"))?;
    let update = client
        .expect_response(RELOAD)
        .context("the fixed resource was not pushed")?;
    client.ack(&update)?;
    let fixed_names: BTreeSet<String> = resource_names(&update)?.into_iter().collect();
    assert_eq!(
        fixed_names.difference(&names).collect::<Vec<_>>(),
        ["outbound|80||bad.example"]
    );
    Ok(())
}

#[test]
fn a_dangling_subset_is_a_warning_and_its_route_is_served() -> Result<()> {
    let config = good_config()?;
    let control_plane = ControlPlane::start(config.path(), None)?;
    let errors_before = errors_counted(&control_plane)?;
    let version_before = counter(&control_plane, "config_snapshot_version")?;

    config.write("dangling.yaml", DANGLING_SUBSET)?;
    assert_eventually(RELOAD, || {
        ensure!(
            counter(&control_plane, "config_snapshot_version")? > version_before,
            "the VirtualService with a dangling subset is not served"
        );
        let lines = error_lines(&control_plane.logs(), "dangling.yaml", DANGLING_FIELD);
        ensure!(lines.len() == 1, "one line names the warning: {lines:#?}");
        ensure!(lines[0].contains("warning"), "{lines:#?}");
        Ok(())
    });
    assert_eq!(
        errors_counted(&control_plane)?,
        errors_before,
        "a warning is not a config error"
    );

    let output = control_plane::validate(config.path(), None)?;
    assert_eq!(output.code(), Some(0), "{output:?}");
    let printed = format!("{}{}", output.stdout, output.stderr);
    let lines = error_lines(&printed, "dangling.yaml", DANGLING_FIELD);
    assert_eq!(lines.len(), 1, "{output:?}");
    assert!(lines[0].contains("warning"), "{output:?}");
    let strict = control_plane::validate_strict(config.path())?;
    assert_eq!(
        strict.code(),
        Some(1),
        "--strict fails on warnings: {strict:?}"
    );
    Ok(())
}
