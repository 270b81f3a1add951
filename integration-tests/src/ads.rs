//! A raw state-of-the-world ADS client, for tests that play the proxy
//! themselves: subscribe, ACK or NACK on purpose, and see exactly which
//! responses arrive and when; over TLS with whatever token (or none) a test
//! chooses, to see what the control plane refuses. Its calls block; the
//! gRPC stream runs on the client's own runtime, so it keeps flowing
//! between calls.

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use proto::pb::envoy::config::core::v3::Node;
use proto::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use proto::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use proto::pb::google::rpc::Status as RpcStatus;
use proto::wkt::value::Kind;
use proto::wkt::{Struct, Value};
use shared::node::{
    META_INSTANCE_IPS, META_LABELS, META_NAMESPACE, META_SERVICE_ACCOUNT, NodeId, NodeType,
};
use shared::type_url;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic::{Status, Streaming};

use crate::control_channel::ControlChannel;
use crate::control_plane::ControlPlane;

/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// gRPC code of the `error_detail` a NACK carries (INVALID_ARGUMENT, as
/// Envoy sends).
const NACK_CODE: i32 = 3;

/// The `Node` an Istio proxy with identity `id`, service account
/// `service_account` and workload `labels` sends: `NAMESPACE`, `LABELS`,
/// `INSTANCE_IPS` and `SERVICE_ACCOUNT` metadata.
pub fn node(id: &NodeId, service_account: &str, labels: &[(&str, &str)]) -> Node {
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
        (META_SERVICE_ACCOUNT, string(service_account)),
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

/// Connects to `control_plane` as the sidecar of Istio's `sleep` app (in
/// `default`, service account `sleep`, at 10.0.0.1, labelled `app=sleep`,
/// with a token for it) and subscribes to every cluster: the sidecar's
/// identity and its stream.
pub fn watch_clusters_as_sleep(control_plane: &ControlPlane) -> Result<(NodeId, AdsClient)> {
    let id = NodeId::new(NodeType::Sidecar, "10.0.0.1", "sleep", "default");
    let token = control_plane.ca().token("default", "sleep")?;
    let client = AdsClient::subscribe_as(
        &control_plane.channel(),
        Some(&token),
        node(&id, "sleep", &[("app", "sleep")]),
        type_url::CLUSTER,
    )?;
    Ok((id, client))
}

/// Why the control plane refused an ADS stream: the gRPC status it ended
/// it with, or `None` if it served it (a first response arrived).
pub fn refusal(
    channel: &ControlChannel,
    token: Option<&str>,
    node: Node,
    timeout: Duration,
) -> Result<Option<Status>> {
    let mut client = match AdsClient::subscribe_as(channel, token, node, type_url::CLUSTER) {
        Ok(client) => client,
        Err(error) => {
            return match error.downcast::<Status>() {
                Ok(status) => Ok(Some(status)),
                Err(error) => Err(error),
            };
        }
    };
    let responses = &mut client.responses;
    match client
        .runtime
        .block_on(async { tokio::time::timeout(timeout, responses.message()).await })
    {
        Err(_elapsed) => bail!("neither served nor refused within {timeout:?}"),
        Ok(Ok(Some(_))) => Ok(None),
        Ok(Ok(None)) => bail!("the server closed the ADS stream without a status"),
        Ok(Err(status)) => Ok(Some(status)),
    }
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
    /// Opens a `StreamAggregatedResources` stream through `channel` (over
    /// TLS, with `authorization: Bearer <token>` when there is a token) as
    /// `node`, subscribed to every resource of `type_url`. A refusal when
    /// the stream opens is an error holding the [`Status`].
    pub fn subscribe_as(
        channel: &ControlChannel,
        token: Option<&str>,
        node: Node,
        type_url: &str,
    ) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("building the ADS client's runtime")?;
        let (requests, outgoing) = mpsc::unbounded_channel();
        // Queued before the stream opens: a server may read the node
        // before it answers.
        requests
            .send(DiscoveryRequest {
                node: Some(node),
                type_url: type_url.to_string(),
                ..Default::default()
            })
            .ok()
            .context("queueing the first request")?;
        let endpoint = endpoint(channel)?;
        let authorization = token
            .map(|token| MetadataValue::try_from(format!("Bearer {token}")))
            .transpose()
            .context("the token is not a valid header value")?;
        let addr = channel.addr();
        let responses = runtime.block_on(async {
            let connection = endpoint
                .connect()
                .await
                .with_context(|| format!("connecting to the ADS server at {addr}"))?;
            let mut ads = AggregatedDiscoveryServiceClient::with_interceptor(
                connection,
                move |mut request: tonic::Request<()>| {
                    if let Some(value) = &authorization {
                        request
                            .metadata_mut()
                            .insert("authorization", value.clone());
                    }
                    Ok(request)
                },
            );
            let response = ads
                .stream_aggregated_resources(UnboundedReceiverStream::new(outgoing))
                .await
                .map_err(anyhow::Error::new)
                .context("opening StreamAggregatedResources")?;
            anyhow::Ok(response.into_inner())
        })?;
        Ok(Self {
            requests,
            responses,
            node: None,
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

/// The gRPC endpoint of `channel`: TLS trusting its root and verifying
/// its server name, or plaintext.
fn endpoint(channel: &ControlChannel) -> Result<Endpoint> {
    let addr = channel.addr();
    let endpoint = match channel.trust() {
        None => Endpoint::from_shared(format!("http://{addr}"))?,
        Some((ca, server_name)) => {
            let root = fs::read(ca.root_cert())
                .with_context(|| format!("reading {}", ca.root_cert().display()))?;
            Endpoint::from_shared(format!("https://{addr}"))?.tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(root))
                    .domain_name(server_name),
            )?
        }
    };
    Ok(endpoint.connect_timeout(CONNECT_TIMEOUT))
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
