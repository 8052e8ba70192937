//! Reading the YAML tree value by value, so that one bad value never hides another.
//!
//! The file is parsed once into a [`Value`] (which keeps the order of mapping keys), then
//! read by hand: every key of a block is checked against the keys that block knows, every
//! value against the type it needs, and each problem is recorded while reading goes on; a
//! value that cannot be read counts as absent. serde's derived `deny_unknown_fields` stopped
//! a whole block at its first unknown key, which hid everything else wrong in that block
//! until the first problem was fixed (issue 7, defect 15).
//!
//! Lines: [`Value`] keeps no positions, so a problem's line is found from its key path
//! (`locate.rs`) when the problem is reported; values that read cleanly cost no lookup.

use std::fmt;

use serde_yaml_ng::{Mapping, Value};

use super::diagnostic::Problem;
use super::locate::{self, Seg};

/// One step of a [`NodePath`]; keys are owned, since provider ids and model names come
/// from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Where a value sits in the file, e.g. `providers.fleet.endpoints[1]`; the root is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NodePath(Vec<Step>);

impl NodePath {
    /// The path of `key` inside the mapping at `self`.
    pub fn key(&self, key: &str) -> NodePath {
        let mut steps = self.0.clone();
        steps.push(Step::Key(key.to_string()));
        NodePath(steps)
    }

    /// The path of element `index` of the list at `self`.
    pub fn index(&self, index: usize) -> NodePath {
        let mut steps = self.0.clone();
        steps.push(Step::Index(index));
        NodePath(steps)
    }

    /// The path in the borrowed form `locate` and the lowering code take.
    pub fn segs(&self) -> Vec<Seg<'_>> {
        self.0
            .iter()
            .map(|step| match step {
                Step::Key(k) => Seg::Key(k),
                Step::Index(i) => Seg::Index(*i),
            })
            .collect()
    }
}

impl fmt::Display for NodePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(k) if i == 0 => write!(f, "{k}")?,
                Step::Key(k) => write!(f, ".{k}")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A mapping being read, with its path. Its unknown keys were reported when it was opened.
pub(crate) struct Block<'v> {
    map: Option<&'v Mapping>,
    pub at: NodePath,
}

impl<'v> Block<'v> {
    /// The value under `key`, if written.
    pub fn get(&self, key: &str) -> Option<&'v Value> {
        self.map?.get(key)
    }

    /// Whether `key` is written (with a value or empty).
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Whether `key` is missing or has no value, for required keys.
    pub fn lacks(&self, key: &str) -> bool {
        matches!(self.get(key), None | Some(Value::Null))
    }

    /// The path of `key` in this block.
    pub fn field(&self, key: &str) -> NodePath {
        self.at.key(key)
    }

    /// Every entry, its key as text, for blocks whose keys are names (`providers`, `models`).
    pub fn entries(&self) -> impl Iterator<Item = (String, &'v Value)> {
        self.map
            .into_iter()
            .flatten()
            .map(|(k, v)| (key_text(k), v))
    }
}

/// Reads values out of the tree of `text` (the expanded file), collecting problems.
pub(crate) struct Reader<'t> {
    text: &'t str,
    pub problems: Vec<Problem>,
}

impl<'t> Reader<'t> {
    pub fn new(text: &'t str) -> Self {
        Reader {
            text,
            problems: Vec::new(),
        }
    }

    /// Records `message` at the line of `at` (or of its nearest ancestor in the text).
    pub fn report(&mut self, at: &NodePath, message: impl Into<String>) {
        let line = locate::line_for(self.text, &at.segs());
        self.problems.push(Problem::new(line, message));
    }

    fn wrong_type(&mut self, at: &NodePath, expected: &str, found: &Value) {
        let message = format!("{at} must be {expected}, not {}", describe(found));
        self.report(at, message);
    }

    /// A mapping whose keys must be among `known`; every other key is reported. Absent and
    /// empty (`limits:`) read as an empty block; `None` (reported) for another type.
    pub fn block<'v>(
        &mut self,
        value: Option<&'v Value>,
        at: NodePath,
        known: &[&str],
    ) -> Option<Block<'v>> {
        let block = self.names(value, at)?;
        for (key, _) in block.entries() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let hint = closest(&key, known)
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            let message = format!(
                "{}unknown key `{key}`{hint}; expected one of: {}",
                if block.at.0.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", block.at)
                },
                known.join(", ")
            );
            self.report(&block.field(&key), message);
        }
        Some(block)
    }

    /// A mapping whose keys are names chosen by the operator (providers, models).
    pub fn names<'v>(&mut self, value: Option<&'v Value>, at: NodePath) -> Option<Block<'v>> {
        match value {
            None | Some(Value::Null) => Some(Block { map: None, at }),
            Some(Value::Mapping(map)) => Some(Block { map: Some(map), at }),
            Some(other) => {
                self.wrong_type(&at, "a mapping (key: value, ...)", other);
                None
            }
        }
    }

    /// A list; absent or empty-valued reads as `None`.
    pub fn list<'v>(&mut self, value: Option<&'v Value>, at: &NodePath) -> Option<&'v [Value]> {
        match value? {
            Value::Null => None,
            Value::Sequence(items) => Some(items),
            other => {
                self.wrong_type(at, "a list ([a, b] or one `- item` a line)", other);
                None
            }
        }
    }

    /// Text. A scalar that YAML reads as a number or a boolean is taken exactly as written
    /// (a key `0123` stays `0123`, as a string field always read it).
    pub fn text(&mut self, value: Option<&Value>, at: &NodePath) -> Option<String> {
        match value? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            scalar @ (Value::Number(_) | Value::Bool(_)) => Some(
                locate::deserialize_at::<String>(self.text, &at.segs())
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| scalar_text(scalar)),
            ),
            other => {
                self.wrong_type(at, "text", other);
                None
            }
        }
    }

    /// A list of text; one text alone is taken as a list of one when `one_ok`.
    pub fn texts(
        &mut self,
        value: Option<&Value>,
        at: &NodePath,
        one_ok: bool,
    ) -> Option<Vec<String>> {
        match value? {
            Value::String(_) | Value::Number(_) | Value::Bool(_) if one_ok => {
                self.text(value, at).map(|t| vec![t])
            }
            Value::Sequence(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| {
                        let at = at.index(i);
                        match item {
                            Value::Null => {
                                self.report(&at, format!("{at} is empty"));
                                None
                            }
                            _ => self.text(Some(item), &at),
                        }
                    })
                    .collect(),
            ),
            Value::Null => None,
            other => {
                self.wrong_type(at, "a list of text", other);
                None
            }
        }
    }

    /// A whole number that fits `T`.
    pub fn whole<T: TryFrom<u64>>(&mut self, value: Option<&Value>, at: &NodePath) -> Option<T> {
        let value = value?;
        if value.is_null() {
            return None;
        }
        match value.as_u64().map(T::try_from) {
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => {
                self.report(at, format!("{at} is too large"));
                None
            }
            None if value.is_number() => {
                self.report(at, format!("{at} must be a whole number (0, 1, 2, ...)"));
                None
            }
            None => {
                self.wrong_type(at, "a whole number (0, 1, 2, ...)", value);
                None
            }
        }
    }

    /// `true` or `false`.
    pub fn flag(&mut self, value: Option<&Value>, at: &NodePath) -> Option<bool> {
        let value = value?;
        match value {
            Value::Null => None,
            Value::Bool(b) => Some(*b),
            other => {
                self.wrong_type(at, "true or false", other);
                None
            }
        }
    }

    /// A number, whole or not.
    pub fn number(&mut self, value: Option<&Value>, at: &NodePath) -> Option<f64> {
        let value = value?;
        match value {
            Value::Null => None,
            Value::Number(n) => n.as_f64(),
            other => {
                self.wrong_type(at, "a number", other);
                None
            }
        }
    }
}

/// A mapping key as text (`1` and `"1"` alike, as `locate` reads them).
fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(_) | Value::Bool(_) => scalar_text(key),
        Value::Null => "~".into(),
        _ => "<a mapping or list used as a key>".into(),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    }
}

/// What a value is, for "must be X, not Y" messages. Never the value itself: it may be a
/// secret put in the wrong place.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value (`!tag`)",
    }
}

/// The known key closest to a misspelt one: within two edits, or the start of
/// a known key (`grace` for `grace_period`).
fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
        .or_else(|| {
            let cut = key.trim_end_matches(['_', '-']);
            known
                .iter()
                .find(|k| cut.len() >= 4 && k.starts_with(cut))
                .copied()
        })
}

/// Levenshtein distance, counting a swap of neighbours (`wieght`) as one edit. Keys are
/// short; hostile lengths are cut off, since no known key is longer than 32 bytes.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (prev[j] + 1).min(row[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(prev2[j - 2] + 1);
            }
        }
        prev2 = std::mem::replace(&mut prev, row);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Value {
        serde_yaml_ng::from_str(text).unwrap()
    }

    #[test]
    fn paths_read_as_written() {
        let p = NodePath::default()
            .key("providers")
            .key("fleet")
            .key("endpoints")
            .index(1);
        assert_eq!(p.to_string(), "providers.fleet.endpoints[1]");
        assert_eq!(p.segs()[3], Seg::Index(1));
    }

    #[test]
    fn unknown_keys_are_each_reported_with_a_hint() {
        let text = "server:\n  threads: 2\n  grace: 1s\n  zzz: 1\n";
        let root = tree(text);
        let mut r = Reader::new(text);
        let top = r
            .block(Some(&root), NodePath::default(), &["server"])
            .unwrap();
        let server = r
            .block(
                top.get("server"),
                top.field("server"),
                &["threads", "grace_period"],
            )
            .unwrap();
        assert_eq!(
            r.whole::<usize>(server.get("threads"), &server.field("threads")),
            Some(2)
        );
        let lines: Vec<usize> = r.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![3, 4]);
        assert_eq!(
            r.problems[0].message,
            "server: unknown key `grace` (did you mean `grace_period`?); expected one of: threads, grace_period"
        );
        assert!(!r.problems[1].message.contains("did you mean"));
    }

    #[test]
    fn scalars_keep_their_text_and_wrong_types_say_what_they_are() {
        let text = "a: 0123\nb: 1e3\nc: true\nd: { x: 1 }\ne: [1, ~]\nf: -3\n";
        let root = tree(text);
        let mut r = Reader::new(text);
        let top = r.names(Some(&root), NodePath::default()).unwrap();
        let read = |r: &mut Reader, k: &str| r.text(top.get(k), &top.field(k));
        assert_eq!(read(&mut r, "a").as_deref(), Some("0123"));
        assert_eq!(read(&mut r, "b").as_deref(), Some("1e3"));
        assert_eq!(read(&mut r, "c").as_deref(), Some("true"));
        assert_eq!(read(&mut r, "d"), None);
        assert_eq!(
            r.texts(top.get("e"), &top.field("e"), false),
            Some(vec!["1".into()])
        );
        assert_eq!(r.whole::<u32>(top.get("f"), &top.field("f")), None);
        assert_eq!(
            r.whole::<u8>(top.get("missing"), &top.field("missing")),
            None
        );
        let shown: Vec<String> = r
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.line, p.message))
            .collect();
        assert_eq!(
            shown,
            vec![
                "4: d must be text, not a mapping",
                "5: e[1] is empty",
                "6: f must be a whole number (0, 1, 2, ...)",
            ]
        );
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("wieght", "weight"), 1);
        assert_eq!(edit_distance("modles", "models"), 1);
        assert_eq!(edit_distance("endpoint_list", "endpoints"), 4);
        assert_eq!(closest("timeout", &["type", "api_key"]), None);
        assert_eq!(closest(&"x".repeat(10_000), &["threads"]), None);
    }
}
