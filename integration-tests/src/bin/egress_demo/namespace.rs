//! The demo's own user and network namespaces: the demo re-executes itself
//! under `unshare`, so its stand-ins for external services bind ports 80
//! and 443 on a loopback of their own, never on the host's, and no root is
//! needed where unprivileged user namespaces are allowed.

use std::env;
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{Context, Result, bail, ensure};
use integration_tests::{binaries, netns};

/// Set in the re-executed demo: it already runs in its namespaces.
const INSIDE: &str = "EGRESS_DEMO_IN_NAMESPACE";

/// A user namespace where this user is root, with its own network
/// namespace: no privilege needed where the kernel allows it.
const ROOTLESS: &[&str] = &["--user", "--map-root-user", "--net"];
/// A network namespace alone, for root where user namespaces are refused
/// (a container's seccomp filter, for instance).
const AS_ROOT: &[&str] = &["--net"];

/// Where `main` stands.
pub enum Entered {
    /// In the demo's namespaces, with loopback up: run the demo.
    Inside,
    /// The demo ran in its namespaces, as a child, and ended so.
    RanInside(ExitStatus),
}

/// Brings loopback up when already inside; otherwise finds the binaries
/// the demo starts (building them with cargo needs the host's network),
/// then runs this executable again, with the same arguments, in new
/// namespaces, and waits for it.
pub fn enter() -> Result<Entered> {
    if env::var_os(INSIDE).is_some_and(|value| value == "1") {
        let status = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .context("running `ip link set lo up` (install iproute2)")?;
        ensure!(status.success(), "`ip link set lo up` failed: {status}");
        return Ok(Entered::Inside);
    }
    let control_plane = binaries::control_plane()?;
    let data_plane = binaries::data_plane()?;
    let unshare = namespace_options()?;
    let exe = env::current_exe().context("locating the demo's executable")?;
    let status = Command::new("unshare")
        .args(unshare)
        .arg("--")
        .arg(exe)
        .args(env::args_os().skip(1))
        .env(INSIDE, "1")
        .env("CONTROL_PLANE_BIN", control_plane)
        .env("DATA_PLANE_BIN", data_plane)
        .status()
        .context("running unshare (install util-linux)")?;
    Ok(Entered::RanInside(status))
}

/// The `unshare` options that work here, tried with `true`.
fn namespace_options() -> Result<&'static [&'static str]> {
    if works(ROOTLESS) {
        return Ok(ROOTLESS);
    }
    if netns::is_root() && works(AS_ROOT) {
        return Ok(AS_ROOT);
    }
    bail!(
        "the demo runs in a user and network namespace of its own, and this system refuses \
         unprivileged user namespaces (`unshare --user --map-root-user --net true` fails). \
         Allow them (Ubuntu 24.04: `sysctl kernel.apparmor_restrict_unprivileged_userns=0`; \
         older Debian: `sysctl kernel.unprivileged_userns_clone=1`), or run the built demo as \
         root: `sudo target/debug/egress-demo`"
    )
}

fn works(options: &[&str]) -> bool {
    Command::new("unshare")
        .args(options)
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
