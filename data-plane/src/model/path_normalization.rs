//! What an HTTP connection manager does to a request's path before its
//! filters and routing see it, as Envoy does: `normalize_path` (RFC 3986
//! as Chromium's URL library canonicalizes a path: dot segments resolved,
//! `\` read as `/`, unreserved characters unescaped, characters a path may
//! not hold escaped), `merge_slashes`, and escaped slashes kept or
//! unescaped. The query is left as it is.

/// `path_with_escaped_slashes_action` of the connection manager.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EscapedSlashes {
    /// `%2F` and `%5C` stay as they are (Envoy's default).
    #[default]
    Keep,
    /// `%2F` and `%5C` become `/` and `\` before normalization.
    Unescape,
}

/// A connection manager's path settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathNormalization {
    pub normalize: bool,
    pub merge_slashes: bool,
    pub escaped_slashes: EscapedSlashes,
}

/// A path Envoy refuses to normalize (it holds `%00`): the request gets a
/// 400 with details `path_normalization_failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidPath;

impl PathNormalization {
    /// Whether any setting changes paths.
    pub fn is_active(&self) -> bool {
        self.normalize || self.merge_slashes || self.escaped_slashes == EscapedSlashes::Unescape
    }

    /// `path_and_query` as the connection manager passes it on: `None`
    /// when it is unchanged.
    pub fn apply(&self, path_and_query: &str) -> Result<Option<String>, InvalidPath> {
        let (path, query) = match path_and_query.find('?') {
            Some(at) => path_and_query.split_at(at),
            None => (path_and_query, ""),
        };
        let mut out = match self.escaped_slashes {
            EscapedSlashes::Keep => path.to_string(),
            EscapedSlashes::Unescape => unescape_slashes(path),
        };
        if self.normalize {
            out = canonical_path(&out)?;
        }
        if self.merge_slashes {
            out = merge_slashes(&out);
        }
        out.push_str(query);
        Ok((out != path_and_query).then_some(out))
    }
}

/// `%2F`/`%2f` → `/` and `%5C`/`%5c` → `\`.
fn unescape_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).unwrap_or("");
        match escape.to_ascii_uppercase().as_str() {
            "%2F" => out.push('/'),
            "%5C" => out.push('\\'),
            _ => {
                out.push('%');
                rest = &rest[at + 1..];
                continue;
            }
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    out
}

/// Consecutive slashes as one.
fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

/// A path canonicalized as Chromium's `CanonicalizePath`, which Envoy's
/// `normalize_path` runs: it always starts with `/`; `.` and `..`
/// segments (also spelt `%2E`) are resolved, never above the root, and
/// leave a trailing slash; `\` separates segments as `/` does.
fn canonical_path(path: &str) -> Result<String, InvalidPath> {
    let mut segments: Vec<String> = Vec::new();
    let mut trailing_slash = false;
    let raw = path.strip_prefix(['/', '\\']).unwrap_or(path);
    for segment in raw.split(['/', '\\']) {
        trailing_slash = false;
        match dot_segment(segment) {
            Some(Dots::One) => trailing_slash = true,
            Some(Dots::Two) => {
                segments.pop();
                trailing_slash = true;
            }
            None => segments.push(canonical_segment(segment)?),
        }
    }
    let mut out = format!("/{}", segments.join("/"));
    if trailing_slash && !out.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

enum Dots {
    One,
    Two,
}

/// Whether `segment` is `.` or `..`, each dot possibly escaped as `%2E`.
fn dot_segment(segment: &str) -> Option<Dots> {
    let mut dots = 0;
    let mut rest = segment;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            rest = after;
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case("%2e") {
            rest = &rest[3..];
        } else {
            return None;
        }
        dots += 1;
    }
    match dots {
        1 => Some(Dots::One),
        2 => Some(Dots::Two),
        _ => None,
    }
}

/// One segment's characters: escaped unreserved characters unescaped,
/// other valid escapes kept as written, characters a path may not hold
/// escaped (upper-case hex); an escaped NUL is refused.
fn canonical_segment(segment: &str) -> Result<String, InvalidPath> {
    let bytes = segment.as_bytes();
    let mut out = String::with_capacity(segment.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'%' {
            match decode_escape(bytes.get(i + 1..i + 3)) {
                Some(0) => return Err(InvalidPath),
                Some(value) if is_unreserved(value) => {
                    out.push(char::from(value));
                    i += 3;
                }
                Some(_) => {
                    out.push_str(&segment[i..i + 3]);
                    i += 3;
                }
                None => {
                    out.push('%');
                    i += 1;
                }
            }
            continue;
        }
        if byte == 0 {
            return Err(InvalidPath);
        }
        if must_escape(byte) {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push(char::from(byte));
        }
        i += 1;
    }
    Ok(out)
}

fn decode_escape(hex: Option<&[u8]>) -> Option<u8> {
    let hex = std::str::from_utf8(hex?).ok()?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// Characters Chromium unescapes in a path (`.` is not: an escaped dot
/// outside a dot segment stays escaped).
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'~')
}

/// Characters Chromium escapes in a path.
fn must_escape(byte: u8) -> bool {
    !(0x20..0x7f).contains(&byte)
        || matches!(
            byte,
            b' ' | b'"' | b'#' | b'<' | b'>' | b'^' | b'`' | b'{' | b'|' | b'}'
        )
}

#[cfg(test)]
mod tests;
