//! The line of a field in one document of a YAML text, so that a message
//! points at it as istioctl does (`file.yaml:12`).
//!
//! The YAML parser tells where it is only when something fails, so the
//! document is walked along the field's path and made to fail on the
//! field's value: the error's position is the value's line.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_yaml::Value;

/// What the walk fails with on reaching the field: nothing else in a
/// document that parsed fails with it.
const FOUND: &str = "the field being located";

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// `spec.http[0].route[1].destination.host` as steps; `None` for a path
/// that is not of that form.
fn steps(path: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    for part in path.split('.').filter(|part| !part.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(at) => part.split_at(at),
            None => (part, ""),
        };
        if !key.is_empty() {
            steps.push(Step::Key(key.to_string()));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let (index, after) = inner.split_once(']')?;
            steps.push(Step::Index(index.parse().ok()?));
            rest = after;
        }
        if !rest.is_empty() {
            return None;
        }
    }
    Some(steps)
}

/// The 1-based line of `field` (a path such as `spec.gateways[0]`; the
/// document itself when empty) in document `document` (0-based) of `text`;
/// `None` when the document or the field is not there.
pub fn line_of(text: &str, document: usize, field: &str) -> Option<usize> {
    let steps = steps(field)?;
    let doc = serde_yaml::Deserializer::from_str(text).nth(document)?;
    match (Seek { steps: &steps }).deserialize(doc) {
        Ok(()) => None,
        Err(error) if error.to_string().contains(FOUND) => error.location().map(|l| l.line()),
        Err(_) => None,
    }
}

/// Walks to the value at `steps`, failing there.
struct Seek<'s> {
    steps: &'s [Step],
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        match self.steps.first() {
            // Every input is of the wrong type for `Found`: the parser
            // fails on the value it is at, and says where.
            None => deserializer.deserialize_any(Found),
            Some(_) => deserializer.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping or a sequence")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let rest = &self.steps[1..];
        let Step::Key(wanted) = &self.steps[0] else {
            return drain_map(map);
        };
        while let Some(key) = map.next_key::<Value>()? {
            if key.as_str() == Some(wanted.as_str()) {
                map.next_value_seed(Seek { steps: rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let rest = &self.steps[1..];
        let Step::Index(wanted) = self.steps[0] else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        };
        let mut index = 0;
        loop {
            let more = if index == wanted {
                seq.next_element_seed(Seek { steps: rest })?
            } else {
                seq.next_element::<IgnoredAny>()?.map(|_| ())
            };
            if more.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Accepts nothing: `deserialize_any` with it fails at the value it meets.
struct Found;

impl<'de> Visitor<'de> for Found {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(FOUND)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: a}
spec:
  selector: {istio: egressgateway}
---
# the second document
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: b
spec:
  hosts: [a.example.com]
  gateways:
  - mesh
  - missing
  http:
  - route:
    - destination:
        host: a.example.com
        subset: v1
";

    #[test]
    fn a_field_is_found_on_its_line_in_its_document() {
        assert_eq!(line_of(TEXT, 1, "spec.gateways[1]"), Some(16));
        assert_eq!(line_of(TEXT, 1, "spec.gateways[0]"), Some(15));
        assert_eq!(
            line_of(TEXT, 1, "spec.http[0].route[0].destination.subset"),
            Some(21)
        );
        assert_eq!(line_of(TEXT, 1, "spec.hosts[0]"), Some(13));
        assert_eq!(line_of(TEXT, 1, "metadata.name"), Some(11));
        assert_eq!(line_of(TEXT, 0, "spec.selector.istio"), Some(5));
    }

    #[test]
    fn the_document_itself_is_its_first_line() {
        assert_eq!(line_of(TEXT, 0, ""), Some(1));
        assert_eq!(line_of(TEXT, 1, ""), Some(8));
    }

    #[test]
    fn what_is_not_there_has_no_line() {
        assert_eq!(line_of(TEXT, 1, "spec.gateways[2]"), None);
        assert_eq!(line_of(TEXT, 1, "spec.tcp[0]"), None);
        assert_eq!(line_of(TEXT, 2, ""), None);
        assert_eq!(line_of(TEXT, 1, "spec.gateways[x]"), None);
    }
}
