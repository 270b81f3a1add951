//! The agent as an operator runs it: log lines on a pipe (text without
//! ANSI codes, or JSON with `--log-format json` / `LOG_FORMAT=json`), and
//! pilot-agent's variables (`POD_NAME`, `PROXY_CONFIG`, ...), each flag
//! winning over its variable.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the agent gets to say its first line, or to exit.
const BOUND: Duration = Duration::from_secs(30);

/// The agent, killed on drop.
pub struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `data-plane proxy sidecar --plaintext --admin-addr 127.0.0.1:0 ARGS`
/// with `env` added to an environment cleared of the variables the agent
/// reads.
fn spawn(args: &[&str], env: &[(&str, &str)]) -> Agent {
    let mut command = Command::new(env!("CARGO_BIN_EXE_data-plane"));
    command
        .args([
            "proxy",
            "sidecar",
            "--plaintext",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .args(args)
        .env_clear()
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    Agent(command.spawn().expect("start the agent"))
}

/// The first stderr line of an agent started as [`spawn`] says; one that
/// cannot reach its control plane logs `starting` at once.
pub fn first_line(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut agent = spawn(args, env);
    let stderr = agent.0.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stderr).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(BOUND)
        .expect("the agent logs a line within the bound")
}

/// Everything an agent that refuses to start writes on stderr, and
/// whether it exited with success.
pub fn refusal(args: &[&str], env: &[(&str, &str)]) -> (String, bool) {
    let mut agent = spawn(args, env);
    let mut stderr = agent.0.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let text = rx
        .recv_timeout(BOUND)
        .expect("the agent exits within the bound");
    let status = agent.0.wait().expect("wait for the agent");
    (text, status.success())
}

/// Flags of an agent that cannot reach its control plane (port 1).
const UNREACHABLE: [&str; 2] = ["--xds-addr", "127.0.0.1:1"];

#[test]
fn text_on_a_pipe_has_no_ansi_codes() {
    let line = first_line(&UNREACHABLE, &[]);
    assert!(line.contains("starting"), "{line:?}");
    assert!(!line.contains('\u{1b}'), "ANSI escape in {line:?}");
}

#[test]
fn json_lines_carry_time_level_target_message_fields() {
    for (args, env) in [
        (&["--log-format", "json"][..], &[][..]),
        (&[][..], &[("LOG_FORMAT", "json")][..]),
    ] {
        let line = first_line(&[&UNREACHABLE[..], args].concat(), env);
        let object: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|error| panic!("{error}: not JSON: {line:?}"));
        assert_eq!(object["level"], "info", "{line}");
        assert_eq!(object["message"], "starting", "{line}");
        assert!(object["target"].as_str().is_some(), "{line}");
        assert!(object["time"].as_str().is_some(), "{line}");
        assert!(object["fields"]["node"].as_str().is_some(), "{line}");
    }
}

#[test]
fn the_flag_beats_the_variable() {
    let line = first_line(
        &["--xds-addr", "127.0.0.1:1", "--log-format", "text"],
        &[("LOG_FORMAT", "json")],
    );
    assert!(line.contains("starting"), "{line:?}");
    assert!(
        serde_json::from_str::<serde_json::Value>(&line).is_err(),
        "{line}"
    );
}

#[test]
fn pilot_agent_variables_name_the_node() {
    let env = [
        ("INSTANCE_IP", "10.1.2.3"),
        ("POD_NAME", "sleep-1"),
        ("POD_NAMESPACE", "ns1"),
    ];
    let line = first_line(&UNREACHABLE, &env);
    assert!(
        line.contains("sidecar~10.1.2.3~sleep-1.ns1~ns1.svc.cluster.local"),
        "{line}"
    );
    let line = first_line(&[&UNREACHABLE[..], &["--pod", "flagged"]].concat(), &env);
    assert!(
        line.contains("sidecar~10.1.2.3~flagged.ns1~ns1.svc.cluster.local"),
        "the flag wins: {line}"
    );
}

#[test]
fn proxy_config_gives_the_discovery_address_unless_the_flag_does() {
    let env = [("PROXY_CONFIG", "discoveryAddress: 127.0.0.1:2\n")];
    let line = first_line(&[], &env);
    assert!(line.contains("xds=127.0.0.1:2"), "{line}");
    let line = first_line(&UNREACHABLE, &env);
    assert!(line.contains("xds=127.0.0.1:1"), "the flag wins: {line}");
}

#[test]
fn a_proxy_config_field_the_agent_cannot_apply_stops_it_with_its_name() {
    let env = [(
        "PROXY_CONFIG",
        r#"{"discoveryAddress":"127.0.0.1:1","tracing":{"zipkin":{"address":"zipkin:9411"}}}"#,
    )];
    let (stderr, success) = refusal(&[], &env);
    assert!(!success, "{stderr}");
    assert!(
        stderr.contains("PROXY_CONFIG field tracing") && stderr.contains("does not apply"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");
}
