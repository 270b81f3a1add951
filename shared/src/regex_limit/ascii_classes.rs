//! RE2's Perl classes for the regex crate: in RE2 (Envoy's `safe_regex`)
//! `\d`, `\w`, `\s` and the word boundary `\b` are ASCII only, while in
//! the regex crate they are Unicode. A pattern is rewritten so that they
//! match as RE2's do, the rest (`.` matching one UTF-8 character, `\pL`,
//! case folding) unchanged: `\d` becomes `[0-9]`, `\w` `[0-9A-Za-z_]`,
//! `\s` `[\t\n\f\r ]` (nested as such inside a bracket class), their
//! negations the negated classes, and `\b`, `\B` their ASCII forms.

use regex_syntax::ast::{
    self, Assertion, AssertionKind, Ast, ClassPerl, ClassPerlKind, ClassSetItem, Span, Visitor,
};

/// `pattern` with its Perl classes and word boundaries made RE2's, or why
/// it is no regex. A word boundary RE2 lacks (`\b{start}`, `\<`) is
/// refused.
pub(super) fn rewrite(pattern: &str) -> Result<String, String> {
    let parsed = ast::parse::Parser::new()
        .parse(pattern)
        .map_err(|error| last_line(&error.to_string()))?;
    let mut edits = ast::visit(&parsed, Edits::default())?;
    edits.0.sort_by_key(|(span, _)| span.start.offset);
    let mut out = String::with_capacity(pattern.len() + 16 * edits.0.len());
    let mut at = 0;
    for (span, replacement) in edits.0 {
        out.push_str(&pattern[at..span.start.offset]);
        out.push_str(replacement);
        at = span.end.offset;
    }
    out.push_str(&pattern[at..]);
    Ok(out)
}

/// The last line of a regex error (the lines above it draw the pattern).
fn last_line(text: &str) -> String {
    let last = text.lines().last().unwrap_or_default().trim();
    last.strip_prefix("error: ").unwrap_or(last).to_string()
}

/// The ASCII class RE2 means by a Perl class.
fn perl_class(class: &ClassPerl) -> &'static str {
    match (&class.kind, class.negated) {
        (ClassPerlKind::Digit, false) => "[0-9]",
        (ClassPerlKind::Digit, true) => "[^0-9]",
        (ClassPerlKind::Word, false) => "[0-9A-Za-z_]",
        (ClassPerlKind::Word, true) => "[^0-9A-Za-z_]",
        (ClassPerlKind::Space, false) => r"[\t\n\f\r ]",
        (ClassPerlKind::Space, true) => r"[^\t\n\f\r ]",
    }
}

/// The replacements, by the span of what they replace.
#[derive(Default)]
struct Edits(Vec<(Span, &'static str)>);

impl Visitor for Edits {
    type Output = Self;
    type Err = String;

    fn finish(self) -> Result<Self, String> {
        Ok(self)
    }

    fn visit_pre(&mut self, ast: &Ast) -> Result<(), String> {
        match ast {
            Ast::ClassPerl(class) => self.0.push((class.span, perl_class(class))),
            Ast::Assertion(assertion) => self.assertion(assertion)?,
            _ => {}
        }
        Ok(())
    }

    fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), String> {
        if let ClassSetItem::Perl(class) = item {
            self.0.push((class.span, perl_class(class)));
        }
        Ok(())
    }
}

impl Edits {
    fn assertion(&mut self, assertion: &Assertion) -> Result<(), String> {
        let replacement = match assertion.kind {
            AssertionKind::WordBoundary => r"(?-u:\b)",
            AssertionKind::NotWordBoundary => r"(?-u:\B)",
            AssertionKind::StartLine
            | AssertionKind::EndLine
            | AssertionKind::StartText
            | AssertionKind::EndText => return Ok(()),
            AssertionKind::WordBoundaryStart
            | AssertionKind::WordBoundaryEnd
            | AssertionKind::WordBoundaryStartAngle
            | AssertionKind::WordBoundaryEndAngle
            | AssertionKind::WordBoundaryStartHalf
            | AssertionKind::WordBoundaryEndHalf => {
                return Err(
                    "this word boundary is not RE2 syntax (Envoy's safe_regex): use \\b".into(),
                );
            }
        };
        self.0.push((assertion.span, replacement));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn perl_classes_become_re2s_ascii_classes() {
        assert_eq!(rewrite(r"^\d+$").unwrap(), "^[0-9]+$");
        assert_eq!(rewrite(r"\w\W").unwrap(), "[0-9A-Za-z_][^0-9A-Za-z_]");
        assert_eq!(rewrite(r"\s\S").unwrap(), r"[\t\n\f\r ][^\t\n\f\r ]");
        assert_eq!(rewrite(r"[\d-]").unwrap(), "[[0-9]-]");
        assert_eq!(rewrite(r"\bx\B").unwrap(), r"(?-u:\b)x(?-u:\B)");
    }

    #[test]
    fn the_rest_of_the_pattern_is_unchanged() {
        for pattern in [r".*", r"\pL+", r"(?i)straße", r"\\d", r"[a-z]{2,3}", r"\."] {
            assert_eq!(rewrite(pattern).unwrap(), pattern);
        }
    }

    #[test]
    fn word_boundaries_re2_lacks_are_refused() {
        assert!(rewrite(r"\b{start}x").is_err());
        assert!(rewrite(r"\<x").is_err());
    }
}
