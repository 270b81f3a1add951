//! Transparent capture for a sidecar, as istio-init sets it up: outbound TCP
//! from the app is redirected to the agent's outbound listener (15001),
//! except the agent's own traffic (by uid/gid), loopback, and the excluded
//! ranges; with `--include-outbound-ip-ranges`, only those ranges.

use std::net::Ipv4Addr;
use std::process::Command;

/// A redirect plan, turned into iptables commands by [`CapturePlan::rules`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturePlan {
    pub proxy_port: u16,
    pub proxy_uid: u32,
    pub proxy_gid: u32,
    /// `*` (everything) or CIDRs; empty redirects nothing.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Destination ports never redirected (e.g. the control plane's).
    pub exclude_ports: Vec<u16>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("invalid IP range {0:?}: expected a.b.c.d/n or *")]
    InvalidRange(String),
    #[error("{command}: {reason}")]
    Command { command: String, reason: String },
}

const OUTPUT_CHAIN: &str = "ISTIO_OUTPUT";
const REDIRECT_CHAIN: &str = "ISTIO_REDIRECT";

/// Checks `a.b.c.d/n` (or a bare address).
fn valid_cidr(range: &str) -> bool {
    let (addr, len) = range.split_once('/').unwrap_or((range, "32"));
    addr.parse::<Ipv4Addr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 32)
}

/// Parses a comma-separated list of ranges (`*`, CIDRs).
pub fn parse_ranges(text: &str) -> Result<Vec<String>, CaptureError> {
    text.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            if r == "*" || valid_cidr(r) {
                Ok(r.to_string())
            } else {
                Err(CaptureError::InvalidRange(r.to_string()))
            }
        })
        .collect()
}

impl CapturePlan {
    /// The `iptables -t nat` argument lists, in order.
    pub fn rules(&self) -> Vec<Vec<String>> {
        let mut rules: Vec<Vec<String>> = Vec::new();
        let mut rule = |args: &[&str]| rules.push(args.iter().map(|s| s.to_string()).collect());
        rule(&["-N", REDIRECT_CHAIN]);
        rule(&["-N", OUTPUT_CHAIN]);
        let port = self.proxy_port.to_string();
        rule(&[
            "-A",
            REDIRECT_CHAIN,
            "-p",
            "tcp",
            "-j",
            "REDIRECT",
            "--to-ports",
            &port,
        ]);
        rule(&["-A", "OUTPUT", "-p", "tcp", "-j", OUTPUT_CHAIN]);
        let uid = self.proxy_uid.to_string();
        let gid = self.proxy_gid.to_string();
        rule(&[
            "-A",
            OUTPUT_CHAIN,
            "-m",
            "owner",
            "--uid-owner",
            &uid,
            "-j",
            "RETURN",
        ]);
        rule(&[
            "-A",
            OUTPUT_CHAIN,
            "-m",
            "owner",
            "--gid-owner",
            &gid,
            "-j",
            "RETURN",
        ]);
        rule(&["-A", OUTPUT_CHAIN, "-d", "127.0.0.1/32", "-j", "RETURN"]);
        for port in &self.exclude_ports {
            let port = port.to_string();
            rule(&[
                "-A",
                OUTPUT_CHAIN,
                "-p",
                "tcp",
                "--dport",
                &port,
                "-j",
                "RETURN",
            ]);
        }
        for range in &self.exclude {
            rule(&["-A", OUTPUT_CHAIN, "-d", range, "-j", "RETURN"]);
        }
        if self.include.iter().any(|r| r == "*") {
            rule(&["-A", OUTPUT_CHAIN, "-j", REDIRECT_CHAIN]);
        } else {
            for range in &self.include {
                rule(&["-A", OUTPUT_CHAIN, "-d", range, "-j", REDIRECT_CHAIN]);
            }
            rule(&["-A", OUTPUT_CHAIN, "-j", "RETURN"]);
        }
        rules
    }

    /// The commands that undo [`CapturePlan::rules`].
    pub fn cleanup_rules() -> Vec<Vec<String>> {
        [
            vec!["-D", "OUTPUT", "-p", "tcp", "-j", OUTPUT_CHAIN],
            vec!["-F", OUTPUT_CHAIN],
            vec!["-X", OUTPUT_CHAIN],
            vec!["-F", REDIRECT_CHAIN],
            vec!["-X", REDIRECT_CHAIN],
        ]
        .into_iter()
        .map(|args| args.into_iter().map(str::to_string).collect())
        .collect()
    }
}

/// Runs `iptables -t nat ARGS` for each rule; stops at the first failure.
pub fn apply(rules: &[Vec<String>]) -> Result<(), CaptureError> {
    for args in rules {
        let command = format!("iptables -t nat {}", args.join(" "));
        let output = Command::new("iptables")
            .arg("-t")
            .arg("nat")
            .args(args)
            .output()
            .map_err(|e| CaptureError::Command {
                command: command.clone(),
                reason: format!("cannot run iptables: {e} (is the iptables package installed?)"),
            })?;
        if !output.status.success() {
            return Err(CaptureError::Command {
                command,
                reason: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(include: &str, exclude: &str) -> CapturePlan {
        CapturePlan {
            proxy_port: 15001,
            proxy_uid: 1337,
            proxy_gid: 1337,
            include: parse_ranges(include).unwrap(),
            exclude: parse_ranges(exclude).unwrap(),
            exclude_ports: vec![15010],
        }
    }

    fn joined(plan: &CapturePlan) -> Vec<String> {
        plan.rules().iter().map(|r| r.join(" ")).collect()
    }

    #[test]
    fn captures_everything_but_the_proxy_and_loopback() {
        let rules = joined(&plan("*", ""));
        assert!(
            rules.contains(&"-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001".to_string())
        );
        let uid = rules
            .iter()
            .position(|r| r.contains("--uid-owner 1337"))
            .unwrap();
        let redirect = rules
            .iter()
            .position(|r| r == "-A ISTIO_OUTPUT -j ISTIO_REDIRECT")
            .unwrap();
        assert!(
            uid < redirect,
            "the proxy's own traffic returns before anything is redirected"
        );
        assert!(rules.contains(&"-A ISTIO_OUTPUT -p tcp --dport 15010 -j RETURN".to_string()));
    }

    #[test]
    fn include_ranges_redirect_only_those() {
        let rules = joined(&plan("10.0.0.0/24", ""));
        assert!(rules.contains(&"-A ISTIO_OUTPUT -d 10.0.0.0/24 -j ISTIO_REDIRECT".to_string()));
        assert_eq!(rules.last().unwrap(), "-A ISTIO_OUTPUT -j RETURN");
    }

    #[test]
    fn exclude_ranges_bypass_the_proxy() {
        let rules = joined(&plan("*", "198.18.0.0/15"));
        let exclude = rules
            .iter()
            .position(|r| r == "-A ISTIO_OUTPUT -d 198.18.0.0/15 -j RETURN")
            .unwrap();
        let redirect = rules
            .iter()
            .position(|r| r == "-A ISTIO_OUTPUT -j ISTIO_REDIRECT")
            .unwrap();
        assert!(exclude < redirect);
    }

    #[test]
    fn rejects_bad_ranges() {
        assert!(parse_ranges("10.0.0.0/33").is_err());
        assert!(parse_ranges("not-an-ip").is_err());
        assert_eq!(
            parse_ranges(" 10.0.0.1 , *").unwrap(),
            vec!["10.0.0.1", "*"]
        );
    }
}
