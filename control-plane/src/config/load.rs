//! Loading Istio resources from a directory of YAML files, and the mesh
//! config from its own file.
//!
//! Every `*.yaml` / `*.yml` file under the directory is read (recursively,
//! in path order, skipping names that start with `.`, such as the `..data`
//! directories of a mounted ConfigMap). Each file may hold several documents
//! separated by `---`; empty documents are skipped. Documents of API groups
//! other than `networking.istio.io` are skipped too, so Kubernetes objects
//! can live in the same directory. A Kubernetes `List` (what
//! `kubectl get ... -o yaml` prints for several objects) is read item by item.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use serde_yaml::Value;

use super::error::{ConfigError, ConfigErrors, Location, Problem, ResourceRef};
use super::model::{Labels, MeshConfig};
use super::validate::validate;
use super::{ConfigSnapshot, DEFAULT_NAMESPACE, Kind, Meta, Origin, Resource};

/// The API group of the resources this control plane reads.
pub const ISTIO_GROUP: &str = "networking.istio.io";

/// The versions of [`ISTIO_GROUP`] accepted; they share one schema.
pub const ISTIO_VERSIONS: [&str; 3] = ["v1alpha3", "v1beta1", "v1"];

/// Loads every Istio resource under `dir` (or in `dir`, if it is a single
/// file), and the mesh config from `mesh_file` (Istio's defaults when
/// `None`). The snapshot's version is 0; the caller sets it. All problems
/// found are returned together.
pub fn load_dir(dir: &Path, mesh_file: Option<&Path>) -> Result<ConfigSnapshot, ConfigErrors> {
    let mut errors = Vec::new();
    let mesh = match mesh_file {
        Some(path) => load_mesh_file(path).unwrap_or_else(|mesh_errors| {
            errors.extend(mesh_errors);
            MeshConfig::default()
        }),
        None => MeshConfig::default(),
    };
    let mut snapshot = ConfigSnapshot {
        mesh,
        ..ConfigSnapshot::default()
    };
    let skip = mesh_file.and_then(|path| fs::canonicalize(path).ok());
    for file in yaml_files(dir, skip.as_deref(), &mut errors) {
        match fs::read_to_string(&file) {
            Ok(text) => add_file(&file, &text, &mut snapshot, &mut errors),
            Err(error) => errors.push(io_error(&file, &error)),
        }
    }
    if errors.is_empty() {
        Ok(snapshot)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Loads `dir` (and `mesh_file`) and validates the result: what the CLI's
/// `validate` and `dump` commands and the watcher accept. The version is 0.
pub fn load_validated(
    dir: &Path,
    mesh_file: Option<&Path>,
) -> Result<ConfigSnapshot, ConfigErrors> {
    let snapshot = load_dir(dir, mesh_file)?;
    let errors = validate(&snapshot);
    if errors.is_empty() {
        Ok(snapshot)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Loads the resources of one YAML text as if it were the only file, named
/// `file` in errors and origins. The mesh config is Istio's default.
pub fn load_str(file: &Path, text: &str) -> Result<ConfigSnapshot, ConfigErrors> {
    let mut snapshot = ConfigSnapshot::default();
    let mut errors = Vec::new();
    add_file(file, text, &mut snapshot, &mut errors);
    if errors.is_empty() {
        Ok(snapshot)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Reads the mesh config file: either MeshConfig YAML as Istio's `mesh` key
/// holds it, or the whole `istio` ConfigMap whose `data.mesh` holds it.
pub fn load_mesh_file(path: &Path) -> Result<MeshConfig, ConfigErrors> {
    let text = fs::read_to_string(path).map_err(|error| io_error(path, &error))?;
    parse_mesh(path, &text)
}

/// Parses mesh config text; `file` only names it in errors. An empty text
/// gives Istio's defaults.
pub fn parse_mesh(file: &Path, text: &str) -> Result<MeshConfig, ConfigErrors> {
    let Some(document) = serde_yaml::Deserializer::from_str(text).next() else {
        return Ok(MeshConfig::default());
    };
    let value = Value::deserialize(document).map_err(|error| syntax_error(file, 0, &error))?;
    let is_config_map = value.get("kind").and_then(Value::as_str) == Some("ConfigMap");
    if !is_config_map {
        let Some(document) = serde_yaml::Deserializer::from_str(text).next() else {
            return Ok(MeshConfig::default());
        };
        return decode_mesh(document, Location::file(file), "");
    }
    let Some(mesh) = value
        .get("data")
        .and_then(|data| data.get("mesh"))
        .and_then(Value::as_str)
    else {
        let location = Location::file(file).at("data.mesh");
        return Err(ConfigError::new(location, Problem::MeshConfigMapWithoutMesh).into());
    };
    let Some(document) = serde_yaml::Deserializer::from_str(mesh).next() else {
        return Ok(MeshConfig::default());
    };
    // Lines inside the embedded string would not match the file's lines.
    decode_mesh(document, Location::file(file), "data.mesh.").map_err(|mut errors| {
        for error in &mut errors.0 {
            error.location.line = None;
            if error.location.field.is_none() {
                error.location.field = Some("data.mesh".into());
            }
        }
        errors
    })
}

fn decode_mesh<'de, D>(
    document: D,
    location: Location,
    prefix: &str,
) -> Result<MeshConfig, ConfigErrors>
where
    D: Deserializer<'de, Error = serde_yaml::Error>,
{
    match serde_path_to_error::deserialize::<_, Option<MeshConfig>>(document) {
        Ok(mesh) => Ok(mesh.unwrap_or_default()),
        Err(error) => Err(schema_error(location, prefix, &error).into()),
    }
}

/// The YAML files under `dir`, sorted by path; `dir` itself if it is a file.
fn yaml_files(dir: &Path, skip: Option<&Path>, errors: &mut Vec<ConfigError>) -> Vec<PathBuf> {
    if fs::metadata(dir).is_ok_and(|meta| meta.is_file()) {
        return vec![dir.to_path_buf()];
    }
    let mut files = Vec::new();
    let mut visited = HashSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        // Following a symlink back to a directory already read would loop.
        if let Ok(real) = fs::canonicalize(&current)
            && !visited.insert(real)
        {
            continue;
        }
        let entries = match fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(error) => {
                errors.push(io_error(&current, &error));
                continue;
            }
        };
        for entry in entries {
            let path = match entry {
                Ok(entry) => entry.path(),
                Err(error) => {
                    errors.push(io_error(&current, &error));
                    continue;
                }
            };
            let hidden = path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with('.'));
            if hidden {
                continue;
            }
            // `metadata` follows symlinks, as mounted ConfigMaps need.
            match fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => pending.push(path),
                Ok(meta) if meta.is_file() && is_yaml(&path) => {
                    let is_mesh_file = skip
                        .is_some_and(|skip| fs::canonicalize(&path).is_ok_and(|real| real == skip));
                    if !is_mesh_file {
                        files.push(path);
                    }
                }
                Ok(_) => {}
                Err(error) => errors.push(io_error(&path, &error)),
            }
        }
    }
    files.sort();
    files
}

fn is_yaml(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml"))
}

/// What a document is, judged from its apiVersion and kind.
enum Class {
    Empty,
    Istio(Kind),
    List,
    Other,
}

fn classify(value: &Value, location: &Location) -> Result<Class, Box<ConfigError>> {
    let not_an_object = |what: &str| {
        let what = what.to_string();
        Box::new(ConfigError::new(
            location.clone(),
            Problem::NotAnObject { what },
        ))
    };
    let mapping = match value {
        Value::Null => return Ok(Class::Empty),
        Value::Mapping(mapping) => mapping,
        Value::Sequence(_) => return Err(not_an_object("the document is a list")),
        _ => return Err(not_an_object("the document is a single value")),
    };
    let api_version = mapping.get("apiVersion").and_then(Value::as_str);
    let kind = mapping.get("kind").and_then(Value::as_str);
    let (api_version, kind) = match (api_version, kind) {
        (Some(api_version), Some(kind)) => (api_version, kind),
        (None, Some(_)) => return Err(not_an_object("apiVersion is missing")),
        (Some(_), None) => return Err(not_an_object("kind is missing")),
        (None, None) => return Err(not_an_object("apiVersion and kind are missing")),
    };
    // Inside a List, the field is the item's (`items[3]`): name its fields under it.
    let at = |name: &str| {
        let field = match &location.field {
            Some(item) => format!("{item}.{name}"),
            None => name.to_string(),
        };
        location.clone().at(field)
    };
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    if group == ISTIO_GROUP {
        if !ISTIO_VERSIONS.contains(&version) {
            let api_version = api_version.to_string();
            let problem = Problem::UnsupportedApiVersion { api_version };
            return Err(Box::new(ConfigError::new(at("apiVersion"), problem)));
        }
        return match kind_from_str(kind) {
            Some(kind) => Ok(Class::Istio(kind)),
            None => {
                let kind = kind.to_string();
                let problem = Problem::UnsupportedKind { kind };
                Err(Box::new(ConfigError::new(at("kind"), problem)))
            }
        };
    }
    if group.is_empty() && kind == "List" {
        return Ok(Class::List);
    }
    let name = value
        .get("metadata")
        .and_then(|meta| meta.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if group.ends_with(".istio.io") {
        tracing::warn!(%location, api_version, kind, name, "ignoring an Istio resource this control plane does not read");
    } else {
        tracing::debug!(%location, api_version, kind, name, "skipping a document that is not a networking.istio.io resource");
    }
    Ok(Class::Other)
}

fn kind_from_str(kind: &str) -> Option<Kind> {
    [
        Kind::ServiceEntry,
        Kind::VirtualService,
        Kind::DestinationRule,
        Kind::Gateway,
        Kind::Sidecar,
        Kind::WorkloadEntry,
    ]
    .into_iter()
    .find(|known| known.as_str() == kind)
}

/// Adds the resources of one file's text to `snapshot`.
fn add_file(file: &Path, text: &str, snapshot: &mut ConfigSnapshot, errors: &mut Vec<ConfigError>) {
    // First pass: the structure of every document, to know what each is.
    let mut values = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        match Value::deserialize(document) {
            Ok(value) => values.push(value),
            Err(error) => {
                // The parser cannot resynchronise after a syntax error.
                errors.push(syntax_error(file, index, &error));
                break;
            }
        }
    }
    // Second pass: decode each Istio document from the text itself, so that
    // schema errors carry line numbers.
    for ((index, document), value) in serde_yaml::Deserializer::from_str(text)
        .enumerate()
        .zip(&values)
    {
        let origin = Origin {
            file: file.to_path_buf(),
            document: index,
        };
        let location = Location::document(file, index);
        match classify(value, &location) {
            Ok(Class::Istio(kind)) => {
                let target = Target {
                    kind,
                    origin: &origin,
                    prefix: "",
                    loose: value,
                };
                add_resource(target, document, snapshot, errors);
            }
            Ok(Class::List) => add_list(value, &origin, snapshot, errors),
            Ok(Class::Empty | Class::Other) => {}
            Err(error) => errors.push(*error),
        }
    }
}

fn add_list(
    list: &Value,
    origin: &Origin,
    snapshot: &mut ConfigSnapshot,
    errors: &mut Vec<ConfigError>,
) {
    let Some(items) = list.get("items").and_then(Value::as_sequence) else {
        return;
    };
    for (index, item) in items.iter().enumerate() {
        let prefix = format!("items[{index}].");
        let location =
            Location::document(&origin.file, origin.document).at(format!("items[{index}]"));
        match classify(item, &location) {
            Ok(Class::Istio(kind)) => {
                let target = Target {
                    kind,
                    origin,
                    prefix: &prefix,
                    loose: item,
                };
                add_resource(target, item, snapshot, errors);
            }
            Ok(Class::List) => add_list(item, origin, snapshot, errors),
            Ok(Class::Empty | Class::Other) => {}
            Err(error) => errors.push(*error),
        }
    }
}

/// Where a decoded resource goes and how to name it in errors.
struct Target<'a> {
    kind: Kind,
    origin: &'a Origin,
    /// Field path of the object inside its document (`items[3].` in a List).
    prefix: &'a str,
    /// The object as loosely parsed YAML, to name it when decoding fails.
    loose: &'a Value,
}

fn add_resource<'de, D>(
    target: Target<'_>,
    document: D,
    snapshot: &mut ConfigSnapshot,
    errors: &mut Vec<ConfigError>,
) where
    D: Deserializer<'de, Error = serde_yaml::Error>,
{
    match target.kind {
        Kind::ServiceEntry => push(&mut snapshot.service_entries, &target, document, errors),
        Kind::VirtualService => push(&mut snapshot.virtual_services, &target, document, errors),
        Kind::DestinationRule => push(&mut snapshot.destination_rules, &target, document, errors),
        Kind::Gateway => push(&mut snapshot.gateways, &target, document, errors),
        Kind::Sidecar => push(&mut snapshot.sidecars, &target, document, errors),
        Kind::WorkloadEntry => push(&mut snapshot.workload_entries, &target, document, errors),
    }
}

fn push<'de, T, D>(
    list: &mut Vec<Resource<T>>,
    target: &Target<'_>,
    document: D,
    errors: &mut Vec<ConfigError>,
) where
    T: DeserializeOwned + Default,
    D: Deserializer<'de, Error = serde_yaml::Error>,
{
    match serde_path_to_error::deserialize::<_, Envelope<T>>(document) {
        Ok(envelope) => list.push(Resource {
            meta: envelope.metadata.unwrap_or_default().into_meta(),
            origin: target.origin.clone(),
            spec: envelope.spec.unwrap_or_default(),
        }),
        Err(error) => {
            let mut location = Location::document(&target.origin.file, target.origin.document);
            location.resource = Some(loose_ref(target.kind, target.loose));
            errors.push(schema_error(location, target.prefix, &error));
        }
    }
}

/// The parts of a Kubernetes object this control plane reads; `apiVersion`,
/// `kind` and `status` are ignored here.
#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct Envelope<T> {
    metadata: Option<ObjectMeta>,
    spec: Option<T>,
}

/// Kubernetes object metadata; fields set by the API server (uid,
/// resourceVersion, managedFields, ...) are accepted and ignored.
#[derive(Default, Deserialize)]
struct ObjectMeta {
    name: Option<String>,
    namespace: Option<String>,
    labels: Option<Labels>,
    annotations: Option<Labels>,
}

impl ObjectMeta {
    fn into_meta(self) -> Meta {
        Meta {
            name: self.name.unwrap_or_default(),
            namespace: self
                .namespace
                .filter(|namespace| !namespace.is_empty())
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
            labels: self.labels.unwrap_or_default(),
            annotations: self.annotations.unwrap_or_default(),
        }
    }
}

/// Names a resource from loosely parsed YAML, for an error about it.
fn loose_ref(kind: Kind, value: &Value) -> ResourceRef {
    let meta = |key: &str| {
        value
            .get("metadata")
            .and_then(|meta| meta.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    ResourceRef {
        kind: kind.as_str().to_string(),
        namespace: meta("namespace")
            .filter(|namespace| !namespace.is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
        name: meta("name").unwrap_or_default(),
    }
}

fn io_error(path: &Path, error: &std::io::Error) -> ConfigError {
    ConfigError::new(
        Location::file(path),
        Problem::Io {
            message: error.to_string(),
        },
    )
}

fn syntax_error(file: &Path, document: usize, error: &serde_yaml::Error) -> ConfigError {
    ConfigError::new(
        Location {
            line: error.location().map(|location| location.line()),
            ..Location::document(file, document)
        },
        Problem::Syntax {
            message: error.to_string(),
        },
    )
}

/// A schema error: the field path comes from `serde_path_to_error`, the line
/// from the YAML parser; the message is the parser's without those two.
fn schema_error(
    location: Location,
    prefix: &str,
    error: &serde_path_to_error::Error<serde_yaml::Error>,
) -> ConfigError {
    let path = error.path().to_string();
    let inner = error.inner();
    let mut message = inner.to_string();
    if let Some(at) = inner.location() {
        let suffix = format!(" at line {} column {}", at.line(), at.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_string();
        }
    }
    // The parser names the path too, sometimes only its parent.
    if let Some((head, rest)) = message.split_once(": ")
        && (head == "." || path.starts_with(head))
    {
        message = rest.to_string();
    }
    let field = (path != ".").then(|| format!("{prefix}{path}"));
    let field =
        field.or_else(|| (!prefix.is_empty()).then(|| prefix.trim_end_matches('.').to_string()));
    let hint = schema_hint(&message);
    ConfigError::new(
        Location {
            line: inner.location().map(|at| at.line()),
            field,
            ..location
        },
        Problem::Schema { message, hint },
    )
}

fn schema_hint(message: &str) -> &'static str {
    if message.starts_with("unknown field") {
        "fix the spelling (Istio field names are camelCase, as in its reference) or remove the field"
    } else if message.starts_with("missing field") {
        "add the field"
    } else if message.starts_with("unknown variant") {
        "use one of the values listed"
    } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
        "give a value of the expected type"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::config::model::{OutboundMode, Resolution, StringMatch};

    fn load(text: &str) -> Result<ConfigSnapshot, ConfigErrors> {
        load_str(Path::new("test.yaml"), text)
    }

    fn only_error(text: &str) -> String {
        let errors = load(text).expect_err("the text should not load");
        assert_eq!(errors.len(), 1, "{errors}");
        errors.0[0].to_string()
    }

    const SERVICE_ENTRY: &str = "\
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: httpbin-ext
spec:
  hosts:
  - httpbin.org
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: DNS
";

    #[test]
    fn loads_a_service_entry_into_the_default_namespace() {
        let snapshot = load(SERVICE_ENTRY).expect("loads");
        assert_eq!(snapshot.version, 0);
        let [entry] = snapshot.service_entries.as_slice() else {
            panic!("one service entry expected: {snapshot:?}");
        };
        assert_eq!(entry.meta.name, "httpbin-ext");
        assert_eq!(entry.meta.namespace, DEFAULT_NAMESPACE);
        assert_eq!(entry.origin.document, 0);
        assert_eq!(entry.spec.hosts, ["httpbin.org"]);
        assert_eq!(entry.spec.resolution, Resolution::Dns);
    }

    #[test]
    fn accepts_every_istio_version_and_keeps_namespace_and_labels() {
        for version in ISTIO_VERSIONS {
            let text = format!(
                "apiVersion: networking.istio.io/{version}\nkind: Gateway\nmetadata:\n  name: gw\n  namespace: istio-system\n  labels: {{app: x}}\n  uid: abc\nspec:\n  selector: {{istio: egressgateway}}\nstatus: {{}}\n"
            );
            let snapshot = load(&text).expect("loads");
            assert_eq!(snapshot.gateways[0].meta.namespace, "istio-system");
            assert_eq!(snapshot.gateways[0].meta.labels["app"], "x");
        }
    }

    #[test]
    fn skips_empty_and_comment_only_documents_and_counts_them() {
        // A comment before the first `---` is not a document of its own.
        let text = format!("# just a comment\n---\n---\n# another\n---\n{SERVICE_ENTRY}---\n");
        let snapshot = load(&text).expect("loads");
        assert_eq!(snapshot.service_entries.len(), 1);
        assert_eq!(snapshot.service_entries[0].origin.document, 2);
        let text = format!("---\n# only a comment\n---\n{SERVICE_ENTRY}");
        assert_eq!(
            load(&text).expect("loads").service_entries[0]
                .origin
                .document,
            1
        );
    }

    #[test]
    fn skips_documents_of_other_api_groups() {
        let text = format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: np\nspec:\n  podSelector: {{}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: istio\ndata:\n  mesh: 'x'\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: deny\n---\n{SERVICE_ENTRY}"
        );
        let snapshot = load(&text).expect("loads");
        assert_eq!(snapshot.service_entries.len(), 1);
        assert_eq!(snapshot.service_entries[0].origin.document, 3);
    }

    #[test]
    fn reads_the_items_of_a_kubernetes_list() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: networking.istio.io/v1\n  kind: DestinationRule\n  metadata: {name: a, namespace: ns}\n  spec: {host: a.example.com}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n";
        let snapshot = load(text).expect("loads");
        assert_eq!(snapshot.destination_rules.len(), 1);
        assert_eq!(snapshot.destination_rules[0].meta.namespace, "ns");
    }

    #[test]
    fn an_error_in_a_list_item_names_the_item() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: networking.istio.io/v1\n  kind: DestinationRule\n  metadata: {name: a}\n  spec: {hots: a.example.com}\n";
        let line = only_error(text);
        assert!(
            line.contains("DestinationRule default/a: items[0].spec.hots: unknown field `hots`"),
            "{line}"
        );
    }

    #[test]
    fn unknown_istio_kind_and_version_are_errors() {
        let line = only_error(
            "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: f}\n",
        );
        assert!(line.starts_with("test.yaml: document 1: kind: kind EnvoyFilter of networking.istio.io is not supported"), "{line}");
        let line =
            only_error("apiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: {name: g}\n");
        assert!(
            line.contains("apiVersion networking.istio.io/v2 is not supported"),
            "{line}"
        );
    }

    #[test]
    fn a_document_without_api_version_or_kind_is_an_error() {
        let line = only_error("hosts: [a]\n");
        assert!(
            line.contains("not a Kubernetes object: apiVersion and kind are missing"),
            "{line}"
        );
        let line = only_error("- a\n- b\n");
        assert!(line.contains("the document is a list"), "{line}");
    }

    #[test]
    fn syntax_error_names_file_document_and_line() {
        let text = format!(
            "{SERVICE_ENTRY}---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: [oops\n"
        );
        let errors = load(&text).expect_err("syntax error");
        let line = errors.0[0].to_string();
        assert!(
            line.starts_with("test.yaml:18: document 2: YAML syntax error: "),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn unknown_field_names_file_line_document_resource_and_field() {
        let text = format!("{SERVICE_ENTRY}  locaton: MESH_EXTERNAL\n");
        let line = only_error(&text);
        assert!(
            line.starts_with(
                "test.yaml:13: document 1: ServiceEntry default/httpbin-ext: spec.locaton: unknown field `locaton`, expected one of"
            ),
            "{line}"
        );
        assert!(line.ends_with("; fix the spelling (Istio field names are camelCase, as in its reference) or remove the field"), "{line}");
    }

    #[test]
    fn type_error_names_the_field_path() {
        let text = SERVICE_ENTRY.replace("number: 80", "number: eighty");
        let line = only_error(&text);
        assert!(line.starts_with("test.yaml:9: document 1: ServiceEntry default/httpbin-ext: spec.ports[0].number: invalid type: string \"eighty\", expected u32; give a value of the expected type"), "{line}");
    }

    #[test]
    fn bad_enum_value_and_duration_are_reported() {
        let line = only_error(&SERVICE_ENTRY.replace("resolution: DNS", "resolution: DNSS"));
        assert!(
            line.contains("spec.resolution: unknown variant `DNSS`, expected one of"),
            "{line}"
        );
        let text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a]\n  http:\n  - timeout: 3\n    route:\n    - destination: {host: a}\n";
        let line = only_error(text);
        assert!(
            line.contains("VirtualService default/v: spec.http[0].timeout: invalid duration \"3\""),
            "{line}"
        );
    }

    #[test]
    fn string_matches_are_maps_with_one_key() {
        let route = |matcher: &str| {
            format!(
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: v}}\nspec:\n  hosts: [a]\n  http:\n  - match:\n    - uri: {matcher}\n    route:\n    - destination: {{host: a}}\n"
            )
        };
        let snapshot = load(&route("{prefix: /api}")).expect("loads");
        let uri = &snapshot.virtual_services[0].spec.http[0].matches[0].uri;
        assert_eq!(uri, &Some(StringMatch::Prefix("/api".into())));
        let line = only_error(&route("{prefix: /api, exact: /x}"));
        assert!(line.contains("spec.http[0].match[0].uri: a string match needs exactly one of exact, prefix or regex"), "{line}");
        let line = only_error(&route("{prefx: /api}"));
        assert!(
            line.contains("spec.http[0].match[0].uri.prefx: unknown field `prefx`"),
            "{line}"
        );
    }

    #[test]
    fn missing_required_field_is_reported() {
        let text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a]\n  http:\n  - route:\n    - destination: {subset: x}\n";
        let line = only_error(text);
        assert!(
            line.contains("spec.http[0].route[0].destination: missing field `host`; add the field"),
            "{line}"
        );
    }

    #[test]
    fn every_error_of_every_document_is_reported() {
        let bad = SERVICE_ENTRY.replace("hosts:", "hostz:");
        let text = format!("{bad}---\n{bad}");
        let errors = load(&text).expect_err("two errors");
        assert_eq!(errors.len(), 2);
        assert!(errors.0[1].to_string().contains("document 2"));
    }

    #[test]
    fn mesh_config_defaults_to_allow_any() {
        assert_eq!(
            parse_mesh(Path::new("m"), "").expect("empty"),
            MeshConfig::default()
        );
        assert_eq!(
            parse_mesh(Path::new("m"), "# nothing\n")
                .expect("comment")
                .outbound_traffic_policy
                .mode,
            OutboundMode::AllowAny
        );
    }

    #[test]
    fn mesh_config_is_read_plain_or_from_the_istio_config_map() {
        let plain = parse_mesh(
            Path::new("m"),
            "outboundTrafficPolicy: \n  mode: REGISTRY_ONLY\naccessLogFile: /dev/stdout\n",
        )
        .expect("plain");
        assert_eq!(
            plain.outbound_traffic_policy.mode,
            OutboundMode::RegistryOnly
        );
        let map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: istio\n  namespace: istio-system\ndata:\n  mesh: |-\n    accessLogFile: /dev/stdout\n    outboundTrafficPolicy:\n      mode: REGISTRY_ONLY\n  meshNetworks: 'networks: {}'\n";
        let from_map = parse_mesh(Path::new("m"), map).expect("config map");
        assert_eq!(
            from_map.outbound_traffic_policy.mode,
            OutboundMode::RegistryOnly
        );
    }

    #[test]
    fn mesh_config_errors_name_the_field() {
        let error = parse_mesh(
            Path::new("mesh.yaml"),
            "outboundTrafficPolicy:\n  mode: BLOCK\n",
        )
        .expect_err("bad mode");
        let line = error.to_string();
        assert!(
            line.starts_with("mesh.yaml:2: outboundTrafficPolicy.mode: unknown variant `BLOCK`"),
            "{line}"
        );
        let map = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio}\ndata:\n  mesh: \"outboundTrafficPolicy: {mode: BLOCK}\"\n";
        let line = parse_mesh(Path::new("cm.yaml"), map)
            .expect_err("bad mode")
            .to_string();
        assert!(
            line.starts_with(
                "cm.yaml: data.mesh.outboundTrafficPolicy.mode: unknown variant `BLOCK`"
            ),
            "{line}"
        );
        let line = parse_mesh(
            Path::new("cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\ndata: {}\n",
        )
        .expect_err("no mesh")
        .to_string();
        assert!(line.contains("ConfigMap has no string data.mesh"), "{line}");
    }

    #[test]
    fn load_dir_reads_yaml_files_recursively_in_order_and_skips_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir_all(root.join("b/nested")).expect("mkdir");
        fs::create_dir_all(root.join("..data")).expect("mkdir");
        let named = |name: &str| SERVICE_ENTRY.replace("httpbin-ext", name);
        fs::write(root.join("b/nested/z.yml"), named("z")).expect("write");
        fs::write(root.join("a.yaml"), named("a")).expect("write");
        fs::write(root.join("..data/a.yaml"), named("hidden")).expect("write");
        fs::write(root.join(".#a.yaml"), "not: [yaml").expect("write");
        fs::write(root.join("README.md"), "# not config").expect("write");
        fs::write(
            root.join("mesh.yaml"),
            "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n",
        )
        .expect("write");
        let snapshot = load_dir(root, Some(&root.join("mesh.yaml"))).expect("loads");
        let names: Vec<_> = snapshot
            .service_entries
            .iter()
            .map(|entry| entry.meta.name.as_str())
            .collect();
        assert_eq!(names, ["a", "z"]);
        assert_eq!(
            snapshot.mesh.outbound_traffic_policy.mode,
            OutboundMode::RegistryOnly
        );
    }

    #[test]
    fn load_dir_reads_a_single_file_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("se.yaml");
        fs::write(&file, SERVICE_ENTRY).expect("write");
        let snapshot = load_dir(&file, None).expect("loads");
        assert_eq!(snapshot.service_entries[0].origin.file, file);
    }

    #[test]
    fn load_dir_reports_a_missing_directory_and_mesh_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing");
        let errors = load_dir(&missing, Some(&dir.path().join("mesh.yaml"))).expect_err("missing");
        assert_eq!(errors.len(), 2, "{errors}");
        assert!(
            errors
                .0
                .iter()
                .all(|error| matches!(error.problem, Problem::Io { .. }))
        );
    }
}
