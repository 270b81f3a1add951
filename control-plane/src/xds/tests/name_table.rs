//! The name table over ADS: a wildcard type, sent whole to a sidecar whose agent captures DNS and empty to any other.

use std::path::Path;

use prost::Message;
use proto::nds::NameTable;
use shared::node::NodeType;
use shared::type_url;

use super::*;
use crate::config::load::load_str;

const DB_ENTRY: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.example.com]
  addresses: [240.0.0.1]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
";

async fn name_table_response(capture: bool) -> DiscoveryResponse {
    let snapshot = load_str(Path::new("db.yaml"), DB_ENTRY).expect("loads");
    let mesh = Mesh::start_with(snapshot).await;
    let channel = mesh
        .plaintext_channel(mesh.plaintext)
        .await
        .expect("plaintext channel");
    let node = Proxy {
        dns_capture: capture,
        ..Proxy::from_node(&sidecar("default", "sleep")).expect("node")
    }
    .to_node();
    assert_eq!(
        Proxy::from_node(&node).expect("node").node_type,
        NodeType::Sidecar
    );
    let (_stream, response) = first_response(channel, None, node, type_url::NAME_TABLE)
        .await
        .expect("served");
    response
}

#[tokio::test]
async fn a_sidecar_that_captures_dns_is_sent_its_name_table() {
    let response = name_table_response(true).await;
    assert_eq!(response.type_url, type_url::NAME_TABLE);
    assert_eq!(response.resources.len(), 1);
    let table = NameTable::decode(response.resources[0].value.as_slice()).expect("a NameTable");
    assert_eq!(table.table["db.example.com"].ips, vec!["240.0.0.1"]);
}

#[tokio::test]
async fn a_sidecar_that_does_not_capture_dns_is_sent_no_table() {
    let response = name_table_response(false).await;
    assert_eq!(response.type_url, type_url::NAME_TABLE);
    assert!(response.resources.is_empty());
}
