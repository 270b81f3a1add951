//! `control-plane analyze DIR`: `istioctl analyze --use-kube=false` for a
//! config directory: one line per message, with the line of its file;
//! exit 79 (istioctl's "analyzers found issues") when a message is at
//! least `--failure-threshold`.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use control_plane::analyze::lines::line_of;
use control_plane::analyze::{self, Level, Message};
use control_plane::config;
use serde_json::{Value, json};

/// istioctl's exit code when the analyzers found issues.
const FOUND_ISSUES: u8 = 79;

/// Where istioctl sends readers for each message code.
const ANALYSIS_DOCS: &str = "https://istio.io/latest/docs/reference/config/analysis";

#[derive(Args)]
pub struct AnalyzeOptions {
    /// The config directory (or file).
    dir: PathBuf,
    /// The MeshConfig file (istioctl's --meshConfigFile).
    #[arg(long, alias = "meshConfigFile")]
    mesh: Option<PathBuf>,
    /// The level at which a message makes the exit code non-zero.
    #[arg(long, value_enum, ignore_case = true, default_value_t = Threshold::Error)]
    failure_threshold: Threshold,
    /// The lowest level of the messages printed.
    #[arg(long, value_enum, ignore_case = true, default_value_t = Threshold::Info)]
    output_threshold: Threshold,
    /// `log` (one line per message), `json` or `yaml`; as istioctl, only
    /// `log` sets the exit code.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Log)]
    output: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Threshold {
    Info,
    Warning,
    Error,
}

impl Threshold {
    fn level(self) -> Level {
        match self {
            Threshold::Info => Level::Info,
            Threshold::Warning => Level::Warning,
            Threshold::Error => Level::Error,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Log,
    Json,
    Yaml,
}

/// What `analyze` prints and returns.
struct Report {
    stdout: String,
    stderr: String,
    code: u8,
}

pub fn analyze(options: &AnalyzeOptions) -> anyhow::Result<ExitCode> {
    let report = report(options)?;
    print!("{}", report.stdout);
    eprint!("{}", report.stderr);
    Ok(ExitCode::from(report.code))
}

fn report(options: &AnalyzeOptions) -> anyhow::Result<Report> {
    let checked = config::load_checked(&options.dir, options.mesh.as_deref());
    let messages = analyze::analyze(&checked);
    let mut files = Files::default();
    let shown: Vec<(&Message, Option<usize>)> = messages
        .iter()
        .filter(|m| m.level >= options.output_threshold.level())
        .map(|m| (m, files.line(m)))
        .collect();
    let dir = options.dir.display();
    let stdout = match options.output {
        Format::Log => shown
            .iter()
            .map(|(message, line)| format!("{}\n", message.render(*line)))
            .collect(),
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&structured(&shown))?),
        Format::Yaml => serde_yaml::to_string(&structured(&shown))?,
    };
    let mut stderr = String::new();
    if shown.is_empty() {
        stderr.push_str(&format!(
            "\u{2714} No validation issues found when analyzing {dir}.\n"
        ));
    }
    let failed = options.output == Format::Log
        && messages
            .iter()
            .any(|m| m.level >= options.failure_threshold.level());
    if failed {
        stderr.push_str(&format!(
            "Error: Analyzers found issues when analyzing {dir}.\nSee {ANALYSIS_DOCS} for more information about causes and resolutions.\n"
        ));
    }
    Ok(Report {
        stdout,
        stderr,
        code: if failed { FOUND_ISSUES } else { 0 },
    })
}

/// The messages as istioctl's `-o json` writes them.
fn structured(shown: &[(&Message, Option<usize>)]) -> Value {
    let items = shown.iter().map(|(message, line)| {
        let mut item = json!({
            "level": message.level.as_str(),
            "message": message.text,
        });
        if let Some(code) = message.code {
            item["code"] = json!(code);
            item["documentationUrl"] = json!(format!(
                "{ANALYSIS_DOCS}/{}/?ref=istioctl-analyze",
                code.to_ascii_lowercase()
            ));
        }
        let subject = &message.subject;
        if let Some(resource) = &subject.resource {
            item["origin"] = json!(resource.to_string());
        }
        if let Some(file) = &subject.file {
            item["reference"] = json!(match line.or(subject.line) {
                Some(line) => format!("{}:{line}", file.display()),
                None => file.display().to_string(),
            });
        }
        item
    });
    Value::Array(items.collect())
}

/// The files read for the lines of the messages, each read once.
#[derive(Default)]
struct Files {
    texts: HashMap<PathBuf, Option<String>>,
}

impl Files {
    /// The line of the message's field in its file, else of its resource;
    /// none when the file cannot be read (its error says so).
    fn line(&mut self, message: &Message) -> Option<usize> {
        let subject = &message.subject;
        if subject.line.is_some() {
            return subject.line;
        }
        let (file, document) = (subject.file.as_deref()?, subject.document?);
        let text = self.text(file)?;
        subject
            .field
            .as_deref()
            .and_then(|field| line_of(text, document, field))
            .or_else(|| line_of(text, document, ""))
    }

    fn text(&mut self, file: &Path) -> Option<&str> {
        self.texts
            .entry(file.to_path_buf())
            .or_insert_with(|| fs::read_to_string(file).ok())
            .as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(dir: &Path, extra: &[&str]) -> AnalyzeOptions {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            options: AnalyzeOptions,
        }
        let mut args = vec!["analyze".to_string(), dir.display().to_string()];
        args.extend(extra.iter().map(|a| a.to_string()));
        <Cli as clap::Parser>::parse_from(args).options
    }

    const MISSING_GATEWAY: &str = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: foo
spec:
  hosts: [foo.example.com]
  gateways:
  - bar
  http:
  - route:
    - destination: {host: foo.example.com}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: foo}
spec:
  hosts: [foo.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
";

    #[test]
    fn an_error_is_printed_with_its_line_and_exits_79() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("vs.yaml");
        std::fs::write(&file, MISSING_GATEWAY).expect("write");
        let report = report(&options(dir.path(), &[])).expect("report");
        let line = format!(
            "Error [IST0101] (VirtualService default/foo {}:8) Referenced gateway not found: \"bar\"",
            file.display()
        );
        assert!(
            report.stdout.lines().any(|l| l == line),
            "{}",
            report.stdout
        );
        assert_eq!(report.code, FOUND_ISSUES);
        assert!(
            report
                .stderr
                .starts_with("Error: Analyzers found issues when analyzing "),
            "{}",
            report.stderr
        );
        // The same messages, none at or above Error shown nor failing.
        let quiet = report_with(
            dir.path(),
            &[
                "--output-threshold",
                "ERROR",
                "--failure-threshold",
                "error",
            ],
        );
        assert!(quiet.stdout.contains("[IST0101]"));
        assert!(
            !quiet.stdout.contains("[IST0132]"),
            "warnings are below the output threshold"
        );
    }

    fn report_with(dir: &Path, extra: &[&str]) -> Report {
        report(&options(dir, extra)).expect("report")
    }

    #[test]
    fn warnings_fail_only_at_a_warning_threshold() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut text = MISSING_GATEWAY.replace("  - bar\n", "  - mesh\n");
        text.push_str(
            "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: foo}\nspec:\n  host: foo.example.com\n  trafficPolicy:\n    tls: {mode: SIMPLE}\n",
        );
        std::fs::write(dir.path().join("vs.yaml"), text).expect("write");
        let default = report_with(dir.path(), &[]);
        assert!(
            default.stdout.contains("Warning [IST0128]"),
            "{}",
            default.stdout
        );
        assert_eq!(
            default.code, 0,
            "a warning is below the default Error threshold"
        );
        let strict = report_with(dir.path(), &["--failure-threshold", "Warning"]);
        assert_eq!(strict.code, FOUND_ISSUES);
    }

    #[test]
    fn a_clean_directory_says_so_and_json_has_istioctls_fields() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = MISSING_GATEWAY.replace("  gateways:\n  - bar\n", "");
        std::fs::write(dir.path().join("vs.yaml"), text).expect("write");
        let clean = report_with(dir.path(), &[]);
        assert_eq!(clean.stdout, "");
        assert!(
            clean
                .stderr
                .starts_with("\u{2714} No validation issues found when analyzing ")
        );
        assert_eq!(clean.code, 0);
        std::fs::write(dir.path().join("vs.yaml"), MISSING_GATEWAY).expect("write");
        let json = report_with(dir.path(), &["-o", "json"]);
        assert_eq!(
            json.code, 0,
            "as istioctl, only the log format sets the exit code"
        );
        let items: Value = serde_json::from_str(&json.stdout).expect("JSON");
        let first = &items[0];
        assert_eq!(first["code"], "IST0101");
        assert_eq!(first["level"], "Error");
        assert_eq!(first["origin"], "VirtualService default/foo");
        assert!(
            first["reference"]
                .as_str()
                .is_some_and(|r| r.ends_with("vs.yaml:8"))
        );
        assert_eq!(
            first["documentationUrl"],
            format!("{ANALYSIS_DOCS}/ist0101/?ref=istioctl-analyze")
        );
    }
}
