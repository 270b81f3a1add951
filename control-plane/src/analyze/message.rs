//! One analysis message as `istioctl analyze` prints it: level, Istio's
//! message code where Istio has one, the resource it is about (kind,
//! namespace/name, file:line) and the text of Istio's template.

use std::fmt;
use std::path::PathBuf;

use crate::config::error::ResourceRef;
use crate::config::{Kind, Resource};

/// How serious a message is; ordered so that `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "Info",
            Level::Warning => "Warning",
            Level::Error => "Error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message type of Istio's `messages.yaml`: its code and level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageType {
    pub code: &'static str,
    pub level: Level,
}

/// IST0002 Deprecated: a field Istio deprecated.
pub const DEPRECATED: MessageType = MessageType {
    code: "IST0002",
    level: Level::Warning,
};
/// IST0101 ReferencedResourceNotFound.
pub const REFERENCED_RESOURCE_NOT_FOUND: MessageType = MessageType {
    code: "IST0101",
    level: Level::Error,
};
/// IST0106 SchemaValidationError: what Istio's validation of the resource alone rejects.
pub const SCHEMA_VALIDATION_ERROR: MessageType = MessageType {
    code: "IST0106",
    level: Level::Error,
};
/// IST0109 ConflictingMeshGatewayVirtualServiceHosts.
pub const CONFLICTING_MESH_GATEWAY_HOSTS: MessageType = MessageType {
    code: "IST0109",
    level: Level::Error,
};
/// IST0111 MultipleSidecarsWithoutWorkloadSelectors.
pub const MULTIPLE_SIDECARS_WITHOUT_SELECTORS: MessageType = MessageType {
    code: "IST0111",
    level: Level::Error,
};
/// IST0112 VirtualServiceDestinationPortSelectorRequired.
pub const DESTINATION_PORT_SELECTOR_REQUIRED: MessageType = MessageType {
    code: "IST0112",
    level: Level::Error,
};
/// IST0118 PortNameIsNotUnderNamingConvention.
pub const PORT_NAME_NOT_UNDER_CONVENTION: MessageType = MessageType {
    code: "IST0118",
    level: Level::Info,
};
/// IST0128 NoServerCertificateVerificationDestinationLevel.
pub const NO_SERVER_VERIFICATION_DESTINATION: MessageType = MessageType {
    code: "IST0128",
    level: Level::Warning,
};
/// IST0129 NoServerCertificateVerificationPortLevel.
pub const NO_SERVER_VERIFICATION_PORT: MessageType = MessageType {
    code: "IST0129",
    level: Level::Warning,
};
/// IST0132 VirtualServiceHostNotFoundInGateway.
pub const HOST_NOT_FOUND_IN_GATEWAY: MessageType = MessageType {
    code: "IST0132",
    level: Level::Warning,
};
/// IST0145 ConflictingGateways.
pub const CONFLICTING_GATEWAYS: MessageType = MessageType {
    code: "IST0145",
    level: Level::Error,
};
/// IST0162 GatewayPortNotDefinedOnService.
pub const GATEWAY_PORT_NOT_ON_SERVICE: MessageType = MessageType {
    code: "IST0162",
    level: Level::Warning,
};

/// What a message is about: a resource, where it was read, and the field
/// its line points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub resource: Option<ResourceRef>,
    pub file: Option<PathBuf>,
    /// 0-based index of the YAML document in the file.
    pub document: Option<usize>,
    /// The field path inside the document (`spec.gateways[0]`); the
    /// resource's first line when `None`.
    pub field: Option<String>,
    /// The line, when it is known already (a YAML or schema error).
    pub line: Option<usize>,
}

impl Subject {
    /// A loaded resource of `kind`, at `field` when given.
    pub fn of<T>(kind: Kind, resource: &Resource<T>, field: Option<String>) -> Self {
        Self {
            resource: Some(ResourceRef::new(kind, &resource.meta)),
            file: Some(resource.origin.file.clone()),
            document: Some(resource.origin.document),
            field,
            line: None,
        }
    }
}

/// One message: level and code (none where Istio has no message for the
/// check), what it is about, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub level: Level,
    pub code: Option<&'static str>,
    pub subject: Subject,
    pub text: String,
}

impl Message {
    /// A message of one of Istio's types.
    pub fn istio(kind: MessageType, subject: Subject, text: impl Into<String>) -> Self {
        Self {
            level: kind.level,
            code: Some(kind.code),
            subject,
            text: text.into(),
        }
    }

    /// A message for which Istio has no code.
    pub fn uncoded(level: Level, subject: Subject, text: impl Into<String>) -> Self {
        Self {
            level,
            code: None,
            subject,
            text: text.into(),
        }
    }

    /// The line as istioctl prints it, `line` being the subject's line
    /// found in its file (if any):
    /// `Error [IST0101] (VirtualService default/foo vs.yaml:12) Referenced gateway not found: "bar"`.
    pub fn render(&self, line: Option<usize>) -> String {
        let mut out = self.level.to_string();
        if let Some(code) = self.code {
            out.push_str(&format!(" [{code}]"));
        }
        let mut origin = Vec::new();
        if let Some(resource) = &self.subject.resource {
            origin.push(resource.to_string());
        }
        if let Some(file) = &self.subject.file {
            match line.or(self.subject.line) {
                Some(line) => origin.push(format!("{}:{line}", file.display())),
                None => origin.push(file.display().to_string()),
            }
        }
        if !origin.is_empty() {
            out.push_str(&format!(" ({})", origin.join(" ")));
        }
        out.push(' ');
        out.push_str(&self.text);
        out
    }
}

/// Go's `%q` of a plain string, as Istio's templates quote values.
pub fn quoted(text: &str) -> String {
    format!("{text:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_prints_as_istioctl_prints_it() {
        let subject = Subject {
            resource: Some(ResourceRef {
                kind: "VirtualService".into(),
                namespace: "default".into(),
                name: "foo".into(),
            }),
            file: Some(PathBuf::from("cfg/vs.yaml")),
            document: Some(0),
            field: Some("spec.gateways[0]".into()),
            line: None,
        };
        let message = Message::istio(
            REFERENCED_RESOURCE_NOT_FOUND,
            subject.clone(),
            format!("Referenced gateway not found: {}", quoted("bar")),
        );
        assert_eq!(
            message.render(Some(12)),
            "Error [IST0101] (VirtualService default/foo cfg/vs.yaml:12) Referenced gateway not found: \"bar\""
        );
        let uncoded = Message::uncoded(Level::Warning, subject, "no code here");
        assert_eq!(
            uncoded.render(None),
            "Warning (VirtualService default/foo cfg/vs.yaml) no code here"
        );
        assert!(Level::Info < Level::Warning && Level::Warning < Level::Error);
    }
}
