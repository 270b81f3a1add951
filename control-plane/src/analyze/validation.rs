//! The loader's and `validate`'s findings as messages: what Istio's own
//! validation of a `networking.istio.io` resource rejects is IST0106
//! SchemaValidationError; the rest (files that do not parse, this control
//! plane's own limits, Kubernetes objects, what is not handled or not used)
//! has no code in Istio and keeps `validate`'s words. The references that
//! Istio's analyzers judge (gateways, subsets, destination hosts) are left
//! to them.

use super::message::{Level, Message, SCHEMA_VALIDATION_ERROR, Subject};
use crate::config::error::{ConfigError, Problem, ResourceRef};
use crate::config::{Checked, Kind, Origin};

/// The kinds Istio's schema validation covers.
const ISTIO_KINDS: [Kind; 7] = [
    Kind::ServiceEntry,
    Kind::VirtualService,
    Kind::DestinationRule,
    Kind::Gateway,
    Kind::Sidecar,
    Kind::WorkloadEntry,
    Kind::WorkloadGroup,
];

pub(super) fn messages(checked: &Checked) -> Vec<Message> {
    let mut out = Vec::new();
    for error in &checked.errors {
        out.push(error_message(error));
    }
    for warning in checked.warnings.iter().filter(|w| !judged_by_analyzers(w)) {
        out.push(Message::uncoded(
            Level::Warning,
            subject(warning),
            finding(warning),
        ));
    }
    for document in &checked.not_handled {
        let resource = ResourceRef {
            kind: document.kind.clone(),
            namespace: document.namespace.clone(),
            name: document.name.clone(),
        };
        let subject = origin_subject(resource, &document.origin, document.item.as_deref());
        let text = format!("not handled: {}", document.reason());
        out.push(Message::uncoded(Level::Info, subject, text));
    }
    for object in &checked.not_used {
        let subject = origin_subject(
            object.resource.clone(),
            &object.origin,
            object.item.as_deref(),
        );
        let text = format!(
            "not used: {}; the control plane does not read them",
            object.fields.join(", ")
        );
        out.push(Message::uncoded(Level::Info, subject, text));
    }
    out
}

fn error_message(error: &ConfigError) -> Message {
    if is_schema_error(error) {
        let text = format!("Schema validation error: {}", finding(error));
        Message::istio(SCHEMA_VALIDATION_ERROR, subject(error), text)
    } else {
        Message::uncoded(Level::Error, subject(error), finding(error))
    }
}

/// The warnings the analyzers report with Istio's codes instead.
fn judged_by_analyzers(warning: &ConfigError) -> bool {
    let spec_gateway = warning
        .location
        .field
        .as_deref()
        .is_some_and(|field| field.starts_with("spec.gateways["));
    match warning.problem {
        Problem::UnknownSubset { .. } | Problem::HostNotExported { .. } => true,
        Problem::UnknownGateway { .. } => spec_gateway,
        _ => false,
    }
}

/// Whether Istio's validation of the resource alone rejects it: a problem
/// of an Istio resource that is not about files, this control plane's
/// limits or other resources.
fn is_schema_error(error: &ConfigError) -> bool {
    let istio_kind = error
        .location
        .resource
        .as_ref()
        .is_some_and(|r| ISTIO_KINDS.iter().any(|kind| kind.as_str() == r.kind));
    let ours = matches!(
        error.problem,
        Problem::Io { .. }
            | Problem::EmptyFileKept
            | Problem::IncompleteFileKept
            | Problem::ChangingFileKept
            | Problem::TooDeep { .. }
            | Problem::Syntax { .. }
            | Problem::NotAnObject { .. }
            | Problem::UnsupportedApiVersion { .. }
            | Problem::UnsupportedKind { .. }
            | Problem::NotSupported { .. }
            | Problem::Duplicate { .. }
            | Problem::ConflictingProtocol { .. }
            | Problem::HiddenByHttp { .. }
            | Problem::CredentialWithoutCa { .. }
            | Problem::ServerTlsFieldNotSupported { .. }
    );
    istio_kind && !ours
}

/// The problem, after the field it is in when there is one.
fn finding(error: &ConfigError) -> String {
    match &error.location.field {
        Some(field) => format!("{field}: {}", error.problem),
        None => error.problem.to_string(),
    }
}

fn subject(error: &ConfigError) -> Subject {
    let location = &error.location;
    Subject {
        resource: location.resource.clone(),
        file: location.file.clone(),
        document: location.document,
        field: location.field.clone(),
        line: location.line,
    }
}

fn origin_subject(resource: ResourceRef, origin: &Origin, item: Option<&str>) -> Subject {
    Subject {
        resource: Some(resource),
        file: Some(origin.file.clone()),
        document: Some(origin.document),
        field: item.map(str::to_string),
        line: None,
    }
}
