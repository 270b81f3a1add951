//! A `json_format` Struct compiled: its keys sorted as Envoy writes them,
//! each string value a format, other values written as Envoy writes them.

use std::fmt::Write as _;

use proto::pb::google::protobuf::{Struct, Value as PbValue, value::Kind};

use super::TextFormat;

/// A JSON object of the format, keys in the order they are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonObject {
    /// Each key already written as JSON (`"key":`), with its value.
    pub fields: Box<[(Box<str>, JsonValue)]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonValue {
    /// A string with command operators: a sole operator writes its value
    /// typed (a number, or null when missing); anything else a string.
    Format(TextFormat),
    /// A constant, already written as JSON.
    Constant(Box<str>),
    Object(JsonObject),
}

/// Compiles `fields`; an error names the key (a dotted path) and why.
pub fn json_object(fields: &Struct) -> Result<JsonObject, String> {
    let mut sorted: Vec<_> = fields.fields.iter().collect();
    sorted.sort_by_key(|(key, _)| *key);
    let fields = sorted
        .into_iter()
        .map(|(key, value)| {
            let mut written = String::with_capacity(key.len() + 3);
            write_json_string(key, &mut written);
            written.push(':');
            let value = json_value(value).map_err(|reason| format!("{key}: {reason}"))?;
            Ok((written.into(), value))
        })
        .collect::<Result<_, String>>()?;
    Ok(JsonObject { fields })
}

fn json_value(value: &PbValue) -> Result<JsonValue, String> {
    Ok(match &value.kind {
        Some(Kind::StringValue(text)) => JsonValue::Format(TextFormat::parse(text)?),
        Some(Kind::StructValue(object)) => JsonValue::Object(json_object(object)?),
        Some(Kind::BoolValue(b)) => JsonValue::Constant(b.to_string().into()),
        Some(Kind::NullValue(_)) | None => JsonValue::Constant("null".into()),
        Some(Kind::NumberValue(n)) => JsonValue::Constant(number(*n).into()),
        Some(Kind::ListValue(_)) => {
            return Err("a list is not a format value: use a string or an object".into());
        }
    })
}

/// A number as Envoy 1.40 writes a constant one: a whole number as a
/// number, any other as a string.
fn number(n: f64) -> String {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if n.fract() == 0.0 && n.abs() < EXACT {
        format!("{}", n as i64)
    } else {
        let mut written = String::new();
        write_json_string(&n.to_string(), &mut written);
        written
    }
}

/// Appends `text` to `out` as a JSON string, quotes included.
pub fn write_json_string(text: &str, out: &mut String) {
    out.push('"');
    let mut plain = 0;
    for (i, byte) in text.bytes().enumerate() {
        let escaped = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[plain..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escaped);
        }
        plain = i + 1;
    }
    out.push_str(&text[plain..]);
    out.push('"');
}
