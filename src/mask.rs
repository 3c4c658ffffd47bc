//! Masking of secret values (WF §16.3): the one implementation every path uses — the runner's
//! capture and error messages, the server's log store, errors and step inputs as the engine
//! stores them, every API view of jobs, tasks and triggers, and `stroem run`'s output.
//!
//! A [`Masker`] is built once from a mask set and applied to many texts. Every occurrence of a
//! value, also inside a longer word, is replaced by [`MASK`]. A multi-line value is masked line
//! by line, because a log line never holds the whole of it. Values shorter than [`MIN_LEN`]
//! characters are not masked (validation warns about them): masking `no` would shred every
//! text.
//!
//! Occurrences may overlap (`abcd` and `cdef` in `xabcdefx`) or one value may contain another,
//! so the masker finds *every* occurrence of every value in one pass over the text
//! (Aho–Corasick, overlapping matches), merges the byte ranges they cover, and replaces each
//! merged run once: no fragment of any value survives, whatever order the values come in.
//!
//! *Invariant*: this module depends on nothing else of Strøm's, so every layer can use it.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde_json::{Map, Value};

/// What a masked value is replaced with.
pub const MASK: &str = "••••••";

/// Values (and lines of multi-line values) shorter than this many characters are not masked.
pub const MIN_LEN: usize = 4;

/// A prepared mask set: the maskable pieces of its values and a matcher over all of them.
/// Cheap to clone: both are shared.
///
/// `Debug` prints how many pieces there are, never the pieces.
#[derive(Clone, Default)]
pub struct Masker {
    /// Distinct single-line pieces of at least [`MIN_LEN`] characters, sorted.
    pieces: Arc<[String]>,
    /// `None` when there is nothing to mask.
    matcher: Option<AhoCorasick>,
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masker")
            .field("pieces", &self.pieces.len())
            .finish()
    }
}

impl PartialEq for Masker {
    fn eq(&self, other: &Masker) -> bool {
        self.pieces == other.pieces
    }
}

impl Masker {
    /// A masker for `values`. Each value is split into lines (a trailing `\r` dropped); lines
    /// shorter than [`MIN_LEN`] characters, and empty values, mask nothing.
    pub fn new<I, S>(values: I) -> Masker
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let pieces: BTreeSet<String> = values
            .into_iter()
            .flat_map(|value| pieces_of(value.as_ref()).collect::<Vec<_>>())
            .collect();
        Masker::from_pieces(pieces.into_iter().collect())
    }

    /// A masker for every string leaf of `value` (workspace secrets are nested maps).
    pub fn of_leaves(value: &Value) -> Masker {
        let mut leaves = Vec::new();
        string_leaves(value, &mut leaves);
        Masker::new(leaves)
    }

    fn from_pieces(pieces: Vec<String>) -> Masker {
        let matcher = if pieces.is_empty() {
            None
        } else {
            // `Standard` is the match kind that reports overlapping matches.
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(&pieces)
                .ok()
        };
        // A matcher that cannot be built (far beyond any real mask set) must not mean that
        // nothing is masked: `mask` then falls back to a plain search per piece.
        Masker {
            pieces: pieces.into(),
            matcher,
        }
    }

    /// This masker and `other` together.
    pub fn union(&self, other: &Masker) -> Masker {
        if other.pieces.is_empty() {
            return self.clone();
        }
        if self.pieces.is_empty() {
            return other.clone();
        }
        let pieces: BTreeSet<String> = self
            .pieces
            .iter()
            .chain(other.pieces.iter())
            .cloned()
            .collect();
        Masker::from_pieces(pieces.into_iter().collect())
    }

    /// True when this masker changes no text.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The pieces this masker replaces: each a line of a value, at least [`MIN_LEN`] long.
    pub fn pieces(&self) -> &[String] {
        &self.pieces[..]
    }

    /// The byte ranges of `text` covered by some piece, merged where they overlap, in order.
    fn covered(&self, text: &str) -> Vec<(usize, usize)> {
        let mut ranges: Vec<(usize, usize)> = match &self.matcher {
            Some(matcher) => matcher
                .find_overlapping_iter(text)
                .map(|found| (found.start(), found.end()))
                .collect(),
            None => self
                .pieces
                .iter()
                .flat_map(|piece| text.match_indices(piece.as_str()))
                .map(|(start, piece)| (start, start + piece.len()))
                .collect(),
        };
        if ranges.len() < 2 {
            return ranges;
        }
        ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                // Overlapping runs become one; adjacent values stay two masks.
                Some(last) if start < last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }

    /// `text` with every covered run replaced by one [`MASK`]; borrowed when nothing matched.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.pieces.is_empty() {
            return Cow::Borrowed(text);
        }
        let covered = self.covered(text);
        if covered.is_empty() {
            return Cow::Borrowed(text);
        }
        // Matches of valid UTF-8 pieces in valid UTF-8 text start and end on char boundaries.
        let mut out = String::with_capacity(text.len());
        let mut written = 0;
        for (start, end) in covered {
            out.push_str(&text[written..start]);
            out.push_str(MASK);
            written = end;
        }
        out.push_str(&text[written..]);
        Cow::Owned(out)
    }

    /// [`Masker::mask`] of an optional text, owned.
    pub fn mask_opt(&self, text: Option<&str>) -> Option<String> {
        text.map(|text| self.mask(text).into_owned())
    }

    /// Whether some piece occurs in `text`.
    pub fn matches(&self, text: &str) -> bool {
        match &self.matcher {
            Some(matcher) => matcher.is_match(text),
            None => self
                .pieces
                .iter()
                .any(|piece| text.contains(piece.as_str())),
        }
    }

    /// `value` with every string masked, object keys included. A number whose text contains
    /// a piece becomes the string [`MASK`], since a secret can be all digits.
    pub fn mask_value(&self, value: &Value) -> Value {
        let mut value = value.clone();
        self.mask_value_in_place(&mut value);
        value
    }

    /// [`Masker::mask_value`] in place; whether anything changed.
    pub fn mask_value_in_place(&self, value: &mut Value) -> bool {
        if self.pieces.is_empty() {
            return false;
        }
        match value {
            Value::String(text) => match self.mask(text) {
                Cow::Borrowed(_) => false,
                Cow::Owned(masked) => {
                    *text = masked;
                    true
                }
            },
            Value::Number(number) => {
                let changed = self.matches(&number.to_string());
                if changed {
                    *value = Value::String(MASK.to_owned());
                }
                changed
            }
            Value::Array(items) => items.iter_mut().fold(false, |changed, item| {
                self.mask_value_in_place(item) | changed
            }),
            Value::Object(map) => {
                let rename = map.keys().any(|key| self.matches(key));
                if rename {
                    let entries = std::mem::take(map);
                    *map = entries
                        .into_iter()
                        .map(|(key, item)| (self.mask(&key).into_owned(), item))
                        .collect::<Map<String, Value>>();
                }
                map.values_mut().fold(rename, |changed, item| {
                    self.mask_value_in_place(item) | changed
                })
            }
            Value::Bool(_) | Value::Null => false,
        }
    }

    /// The pieces that occur in `text`, added to `found`.
    pub fn collect_found(&self, text: &str, found: &mut BTreeSet<String>) {
        if self.pieces.is_empty() {
            return;
        }
        match &self.matcher {
            Some(matcher) => {
                for hit in matcher.find_overlapping_iter(text) {
                    found.insert(self.pieces[hit.pattern().as_usize()].clone());
                }
            }
            None => found.extend(
                self.pieces
                    .iter()
                    .filter(|piece| text.contains(piece.as_str()))
                    .cloned(),
            ),
        }
    }

    /// The pieces that occur anywhere in `value` (strings, keys and numbers' text).
    pub fn collect_found_in_value(&self, value: &Value, found: &mut BTreeSet<String>) {
        match value {
            Value::String(text) => self.collect_found(text, found),
            Value::Number(number) => self.collect_found(&number.to_string(), found),
            Value::Array(items) => {
                for item in items {
                    self.collect_found_in_value(item, found);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    self.collect_found(key, found);
                    self.collect_found_in_value(item, found);
                }
            }
            Value::Bool(_) | Value::Null => {}
        }
    }
}

/// The maskable pieces of one value: its lines, without a trailing `\r`, at least [`MIN_LEN`]
/// characters long.
fn pieces_of(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| line.chars().count() >= MIN_LEN)
        .map(str::to_owned)
}

/// Whether `value` (or one of its lines) is long enough to be masked at all.
pub fn is_maskable(value: &str) -> bool {
    pieces_of(value).next().is_some()
}

/// Every string leaf of `value`, in order (secrets may be nested maps and lists).
pub fn string_leaves(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|item| string_leaves(item, out)),
        Value::Object(map) => map.values().for_each(|item| string_leaves(item, out)),
        _ => {}
    }
}

/// What is shown when what must be masked cannot be known: [`MASK`] for any value but null.
/// Showing nothing of a value is the one safe answer then (fail closed).
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        _ => Value::String(MASK.to_owned()),
    }
}

/// [`redact`] for an optional text.
pub fn redact_text(text: Option<&str>) -> Option<String> {
    text.map(|_| MASK.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn mask(text: &str, values: &[&str]) -> String {
        Masker::new(values).mask(text).into_owned()
    }

    #[test]
    fn replaces_every_occurrence_also_inside_words() {
        assert_eq!(
            mask("token=hunter22 and xhunter22x", &["hunter22"]),
            "token=•••••• and x••••••x"
        );
    }

    #[test]
    fn text_without_secrets_is_borrowed() {
        let masker = Masker::new(["hunter22"]);
        assert!(matches!(masker.mask("nothing here"), Cow::Borrowed(_)));
        assert!(matches!(Masker::default().mask("x"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_value_containing_another_is_masked_whole() {
        assert_eq!(
            mask("pw: secret-extended!", &["secret", "secret-extended"]),
            "pw: ••••••!"
        );
        assert_eq!(
            mask("pw: secret-extended!", &["secret-extended", "secret"]),
            "pw: ••••••!"
        );
    }

    #[test]
    fn overlapping_values_leave_no_fragment_in_either_order() {
        assert_eq!(mask("xabcdefx", &["abcd", "cdef"]), "x••••••x");
        assert_eq!(mask("xabcdefx", &["cdef", "abcd"]), "x••••••x");
        assert_eq!(mask("abcdwxyz1234", &["abcdwxyz", "wxyz1234"]), MASK);
        assert_eq!(mask("aaaaa", &["aaaa"]), MASK);
        // A chain of overlaps is one run.
        assert_eq!(
            mask("-abcdefghij-", &["abcd", "cdefgh", "ghij"]),
            "-••••••-"
        );
    }

    #[test]
    fn adjacent_values_are_masked_separately() {
        assert_eq!(mask("abcdwxyz", &["abcd", "wxyz"]), format!("{MASK}{MASK}"));
    }

    #[test]
    fn multi_line_values_are_masked_line_by_line() {
        let masker = Masker::new(["-----BEGIN KEY-----\r\nAAAABBBBCCCC\nDDDDEEEE\n"]);
        assert_eq!(masker.mask("-----BEGIN KEY-----"), MASK);
        assert_eq!(masker.mask("line AAAABBBBCCCC end"), "line •••••• end");
        assert_eq!(masker.mask("DDDDEEEE"), MASK);
        assert_eq!(masker.pieces().len(), 3);
    }

    #[test]
    fn empty_and_short_values_mask_nothing() {
        let masker = Masker::new(["no", "abc", "", "\n\n", "ab\ncd"]);
        assert!(masker.is_empty());
        assert_eq!(masker.mask("yes no abc"), "yes no abc");
        assert!(!is_maskable("abc"));
        assert!(is_maskable("ab\nabcd"));
        // Characters, not bytes, count: four two-byte characters are enough.
        assert_eq!(mask("øøøøø", &["øøøø"]), MASK);
        assert_eq!(mask("ææ pässwörd øø", &["pässwörd"]), "ææ •••••• øø");
    }

    #[test]
    fn json_values_are_masked_recursively_keys_and_numbers_included() {
        let masker = Masker::new(["hunter22", "12345678"]);
        let value = json!({
            "user": "bob",
            "auth": {"password": "hunter22", "list": ["a", "xhunter22x", 7]},
            "hunter22": true,
            "pin": 12345678,
            "big": 9_999_999_999_u64,
            "none": null,
        });
        assert_eq!(
            masker.mask_value(&value),
            json!({
                "user": "bob",
                "auth": {"password": MASK, "list": ["a", "x••••••x", 7]},
                "••••••": true,
                "pin": MASK,
                "big": 9_999_999_999_u64,
                "none": null,
            })
        );
        let mut untouched = json!({"a": ["b", 1]});
        assert!(!masker.mask_value_in_place(&mut untouched));
    }

    #[test]
    fn found_pieces_are_those_that_occur() {
        let masker = Masker::new(["hunter22", "s3cr3t-token", "not-there"]);
        let mut found = BTreeSet::new();
        masker.collect_found_in_value(&json!({"a": "xhunter22", "s3cr3t-token": 1}), &mut found);
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            ["hunter22", "s3cr3t-token"]
        );
    }

    #[test]
    fn union_redaction_and_debug() {
        let both = Masker::new(["aaaa1"]).union(&Masker::new(["bbbb2"]));
        assert_eq!(both.mask("aaaa1 bbbb2"), format!("{MASK} {MASK}"));
        assert_eq!(redact(&json!({"a": 1})), json!(MASK));
        assert_eq!(redact(&Value::Null), Value::Null);
        assert_eq!(format!("{both:?}"), "Masker { pieces: 2 }");
    }

    #[test]
    fn many_values_and_long_texts() {
        let values: Vec<String> = (0..500).map(|i| format!("secret-{i:04}-value")).collect();
        let masker = Masker::new(&values);
        let text = format!("{} and {}", "x".repeat(100_000), values[499]);
        assert!(masker.mask(&text).ends_with(&format!("and {MASK}")));
    }
}
