//! Masking of secret values in log lines and error messages (WF §16.3).
//!
//! Every occurrence of a mask value, also inside longer words, is replaced by [`MASK`]. A
//! multi-line value is masked line by line, because a log line can never contain the whole
//! value. Occurrences may overlap (`abcd` and `cdef` in `abcdef`), so the masker first marks
//! every byte any value covers and then replaces each covered run once: no fragment of any
//! value survives, whichever order the values come in.

use std::borrow::Cow;

/// What a masked value is replaced with.
pub const MASK: &str = "••••••";

/// Values shorter than this are not masked (WF §16.3; validation warns about them), because
/// masking `a` or `no` would make every log unreadable.
pub const MIN_MASK_LEN: usize = 4;

/// Masks `line` with `values`. Builds a [`Masker`] per call; reuse one for many lines.
pub fn mask<'a>(line: &'a str, values: &[String]) -> Cow<'a, str> {
    Masker::new(values).mask(line)
}

/// A prepared mask set: the single-line pieces of every value, longest first, deduplicated.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    pieces: Vec<String>,
}

impl Masker {
    pub fn new(values: &[String]) -> Self {
        let mut pieces: Vec<String> = values
            .iter()
            .flat_map(|value| value.split('\n'))
            .map(|piece| piece.strip_suffix('\r').unwrap_or(piece))
            .filter(|piece| piece.chars().count() >= MIN_MASK_LEN)
            .map(str::to_owned)
            .collect();
        // Longest first, so a value that contains another is found as a whole; the coverage
        // merge below makes the result correct anyway, this only keeps the search short.
        pieces.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        pieces.dedup();
        Masker { pieces }
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Replaces every covered run of bytes with one [`MASK`].
    pub fn mask<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let mut covered: Vec<(usize, usize)> = Vec::new();
        for piece in &self.pieces {
            let mut from = 0;
            while let Some(found) = line[from..].find(piece.as_str()) {
                let start = from + found;
                covered.push((start, start + piece.len()));
                // Step one character, not the whole piece, so overlapping occurrences of the
                // same value (`aaaa` in `aaaaa`) are all covered.
                let step = line[start..].chars().next().map_or(1, char::len_utf8);
                from = start + step;
            }
        }
        if covered.is_empty() {
            return Cow::Borrowed(line);
        }
        covered.sort_unstable();
        let mut out = String::with_capacity(line.len());
        let mut written = 0;
        let mut runs = covered.into_iter().peekable();
        while let Some((start, mut end)) = runs.next() {
            while let Some(&(next_start, next_end)) = runs.peek() {
                if next_start >= end {
                    break;
                }
                end = end.max(next_end);
                runs.next();
            }
            out.push_str(&line[written..start]);
            out.push_str(MASK);
            written = end;
        }
        out.push_str(&line[written..]);
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(list: &[&str]) -> Vec<String> {
        list.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn replaces_every_occurrence_also_inside_words() {
        let masked = mask("token=hunter22 and xhunter22x", &values(&["hunter22"]));
        assert_eq!(masked, "token=•••••• and x••••••x");
    }

    #[test]
    fn line_without_secrets_is_borrowed() {
        let masker = Masker::new(&values(&["hunter22"]));
        assert!(matches!(masker.mask("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn longer_value_containing_a_shorter_one_is_masked_whole() {
        let masked = mask(
            "pw: secret-extended!",
            &values(&["secret", "secret-extended"]),
        );
        assert_eq!(masked, "pw: ••••••!");
    }

    #[test]
    fn overlapping_values_leave_no_fragment() {
        assert_eq!(mask("xabcdefx", &values(&["abcd", "cdef"])), "x••••••x");
        assert_eq!(mask("aaaaa", &values(&["aaaa"])), "••••••");
    }

    #[test]
    fn adjacent_values_are_masked_separately() {
        assert_eq!(mask("abcdwxyz", &values(&["abcd", "wxyz"])), "••••••••••••");
    }

    #[test]
    fn multi_line_values_are_masked_line_by_line() {
        let key = "-----BEGIN KEY-----\r\nAAAABBBBCCCC\nDDDDEEEE\n";
        let masker = Masker::new(&values(&[key]));
        assert_eq!(masker.mask("-----BEGIN KEY-----"), MASK);
        assert_eq!(masker.mask("line AAAABBBBCCCC end"), "line •••••• end");
        assert_eq!(masker.mask("DDDDEEEE"), MASK);
    }

    #[test]
    fn short_values_are_not_masked() {
        assert_eq!(
            mask("yes no abc", &values(&["no", "abc", ""])),
            "yes no abc"
        );
    }

    #[test]
    fn multibyte_text_around_and_inside_values() {
        assert_eq!(
            mask("ææ pässwörd øø", &values(&["pässwörd"])),
            "ææ •••••• øø"
        );
        assert_eq!(mask("øøøøø", &values(&["øøøø"])), "••••••");
    }
}
