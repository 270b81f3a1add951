//! A raw state-of-the-world ADS client, for tests that play the proxy
//! themselves: subscribe, ACK or NACK on purpose, and see exactly which
//! responses arrive and when. Its calls block; the gRPC stream runs on the
//! client's own runtime, so it keeps flowing between calls.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use proto::pb::envoy::config::core::v3::Node;
use proto::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use proto::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use proto::pb::google::rpc::Status as RpcStatus;
use proto::wkt::value::Kind;
use proto::wkt::{Struct, Value};
use shared::node::{META_INSTANCE_IPS, META_LABELS, META_NAMESPACE, NodeId, NodeType};
use shared::type_url;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::Streaming;
use tonic::transport::Endpoint;

/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// gRPC code of the `error_detail` a NACK carries (INVALID_ARGUMENT, as
/// Envoy sends).
const NACK_CODE: i32 = 3;

/// The `Node` an Istio proxy with identity `id` and workload `labels` sends:
/// `NAMESPACE`, `LABELS` and `INSTANCE_IPS` metadata.
pub fn node(id: &NodeId, labels: &[(&str, &str)]) -> Node {
    let string = |text: &str| Value {
        kind: Some(Kind::StringValue(text.to_string())),
    };
    let labels = Struct {
        fields: labels
            .iter()
            .map(|(key, value)| (key.to_string(), string(value)))
            .collect(),
    };
    let metadata = [
        (META_NAMESPACE, string(id.namespace().unwrap_or_default())),
        (META_INSTANCE_IPS, string(&id.ip)),
        (
            META_LABELS,
            Value {
                kind: Some(Kind::StructValue(labels)),
            },
        ),
    ];
    Node {
        id: id.to_string(),
        metadata: Some(Struct {
            fields: metadata
                .into_iter()
                .map(|(key, value)| (key.to_string(), value))
                .collect(),
        }),
        ..Default::default()
    }
}

/// Connects to `addr` as the sidecar of Istio's `sleep` app (in `default`,
/// at 10.0.0.1, labelled `app=sleep`) and subscribes to every cluster:
/// the sidecar's identity and its stream.
pub fn watch_clusters_as_sleep(addr: SocketAddr) -> Result<(NodeId, AdsClient)> {
    let id = NodeId::new(NodeType::Sidecar, "10.0.0.1", "sleep", "default");
    let mut client = AdsClient::connect(addr, node(&id, &[("app", "sleep")]))?;
    client.subscribe(type_url::CLUSTER, &[])?;
    Ok((id, client))
}

/// One ADS stream; closed on drop.
pub struct AdsClient {
    requests: mpsc::UnboundedSender<DiscoveryRequest>,
    responses: Streaming<DiscoveryResponse>,
    node: Option<Node>,
    /// The last version ACKed, by type URL: what a NACK reports as still
    /// applied.
    accepted: BTreeMap<String, String>,
    // Dropped last: the stream's tasks run on it.
    runtime: Runtime,
}

impl AdsClient {
    /// Opens a `StreamAggregatedResources` stream to `addr` as `node`
    /// (sent with the first request).
    pub fn connect(addr: SocketAddr, node: Node) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("building the ADS client's runtime")?;
        let (requests, outgoing) = mpsc::unbounded_channel();
        let responses = runtime.block_on(async {
            let channel = Endpoint::from_shared(format!("http://{addr}"))?
                .connect_timeout(CONNECT_TIMEOUT)
                .connect()
                .await
                .with_context(|| format!("connecting to the ADS server at {addr}"))?;
            let response = AggregatedDiscoveryServiceClient::new(channel)
                .stream_aggregated_resources(UnboundedReceiverStream::new(outgoing))
                .await
                .context("opening StreamAggregatedResources")?;
            anyhow::Ok(response.into_inner())
        })?;
        Ok(Self {
            requests,
            responses,
            node: Some(node),
            accepted: BTreeMap::new(),
            runtime,
        })
    }

    /// Sends `request`, with the node if it is the stream's first.
    pub fn send(&mut self, mut request: DiscoveryRequest) -> Result<()> {
        if let Some(node) = self.node.take() {
            request.node = Some(node);
        }
        self.requests
            .send(request)
            .ok()
            .context("the ADS stream is closed")
    }

    /// Subscribes to `type_url`: resources `names`, or every resource of
    /// the type when empty (CDS, LDS).
    pub fn subscribe(&mut self, type_url: &str, names: &[&str]) -> Result<()> {
        self.send(DiscoveryRequest {
            type_url: type_url.to_string(),
            resource_names: names.iter().map(ToString::to_string).collect(),
            ..Default::default()
        })
    }

    /// Accepts `response`, as Envoy does after applying it.
    pub fn ack(&mut self, response: &DiscoveryResponse) -> Result<()> {
        self.accepted
            .insert(response.type_url.clone(), response.version_info.clone());
        self.send(DiscoveryRequest {
            type_url: response.type_url.clone(),
            version_info: response.version_info.clone(),
            response_nonce: response.nonce.clone(),
            ..Default::default()
        })
    }

    /// Rejects `response` with `message`, as Envoy does when it cannot
    /// apply it: the version is the last one accepted.
    pub fn nack(&mut self, response: &DiscoveryResponse, message: &str) -> Result<()> {
        let version_info = self
            .accepted
            .get(&response.type_url)
            .cloned()
            .unwrap_or_default();
        self.send(DiscoveryRequest {
            type_url: response.type_url.clone(),
            version_info,
            response_nonce: response.nonce.clone(),
            error_detail: Some(RpcStatus {
                code: NACK_CODE,
                message: message.to_string(),
                details: Vec::new(),
            }),
            ..Default::default()
        })
    }

    /// The next response, or `None` if none arrives within `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<DiscoveryResponse>> {
        let responses = &mut self.responses;
        match self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, responses.message()).await })
        {
            Err(_elapsed) => Ok(None),
            Ok(Ok(Some(response))) => Ok(Some(response)),
            Ok(Ok(None)) => bail!("the server closed the ADS stream"),
            Ok(Err(status)) => bail!("the ADS stream failed: {status}"),
        }
    }

    /// The next response; fails if none arrives within `timeout`.
    pub fn expect_response(&mut self, timeout: Duration) -> Result<DiscoveryResponse> {
        self.recv(timeout)?
            .with_context(|| format!("no ADS response within {timeout:?}"))
    }

    /// Fails if a response arrives within `quiet`.
    pub fn expect_silence(&mut self, quiet: Duration) -> Result<()> {
        match self.recv(quiet)? {
            None => Ok(()),
            Some(response) => bail!(
                "unexpected {} response, version {:?}, resources {:?}",
                response.type_url,
                response.version_info,
                resource_names(&response)?
            ),
        }
    }
}

/// The names of the resources in `response` (`name`, or `cluster_name` for
/// endpoints).
pub fn resource_names(response: &DiscoveryResponse) -> Result<Vec<String>> {
    response
        .resources
        .iter()
        .map(|any| {
            let resource = proto::any_to_json(any)
                .with_context(|| format!("decoding a {} resource", any.type_url))?;
            resource["name"]
                .as_str()
                .or_else(|| resource["clusterName"].as_str())
                .map(str::to_string)
                .with_context(|| format!("resource without a name: {resource}"))
        })
        .collect()
}
