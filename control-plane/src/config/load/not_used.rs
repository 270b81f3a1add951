//! The fields of Kubernetes objects the control plane reads past: named
//! per object, so that nothing kubectl printed is dropped in silence.

use std::fmt;

use crate::config::Origin;
use crate::config::error::ResourceRef;

/// A Kubernetes object that was read, and the fields of it that are not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotUsed {
    pub resource: ResourceRef,
    pub origin: Origin,
    /// The object's place in its document (`items[3]` in a List).
    pub item: Option<String>,
    /// The fields not used, as paths (`status`, `spec.ports[].nodePort`).
    pub fields: Vec<String>,
}

impl NotUsed {
    pub(super) fn new(
        resource: ResourceRef,
        origin: &Origin,
        item: Option<&str>,
        fields: Vec<String>,
    ) -> Self {
        Self {
            resource,
            origin: origin.clone(),
            item: item.map(str::to_string),
            fields,
        }
    }
}

impl fmt::Display for NotUsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not used: {} {}/{} ({}, document {}",
            self.resource.kind,
            self.resource.namespace,
            self.resource.name,
            self.origin.file.display(),
            self.origin.document + 1
        )?;
        if let Some(item) = &self.item {
            write!(f, ", {item}")?;
        }
        write!(
            f,
            "): {}; the control plane does not read them",
            self.fields.join(", ")
        )
    }
}
