//! The systemd unit files of `deploy/systemd`, read as systemd reads the
//! parts the tests run: the `[Service]` section's `User=`, `Environment=`
//! and command lines (`ExecStartPre=`, `ExecStart=`, `ExecStopPost=`), with
//! the specifiers `%E`, `%S`, `%H` and `%%` and the variables `${NAME}` (one
//! word's part) and `$NAME` (a whole word, split at whitespace: zero or
//! more arguments) expanded, as `systemd.service(5)` and `systemd.unit(5)`
//! say.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

/// `deploy/systemd` in this repository.
pub fn systemd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd")
}

/// What systemd puts in for the specifiers the units use.
#[derive(Debug, Clone)]
pub struct Specifiers {
    /// `%E`: the configuration directory, `/etc` on a host.
    pub config: PathBuf,
    /// `%S`: the state directory, `/var/lib` on a host.
    pub state: PathBuf,
    /// `%H`: the host name.
    pub host: String,
}

/// A unit's `[Service]` section, specifiers expanded.
#[derive(Debug, Clone)]
pub struct ServiceUnit {
    name: String,
    /// Each key's values, in order.
    entries: BTreeMap<String, Vec<String>>,
}

/// One command line of a unit, variables expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// `+`: run with full privileges whatever `User=` says.
    pub privileged: bool,
    pub program: String,
    pub args: Vec<String>,
}

impl ServiceUnit {
    /// Reads `deploy/systemd/<name>`.
    pub fn load(name: &str, specifiers: &Specifiers) -> Result<Self> {
        let path = systemd_dir().join(name);
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(name, &text, specifiers)
    }

    /// The `[Service]` section of `text`.
    pub fn parse(name: &str, text: &str, specifiers: &Specifiers) -> Result<Self> {
        let mut entries: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut in_service = false;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if line.starts_with('[') {
                in_service = line == "[Service]";
                continue;
            }
            ensure!(
                !line.ends_with('\\'),
                "{name}:{}: continued lines are not read here",
                number + 1
            );
            if !in_service {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .with_context(|| format!("{name}:{}: no `=` in {line:?}", number + 1))?;
            let value = expand_specifiers(value.trim(), specifiers)
                .with_context(|| format!("{name}:{}", number + 1))?;
            entries
                .entry(key.trim().to_string())
                .or_default()
                .push(value);
        }
        Ok(Self {
            name: name.to_string(),
            entries,
        })
    }

    /// The last value of `key`, as systemd keeps it for a single-valued key.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.entries.get(key)?.last().map(String::as_str)
    }

    /// The `Environment=` assignments, later ones winning, then `overrides`
    /// on top (what an `EnvironmentFile=` would set).
    pub fn environment(&self, overrides: &[(&str, &str)]) -> Result<BTreeMap<String, String>> {
        let mut environment = BTreeMap::new();
        for assignment in self.entries.get("Environment").into_iter().flatten() {
            ensure!(
                !assignment.contains(['"', '\'']),
                "{}: quoted Environment= is not read here: {assignment}",
                self.name
            );
            let (name, value) = assignment
                .split_once('=')
                .with_context(|| format!("{}: Environment={assignment}", self.name))?;
            environment.insert(name.to_string(), value.to_string());
        }
        for (name, value) in overrides {
            ensure!(
                environment.contains_key(*name),
                "{} sets no {name}: an override would do nothing",
                self.name
            );
            environment.insert((*name).to_string(), (*value).to_string());
        }
        Ok(environment)
    }

    /// Every command line of `key` (e.g. `ExecStart`), expanded with
    /// `environment`.
    pub fn commands(
        &self,
        key: &str,
        environment: &BTreeMap<String, String>,
    ) -> Result<Vec<CommandLine>> {
        self.entries
            .get(key)
            .into_iter()
            .flatten()
            .map(|line| {
                command_line(line, environment).with_context(|| format!("{}: {key}", self.name))
            })
            .collect()
    }

    /// The one command line of `key`.
    pub fn command(
        &self,
        key: &str,
        environment: &BTreeMap<String, String>,
    ) -> Result<CommandLine> {
        let mut commands = self.commands(key, environment)?;
        ensure!(
            commands.len() == 1,
            "{} has {} {key}= lines, not one",
            self.name,
            commands.len()
        );
        Ok(commands.remove(0))
    }
}

fn expand_specifiers(value: &str, specifiers: &Specifiers) -> Result<String> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('E') => out.push_str(&specifiers.config.to_string_lossy()),
            Some('S') => out.push_str(&specifiers.state.to_string_lossy()),
            Some('H') => out.push_str(&specifiers.host),
            Some('%') => out.push('%'),
            other => bail!("specifier %{} is not read here", other.unwrap_or(' ')),
        }
    }
    Ok(out)
}

fn command_line(line: &str, environment: &BTreeMap<String, String>) -> Result<CommandLine> {
    ensure!(
        !line.contains(['"', '\'', ';']),
        "quotes and `;` are not read here: {line}"
    );
    let mut words = Vec::new();
    for word in line.split_whitespace() {
        if let Some(name) = word.strip_prefix('$').filter(|name| !name.starts_with('{')) {
            let value = lookup(environment, name)?;
            words.extend(value.split_whitespace().map(str::to_string));
        } else {
            words.push(expand_braced(word, environment)?);
        }
    }
    let mut words = words.into_iter();
    let first = words.next().context("an empty command line")?;
    let program = first.trim_start_matches(['+', '-', '@', ':', '!']);
    ensure!(
        !first.starts_with('@') && !first.starts_with(':') && !first.starts_with('!'),
        "prefix of {first} is not read here"
    );
    Ok(CommandLine {
        privileged: first.starts_with('+') || first.starts_with("-+"),
        program: program.to_string(),
        args: words.collect(),
    })
}

fn expand_braced(word: &str, environment: &BTreeMap<String, String>) -> Result<String> {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .with_context(|| format!("unclosed ${{ in {word}"))?;
        out.push_str(lookup(environment, &rest[start + 2..start + end])?);
        rest = &rest[start + end + 1..];
    }
    ensure!(!rest.contains('$'), "a `$` not read here in {word}");
    out.push_str(rest);
    Ok(out)
}

/// A variable the unit sets: one it does not set is a mistake in the unit.
fn lookup<'a>(environment: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str> {
    environment
        .get(name)
        .map(String::as_str)
        .with_context(|| format!("${name} is set by no Environment= line"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specifiers() -> Specifiers {
        Specifiers {
            config: PathBuf::from("/etc"),
            state: PathBuf::from("/var/lib"),
            host: "vm1".to_string(),
        }
    }

    const UNIT: &str = "\
[Unit]
Description=x
[Service]
User=istio-proxy
Environment=TOKEN=%E/mesh/%H.jwt
Environment=EXTRA=
Environment=TWO=--a b
ExecStartPre=+/bin/init --uid 1337 $EXTRA
ExecStart=/bin/agent --token ${TOKEN} --state %S/mesh $TWO --pct 100%%
";

    #[test]
    fn specifiers_and_variables_expand_as_systemd_expands_them() {
        let unit = ServiceUnit::parse("x.service", UNIT, &specifiers()).unwrap();
        assert_eq!(unit.value("User"), Some("istio-proxy"));
        let environment = unit.environment(&[("EXTRA", "--x  --y")]).unwrap();
        let start = unit.command("ExecStart", &environment).unwrap();
        assert_eq!(
            start,
            CommandLine {
                privileged: false,
                program: "/bin/agent".into(),
                args: [
                    "--token",
                    "/etc/mesh/vm1.jwt",
                    "--state",
                    "/var/lib/mesh",
                    "--a",
                    "b",
                    "--pct",
                    "100%"
                ]
                .map(String::from)
                .to_vec(),
            }
        );
        // `$NAME` alone is split into words; empty, it is no argument.
        let pre = unit.command("ExecStartPre", &environment).unwrap();
        assert!(pre.privileged);
        assert_eq!(pre.args, ["--uid", "1337", "--x", "--y"]);
        let pre = unit
            .command("ExecStartPre", &unit.environment(&[]).unwrap())
            .unwrap();
        assert_eq!(pre.args, ["--uid", "1337"]);
    }

    #[test]
    fn a_variable_no_line_sets_is_an_error() {
        let unit = ServiceUnit::parse(
            "x.service",
            "[Service]\nExecStart=/bin/a ${NOPE}\n",
            &specifiers(),
        )
        .unwrap();
        let error = unit
            .command("ExecStart", &unit.environment(&[]).unwrap())
            .unwrap_err();
        assert!(format!("{error:#}").contains("$NOPE is set by no Environment="));
        assert!(unit.environment(&[("NOPE", "1")]).is_err());
    }
}
