//! The decoder never panics: valid workflow files mangled in many ways (truncated, bytes
//! replaced by YAML punctuation, lines deleted or duplicated, nesting deepened) must decode to
//! some diagnostics, never to a panic.

use proptest::prelude::*;

use super::{HELLO, RELEASE, SITE, decode, files};

const CORPUS: [&str; 3] = [HELLO, RELEASE, SITE];
/// Characters that change YAML structure the most.
const PUNCTUATION: &[u8] = b":-[]{}&*!|>'\"#%@`,?<\n\t ~0{}";

fn decode_text(text: &str) {
    let loaded = decode(&files(&[("fuzz.yaml", text), ("ops/again.yaml", text)]));
    // Touch the result so the whole model is built and kept.
    let _ = serde_json::to_string(&loaded.def).expect("the model serialises");
}

/// Cuts `text` at the nearest char boundary at or before `at`.
fn cut(text: &str, at: usize) -> &str {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    &text[..at]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn truncated_files(which in 0..CORPUS.len(), at in 0usize..4000) {
        decode_text(cut(CORPUS[which], at));
    }

    #[test]
    fn replaced_bytes(which in 0..CORPUS.len(), edits in prop::collection::vec((0usize..4000, 0..PUNCTUATION.len()), 1..8)) {
        let mut bytes = CORPUS[which].as_bytes().to_vec();
        for (at, with) in edits {
            let at = at % bytes.len();
            // Only replace ASCII bytes, so the text stays UTF-8.
            if bytes[at].is_ascii() {
                bytes[at] = PUNCTUATION[with];
            }
        }
        let text = String::from_utf8(bytes).expect("ASCII replacements keep UTF-8");
        decode_text(&text);
    }

    #[test]
    fn deleted_and_repeated_lines(which in 0..CORPUS.len(), drops in prop::collection::vec(0usize..120, 0..6), repeat in 0usize..120, indent in 0usize..6) {
        let lines: Vec<&str> = CORPUS[which].lines().collect();
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if drops.contains(&i) {
                continue;
            }
            out.push(line.to_string());
            if i == repeat {
                out.push(format!("{}{}", " ".repeat(indent), line));
            }
        }
        decode_text(&out.join("\n"));
    }

    #[test]
    fn arbitrary_text(text in "\\PC{0,200}") {
        decode_text(&text);
    }
}

#[test]
fn deep_nesting_and_aliases_do_not_panic() {
    for depth in [10, 127, 128, 129, 1_000, 50_000] {
        decode_text(&format!(
            "tasks: {}{}",
            "[".repeat(depth),
            "]".repeat(depth)
        ));
        decode_text(&format!("tasks: {}", "{a: ".repeat(depth)));
        let block: String = (0..depth.min(2_000))
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect();
        decode_text(&block);
    }
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x]\n");
    for i in 0..30 {
        bomb.push_str(&format!("b{i}: &a [*a, *a, *a, *a, *a, *a, *a, *a]\n"));
    }
    decode_text(&bomb);
    decode_text("x: &a { <<: *a }\n");
    decode_text("x: &a [*a]\n");
}
