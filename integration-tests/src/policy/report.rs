//! The traffic-policy report: a line per scenario and fact with what is
//! expected, what the agent and Envoy stated, and the verdict; the
//! failures that follow.

use std::fmt;

use super::{Facts, Scenario};

/// Each scenario with the agent's and Envoy's facts; displayed as the
/// comparison table.
#[derive(Default)]
pub struct Report<'a> {
    rows: Vec<Row<'a>>,
}

struct Row<'a> {
    scenario: &'a Scenario,
    agent: Facts,
    envoy: Facts,
}

/// What one fact came to on both sides.
struct Line<'r> {
    fact: &'r str,
    expected: &'r str,
    agent: &'r str,
    envoy: &'r str,
}

impl Line<'_> {
    fn verdict(&self) -> &'static str {
        match (
            self.agent == self.envoy,
            self.agent == self.expected,
            self.envoy == self.expected,
        ) {
            (true, true, _) => "same, expected",
            (true, false, _) => "same, UNEXPECTED",
            (false, true, false) => "DIFFERS, agent expected",
            (false, false, true) => "DIFFERS, envoy expected",
            (false, _, _) => "DIFFERS, UNEXPECTED",
        }
    }

    fn passes(&self) -> bool {
        self.agent == self.expected && self.envoy == self.expected
    }
}

impl Row<'_> {
    /// A line per expected fact, then one per fact a side stated that is
    /// not expected (a probe error).
    fn lines(&self) -> Vec<Line<'_>> {
        let expected = &self.scenario.expected;
        let extra = [&self.agent, &self.envoy]
            .into_iter()
            .flat_map(Facts::names)
            .filter(|name| expected.get(name).is_none());
        let mut names: Vec<&str> = expected.names().collect();
        for name in extra {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
            .into_iter()
            .map(|fact| Line {
                fact,
                expected: expected.get(fact).unwrap_or("-"),
                agent: self.agent.get(fact).unwrap_or("-"),
                envoy: self.envoy.get(fact).unwrap_or("-"),
            })
            .collect()
    }
}

impl<'a> Report<'a> {
    pub(super) fn push(&mut self, scenario: &'a Scenario, agent: Facts, envoy: Facts) {
        self.rows.push(Row {
            scenario,
            agent,
            envoy,
        });
    }

    /// A line for each fact where a side is not as expected; none when all
    /// agree.
    pub fn failures(&self) -> Vec<String> {
        self.rows
            .iter()
            .flat_map(|row| {
                row.lines()
                    .into_iter()
                    .filter(|line| !line.passes())
                    .map(|line| {
                        format!(
                            "{}: {}: expected {:?}, agent {:?}, envoy {:?}",
                            row.scenario.name, line.fact, line.expected, line.agent, line.envoy
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn cells(&self) -> Vec<[String; 6]> {
        let mut cells =
            vec![["scenario", "fact", "expected", "agent", "envoy", "verdict"].map(str::to_string)];
        for row in &self.rows {
            for (index, line) in row.lines().iter().enumerate() {
                let name = if index == 0 { row.scenario.name } else { "" };
                cells.push([
                    name.to_string(),
                    line.fact.to_string(),
                    line.expected.to_string(),
                    line.agent.to_string(),
                    line.envoy.to_string(),
                    line.verdict().to_string(),
                ]);
            }
        }
        cells
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cells = self.cells();
        let mut widths = [0; 6];
        for line in &cells {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for line in &cells {
            let cells: Vec<String> = line
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:width$}"))
                .collect();
            writeln!(f, "{}", cells.join(" | ").trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::side::PROBE_ERROR;
    use super::*;

    fn scenario() -> Scenario {
        Scenario::new(
            "fault abort",
            vec![],
            |_| Ok(Facts::new()),
            Facts::new().with("status", 503).with("flags", "FI"),
        )
    }

    #[test]
    fn agreeing_expected_facts_fail_nothing() {
        let scenario = scenario();
        let mut report = Report::default();
        let facts = Facts::new().with("status", 503).with("flags", "FI");
        report.push(&scenario, facts.clone(), facts);
        assert!(report.failures().is_empty());
        let table = report.to_string();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(
            lines[1].starts_with("fault abort | status | 503"),
            "{table}"
        );
        assert!(lines[2].ends_with("| same, expected"), "{table}");
    }

    #[test]
    fn a_difference_and_a_probe_error_are_failures() {
        let scenario = scenario();
        let mut report = Report::default();
        let agent = Facts::new().with("status", 200).with("flags", "-");
        let envoy = Facts::new().with(PROBE_ERROR, "curl died");
        report.push(&scenario, agent, envoy);
        assert_eq!(
            report.failures(),
            [
                r#"fault abort: status: expected "503", agent "200", envoy "-""#,
                r#"fault abort: flags: expected "FI", agent "-", envoy "-""#,
                r#"fault abort: probe error: expected "-", agent "-", envoy "curl died""#,
            ]
        );
        assert!(report.to_string().contains("DIFFERS, UNEXPECTED"));
    }
}
