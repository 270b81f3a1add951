//! The access loggers of an HTTP connection manager or a TCP proxy: file
//! loggers (Envoy's `file`, `stdout` and `stderr`: a compiled format and the
//! sink of its path), and the gRPC logger (Envoy's `http_grpc` and
//! `tcp_grpc`: the log name its stream announces and the custom tags each
//! entry carries; its entries always go to the control plane).

use std::sync::Arc;

use super::log_format::LogFormat;
use crate::proxy::access_log::sink::Sink;

/// A file logger: each entry rendered in `format` and written to `sink`.
#[derive(Debug, Clone)]
pub struct FileAccessLog {
    pub format: Arc<LogFormat>,
    pub sink: &'static Sink,
}

impl PartialEq for FileAccessLog {
    fn eq(&self, other: &Self) -> bool {
        self.format == other.format && std::ptr::eq(self.sink, other.sink)
    }
}

impl Eq for FileAccessLog {}

/// A gRPC access logger, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcAccessLog {
    /// `common_config.log_name`, in the first message of each stream.
    pub log_name: Arc<str>,
    pub custom_tags: Vec<CustomTag>,
}

/// One entry of `common_config.custom_tags`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomTag {
    pub tag: Arc<str>,
    pub value: TagValue,
}

/// Where a custom tag's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagValue {
    /// The same value on every entry.
    Literal(Arc<str>),
    /// The `istio` / `egress_policy` field of the route's metadata (the
    /// egress policy mark), or `default_value` when the route has none.
    RouteEgressPolicy { default_value: Option<Arc<str>> },
}

impl GrpcAccessLog {
    /// The tags of an entry whose route is marked `route_mark` (`None`: no
    /// route, or a route without the mark), as Envoy evaluates them: a
    /// metadata tag with no value and no default is left out.
    pub fn tags<'a>(
        &'a self,
        route_mark: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.custom_tags.iter().filter_map(move |tag| {
            let value = match &tag.value {
                TagValue::Literal(value) => Some(&**value),
                TagValue::RouteEgressPolicy { default_value } => {
                    route_mark.or(default_value.as_deref())
                }
            }?;
            Some((&*tag.tag, value))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logger() -> GrpcAccessLog {
        GrpcAccessLog {
            log_name: "egress".into(),
            custom_tags: vec![
                CustomTag {
                    tag: "mesh".into(),
                    value: TagValue::Literal("egress-mesh".into()),
                },
                CustomTag {
                    tag: "egress_policy".into(),
                    value: TagValue::RouteEgressPolicy {
                        default_value: None,
                    },
                },
            ],
        }
    }

    #[test]
    fn a_metadata_tag_takes_the_route_mark() {
        let logger = logger();
        let tags: Vec<_> = logger.tags(Some("would_block")).collect();
        assert_eq!(
            tags,
            [("mesh", "egress-mesh"), ("egress_policy", "would_block")]
        );
    }

    #[test]
    fn a_metadata_tag_without_value_or_default_is_left_out() {
        let logger = logger();
        let tags: Vec<_> = logger.tags(None).collect();
        assert_eq!(tags, [("mesh", "egress-mesh")]);
    }

    #[test]
    fn a_metadata_tag_without_value_takes_its_default() {
        let mut logger = logger();
        logger.custom_tags[1].value = TagValue::RouteEgressPolicy {
            default_value: Some("-".into()),
        };
        let tags: Vec<_> = logger.tags(None).collect();
        assert_eq!(tags, [("mesh", "egress-mesh"), ("egress_policy", "-")]);
    }
}
