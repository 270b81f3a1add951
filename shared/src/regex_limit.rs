//! How large a regex in config may be, one rule for both sides, so that the
//! control plane never sends a regex the agent refuses.
//!
//! Envoy refuses a regex whose RE2 program is larger than the runtime key
//! `re2.max_program_size.error_level` (100 by default; Istio's bootstrap
//! sets 32768), and istiod, which cannot measure RE2 programs, refuses a
//! regex longer than 1024 bytes. Here: the same length rule, checked before
//! compiling, then the regex crate's compiled size limit, the measure
//! closest to an RE2 program size (one RE2 instruction is about one state of
//! the regex crate's NFA, 32 to 100 bytes of it): 1 MiB holds about 32768
//! states, so `a{1000}` or `[a-z0-9-]{200}` pass and Unicode `\w{100}`
//! (31,650 states, 5 MB) would not: Perl classes are compiled as RE2's,
//! ASCII only (see [`ascii_classes`]), so `\w{100}` is small as in RE2. A
//! refused regex costs no more than compiling to the limit.

mod ascii_classes;

/// The longest regex accepted, in bytes, as istiod's validation has it.
pub const MAX_REGEX_LENGTH: usize = 1024;

/// The largest compiled regex accepted, in bytes of the regex crate's
/// program (`RegexBuilder::size_limit`).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why a regex is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegexError {
    #[error("regex is {length} bytes long, over the limit of {MAX_REGEX_LENGTH} (as istiod's)")]
    TooLong { length: usize },
    #[error(
        "regex compiles to more than {REGEX_SIZE_LIMIT} bytes, past the program size limit (Envoy's re2.max_program_size); use fewer or smaller repetitions, or ASCII classes instead of Unicode ones"
    )]
    TooLarge,
    /// The regex crate's message, its last line (the lines above it draw
    /// the pattern).
    #[error("{0}")]
    Syntax(String),
}

/// Compiles `pattern` within the limits, its Perl classes as RE2's.
pub fn compile(pattern: &str) -> Result<regex::Regex, RegexError> {
    build(pattern, |re2| re2)
}

/// Compiles `pattern` within the limits, anchored at both ends, so that a
/// match covers the whole value as RE2's FullMatch (Envoy's safe_regex)
/// does: `a|ab` matches `ab`, which an unanchored leftmost match would
/// stop short of.
pub fn compile_whole(pattern: &str) -> Result<regex::Regex, RegexError> {
    build(pattern, |re2| format!("^(?:{re2})$"))
}

/// Checks `pattern`'s length, makes its Perl classes RE2's, then compiles
/// what `source` makes of it.
fn build(pattern: &str, source: impl FnOnce(String) -> String) -> Result<regex::Regex, RegexError> {
    if pattern.len() > MAX_REGEX_LENGTH {
        return Err(RegexError::TooLong {
            length: pattern.len(),
        });
    }
    let re2 = ascii_classes::rewrite(pattern).map_err(RegexError::Syntax)?;
    regex::RegexBuilder::new(&source(re2))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|error| match error {
            regex::Error::CompiledTooBig(_) => RegexError::TooLarge,
            other => {
                let text = other.to_string();
                let last = text.lines().last().unwrap_or_default().trim();
                RegexError::Syntax(last.strip_prefix("error: ").unwrap_or(last).to_string())
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_regexes_compile() {
        for pattern in [
            ".*",
            "^/api/v[0-9]+/users/[a-z0-9-]+$",
            "a{1000}",
            "[a-z0-9-]{200}",
        ] {
            assert!(compile(pattern).is_ok(), "{pattern}");
        }
    }

    #[test]
    fn a_whole_match_takes_the_alternative_that_covers_the_value() {
        let re = compile_whole("a|ab").unwrap();
        assert!(re.is_match("ab"));
        assert!(re.is_match("a"));
        assert!(!re.is_match("abc"));
        assert!(!re.is_match("xab"));
        let long = "a".repeat(MAX_REGEX_LENGTH);
        assert!(compile_whole(&long).is_ok(), "the anchors do not count");
    }

    #[test]
    fn a_regex_over_the_limits_is_refused_without_compiling_it_whole() {
        let long = "a".repeat(MAX_REGEX_LENGTH + 1);
        assert_eq!(
            compile(&long).err(),
            Some(RegexError::TooLong { length: 1025 })
        );
        assert_eq!(compile(r"\pL{200}").err(), Some(RegexError::TooLarge));
        assert_eq!(compile(r"[\w\pL]{100}").err(), Some(RegexError::TooLarge));
        assert!(compile(r"\w{200}").is_ok(), "RE2's \\w is ASCII: small");
    }

    /// RE2's `\w`, `\d`, `\s` and `\b` are ASCII; `.` is one UTF-8
    /// character.
    #[test]
    fn perl_classes_match_as_re2s() {
        let word = compile_whole(r"\w+").unwrap();
        assert!(word.is_match("a_Z9"));
        assert!(!word.is_match("é"));
        assert!(compile_whole(r"\W").unwrap().is_match("é"));
        let digit = compile_whole(r"\d").unwrap();
        assert!(digit.is_match("7"));
        assert!(!digit.is_match("٣"));
        assert!(!compile_whole(r"\s").unwrap().is_match("\u{a0}"));
        assert!(!compile_whole(r"[\d\s]").unwrap().is_match("٣"));
        assert!(
            compile(r"\bé").unwrap().is_match("xé"),
            "é is no word character"
        );
        assert!(compile_whole(".").unwrap().is_match("é"));
        assert!(!compile_whole("..").unwrap().is_match("é"));
    }

    #[test]
    fn a_syntax_error_is_one_line() {
        let Err(RegexError::Syntax(message)) = compile("a(") else {
            panic!("a syntax error");
        };
        assert_eq!(message, "unclosed group");
    }
}
