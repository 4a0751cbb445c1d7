//! Reading applied documents: YAML streams (`---` separated) and JSON, with the line and
//! column of a syntax error, and bounded: a document may not expand (through YAML
//! aliases) beyond a budget proportional to its text, nor nest too deeply.

use std::cell::Cell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A document that is not well-formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub message: String,
    /// 1-based, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

/// Why applied text could not be read as documents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// The documents would take more memory than their text justifies: YAML aliases
    /// repeat what they refer to, so a few KiB can stand for gigabytes.
    #[error(
        "document is too large: parsed, it would take more than {limit} bytes \
         (each use of a YAML alias counts in full)"
    )]
    TooLarge {
        /// The budget, in estimated bytes of the parsed documents.
        limit: usize,
    },
    /// Lists and mappings nested more deeply than any resource needs.
    #[error("document is too deeply nested: more than {limit} levels")]
    TooDeep { limit: usize },
}

// The budget is in estimated bytes of the parsed `Value`s, modelled on 64-bit Linux
// with glibc's allocator. Measured against the real thing (lists, small and large
// mappings, strings, streams of applications) it comes within about a fifth, low by up
// to a half for lists of many short strings. Small mappings are the dear part: `{a: 1}`
// is 6 bytes of text and about 700 bytes parsed.

/// Every node: its `Value` in the mapping (or the spare capacity of the list) that holds
/// it.
const NODE_COST: usize = size_of::<Value>();
/// A non-empty mapping's first B-tree leaf, which holds up to `MAP_LEAF_ENTRIES` keys
/// and values.
const MAP_COST: usize = 640;
const MAP_LEAF_ENTRIES: usize = 11;
/// Each entry past the first leaf: leaves split half full, so one more 640-byte leaf
/// per five or six entries, and the internal nodes above them.
const MAP_ENTRY_COST: usize = 128;
/// Budget per byte of text. Real documents take 10–40 bytes parsed per byte of text
/// (an env list written `- {name: A, value: b}` about 45); what goes far beyond is
/// repetition through aliases, or text made of nothing but tiny mappings.
const BUDGET_PER_INPUT_BYTE: usize = 64;
/// Budget every text gets, so that small documents are never refused.
const BUDGET_BASE: usize = 64 << 10;
/// Budget no text gets beyond, however long, so that whatever the body limit a parse
/// builds at most about 30 MB. Texts from about 384 KiB on reach it; 1 MiB of plain
/// applications (the API's body limit) costs about 17 MiB.
pub const MAX_BUDGET: usize = 24 << 20;
/// YAML nesting allowed, in lists and mappings. A resource needs fewer than ten; the
/// YAML library's own limit (128) is a syntax error without a distinct kind. JSON keeps
/// serde_json's limit of 128, which fails before the budget does.
pub const MAX_YAML_DEPTH: usize = 64;

/// The budget for a text of `len` bytes.
fn budget_for(len: usize) -> usize {
    len.saturating_mul(BUDGET_PER_INPUT_BYTE)
        .saturating_add(BUDGET_BASE)
        .min(MAX_BUDGET)
}

/// The heap block of a string of `len` bytes (a string value or a key), beside the
/// slot that holds it: glibc rounds `len` plus its 8-byte header up to 16, 32 at least.
fn heap_cost(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        len.saturating_add(8).next_multiple_of(16).max(32)
    }
}

/// Which limit a parse ran into; the deserializer only carries a message back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exceeded {
    Size,
    Depth,
}

/// What the documents of one text may still take. Shared by every document of a YAML
/// stream, so that many small bombs add up like one big one.
#[derive(Debug)]
struct Budget {
    limit: usize,
    remaining: Cell<usize>,
    max_depth: usize,
    exceeded: Cell<Option<Exceeded>>,
}

impl Budget {
    fn new(text: &str, max_depth: usize) -> Self {
        let limit = budget_for(text.len());
        Self {
            limit,
            remaining: Cell::new(limit),
            max_depth,
            exceeded: Cell::new(None),
        }
    }

    /// Takes `cost` from the budget, or fails at once: checked before the node is
    /// built, so a refused document never exists in memory.
    fn charge<E: de::Error>(&self, cost: usize) -> Result<(), E> {
        match self.remaining.get().checked_sub(cost) {
            Some(left) => {
                self.remaining.set(left);
                Ok(())
            }
            None => Err(self.exceed(Exceeded::Size)),
        }
    }

    fn exceed<E: de::Error>(&self, what: Exceeded) -> E {
        self.exceeded.set(Some(what));
        E::custom(match what {
            Exceeded::Size => "document is too large",
            Exceeded::Depth => "document is too deeply nested",
        })
    }

    /// The error to report for a failed parse: the limit, if one was hit (whatever
    /// message the deserializer wrapped it in), else the deserializer's own.
    fn error(&self, syntax: impl FnOnce() -> SyntaxError) -> DocumentError {
        match self.exceeded.get() {
            Some(Exceeded::Size) => DocumentError::TooLarge { limit: self.limit },
            Some(Exceeded::Depth) => DocumentError::TooDeep {
                limit: self.max_depth,
            },
            None => DocumentError::Syntax(syntax()),
        }
    }
}

/// Deserializes one node into a `Value`, charging the budget for it first. It builds
/// the same `Value` as `Value::deserialize` (its visitor mirrors serde_json's).
#[derive(Debug, Clone, Copy)]
struct Node<'b> {
    budget: &'b Budget,
    /// Lists and mappings around this node.
    depth: usize,
    /// What the slot holding this node's `Value` costs: `NODE_COST`, except in a list,
    /// which is charged for its capacity as it grows.
    slot: usize,
}

impl<'b> Node<'b> {
    fn root(budget: &'b Budget) -> Self {
        Self {
            budget,
            depth: 0,
            slot: NODE_COST,
        }
    }

    fn leaf<E: de::Error>(self, value: Value) -> Result<Value, E> {
        self.budget.charge(self.slot)?;
        Ok(value)
    }

    fn string<E: de::Error>(self, value: &str) -> Result<Value, E> {
        self.budget
            .charge(self.slot.saturating_add(heap_cost(value.len())))?;
        Ok(Value::String(value.to_owned()))
    }

    /// Charges for a list or mapping and returns the node for its items.
    fn enter<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= self.budget.max_depth {
            return Err(self.budget.exceed(Exceeded::Depth));
        }
        self.budget.charge(self.slot)?;
        Ok(Self {
            budget: self.budget,
            depth: self.depth + 1,
            slot: NODE_COST,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any valid JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        self.leaf(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        self.leaf(Value::Number(value.into()))
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<Value, E> {
        let number = Number::deserialize(de::value::I128Deserializer::<E>::new(value))?;
        self.leaf(Value::Number(number))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        self.leaf(Value::Number(value.into()))
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<Value, E> {
        let number = Number::deserialize(de::value::U128Deserializer::<E>::new(value))?;
        self.leaf(Value::Number(number))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        // As serde_json: a NaN or infinity (YAML `.nan`, `.inf`) has no JSON number.
        self.leaf(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        self.string(value)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.leaf(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.leaf(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let item = Node {
            slot: 0,
            ..self.enter()?
        };
        let mut items = Vec::new();
        while let Some(value) = seq.next_element_seed(item)? {
            if items.len() == items.capacity() {
                // Grown here rather than by `push`, so that the spare capacity (up to
                // as much again as the items) is charged too.
                let more = items.capacity().max(4);
                self.budget.charge(more.saturating_mul(NODE_COST))?;
                items.reserve_exact(more);
            }
            items.push(value);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let entry = self.enter()?;
        let mut entries = Map::new();
        while let Some(key) = map.next_key_seed(Key(entry.budget))? {
            entry.budget.charge(match entries.len() {
                0 => MAP_COST,
                n if n < MAP_LEAF_ENTRIES => 0,
                _ => MAP_ENTRY_COST,
            })?;
            let value = map.next_value_seed(entry)?;
            // As serde_json: a repeated key keeps its last value.
            entries.insert(key, value);
        }
        Ok(Value::Object(entries))
    }
}

/// A mapping key: a string (a YAML scalar key reads as its text). Its text is charged
/// here; its slot is part of the mapping's leaves, which the mapping pays for.
#[derive(Debug, Clone, Copy)]
struct Key<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = String;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<String, E> {
        self.0.charge(heap_cost(value.len()))?;
        Ok(value.to_owned())
    }
}

/// The documents of a YAML stream, in order; empty documents are skipped.
///
/// # Errors
/// The first syntax error, with its position; [`DocumentError::TooLarge`] when the
/// documents together expand beyond the budget for this text (64 bytes per byte of
/// text plus 64 KiB, at most [`MAX_BUDGET`]), checked as they are read so that the
/// answer is immediate; [`DocumentError::TooDeep`] past [`MAX_YAML_DEPTH`] levels.
pub fn parse_yaml_documents(text: &str) -> Result<Vec<Value>, DocumentError> {
    let budget = Budget::new(text, MAX_YAML_DEPTH);
    let mut documents = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Node::root(&budget).deserialize(document).map_err(|err| {
            budget.error(|| {
                let location = err.location();
                SyntaxError {
                    message: err.to_string(),
                    line: location.as_ref().map(serde_yaml_ng::Location::line),
                    column: location.as_ref().map(serde_yaml_ng::Location::column),
                }
            })
        })?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

/// The documents of a JSON body: one object, or a list of them.
///
/// # Errors
/// A syntax error, with its position (nesting past 128 levels is one); or
/// [`DocumentError::TooLarge`] past the same budget as YAML, which JSON, having no
/// aliases, reaches only as text made of little but tiny objects, or past the cap.
pub fn parse_json_documents(text: &str) -> Result<Vec<Value>, DocumentError> {
    // serde_json's own recursion limit bounds the depth; ours stays out of its way.
    let budget = Budget::new(text, usize::MAX);
    let syntax = |err: serde_json::Error| SyntaxError {
        message: err.to_string(),
        line: Some(err.line()),
        column: Some(err.column()),
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = Node::root(&budget)
        .deserialize(&mut deserializer)
        .map_err(|err| budget.error(|| syntax(err)))?;
    // Trailing text after the value, as `serde_json::from_str` refuses it.
    deserializer
        .end()
        .map_err(|err| DocumentError::Syntax(syntax(err)))?;
    Ok(match value {
        Value::Array(items) => items,
        other => vec![other],
    })
}

/// Writes every whole number given as a float (`3.0`, `1e3`) as the integer it is: JSON
/// Schema counts it an integer, and so does Longin wherever it reads one.
pub fn whole_floats_as_integers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0)
                // Only where the integer is exact: within ±2^53.
                && f.abs() <= 9_007_199_254_740_992.0
            {
                #[allow(clippy::cast_possible_truncation)]
                let whole = f as i64;
                *n = Number::from(whole);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_floats_as_integers),
        Value::Object(map) => map.values_mut().for_each(whole_floats_as_integers),
        _ => {}
    }
}

/// An application as YAML (for `Accept: application/yaml` and the CLI).
///
/// # Errors
/// Only if the value cannot be represented, which does not happen for resources.
pub fn to_yaml<T: serde::Serialize>(value: &T) -> Result<String, serde_yaml_ng::Error> {
    serde_yaml_ng::to_string(value)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// The parse as it was before the budget: what the budgeted one must agree with.
    fn unbounded_yaml(text: &str) -> Result<Vec<Value>, serde_yaml_ng::Error> {
        let mut documents = Vec::new();
        for document in serde_yaml_ng::Deserializer::from_str(text) {
            let value = Value::deserialize(document)?;
            if !value.is_null() {
                documents.push(value);
            }
        }
        Ok(documents)
    }

    /// `a` is a list of `items` ones, `b` a list of `aliases` uses of it.
    fn alias_bomb(items: usize, aliases: usize) -> String {
        format!(
            "a: &x [{}]\nb: [{}]\n",
            vec!["1"; items].join(","),
            vec!["*x"; aliases].join(",")
        )
    }

    /// What a YAML text costs against the budget, parsed without a limit.
    fn estimate(text: &str) -> usize {
        let budget = Budget {
            limit: usize::MAX,
            remaining: Cell::new(usize::MAX),
            max_depth: usize::MAX,
            exceeded: Cell::new(None),
        };
        for document in serde_yaml_ng::Deserializer::from_str(text) {
            Node::root(&budget).deserialize(document).expect("valid");
        }
        usize::MAX - budget.remaining.get()
    }

    fn syntax_error(err: DocumentError) -> SyntaxError {
        match err {
            DocumentError::Syntax(err) => err,
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn yaml_stream_yields_each_document() {
        let docs = parse_yaml_documents("a: 1\n---\nb: 2\n---\n").expect("valid");
        assert_eq!(
            docs,
            vec![serde_json::json!({"a": 1}), serde_json::json!({"b": 2})]
        );
    }

    #[test]
    fn yaml_syntax_error_has_line_and_column() {
        let err =
            syntax_error(parse_yaml_documents("a: 1\nb: [1, 2\nc: 3\n").expect_err("invalid"));
        assert!(err.line.is_some() && err.column.is_some(), "{err:?}");
        assert!(err.line >= Some(2), "{err:?}");
    }

    #[test]
    fn json_body_may_be_one_document_or_a_list() {
        assert_eq!(parse_json_documents(r#"{"a":1}"#).expect("valid").len(), 1);
        assert_eq!(
            parse_json_documents(r#"[{"a":1},{"b":2}]"#)
                .expect("valid")
                .len(),
            2
        );
        let err = syntax_error(parse_json_documents("{\n  \"a\": }").expect_err("invalid"));
        assert_eq!((err.line, err.column), (Some(2), Some(8)));
        let err = syntax_error(parse_json_documents(r#"{"a":1} x"#).expect_err("trailing"));
        assert_eq!((err.line, err.column), (Some(1), Some(9)));
    }

    #[test]
    fn alias_bomb_is_refused_before_it_is_built() {
        // 25 KB of text standing for 25 million nodes.
        let bomb = alias_bomb(5000, 5000);
        assert!(bomb.len() < 26_000, "{}", bomb.len());
        let started = Instant::now();
        let err = parse_yaml_documents(&bomb).expect_err("refused");
        let took = started.elapsed();
        assert_eq!(
            err,
            DocumentError::TooLarge {
                limit: 64 * bomb.len() + (64 << 10)
            }
        );
        // Loose: the point is milliseconds, not the minutes the expansion takes.
        assert!(took < Duration::from_secs(1), "took {took:?}");
    }

    #[test]
    fn nested_aliases_are_refused() {
        // "Billion laughs": each level repeats the one before nine times.
        let mut text = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..10 {
            let previous = format!("*l{}", level - 1);
            text.push_str(&format!(
                "l{level}: &l{level} [{}]\n",
                [previous.as_str(); 9].join(", ")
            ));
        }
        let started = Instant::now();
        assert!(matches!(
            parse_yaml_documents(&text),
            Err(DocumentError::TooLarge { .. })
        ));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn long_string_aliased_many_times_is_refused() {
        // 100 KB of text: one 100 000-byte string, then 100 uses of it make 10 MB.
        let text = format!(
            "s: &s \"{}\"\nmany: [{}]\n",
            "x".repeat(100_000),
            vec!["*s"; 100].join(", ")
        );
        assert_eq!(
            parse_yaml_documents(&text),
            Err(DocumentError::TooLarge {
                limit: 64 * text.len() + (64 << 10)
            })
        );
        // The same string used a few times is fine.
        let few = format!("s: &s \"{}\"\nmany: [*s, *s, *s]\n", "x".repeat(100_000));
        assert_eq!(
            parse_yaml_documents(&few).expect("valid")[0]["many"][2]
                .as_str()
                .map(str::len),
            Some(100_000)
        );
    }

    #[test]
    fn bombs_spread_over_documents_add_up() {
        // Each document alone stays within its share; together they do not.
        let one = alias_bomb(20, 50);
        let stream = vec![one.as_str(); 100].join("---\n");
        assert!(parse_yaml_documents(&one).is_ok());
        assert!(matches!(
            parse_yaml_documents(&stream),
            Err(DocumentError::TooLarge { .. })
        ));
    }

    #[test]
    fn anchors_used_a_few_times_parse_as_before() {
        // Anchors belong to their document; each document here uses its own.
        let stream = r"
apiVersion: longin.io/v1
kind: Application
metadata: {name: one, labels: &labels {team: &team web, tier: *team}}
spec:
  image: &image 127.0.0.1:5000/demo/hello:1.0
  args: [*image, *image]
  env: &env
    - {name: GREETING, value: &greeting hi}
    - {name: AGAIN, value: *greeting}
extra: {labels: *labels, env: *env}
---
defaults: &defaults {image: 127.0.0.1:5000/demo/hello:1.0, replicas: 2}
apiVersion: longin.io/v1
kind: Application
metadata: {name: two}
spec:
  <<: *defaults
  again: *defaults
---
---
list: [&n 1, *n, *n, 2.5, .nan, ~, true, 'quoted', !!str 12, 18446744073709551615, -9223372036854775808]
";
        let parsed = parse_yaml_documents(stream).expect("valid");
        assert_eq!(parsed, unbounded_yaml(stream).expect("valid"));
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0]["extra"]["labels"]["team"], "web");
        assert_eq!(parsed[0]["spec"]["env"][1]["value"], "hi");
        assert_eq!(parsed[1]["spec"]["again"]["replicas"], 2);
    }

    #[test]
    fn examples_parse_as_before() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("examples") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).expect("read");
                assert_eq!(
                    parse_yaml_documents(&text).expect("valid"),
                    unbounded_yaml(&text).expect("valid"),
                    "{}",
                    path.display()
                );
                seen += 1;
            }
        }
        assert!(seen >= 3, "only {seen} examples");
    }

    /// One application as an operator writes it, named `name`.
    fn application(name: &str) -> String {
        format!(
            "apiVersion: longin.io/v1\nkind: Application\nmetadata:\n  name: {name}\n  \
             labels: {{team: web, tier: frontend}}\nspec:\n  image: 127.0.0.1:5000/longin/httpd:1.0\n  \
             command: [/bin/busybox, sh, -c]\n  args: ['exec /bin/busybox httpd -f -p 8080 -h /www']\n  \
             containerPort: 8080\n  env:\n    - {{name: GREETING, value: Hello}}\n    \
             - {{name: API_TOKEN, value: change-me, secret: true}}\n  healthCheck:\n    \
             http: {{path: /healthz}}\n    periodSeconds: 5\n  restartPolicy: Always\n"
        )
    }

    #[test]
    fn a_mebibyte_of_applications_fits_the_budget() {
        // The API's body limit filled with plain documents: they cost about 14 bytes
        // parsed per byte of text, under the cap.
        let mut stream = String::new();
        let mut count = 0;
        while stream.len() < (1 << 20) - 1000 {
            stream.push_str(&application(&format!("app-{count}")));
            stream.push_str("---\n");
            count += 1;
        }
        assert!(estimate(&stream) < MAX_BUDGET, "{}", estimate(&stream));
        let parsed = parse_yaml_documents(&stream).expect("valid");
        assert_eq!(parsed.len(), count);
        assert_eq!(parsed, unbounded_yaml(&stream).expect("valid"));
        let json = serde_json::to_string(&parsed).expect("json");
        assert_eq!(parse_json_documents(&json).expect("valid"), parsed);
    }

    #[test]
    fn many_small_mappings_cost_what_they_take() {
        // 6 bytes of text, one 640-byte B-tree leaf and more.
        assert!(estimate("{a: 1}") > 700, "{}", estimate("{a: 1}"));
        // One mapping of many entries: leaves split, a key's text is on the heap.
        let big = format!(
            "{{{}}}",
            (0..1000)
                .map(|i| format!("key{i}: 1"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert!(
            estimate(&big) > 1000 * (NODE_COST + 32 + 100),
            "{}",
            estimate(&big)
        );
        // Aliases of a small mapping are refused long before they take what the text
        // would make of them (about 700 bytes a use).
        let text = format!("m: &m {{a: 1}}\nmany: [{}]\n", vec!["*m"; 10_000].join(","));
        assert_eq!(
            parse_yaml_documents(&text),
            Err(DocumentError::TooLarge {
                limit: 64 * text.len() + (64 << 10)
            })
        );
    }

    #[test]
    fn json_past_the_cap_is_refused() {
        // Only a text larger than the API accepts gets there: 3 MiB of strings.
        let text = format!("[{}\"\"]", "\"\",".repeat(1 << 20));
        assert_eq!(
            parse_json_documents(&text),
            Err(DocumentError::TooLarge { limit: MAX_BUDGET })
        );
    }

    #[test]
    fn yaml_nesting_is_bounded() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(parse_yaml_documents(&nested(MAX_YAML_DEPTH)).is_ok());
        assert_eq!(
            parse_yaml_documents(&nested(MAX_YAML_DEPTH + 1)),
            Err(DocumentError::TooDeep {
                limit: MAX_YAML_DEPTH
            })
        );
        // Depth counts through aliases: the anchored list's own levels add to the
        // levels around each use of it (the top-level mapping is one).
        let aliased = |around: usize| {
            format!(
                "a: &a {}\nb: {}*a{}\n",
                nested(40),
                "[".repeat(around),
                "]".repeat(around)
            )
        };
        assert!(parse_yaml_documents(&aliased(20)).is_ok());
        assert_eq!(
            parse_yaml_documents(&aliased(30)),
            Err(DocumentError::TooDeep {
                limit: MAX_YAML_DEPTH
            })
        );
    }

    #[test]
    fn json_keeps_its_recursion_limit() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(parse_json_documents(&nested(100)).is_ok());
        let err = syntax_error(parse_json_documents(&nested(200)).expect_err("too deep"));
        assert!(err.message.contains("recursion limit"), "{err:?}");
    }
}
