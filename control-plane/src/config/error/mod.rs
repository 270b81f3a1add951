//! Config errors a user can act on.
//!
//! Each [`ConfigError`] is one problem, displayed as one line that says where
//! it is (file, line when known, document, resource, field), what is wrong and
//! what to do about it, for example:
//!
//! ```text
//! cfg/se.yaml: document 1: ServiceEntry default/httpbin-ext: spec.ports[0].number: port 0 is out of range; use a port between 1 and 65535
//! ```
//!
//! Document numbers in messages count from 1, like line numbers; the
//! `document` fields of [`Location`] and [`super::Origin`] count from 0.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{Kind, Meta, Origin, Resource};

mod problem;
pub use problem::{Problem, Severity};

/// The resource a problem is about. `kind` is a string because a document
/// may name a kind this control plane does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ResourceRef {
    pub fn new(kind: Kind, meta: &Meta) -> Self {
        Self {
            kind: kind.as_str().to_string(),
            namespace: meta.namespace.clone(),
            name: meta.name.clone(),
        }
    }
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.name.is_empty() {
            "<unnamed>"
        } else {
            &self.name
        };
        write!(f, "{} {}/{}", self.kind, self.namespace, name)
    }
}

/// Where a problem is. Every part is optional: a file that cannot be read
/// has no document, a YAML syntax error has no resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub file: Option<PathBuf>,
    /// 1-based line in the file, when the YAML parser knows it.
    pub line: Option<usize>,
    /// 0-based index of the YAML document in the file, as in [`Origin`].
    pub document: Option<usize>,
    pub resource: Option<ResourceRef>,
    /// Path of the offending field inside the document, e.g. `spec.ports[0].number`.
    pub field: Option<String>,
}

impl Location {
    pub fn file(file: &Path) -> Self {
        Self {
            file: Some(file.to_path_buf()),
            ..Self::default()
        }
    }

    pub fn document(file: &Path, document: usize) -> Self {
        Self {
            document: Some(document),
            ..Self::file(file)
        }
    }

    /// The location of a loaded resource, optionally narrowed to one field.
    pub fn resource<T>(kind: Kind, resource: &Resource<T>) -> Self {
        Self::of(kind, &resource.meta, &resource.origin)
    }

    pub fn of(kind: Kind, meta: &Meta, origin: &Origin) -> Self {
        Self {
            resource: Some(ResourceRef::new(kind, meta)),
            ..Self::document(&origin.file, origin.document)
        }
    }

    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        match (&self.file, self.line) {
            (Some(file), Some(line)) => parts.push(format!("{}:{line}", file.display())),
            (Some(file), None) => parts.push(file.display().to_string()),
            (None, Some(line)) => parts.push(format!("line {line}")),
            (None, None) => {}
        }
        if let Some(document) = self.document {
            parts.push(format!("document {}", document + 1));
        }
        if let Some(resource) = &self.resource {
            parts.push(resource.to_string());
        }
        if let Some(field) = &self.field {
            parts.push(field.clone());
        }
        if parts.is_empty() {
            parts.push("config".to_string());
        }
        f.write_str(&parts.join(": "))
    }
}

/// One problem in the config, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {problem}")]
pub struct ConfigError {
    pub location: Location,
    pub problem: Problem,
}

impl ConfigError {
    pub fn new(location: Location, problem: Problem) -> Self {
        Self { location, problem }
    }

    /// Whether this problem leaves its resource out, or is only a warning.
    pub fn severity(&self) -> Severity {
        self.problem.severity()
    }
}

/// Several config errors, reported together.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("no config errors"),
            [only] => write!(f, "{only}"),
            errors => {
                write!(f, "{} config errors:", errors.len())?;
                for error in errors {
                    write!(f, "\n{error}")?;
                }
                Ok(())
            }
        }
    }
}

impl ConfigErrors {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }
}

impl From<Vec<ConfigError>> for ConfigErrors {
    fn from(errors: Vec<ConfigError>) -> Self {
        Self(errors)
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self(vec![error])
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The config watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The first load found errors: there is no snapshot to start from.
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    /// The file system watch could not be set up.
    #[error("cannot watch {}: {error}; check that it exists and that inotify watches are available", path.display())]
    Notify { path: PathBuf, error: notify::Error },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_one_line_with_every_part_of_the_location() {
        let meta = Meta {
            name: "httpbin-ext".into(),
            namespace: "default".into(),
            ..Meta::default()
        };
        let origin = Origin {
            file: PathBuf::from("cfg/se.yaml"),
            document: 0,
        };
        let error = ConfigError::new(
            Location::of(Kind::ServiceEntry, &meta, &origin).at("spec.ports[0].number"),
            Problem::PortOutOfRange { number: 0 },
        );
        assert_eq!(
            error.to_string(),
            "cfg/se.yaml: document 1: ServiceEntry default/httpbin-ext: spec.ports[0].number: \
             port 0 is out of range; use a port between 1 and 65535"
        );
    }

    #[test]
    fn line_is_shown_with_the_file() {
        let location = Location {
            line: Some(7),
            ..Location::document(Path::new("a.yaml"), 2)
        };
        let error = ConfigError::new(
            location,
            Problem::Syntax {
                message: "mapping values are not allowed".into(),
            },
        );
        let text = error.to_string();
        assert!(
            text.starts_with("a.yaml:7: document 3: YAML syntax error: "),
            "{text}"
        );
        assert!(!text.contains('\n'));
    }

    #[test]
    fn schema_hint_is_optional() {
        let with = Problem::Schema {
            message: "unknown field `hostz`".into(),
            hint: "check the spelling",
        };
        let without = Problem::Schema {
            message: "bad".into(),
            hint: "",
        };
        assert_eq!(
            with.to_string(),
            "unknown field `hostz`; check the spelling"
        );
        assert_eq!(without.to_string(), "bad");
    }

    #[test]
    fn several_errors_are_counted_and_one_per_line() {
        let one = ConfigError::new(Location::file(Path::new("x.yaml")), Problem::NoHosts);
        let errors = ConfigErrors(vec![one.clone(), one.clone()]);
        assert_eq!(errors.to_string().lines().count(), 3);
        assert_eq!(ConfigErrors::from(one.clone()).to_string(), one.to_string());
    }
}
