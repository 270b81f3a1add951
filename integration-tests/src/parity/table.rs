//! The parity report: a row per scenario and proxy kind, whether the kinds
//! agree (`same`) and match what Istio's tasks expect (`expected`), and the
//! failures that follow.

use std::fmt;

use super::Scenario;
use super::outcome::{COLUMNS, Outcome, differences};
use super::proxy::Kind;

/// Each scenario with the agent's and Envoy's outcome; displayed as the
/// comparison table.
#[derive(Default)]
pub struct Report<'a> {
    rows: Vec<Row<'a>>,
}

struct Row<'a> {
    scenario: &'a Scenario,
    agent: Outcome,
    envoy: Outcome,
}

impl<'a> Report<'a> {
    pub(super) fn push(&mut self, scenario: &'a Scenario, agent: Outcome, envoy: Outcome) {
        self.rows.push(Row {
            scenario,
            agent,
            envoy,
        });
    }

    /// A line for each scenario where the agent and Envoy differ, and for
    /// each outcome that is not the expected one; none when all agree.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for row in &self.rows {
            let name = row.scenario.name;
            let differ = differences(&row.agent, &row.envoy);
            if !differ.is_empty() {
                failures.push(format!(
                    "{name}: agent and Envoy differ (agent vs envoy): {}",
                    differ.join("; ")
                ));
            }
            for (kind, outcome) in row.outcomes() {
                let unexpected = differences(outcome, &row.scenario.expected);
                if !unexpected.is_empty() {
                    failures.push(format!(
                        "{name}: {} is not as expected (got vs expected): {}",
                        kind.name(),
                        unexpected.join("; ")
                    ));
                }
            }
        }
        failures
    }

    /// The table's cells: a header, then a line per scenario and kind.
    fn lines(&self) -> Vec<Vec<String>> {
        let header = ["scenario", "proxy"]
            .into_iter()
            .chain(COLUMNS)
            .chain(["verdict"])
            .map(str::to_string)
            .collect();
        let mut lines = vec![header];
        for row in &self.rows {
            for (kind, outcome) in row.outcomes() {
                let verdict = match (row.agent == row.envoy, outcome == &row.scenario.expected) {
                    (true, true) => "same, expected",
                    (true, false) => "same, UNEXPECTED",
                    (false, true) => "DIFFERS, expected",
                    (false, false) => "DIFFERS, UNEXPECTED",
                };
                let name = if kind == Kind::Agent {
                    row.scenario.name
                } else {
                    ""
                };
                let mut line = vec![name.to_string(), kind.name().to_string()];
                line.extend(outcome.columns());
                line.push(verdict.to_string());
                lines.push(line);
            }
        }
        lines
    }
}

impl Row<'_> {
    fn outcomes(&self) -> [(Kind, &Outcome); 2] {
        [(Kind::Agent, &self.agent), (Kind::Envoy, &self.envoy)]
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines = self.lines();
        let mut widths = vec![0; lines[0].len()];
        for line in &lines {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for line in &lines {
            let cells: Vec<String> = line
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:width$}"))
                .collect();
            writeln!(f, "{}", cells.join(" | ").trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Request;
    use super::*;

    fn scenario(expected: Outcome) -> Scenario {
        Scenario {
            name: "1 ALLOW_ANY",
            mesh: "allow-any",
            files: vec![],
            ready: vec![],
            gateway: None,
            request: Request::head("https://www.baidu.com"),
            expected,
        }
    }

    #[test]
    fn agreeing_expected_outcomes_fail_nothing() {
        let scenario = scenario(Outcome::http(200));
        let mut report = Report::default();
        report.push(&scenario, Outcome::http(200), Outcome::http(200));
        assert!(report.failures().is_empty());
        let table = report.to_string();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(
            lines[0].starts_with("scenario    | proxy | result"),
            "{table}"
        );
        assert!(
            lines[1].starts_with("1 ALLOW_ANY | agent | HTTP 200"),
            "{table}"
        );
        assert!(lines[1].ends_with("| same, expected"), "{table}");
        assert!(
            lines[2].starts_with("            | envoy | HTTP 200"),
            "{table}"
        );
    }

    #[test]
    fn a_difference_and_an_unexpected_outcome_are_failures() {
        let scenario = scenario(Outcome::http(200));
        let mut report = Report::default();
        report.push(&scenario, Outcome::curl_exit(35), Outcome::http(200));
        assert_eq!(
            report.failures(),
            [
                r#"1 ALLOW_ANY: agent and Envoy differ (agent vs envoy): result: "curl exit 35" vs "HTTP 200""#,
                r#"1 ALLOW_ANY: agent is not as expected (got vs expected): result: "curl exit 35" vs "HTTP 200""#,
            ]
        );
        let table = report.to_string();
        assert!(table.contains("| DIFFERS, UNEXPECTED"), "{table}");
        assert!(table.contains("| DIFFERS, expected"), "{table}");
    }
}
