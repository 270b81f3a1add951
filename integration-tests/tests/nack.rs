//! A proxy that rejects what it is sent (NACK): the control plane records
//! the rejection for CSDS and its metrics, does not send the same version
//! again, and still delivers the next config change.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Result, ensure};
use integration_tests::ads::{self, resource_names};
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::fixtures::{CNN_TLS_SERVICE_ENTRY, HTTPBIN_SERVICE_ENTRY};
use integration_tests::grpcurl::client_statuses;
use integration_tests::process::assert_eventually;
use shared::type_url::CLUSTER as CLUSTER_TYPE;

const NACK_MESSAGE: &str = "bad cluster for test";
/// How long a response may take to arrive.
const RESPONSE: Duration = Duration::from_secs(10);
/// How long "no response" must last to count as the server not resending.
const QUIET: Duration = Duration::from_secs(1);

#[test]
fn nacked_version_is_reported_not_resent_and_the_next_change_arrives() -> Result<()> {
    let config = ConfigDir::new()?;
    config.write("httpbin.yaml", HTTPBIN_SERVICE_ENTRY)?;
    let control_plane = ControlPlane::start(config.path(), None)?;
    let grpcurl = control_plane.grpcurl()?;
    let (node_id, mut client) = ads::watch_clusters_as_sleep(&control_plane)?;

    let first = client.expect_response(RESPONSE)?;
    assert_eq!(first.type_url, CLUSTER_TYPE);
    assert!(!first.version_info.is_empty());
    let first_names: BTreeSet<String> = resource_names(&first)?.into_iter().collect();
    assert!(
        first_names.contains("outbound|80||httpbin.org"),
        "{first_names:?}"
    );

    client.nack(&first, NACK_MESSAGE)?;
    client.expect_silence(QUIET)?;

    let nacked = grpcurl.client_status(&node_id.to_string(), CLUSTER_TYPE)?;
    let expected: BTreeSet<(String, String)> = first_names
        .iter()
        .map(|name| (name.clone(), "NACKED".to_string()))
        .collect();
    assert_eq!(client_statuses(&nacked), expected, "CSDS: {nacked:#?}");
    for resource in &nacked {
        let details = resource["errorState"]["details"]
            .as_str()
            .unwrap_or_default();
        assert!(details.contains(NACK_MESSAGE), "CSDS: {resource:#}");
    }
    let rejects = control_plane.metric("pilot_total_xds_rejects")?;
    assert!(
        rejects.unwrap_or_default() >= 1.0,
        "rejects counted: {rejects:?}"
    );

    config.write("cnn.yaml", CNN_TLS_SERVICE_ENTRY)?;
    let second = client.expect_response(RESPONSE)?;
    assert_eq!(second.type_url, CLUSTER_TYPE);
    assert_ne!(second.version_info, first.version_info);
    let second_names: BTreeSet<String> = resource_names(&second)?.into_iter().collect();
    assert_eq!(
        second_names.difference(&first_names).collect::<Vec<_>>(),
        ["outbound|443||edition.cnn.com"]
    );

    client.ack(&second)?;
    assert_eventually(RESPONSE, || {
        let acked = grpcurl.client_status(&node_id.to_string(), CLUSTER_TYPE)?;
        let expected: BTreeSet<(String, String)> = second_names
            .iter()
            .map(|name| (name.clone(), "ACKED".to_string()))
            .collect();
        ensure!(
            client_statuses(&acked) == expected,
            "CSDS after the ACK: {acked:#?}"
        );
        Ok(())
    });
    client.expect_silence(QUIET)
}
