//! The `filter_metadata["istio"]["config"]` path istiod puts on a cluster
//! (the DestinationRule that shaped it) and on a route (the VirtualService
//! it came from), which `istioctl proxy-config` shows in its DESTINATION
//! RULE and VIRTUAL SERVICE columns.

use proto::pb::envoy::config::core::v3::Metadata;
use proto::wkt::{Struct, Value, value::Kind as ValueKind};
use shared::egress::METADATA_NAMESPACE;

use crate::config::load::ISTIO_GROUP;
use crate::config::{Kind, Meta};

/// The field of `filter_metadata["istio"]` that names the resource.
const CONFIG_FIELD: &str = "config";

/// `/apis/networking.istio.io/v1/namespaces/<ns>/<kind>/<name>`, the kind in
/// kebab case (`destination-rule`, `virtual-service`), as istiod's
/// `BuildConfigInfoMetadata` writes it.
pub fn config_path(kind: Kind, meta: &Meta) -> String {
    format!(
        "/apis/{ISTIO_GROUP}/v1/namespaces/{}/{}/{}",
        meta.namespace,
        kebab_case(kind.as_str()),
        meta.name
    )
}

/// The metadata naming the resource `meta` of `kind`: one field, so that
/// it always encodes to the same bytes (a resource's version is a hash of
/// them, and `Struct` keeps its fields in a hash map). istiod adds a
/// subset cluster's subset beside it; the subset is in the cluster's name.
pub fn config_metadata(kind: Kind, meta: &Meta) -> Metadata {
    let value = Value {
        kind: Some(ValueKind::StringValue(config_path(kind, meta))),
    };
    let fields = [(CONFIG_FIELD.to_string(), value)].into_iter().collect();
    Metadata {
        filter_metadata: [(METADATA_NAMESPACE.to_string(), Struct { fields })]
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

/// `DestinationRule` → `destination-rule`.
fn kebab_case(kind: &str) -> String {
    let mut out = String::with_capacity(kind.len() + 2);
    for (index, c) in kind.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if index > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(namespace: &str, name: &str) -> Meta {
        Meta {
            name: name.to_string(),
            namespace: namespace.to_string(),
            ..Meta::default()
        }
    }

    fn field<'m>(metadata: &'m Metadata, key: &str) -> Option<&'m str> {
        match &metadata.filter_metadata["istio"].fields.get(key)?.kind {
            Some(ValueKind::StringValue(text)) => Some(text),
            _ => None,
        }
    }

    #[test]
    fn the_path_is_istiods_with_the_kind_in_kebab_case() {
        let rule = config_metadata(Kind::DestinationRule, &meta("istio-system", "egress"));
        assert_eq!(
            field(&rule, "config"),
            Some("/apis/networking.istio.io/v1/namespaces/istio-system/destination-rule/egress")
        );
        let route = config_metadata(Kind::VirtualService, &meta("default", "cnn"));
        assert_eq!(
            field(&route, "config"),
            Some("/apis/networking.istio.io/v1/namespaces/default/virtual-service/cnn")
        );
        assert_eq!(field(&route, "subset"), None);
    }
}
