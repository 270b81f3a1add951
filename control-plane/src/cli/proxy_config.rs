//! `proxy-config clusters|listeners|routes|endpoints|secrets <proxy>`: what
//! a connected proxy was sent and acknowledged, read from CSDS, as
//! `istioctl proxy-config` prints it (a table, or the resources as JSON or
//! YAML).

mod clusters;
mod endpoints;
mod listeners;
mod routes;
mod secrets;

use clap::{Args, Subcommand, ValueEnum};
use prost::Message;
use proto::pb::envoy::admin::v3::ClientResourceStatus;
use proto::pb::envoy::service::status::v3::ClientConfig;
use shared::type_url;

use super::csds_client::{CsdsError, CsdsOptions};
use super::proxy_status::matches;
use super::table;

#[derive(Args)]
pub struct ProxyConfigOptions {
    #[command(subcommand)]
    pub kind: Kind,
}

/// What to show of the proxy.
#[derive(Subcommand)]
pub enum Kind {
    /// The clusters: service FQDN, port, subset, direction, discovery type.
    Clusters {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        filter: clusters::ClusterFilter,
    },
    /// The listeners: address, port, each filter chain's match and destination.
    Listeners {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        filter: listeners::ListenerFilter,
    },
    /// The route configurations: each virtual host's routes.
    Routes {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        filter: routes::RouteFilter,
    },
    /// The endpoints the proxy was sent (EDS, and the clusters' own).
    Endpoints {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        filter: endpoints::EndpointFilter,
    },
    /// The secrets: name, type, status, certificate validity and serial
    /// (never a private key).
    Secrets {
        #[command(flatten)]
        common: Common,
    },
}

/// What every kind takes: the proxy, the output format, the control plane.
#[derive(Args)]
pub struct Common {
    /// The proxy: its node id, or `<pod>.<namespace>` as `proxy-status` lists it.
    pub proxy: String,
    /// `short` (a table), `json` or `yaml` (the resources).
    #[arg(short, long, value_enum, default_value_t = Output::Short)]
    pub output: Output,
    #[command(flatten)]
    pub csds: CsdsOptions,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Output {
    Short,
    Json,
    Yaml,
}

/// Why `proxy-config` printed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ProxyConfigError {
    #[error(transparent)]
    Csds(#[from] CsdsError),
    #[error(
        "no proxy {proxy} is connected to the control plane at {address}; `proxy-status` lists those that are"
    )]
    NotConnected { proxy: String, address: String },
    #[error("{name}: the control plane sent a {type_name} that does not decode: {source}")]
    Decode {
        name: String,
        type_name: String,
        source: prost::DecodeError,
    },
    #[error(transparent)]
    Json(#[from] proto::JsonError),
    #[error("cannot write YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

/// One resource as CSDS reported it, decoded.
pub struct Sent<M> {
    pub message: M,
    pub status: ClientResourceStatus,
}

pub fn proxy_config(options: ProxyConfigOptions) -> Result<(), ProxyConfigError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    let common = match &options.kind {
        Kind::Clusters { common, .. }
        | Kind::Listeners { common, .. }
        | Kind::Routes { common, .. }
        | Kind::Endpoints { common, .. }
        | Kind::Secrets { common } => common,
    };
    let response = runtime.block_on(common.csds.fetch(None, true))?;
    let config = response
        .config
        .iter()
        .find(|config| matches(config, &common.proxy))
        .ok_or_else(|| ProxyConfigError::NotConnected {
            proxy: common.proxy.clone(),
            address: common.csds.xds_address.clone(),
        })?;
    print!("{}", render(config, &options.kind)?);
    Ok(())
}

/// What `proxy-config` prints for `config`.
pub fn render(config: &ClientConfig, kind: &Kind) -> Result<String, ProxyConfigError> {
    match kind {
        Kind::Clusters { common, filter } => {
            let sent = select(config, type_url::CLUSTER, |c| filter.keep(c))?;
            show(common.output, type_url::CLUSTER, &sent, || {
                table::render(&clusters::HEADER, &clusters::rows(&sent))
            })
        }
        Kind::Listeners { common, filter } => {
            let sent = select(config, type_url::LISTENER, |l| filter.keep(l))?;
            show(common.output, type_url::LISTENER, &sent, || {
                table::render(&listeners::HEADER, &listeners::rows(&sent))
            })
        }
        Kind::Routes { common, filter } => {
            let sent = select(config, type_url::ROUTE, |r| filter.keep(r))?;
            show(common.output, type_url::ROUTE, &sent, || {
                table::render(&routes::HEADER, &routes::rows(&sent))
            })
        }
        Kind::Endpoints { common, filter } => {
            let assignments = select(config, type_url::ENDPOINT, |_| true)?;
            let clusters = select(config, type_url::CLUSTER, |_| true)?;
            let all = endpoints::assignments(assignments, &clusters);
            let sent: Vec<_> = all.into_iter().filter(|s| filter.keep(s)).collect();
            show(common.output, type_url::ENDPOINT, &sent, || {
                table::render(&endpoints::HEADER, &endpoints::rows(&sent, filter))
            })
        }
        Kind::Secrets { common } => {
            let sent = select(config, type_url::SECRET, |_| true)?;
            show(common.output, type_url::SECRET, &sent, || {
                table::render(&secrets::HEADER, &secrets::rows(&sent))
            })
        }
    }
}

/// The resources of `type_url` sent to the proxy that `keep` keeps.
fn select<M: Message + Default>(
    config: &ClientConfig,
    type_url: &str,
    keep: impl Fn(&M) -> bool,
) -> Result<Vec<Sent<M>>, ProxyConfigError> {
    let mut sent = Vec::new();
    for resource in config
        .generic_xds_configs
        .iter()
        .filter(|r| r.type_url == type_url)
    {
        let Some(any) = &resource.xds_config else {
            continue;
        };
        let message =
            M::decode(any.value.as_slice()).map_err(|source| ProxyConfigError::Decode {
                name: resource.name.clone(),
                type_name: type_url::message_name(type_url).to_string(),
                source,
            })?;
        if keep(&message) {
            sent.push(Sent {
                message,
                status: ClientResourceStatus::try_from(resource.client_status)
                    .unwrap_or(ClientResourceStatus::Unknown),
            });
        }
    }
    Ok(sent)
}

/// The table, or the resources as istioctl's `-o json|yaml` prints them: an
/// array of the resources in protobuf JSON.
fn show<M: Message>(
    output: Output,
    type_url: &str,
    sent: &[Sent<M>],
    table: impl FnOnce() -> String,
) -> Result<String, ProxyConfigError> {
    if matches!(output, Output::Short) {
        return Ok(table());
    }
    let resources = sent
        .iter()
        .map(|s| proto::to_json(type_url::message_name(type_url), &s.message))
        .collect::<Result<Vec<_>, _>>()?;
    let json = serde_json::Value::Array(resources);
    Ok(match output {
        Output::Yaml => serde_yaml::to_string(&json)?,
        _ => format!(
            "{}\n",
            serde_json::to_string_pretty(&json).expect("JSON values serialize")
        ),
    })
}

/// The `<name>.<namespace>` of the Istio resource behind an xDS resource,
/// from its `filter_metadata["istio"]["config"]` path
/// (`/apis/networking.istio.io/v1/namespaces/<ns>/<kind>/<name>`), as
/// istioctl shows it; empty when there is none.
fn istio_config_name(metadata: Option<&proto::pb::envoy::config::core::v3::Metadata>) -> String {
    use proto::wkt::value::Kind as ValueKind;
    let path = metadata
        .and_then(|m| m.filter_metadata.get("istio"))
        .and_then(|istio| istio.fields.get("config"))
        .and_then(|v| match &v.kind {
            Some(ValueKind::StringValue(path)) => Some(path.as_str()),
            _ => None,
        });
    let Some(path) = path else {
        return String::new();
    };
    let parts: Vec<&str> = path.split('/').collect();
    match parts.iter().position(|p| *p == "namespaces") {
        Some(i) if parts.len() == i + 4 => format!("{}.{}", parts[i + 3], parts[i + 1]),
        _ => path.to_string(),
    }
}

#[cfg(test)]
mod tests;
