//! An HTTP connection manager's `http_filters` → the filters the agent
//! runs before its router, and the `typed_per_filter_config` of routes,
//! virtual hosts and route configurations → each route's resolved
//! [`FilterConfigs`]. A filter or per-route config the agent cannot run is
//! rejected, never skipped (an optional filter aside, as Envoy skips one
//! it does not know).

use std::collections::HashMap;
use std::sync::Arc;

use proto::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy as PbCorsPolicy;
use proto::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpFilter as PbHttpFilter, http_filter,
};
use proto::wkt::Any;

use super::cors::{CORS, CORS_POLICY, cors_policy};
use super::fault::{HTTP_FAULT, fault};
use super::listener::ROUTER;
use super::{At, decode};
use crate::model::Error;
use crate::model::cors::CorsPolicy;
use crate::model::http_filters::{FilterConfig, FilterConfigs, FilterKind, HttpFilter};

const FAULT_NAME: &str = "envoy.filters.http.fault";
const CORS_NAME: &str = "envoy.filters.http.cors";
const ROUTER_NAME: &str = "envoy.filters.http.router";

/// The filters before the router, in order. The router is what the agent
/// does anyway; an unknown optional filter is skipped; anything else is
/// rejected.
pub(super) fn http_filters(
    filters: &[PbHttpFilter],
    at: &At<'_>,
) -> Result<Arc<[HttpFilter]>, Error> {
    let mut out = Vec::new();
    for (i, filter) in filters.iter().enumerate() {
        let at = at.field(format!("http_filters[{i}]"));
        let any = match &filter.config_type {
            Some(http_filter::ConfigType::TypedConfig(any)) => Some(any),
            _ => None,
        };
        let type_url = any.map_or("", |a| a.type_url.as_str());
        let kind = match (filter.name.as_str(), type_url) {
            (_, ROUTER) | (ROUTER_NAME, "") => continue,
            (_, HTTP_FAULT) | (FAULT_NAME, "") => {
                let own = match any {
                    Some(any) => {
                        let config: HttpFault = decode(any, HTTP_FAULT, &at)?;
                        let own = fault(&config, &at.field("typed_config"))?;
                        (own.delay.is_some() || own.abort.is_some()).then(|| Arc::new(own))
                    }
                    None => None,
                };
                FilterKind::Fault(own)
            }
            (_, CORS) | (CORS_NAME, "") => FilterKind::Cors,
            _ if filter.is_optional => continue,
            (name, type_url) => {
                return Err(at.error(format!("unsupported HTTP filter {name} ({type_url})")));
            }
        };
        if filter.disabled {
            return Err(at
                .field("disabled")
                .error("filters disabled until a route enables them are not supported"));
        }
        out.push(HttpFilter {
            name: filter.name.as_str().into(),
            kind,
        });
    }
    Ok(out.into())
}

/// One level's `typed_per_filter_config`, by filter name (sorted, so the
/// result does not depend on the map's order).
pub(super) fn filter_configs(
    configs: &HashMap<String, Any>,
    at: &At<'_>,
) -> Result<Vec<(Arc<str>, FilterConfig)>, Error> {
    let mut names: Vec<&String> = configs.keys().collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let any = &configs[name];
            let at = at.field(format!("typed_per_filter_config[{name:?}]"));
            let config = match any.type_url.as_str() {
                HTTP_FAULT => {
                    let config: HttpFault = decode(any, HTTP_FAULT, &at)?;
                    FilterConfig::Fault(Arc::new(fault(&config, &at)?))
                }
                CORS_POLICY => {
                    let config: PbCorsPolicy = decode(any, CORS_POLICY, &at)?;
                    FilterConfig::Cors(Arc::new(cors_policy(&config, &at)?))
                }
                other => {
                    return Err(at.error(format!(
                        "unsupported per-filter config {other} (the agent runs fault and CORS filters only)"
                    )));
                }
            };
            Ok((Arc::from(name.as_str()), config))
        })
        .collect()
}

/// A route's configs, from the most specific level out: a filter's fault
/// is the first level's that has one; its CORS policy takes each field
/// from the first level that sets it, as Envoy's CORS filter reads them.
pub(super) fn resolve(levels: [&[(Arc<str>, FilterConfig)]; 3]) -> FilterConfigs {
    let mut resolved: Vec<(Arc<str>, FilterConfig)> = Vec::new();
    for level in levels {
        for (name, config) in level {
            match resolved.iter_mut().find(|(known, _)| known == name) {
                None => resolved.push((name.clone(), config.clone())),
                Some((_, FilterConfig::Cors(inner))) => {
                    if let FilterConfig::Cors(outer) = config {
                        *inner = Arc::new(CorsPolicy::clone(inner).or(outer));
                    }
                }
                Some(_) => {}
            }
        }
    }
    FilterConfigs::new(resolved)
}
