//! A network namespace per test, wired like a pod: a veth pair to the host
//! namespace with a /30 from 198.18.0.0/15 (RFC 2544's benchmarking range,
//! never routed), loopback up, and on request istio-init's capture rules.
//! Everything it creates (the namespace, the veth pair, the iptables rules
//! inside, any process still in it) is removed on drop, also when the test
//! panics. Names carry the test process id, so parallel runs never clash.
//!
//! Creating namespaces needs root; tests check [`require_root`] first.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{self, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, setns};

use crate::binaries;
use crate::process::CommandOutput;

/// The uid Istio runs the proxy as; its own traffic is never captured.
pub const PROXY_UID: u32 = 1337;
/// The uid a test's app runs as where it matters that it is not the
/// proxy's (filter rules that let only [`PROXY_UID`] out).
pub const APP_UID: u32 = 1000;

/// 198.18.0.0/15 holds this many /30 subnets.
const SUBNETS: u32 = 1 << 15;
const SUBNET_BASE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);

/// How many subnets this test process has taken: where the next search
/// starts.
static NEXT_SUBNET: AtomicU32 = AtomicU32::new(0);

/// The environment variable that, set to `1`, skips the tests that need
/// root when they run without it.
pub const SKIP_ROOT_TESTS: &str = "EGRESS_MESH_SKIP_ROOT_TESTS";

/// Whether `test` runs: true as root. Without root, a test that did not run
/// must not count as passed, so `test` fails saying why, unless
/// [`SKIP_ROOT_TESTS`] is `1`: then it is skipped (false), and says so
/// straight to stderr, which the test harness does not capture.
#[must_use]
#[track_caller]
pub fn require_root(test: &str) -> bool {
    const NEEDS: &str = "needs root to create network namespaces and iptables rules";
    if is_root() {
        return true;
    }
    if env::var_os(SKIP_ROOT_TESTS).is_some_and(|value| value == "1") {
        // Nothing to do if stderr is gone.
        let _ = writeln!(
            io::stderr(),
            "SKIPPED {test}: {NEEDS} ({SKIP_ROOT_TESTS}=1)"
        );
        return false;
    }
    panic!("{test} {NEEDS}: run it as root, or set {SKIP_ROOT_TESTS}=1 to skip it");
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    effective_uid().is_some_and(|uid| uid == 0)
}

fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let uids = status.lines().find_map(|line| line.strip_prefix("Uid:"))?;
    uids.split_whitespace().nth(1)?.parse().ok()
}

/// Where a test runs its sidecars: in a [`NetNs`] of their own when the
/// tests run as root, so the fixed ports a sidecar binds (virtualOutbound's
/// 15001) never clash with another test's or another process's; on the
/// host otherwise. No traffic is captured. Servers the sidecars use listen
/// on [`SidecarHost::server_ip`].
pub struct SidecarHost {
    netns: Option<NetNs>,
}

impl SidecarHost {
    pub fn new() -> Result<Self> {
        let netns = if is_root() { Some(NetNs::new()?) } else { None };
        Ok(Self { netns })
    }

    /// The namespace, when there is one.
    pub fn netns(&self) -> Option<&NetNs> {
        self.netns.as_ref()
    }

    /// Where servers the sidecars reach (control plane, DNS) listen: the
    /// host end of the namespace's veth pair, or loopback.
    pub fn server_ip(&self) -> Ipv4Addr {
        self.netns
            .as_ref()
            .map_or(Ipv4Addr::LOCALHOST, NetNs::host_ip)
    }
}

/// A network namespace joined to the host by a veth pair; removed on drop.
pub struct NetNs {
    name: String,
    host_if: String,
    host_ip: Ipv4Addr,
    ns_ip: Ipv4Addr,
}

impl NetNs {
    /// Creates the namespace, the veth pair (`<name>h` on the host,
    /// `<name>n` inside) with a free /30, and brings loopback up.
    pub fn new() -> Result<Self> {
        let index = NEXT_SUBNET.fetch_add(1, Ordering::Relaxed);
        let pid = process::id();
        let name = format!("it{pid}x{index}");
        let (host_ip, ns_ip) = free_subnet(pid.wrapping_mul(64).wrapping_add(index))?;
        ip(["netns", "add", &name])?;
        // From here on, drop removes whatever was created.
        let netns = Self {
            host_if: format!("{name}h"),
            name,
            host_ip,
            ns_ip,
        };
        let ns_if = format!("{}n", netns.name);
        ip([
            "link",
            "add",
            &netns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns_if,
            "netns",
            &netns.name,
        ])?;
        ip([
            "addr",
            "add",
            &format!("{host_ip}/30"),
            "dev",
            &netns.host_if,
        ])?;
        ip(["link", "set", &netns.host_if, "up"])?;
        let inside = ["-n", netns.name.as_str()];
        ip(inside
            .iter()
            .copied()
            .chain(["addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if]))?;
        ip(inside.iter().copied().chain(["link", "set", &ns_if, "up"]))?;
        ip(inside.iter().copied().chain(["link", "set", "lo", "up"]))?;
        Ok(netns)
    }

    /// The namespace's name (`ip netns exec <name>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host end of the veth pair: where servers for the namespace's
    /// processes listen.
    pub fn host_ip(&self) -> Ipv4Addr {
        self.host_ip
    }

    /// The namespace's end of the veth pair.
    pub fn ns_ip(&self) -> Ipv4Addr {
        self.ns_ip
    }

    /// Joins this namespace to `other` by a veth pair of their own with a
    /// free /30, as two hosts on one link: returns this end's address and
    /// the other's. Removed with either namespace.
    pub fn link(&self, other: &NetNs) -> Result<(Ipv4Addr, Ipv4Addr)> {
        let index = NEXT_SUBNET.fetch_add(1, Ordering::Relaxed);
        let (here_ip, there_ip) = free_subnet(process::id().wrapping_mul(64).wrapping_add(index))?;
        let here_if = format!("{}l{index}", self.name);
        let there_if = format!("{}l{index}", other.name);
        ip([
            "-n",
            &self.name,
            "link",
            "add",
            &here_if,
            "type",
            "veth",
            "peer",
            "name",
            &there_if,
            "netns",
            &other.name,
        ])?;
        for (netns, interface, address) in [
            (&self.name, &here_if, here_ip),
            (&other.name, &there_if, there_ip),
        ] {
            ip([
                "-n",
                netns,
                "addr",
                "add",
                &format!("{address}/30"),
                "dev",
                interface,
            ])?;
            ip(["-n", netns, "link", "set", interface, "up"])?;
        }
        Ok((here_ip, there_ip))
    }

    /// Sends whatever is not on one of the namespace's links to the host
    /// end of its veth pair: the host's own addresses (its servers on other
    /// namespaces' veths) become reachable; nothing is forwarded further.
    pub fn route_via_host(&self) -> Result<()> {
        let host_ip = self.host_ip.to_string();
        ip(["-n", &self.name, "route", "add", "default", "via", &host_ip])
    }

    /// Lets every uid bind any port in the namespace, as Istio's gateway
    /// pods set `net.ipv4.ip_unprivileged_port_start` to 0 for a proxy
    /// that listens on 80 and 443 as uid [`PROXY_UID`].
    pub fn allow_unprivileged_low_ports(&self) -> Result<()> {
        let mut command = self.command("sysctl");
        command.args(["-q", "-w", "net.ipv4.ip_unprivileged_port_start=0"]);
        run(command)
    }

    /// Gives both ends of the veth pair an IPv6 address as well (a /64 of
    /// fd00::/8 derived from the IPv4 subnet, so unique per namespace, with
    /// no duplicate address detection to wait for); returns the host end's
    /// and the namespace end's.
    pub fn add_ipv6(&self) -> Result<(Ipv6Addr, Ipv6Addr)> {
        let [_, _, third, fourth] = self.host_ip.octets();
        let prefix = format!("fd00:0:{third:x}:{fourth:x}");
        let host_ip: Ipv6Addr = format!("{prefix}::1").parse()?;
        let ns_ip: Ipv6Addr = format!("{prefix}::2").parse()?;
        let ns_if = format!("{}n", self.name);
        for (netns, interface, address) in [
            (None, &self.host_if, host_ip),
            (Some(self.name.as_str()), &ns_if, ns_ip),
        ] {
            let mut args: Vec<&str> = netns.map_or_else(Vec::new, |name| vec!["-n", name]);
            let address = format!("{address}/64");
            args.extend(["-6", "addr", "add", &address, "dev", interface, "nodad"]);
            ip(args)?;
        }
        Ok((host_ip, ns_ip))
    }

    /// The namespace's iptables and ip6tables rules, every table: each
    /// rule, chain of its own and policy other than ACCEPT, as
    /// `<program> <table> <iptables-save line>` without counters. Equal
    /// before and after a change that was undone (a table iptables loaded
    /// on the way, left empty, is no difference).
    pub fn iptables_save(&self) -> Result<String> {
        let mut rules = String::new();
        for program in ["iptables-save", "ip6tables-save"] {
            let output = self
                .command(program)
                .output()
                .with_context(|| format!("running {program} in {}", self.name))?;
            if !output.status.success() {
                bail!(
                    "{program} in {} failed ({}): {}",
                    self.name,
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
            let mut table = "";
            let stdout = String::from_utf8_lossy(&output.stdout);
            for line in stdout.lines() {
                if let Some(name) = line.strip_prefix('*') {
                    table = name;
                    continue;
                }
                // `:CHAIN POLICY [packets:bytes]`
                let kept = match line.strip_prefix(':') {
                    Some(chain) => chain
                        .split_whitespace()
                        .nth(1)
                        .is_some_and(|policy| policy != "ACCEPT"),
                    None => line.starts_with('-'),
                };
                if kept {
                    let line = line.split(" [").next().unwrap_or(line);
                    rules.push_str(&format!("{program} {table} {line}\n"));
                }
            }
        }
        Ok(rules)
    }

    /// `f` run on a thread of its own inside the namespace: sockets it
    /// binds or connects belong to the namespace (and a connection it makes
    /// is captured like an app's).
    pub fn run_inside<T: Send>(&self, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        let path = Path::new("/var/run/netns").join(&self.name);
        let namespace =
            fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    setns(&namespace, CloneFlags::CLONE_NEWNET)
                        .with_context(|| format!("entering network namespace {}", self.name))?;
                    f()
                })
                .join()
                .unwrap_or_else(|_| bail!("a thread inside {} panicked", self.name))
        })
    }

    /// `program` run inside the namespace, as root.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        exec_in(&self.name, program)
    }

    /// `program` run inside the namespace as `uid` (group `uid`, no
    /// supplementary groups).
    pub fn command_as(&self, uid: u32, program: impl AsRef<OsStr>) -> Command {
        let mut command = self.command("setpriv");
        command
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .args(["--clear-groups", "--"])
            .arg(program);
        command
    }

    /// `binary` run inside the namespace as [`PROXY_UID`], as Istio runs
    /// its proxy. That uid may not reach the binary where it is installed
    /// (e.g. under `/root`), so it runs from a link (or copy) in `dir`,
    /// which is given to that uid for whatever the proxy writes there.
    pub fn proxy_command(&self, binary: &Path, dir: &Path) -> Result<Command> {
        Ok(self.command_as(PROXY_UID, readable_copy(binary, dir, PROXY_UID)?))
    }

    /// `binary` run inside the namespace as [`APP_UID`], an app that is
    /// not the proxy, from a link (or copy) in `dir` as
    /// [`NetNs::proxy_command`] does.
    pub fn app_command(&self, binary: &Path, dir: &Path) -> Result<Command> {
        Ok(self.command_as(APP_UID, readable_copy(binary, dir, APP_UID)?))
    }

    /// `data-plane <args>` (`init`, `cleanup`) run inside the namespace,
    /// as istio-init runs in a pod; fails unless it succeeds within
    /// `timeout`.
    pub fn data_plane(&self, args: &[&str], timeout: Duration) -> Result<()> {
        self.data_plane_output(args, timeout)?
            .ensure_success()
            .with_context(|| format!("data-plane {}", args.join(" ")))?;
        Ok(())
    }

    /// `data-plane <args>` (e.g. `analyze`) run inside the namespace as
    /// root, whatever its exit code.
    pub fn data_plane_output(&self, args: &[&str], timeout: Duration) -> Result<CommandOutput> {
        let mut command = self.command(binaries::data_plane()?);
        command.args(args);
        crate::process::run("data-plane", command, timeout)
    }

    /// `data-plane init` inside the namespace: outbound TCP captured to
    /// 15001 except [`PROXY_UID`]'s and the control plane's `xds_port`,
    /// as its other flags `ranges` say (`--include/--exclude` ranges,
    /// `--capture-dns`, `--lockdown`).
    pub fn data_plane_init(&self, xds_port: u16, ranges: &[&str], timeout: Duration) -> Result<()> {
        let xds_port = xds_port.to_string();
        let uid = PROXY_UID.to_string();
        let mut args = vec![
            "init",
            "--exclude-outbound-ports",
            &xds_port,
            "--proxy-uid",
            &uid,
            "--proxy-gid",
            &uid,
        ];
        args.extend_from_slice(ranges);
        self.data_plane(&args, timeout)
    }

    /// istio-init's outbound capture: every new TCP connection leaving the
    /// namespace's processes is redirected to `127.0.0.1:<to_port>`, except
    /// those of `proxy_uid`, those to 127.0.0.1 and those to
    /// `exclude_ports`.
    pub fn capture_outbound(
        &self,
        to_port: u16,
        proxy_uid: u32,
        exclude_ports: &[u16],
    ) -> Result<()> {
        self.iptables(&["-p", "tcp", "-d", "127.0.0.1/32", "-j", "RETURN"])?;
        for port in exclude_ports {
            self.iptables(&["-p", "tcp", "--dport", &port.to_string(), "-j", "RETURN"])?;
        }
        self.iptables(&[
            "-p",
            "tcp",
            "-m",
            "owner",
            "!",
            "--uid-owner",
            &proxy_uid.to_string(),
            "-j",
            "REDIRECT",
            "--to-ports",
            &to_port.to_string(),
        ])
    }

    /// Appends a rule to the namespace's `nat OUTPUT` chain.
    fn iptables(&self, rule: &[&str]) -> Result<()> {
        let mut command = self.command("iptables");
        command.args(["-w", "-t", "nat", "-A", "OUTPUT"]).args(rule);
        run(command)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Only this test's processes can be in its namespace.
        if let Ok(output) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
                eprintln!("netns {}: killing leftover process {pid}", self.name);
                let _ = Command::new("kill").args(["-KILL", pid]).output();
            }
        }
        // Deleting the namespace deletes its rules and its veth end, which
        // takes the host end with it; the link delete covers a half-made pair.
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        if let Err(err) = ip(["netns", "del", &self.name]) {
            eprintln!("netns {}: {err:#}", self.name);
        }
    }
}

/// Links (or copies) `binary` into `dir` and gives `dir` to `uid`.
/// Returns the binary's new path.
fn readable_copy(binary: &Path, dir: &Path, uid: u32) -> Result<PathBuf> {
    let name = binary
        .file_name()
        .with_context(|| format!("{} has no file name", binary.display()))?;
    let local = dir.join(name);
    if fs::hard_link(binary, &local).is_err() {
        fs::copy(binary, &local)
            .with_context(|| format!("copying {} to {}", binary.display(), local.display()))?;
    }
    chown(dir, Some(uid), Some(uid))
        .with_context(|| format!("giving {} to uid {uid}", dir.display()))?;
    Ok(local)
}

/// `program` run inside namespace `name`, as root.
pub(crate) fn exec_in(name: &str, program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", name]).arg(program);
    command
}

/// The host and namespace addresses of the first /30 of 198.18.0.0/15, from
/// subnet `start` on, that no interface here uses.
fn free_subnet(start: u32) -> Result<(Ipv4Addr, Ipv4Addr)> {
    let output = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .context("running `ip -4 -o addr show`")?;
    let in_use = String::from_utf8_lossy(&output.stdout).into_owned();
    for offset in 0..SUBNETS {
        let subnet = u32::from(SUBNET_BASE) + (start.wrapping_add(offset) % SUBNETS) * 4;
        let host = Ipv4Addr::from(subnet + 1);
        let ns = Ipv4Addr::from(subnet + 2);
        if !in_use.contains(&format!("inet {host}/")) && !in_use.contains(&format!("inet {ns}/")) {
            return Ok((host, ns));
        }
    }
    bail!("every /30 of 198.18.0.0/15 is in use")
}

fn ip<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let mut command = Command::new("ip");
    command.args(args);
    run(command)
}

fn run(mut command: Command) -> Result<()> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
