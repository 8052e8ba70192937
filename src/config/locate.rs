//! Finding things in the YAML text by their key path, with exact lines.
//!
//! serde_yaml_ng keeps no positions in its `Value`, but its streaming
//! deserializer stamps every error with the line of the event it was reading.
//! So to find `models.gpt-4o.targets[1].provider` we walk the document with a
//! seed that skips everything off the path and, at the end, fails on purpose:
//! the error carries the line. The same walk deserializes one entry of the
//! file at a time ([`deserialize_at`]), so that one bad entry does not hide the
//! problems of the others. Config files are small; re-reading one per lookup
//! costs nothing that matters.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess,
    Visitor,
};

/// One step of a path into the document: a mapping key or a sequence index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// Text of the deliberate error that marks "found it".
const MARKER: &str = "\u{1}switchyard-locate\u{1}";

/// Deserializes the node at `path` as `T`. `Ok(None)` when the path is not in
/// the document; errors carry serde_yaml_ng's line and the full key path.
pub fn deserialize_at<T: DeserializeOwned>(
    text: &str,
    path: &[Seg],
) -> Result<Option<T>, serde_yaml_ng::Error> {
    Walk {
        path,
        leaf: Typed::<T>(PhantomData),
    }
    .deserialize(serde_yaml_ng::Deserializer::from_str(text))
}

/// The line (1-based) where the value at `path` starts.
pub fn value_line(text: &str, path: &[Seg]) -> Option<usize> {
    let result = Walk {
        path,
        leaf: FailHere,
    }
    .deserialize(serde_yaml_ng::Deserializer::from_str(text));
    marked_line(result.err())
}

/// The line (1-based) of the mapping key that ends `path`.
pub fn key_line(text: &str, path: &[Seg]) -> Option<usize> {
    let (Some(Seg::Key(key)), parent) = (path.last(), &path[..path.len().saturating_sub(1)]) else {
        return None;
    };
    let result = Walk {
        path: parent,
        leaf: FailAtKey(key),
    }
    .deserialize(serde_yaml_ng::Deserializer::from_str(text));
    marked_line(result.err())
}

/// The best line to report a problem with `path` at: the key that ends it
/// (or the element, for an index), else that of the nearest ancestor present
/// in the text, else line 1.
pub fn line_for(text: &str, path: &[Seg]) -> usize {
    (1..=path.len())
        .rev()
        .find_map(|len| {
            let prefix = &path[..len];
            match prefix[len - 1] {
                Seg::Key(_) => key_line(text, prefix),
                Seg::Index(_) => value_line(text, prefix),
            }
        })
        .unwrap_or(1)
}

/// A serde_yaml_ng error as a line (when it has one) and a message without
/// the `at line N column M` that the diagnostic already says.
pub fn describe(err: &serde_yaml_ng::Error) -> (Option<usize>, String) {
    let line = err.location().map(|l| l.line()).filter(|&l| l > 0);
    (line, strip_positions(&err.to_string()))
}

fn marked_line(err: Option<serde_yaml_ng::Error>) -> Option<usize> {
    let err = err?;
    if !err.to_string().contains(MARKER) {
        return None;
    }
    err.location().map(|l| l.line())
}

/// Removes every ` at line N column M` from a message.
fn strip_positions(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(" at line ") {
        let after = &rest[at + " at line ".len()..];
        let digits = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        let tail = &after[digits..];
        let column = tail.strip_prefix(" column ").map(|t| {
            let d = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            (d, &t[d..])
        });
        match column {
            Some((d, next)) if digits > 0 && d > 0 => {
                out.push_str(&rest[..at]);
                rest = next;
            }
            _ => {
                out.push_str(&rest[..at + 1]);
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Walks `path`, skipping everything else, and hands the node at its end to
/// `leaf`.
struct Walk<'p, S> {
    path: &'p [Seg<'p>],
    leaf: S,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Walk<'_, S> {
    type Value = Option<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match self.path.split_first() {
            None => self.leaf.deserialize(d).map(Some),
            Some((&seg, rest)) => d.deserialize_any(Step {
                seg,
                rest,
                leaf: self.leaf,
            }),
        }
    }
}

/// Visits one node on the path: finds the wanted key or index and walks on.
/// A node of another shape means the path is not there.
struct Step<'p, S> {
    seg: Seg<'p>,
    rest: &'p [Seg<'p>],
    leaf: S,
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Step<'_, S> {
    type Value = Option<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut leaf = Some(self.leaf);
        let mut found = None;
        while let Some(key) = map.next_key::<ScalarKey>()? {
            let wanted = matches!(self.seg, Seg::Key(k) if key.0.as_deref() == Some(k));
            match leaf.take() {
                Some(l) if wanted => {
                    found = map.next_value_seed(Walk {
                        path: self.rest,
                        leaf: l,
                    })?;
                }
                other => {
                    leaf = other;
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut leaf = Some(self.leaf);
        let mut found = None;
        let mut index = 0;
        loop {
            let wanted = self.seg == Seg::Index(index);
            match leaf.take() {
                Some(l) if wanted => match seq.next_element_seed(Walk {
                    path: self.rest,
                    leaf: l,
                })? {
                    Some(value) => found = value,
                    None => break,
                },
                other => {
                    leaf = other;
                    if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                }
            }
            index += 1;
        }
        Ok(found)
    }
}

/// A mapping key read as text when it is a scalar (`1` and `"1"` alike).
struct ScalarKey(Option<String>);

impl<'de> de::Deserialize<'de> for ScalarKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarKeyVisitor)
    }
}

struct ScalarKeyVisitor;

impl<'de> Visitor<'de> for ScalarKeyVisitor {
    type Value = ScalarKey;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping key")
    }
    fn visit_bool<E>(self, v: bool) -> Result<ScalarKey, E> {
        Ok(ScalarKey(Some(v.to_string())))
    }
    fn visit_i64<E>(self, v: i64) -> Result<ScalarKey, E> {
        Ok(ScalarKey(Some(v.to_string())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<ScalarKey, E> {
        Ok(ScalarKey(Some(v.to_string())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<ScalarKey, E> {
        Ok(ScalarKey(Some(v.to_string())))
    }
    fn visit_str<E>(self, v: &str) -> Result<ScalarKey, E> {
        Ok(ScalarKey(Some(v.to_string())))
    }
    fn visit_unit<E>(self) -> Result<ScalarKey, E> {
        Ok(ScalarKey(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ScalarKey, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(ScalarKey(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ScalarKey, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(ScalarKey(None))
    }
}

/// Leaf: deserialize the node as `T`.
struct Typed<T>(PhantomData<T>);

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for Typed<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        T::deserialize(d)
    }
}

/// Leaf: fail on whatever node is here, so the error carries its line.
struct FailHere;

impl<'de> DeserializeSeed<'de> for FailHere {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // Every visit method left at its default rejects the node with an
        // "invalid type ... expected <MARKER>" error.
        struct Reject;
        impl<'de> Visitor<'de> for Reject {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(MARKER)
            }
        }
        d.deserialize_any(Reject)
    }
}

/// Leaf: a mapping in which to fail on the key `.0`, so the error carries the
/// key's line.
struct FailAtKey<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for FailAtKey<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FailAtKey<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(KeyIs(self.0))?.is_some() {
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

/// Reads one key; fails with the marker when it is the wanted one. The error
/// must be raised inside the key's own visit so that serde_yaml_ng stamps it
/// with the key's line rather than the enclosing mapping's.
struct KeyIs<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if v == self.0 {
            Err(E::custom(MARKER))
        } else {
            Ok(())
        }
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.visit_str(&v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.visit_str(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.visit_str(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.visit_str(&v.to_string())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Seg::{Index, Key};

    const DOC: &str = "\
listen: [\"0.0.0.0:8080\"]
providers:
  openai: { type: openai }
  fleet:
    type: openai
    endpoints:
      - 10.0.0.1:8000
      - 10.0.0.2:8000
models:
  gpt-4o:
    targets:
      - { provider: openai, weight: 3 }
      - provider: nope
        weight: 1
  \"quoted.name\":
    targets: [ { provider: fleet } ]
";

    #[test]
    fn finds_keys_and_values() {
        assert_eq!(key_line(DOC, &[Key("listen")]), Some(1));
        assert_eq!(key_line(DOC, &[Key("providers"), Key("fleet")]), Some(4));
        assert_eq!(
            value_line(
                DOC,
                &[Key("providers"), Key("fleet"), Key("endpoints"), Index(1)]
            ),
            Some(8)
        );
        let target = |i, field| {
            key_line(
                DOC,
                &[
                    Key("models"),
                    Key("gpt-4o"),
                    Key("targets"),
                    Index(i),
                    Key(field),
                ],
            )
        };
        assert_eq!(target(0, "provider"), Some(12));
        assert_eq!(target(1, "provider"), Some(13));
        assert_eq!(target(1, "weight"), Some(14));
        assert_eq!(
            key_line(DOC, &[Key("models"), Key("quoted.name")]),
            Some(15)
        );
        assert_eq!(
            key_line(
                DOC,
                &[
                    Key("models"),
                    Key("quoted.name"),
                    Key("targets"),
                    Index(0),
                    Key("provider")
                ]
            ),
            Some(16)
        );
    }

    #[test]
    fn absent_paths_fall_back_to_ancestors() {
        assert_eq!(key_line(DOC, &[Key("nope")]), None);
        assert_eq!(value_line(DOC, &[Key("listen"), Index(5)]), None);
        assert_eq!(
            line_for(DOC, &[Key("providers"), Key("fleet"), Key("balance")]),
            4
        );
        assert_eq!(line_for(DOC, &[Key("server"), Key("threads")]), 1);
        assert_eq!(line_for("", &[Key("x")]), 1);
    }

    #[test]
    fn deserializes_one_entry_with_located_errors() {
        let endpoints: Option<Vec<String>> =
            deserialize_at(DOC, &[Key("providers"), Key("fleet"), Key("endpoints")]).unwrap();
        assert_eq!(endpoints.unwrap(), vec!["10.0.0.1:8000", "10.0.0.2:8000"]);
        let absent: Option<String> = deserialize_at(DOC, &[Key("admin")]).unwrap();
        assert_eq!(absent, None);
        let err =
            deserialize_at::<Vec<u32>>(DOC, &[Key("providers"), Key("fleet"), Key("endpoints")])
                .unwrap_err();
        let (line, message) = describe(&err);
        assert_eq!(line, Some(7));
        assert!(
            message.starts_with("providers.fleet.endpoints[0]: invalid type"),
            "{message}"
        );
        assert!(!message.contains("column"), "{message}");
    }

    #[test]
    fn strips_positions_only() {
        assert_eq!(
            strip_positions("bad at line 3 column 4, while parsing at line 1 column 1"),
            "bad, while parsing"
        );
        assert_eq!(strip_positions("look at line items"), "look at line items");
    }
}
