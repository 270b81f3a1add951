//! `proxy-status`: each proxy connected to a running control plane, one
//! row, as `istioctl proxy-status` prints it: NAME, CLUSTER, then per xDS
//! type SYNCED / NOT SENT / STALE / ERROR, the control plane and the
//! proxy's version; `--wide` (or a proxy asked for) adds each type's
//! acknowledged version.

use clap::Args;
use proto::pb::envoy::admin::v3::ClientResourceStatus;
use proto::pb::envoy::service::status::v3::{ClientConfig, ClientStatusResponse, ConfigStatus};
use proto::wkt::{Struct, value::Kind};
use shared::node::{META_CLUSTER_ID, META_ISTIO_VERSION, NodeId};
use shared::type_url;

use super::csds_client::{CsdsError, CsdsOptions};
use super::table;

/// Extension configs (ECDS), a column istioctl prints.
const EXTENSION_CONFIG: &str = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";
/// The cluster a proxy claims none of: Istio's default.
const DEFAULT_CLUSTER: &str = "Kubernetes";
const HEADER: [&str; 9] = [
    "NAME", "CLUSTER", "CDS", "LDS", "EDS", "RDS", "ECDS", "ISTIOD", "VERSION",
];
/// The xDS columns, in istioctl's order.
const COLUMNS: [&str; 5] = [
    type_url::CLUSTER,
    type_url::LISTENER,
    type_url::ENDPOINT,
    type_url::ROUTE,
    EXTENSION_CONFIG,
];

#[derive(Args)]
pub struct ProxyStatusOptions {
    /// Only this proxy (its node id, or `<pod>.<namespace>`); shows versions.
    pub proxy: Option<String>,
    /// Show each type's acknowledged version.
    #[arg(long)]
    pub wide: bool,
    #[command(flatten)]
    pub csds: CsdsOptions,
}

pub fn proxy_status(options: ProxyStatusOptions) -> Result<(), CsdsError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    let response = runtime.block_on(options.csds.fetch(None, false))?;
    let wide = options.wide || options.proxy.is_some();
    let istiod = &options.csds.xds_address;
    print!(
        "{}",
        render(&response, options.proxy.as_deref(), istiod, wide)
    );
    Ok(())
}

/// The table for every proxy of `response` (or only `proxy`'s).
pub fn render(
    response: &ClientStatusResponse,
    proxy: Option<&str>,
    istiod: &str,
    wide: bool,
) -> String {
    let mut rows: Vec<Vec<String>> = response
        .config
        .iter()
        .filter(|config| proxy.is_none_or(|wanted| matches(config, wanted)))
        .map(|config| row(config, istiod, wide))
        .collect();
    rows.sort();
    table::render(&HEADER, &rows)
}

/// The proxy's name as istioctl shows it: `<pod>.<namespace>`.
pub fn proxy_name(config: &ClientConfig) -> String {
    let id = config.node.as_ref().map_or("", |n| n.id.as_str());
    id.parse::<NodeId>()
        .map_or_else(|_| id.to_string(), |n| n.id)
}

/// Whether `wanted` names this proxy: its node id or `<pod>.<namespace>`.
pub fn matches(config: &ClientConfig, wanted: &str) -> bool {
    config.node.as_ref().is_some_and(|n| n.id == wanted) || proxy_name(config) == wanted
}

fn row(config: &ClientConfig, istiod: &str, wide: bool) -> Vec<String> {
    let metadata = config.node.as_ref().and_then(|n| n.metadata.as_ref());
    let mut row = vec![
        proxy_name(config),
        metadata
            .and_then(|m| string_field(m, META_CLUSTER_ID))
            .unwrap_or_else(|| DEFAULT_CLUSTER.to_string()),
    ];
    row.extend(COLUMNS.iter().map(|t| column(config, t, wide)));
    row.push(istiod.to_string());
    row.push(
        metadata
            .and_then(|m| string_field(m, META_ISTIO_VERSION))
            .unwrap_or_default(),
    );
    row
}

/// One type's status: NOT SENT when nothing of it was sent, else the worst
/// of its resources' (ERROR, then STALE, then SYNCED).
fn column(config: &ClientConfig, type_url: &str, wide: bool) -> String {
    let resources: Vec<_> = config
        .generic_xds_configs
        .iter()
        .filter(|r| r.type_url == type_url)
        .collect();
    if resources.is_empty() {
        return "NOT SENT".to_string();
    }
    let worst = |status: ConfigStatus| resources.iter().any(|r| r.config_status == status as i32);
    let never_acked = resources.iter().all(|r| {
        r.client_status != ClientResourceStatus::Acked as i32 && r.version_info.is_empty()
    });
    let status = if worst(ConfigStatus::Error) {
        "ERROR"
    } else if worst(ConfigStatus::Stale) && never_acked {
        "STALE (Never Acknowledged)"
    } else if worst(ConfigStatus::Stale) {
        "STALE"
    } else {
        "SYNCED"
    };
    let version = resources
        .iter()
        .map(|r| r.version_info.as_str())
        .filter(|v| !v.is_empty())
        .max();
    match version {
        Some(version) if wide => format!("{status} ({version})"),
        _ => status.to_string(),
    }
}

fn string_field(metadata: &Struct, key: &str) -> Option<String> {
    match metadata.fields.get(key)?.kind.as_ref()? {
        Kind::StringValue(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proto::pb::envoy::config::core::v3::Node;
    use proto::pb::envoy::service::status::v3::client_config::GenericXdsConfig;
    use proto::wkt::Value;

    use super::*;

    fn resource(type_url: &str, status: ConfigStatus, version: &str) -> GenericXdsConfig {
        let client_status = match status {
            ConfigStatus::Synced => ClientResourceStatus::Acked,
            ConfigStatus::Error => ClientResourceStatus::Nacked,
            _ => ClientResourceStatus::Requested,
        };
        GenericXdsConfig {
            type_url: type_url.to_string(),
            name: "r".to_string(),
            version_info: version.to_string(),
            config_status: status as i32,
            client_status: client_status as i32,
            ..Default::default()
        }
    }

    fn proxy(id: &str, resources: Vec<GenericXdsConfig>) -> ClientConfig {
        let version = Value {
            kind: Some(Kind::StringValue("1.28.0".to_string())),
        };
        ClientConfig {
            node: Some(Node {
                id: id.to_string(),
                metadata: Some(Struct {
                    fields: [(META_ISTIO_VERSION.to_string(), version)].into(),
                }),
                ..Default::default()
            }),
            generic_xds_configs: resources,
            ..Default::default()
        }
    }

    #[test]
    fn one_row_per_proxy_named_pod_dot_namespace_with_each_type_status() {
        let response = ClientStatusResponse {
            config: vec![
                proxy(
                    "sidecar~10.0.0.1~sleep-1.default~default.svc.cluster.local",
                    vec![
                        resource(type_url::CLUSTER, ConfigStatus::Synced, "3"),
                        resource(type_url::LISTENER, ConfigStatus::Stale, "2"),
                        resource(type_url::ROUTE, ConfigStatus::Error, "2"),
                    ],
                ),
                proxy(
                    "router~10.0.0.2~egw-1.istio-system~istio-system.svc.cluster.local",
                    vec![resource(type_url::ENDPOINT, ConfigStatus::Stale, "")],
                ),
            ],
        };
        let table = render(&response, None, "istiod", false);
        let lines = table::cells(&table);
        assert_eq!(lines[0], HEADER);
        assert_eq!(
            lines[1],
            [
                "egw-1.istio-system",
                "Kubernetes",
                "NOT SENT",
                "NOT SENT",
                "STALE (Never Acknowledged)",
                "NOT SENT",
                "NOT SENT",
                "istiod",
                "1.28.0"
            ]
        );
        assert_eq!(
            lines[2],
            [
                "sleep-1.default",
                "Kubernetes",
                "SYNCED",
                "STALE",
                "NOT SENT",
                "ERROR",
                "NOT SENT",
                "istiod",
                "1.28.0"
            ]
        );
    }

    #[test]
    fn a_proxy_asked_for_is_the_only_row_and_wide_shows_versions() {
        let response = ClientStatusResponse {
            config: vec![
                proxy(
                    "sidecar~10.0.0.1~sleep-1.default~default.svc.cluster.local",
                    vec![resource(type_url::CLUSTER, ConfigStatus::Synced, "7")],
                ),
                proxy(
                    "sidecar~10.0.0.3~other.default~default.svc.cluster.local",
                    vec![],
                ),
            ],
        };
        let table = render(&response, Some("sleep-1.default"), "istiod", true);
        assert_eq!(table.lines().count(), 2, "{table}");
        assert!(table.contains("SYNCED (7)"), "{table}");
        assert!(!table.contains("other.default"), "{table}");
    }
}
