//! The nesting depth of a YAML text, bounded before it is parsed.
//!
//! libyaml's scanner (under serde_yaml) checks every open flow collection
//! at each token, so text nested `n` levels deep costs time in `n²`
//! (100,000 `[` in 200 KB took minutes), and serde_yaml scans a whole
//! document before its own recursion limit applies. The same scanner, run
//! here event by event, stops at [`MAX_DEPTH`]: the work before it stops is
//! linear in the text.

use libyaml_safer::{EventData, Parser};

/// The deepest nesting accepted. Istio resources nest about 12 levels (a
/// List item's VirtualService header match); serde_yaml refuses 128.
pub const MAX_DEPTH: usize = 64;

/// A text nested deeper than [`MAX_DEPTH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    /// The 0-based document where the limit was passed.
    pub document: usize,
    /// The 1-based line where the limit was passed.
    pub line: usize,
}

/// Checks that no collection in `text` nests deeper than [`MAX_DEPTH`]. A
/// syntax error ends the check: the parser that follows reports it. So
/// does a panic of the scanner: libyaml-safer 0.3 panics on a tag followed
/// by `,` in a flow collection (`[!,`), which libyaml itself accepts.
pub fn check_depth(text: &str) -> Result<(), TooDeep> {
    std::panic::catch_unwind(|| scan_depth(text)).unwrap_or(Ok(()))
}

fn scan_depth(text: &str) -> Result<(), TooDeep> {
    let mut input = text.as_bytes();
    let mut parser = Parser::new();
    parser.set_input_string(&mut input);
    let mut depth = 0usize;
    let mut document = 0usize;
    for event in parser {
        let Ok(event) = event else {
            return Ok(());
        };
        match event.data {
            EventData::SequenceStart { .. } | EventData::MappingStart { .. } => {
                depth += 1;
                if depth > MAX_DEPTH {
                    let line = usize::try_from(event.start_mark.line).unwrap_or(usize::MAX);
                    return Err(TooDeep {
                        document,
                        line: line.saturating_add(1),
                    });
                }
            }
            EventData::SequenceEnd | EventData::MappingEnd => depth = depth.saturating_sub(1),
            EventData::DocumentEnd { .. } => document += 1,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_before_a_comma_in_a_flow_collection_is_left_to_the_parser() {
        assert_eq!(check_depth("[!,"), Ok(()));
        assert_eq!(check_depth("a: [!t , b]\n"), Ok(()));
    }

    #[test]
    fn istio_resources_and_lists_pass() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: networking.istio.io/v1\n  kind: VirtualService\n  metadata: {name: a}\n  spec:\n    http:\n    - match:\n      - headers:\n          x: {exact: y}\n---\n";
        assert_eq!(check_depth(text), Ok(()));
        assert_eq!(check_depth(""), Ok(()));
    }

    #[test]
    fn flow_and_block_nesting_past_the_limit_is_refused() {
        let flow = format!("a: 1\n---\nx:\n  {}{}\n", "[".repeat(100), "]".repeat(100));
        assert_eq!(
            check_depth(&flow),
            Err(TooDeep {
                document: 1,
                line: 4
            })
        );
        let block: String = (0..70)
            .map(|level| format!("{}k:\n", "  ".repeat(level)))
            .collect();
        assert!(check_depth(&block).is_err());
        let at_limit = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(check_depth(&at_limit), Ok(()));
    }

    #[test]
    fn a_syntax_error_is_left_to_the_parser() {
        assert_eq!(check_depth("a: [unclosed\n"), Ok(()));
    }

    #[test]
    fn deep_nesting_is_refused_in_linear_time() {
        // 200 KB of `[`: minutes through libyaml's quadratic scan when not
        // stopped. Time is not asserted; the test would not end otherwise.
        let text = format!(
            "spec:\n  hosts: {}{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let start = std::time::Instant::now();
        assert!(check_depth(&text).is_err());
        eprintln!(
            "{} KB of nesting refused in {:?}",
            text.len() / 1000,
            start.elapsed()
        );
    }
}
