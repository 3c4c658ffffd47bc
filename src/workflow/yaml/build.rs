//! Builds a [`Node`] tree from yaml-rust2's marked events.
//!
//! The builder keeps an explicit stack instead of recursing, so a deeply nested document cannot
//! overflow the stack; nesting and the total number of nodes (aliases count their whole copy)
//! are capped, which turns alias bombs and pathological inputs into one diagnostic.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::scalar::resolve_plain;
use super::{Document, Mark, Node, NodeKind, Resolved, Scalar, ScalarStyle, key_text};
use crate::workflow::diagnostic::Diagnostic;
use crate::workflow::source::{index, join};

/// Most nodes one file may expand to, aliases included.
pub const MAX_NODES: usize = 200_000;
/// Deepest nesting of mappings and sequences.
pub const MAX_DEPTH: usize = 128;

pub struct Builder<'f> {
    file: &'f str,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    root: Option<Node>,
    diagnostics: Vec<Diagnostic>,
}

enum Frame {
    Seq {
        mark: Mark,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        mark: Mark,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        /// Key text → where it was first written, for duplicate reporting.
        seen: HashMap<String, Mark>,
        key: Option<Node>,
        /// Values of `<<` keys, applied when the mapping ends.
        merges: Vec<Node>,
    },
}

/// Why building stopped early; the diagnostic has already been recorded.
struct Stop;

impl<'f> Builder<'f> {
    pub fn new(file: &'f str) -> Self {
        Builder {
            file,
            stack: Vec::new(),
            anchors: HashMap::new(),
            nodes: 0,
            root: None,
            diagnostics: Vec::new(),
        }
    }

    pub fn run(mut self, text: &str) -> Document {
        let mut parser = Parser::new_from_str(text);
        let mut documents = 0;
        loop {
            let (event, marker) = match parser.next_token() {
                Ok(next) => next,
                Err(error) => {
                    let mark = mark_of(error.marker());
                    self.error(
                        "yaml-syntax",
                        format!("invalid YAML: {}", error.info()),
                        mark,
                    );
                    self.root = None;
                    break;
                }
            };
            let mark = mark_of(&marker);
            let step = match event {
                Event::StreamEnd => break,
                Event::DocumentStart => {
                    documents += 1;
                    if documents > 1 {
                        self.error(
                            "yaml-syntax",
                            "a workflow file must hold a single YAML document",
                            mark,
                        );
                        break;
                    }
                    Ok(())
                }
                event => self.event(event, mark),
            };
            if step.is_err() {
                self.root = None;
                break;
            }
        }
        Document {
            root: self.root,
            diagnostics: self.diagnostics,
        }
    }

    fn event(&mut self, event: Event, mark: Mark) -> Result<(), Stop> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, mark)?;
                let node = scalar(text, style, tag.as_ref(), mark);
                self.finish(node, anchor)
            }
            Event::SequenceStart(anchor, _) => {
                self.enter(mark)?;
                self.stack.push(Frame::Seq {
                    mark,
                    anchor,
                    items: Vec::new(),
                });
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.enter(mark)?;
                self.stack.push(Frame::Map {
                    mark,
                    anchor,
                    entries: Vec::new(),
                    seen: HashMap::new(),
                    key: None,
                    merges: Vec::new(),
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq {
                    mark,
                    anchor,
                    items,
                }) => self.finish(
                    Node {
                        kind: NodeKind::Seq(items),
                        mark,
                    },
                    anchor,
                ),
                Some(Frame::Map {
                    mark,
                    anchor,
                    entries,
                    seen,
                    merges,
                    ..
                }) => {
                    let entries = self.merge(entries, seen, merges);
                    self.finish(
                        Node {
                            kind: NodeKind::Map(entries),
                            mark,
                        },
                        anchor,
                    )
                }
                None => Ok(()),
            },
            Event::Alias(id) => {
                let Some(original) = self.anchors.get(&id) else {
                    self.error(
                        "yaml-syntax",
                        "an alias cannot refer to the node that contains it",
                        mark,
                    );
                    return Err(Stop);
                };
                let copy = original.clone();
                self.count(size(&copy), mark)?;
                self.finish(copy, 0)
            }
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => Ok(()),
            Event::StreamEnd | Event::DocumentStart => Ok(()),
        }
    }

    fn enter(&mut self, mark: Mark) -> Result<(), Stop> {
        self.count(1, mark)?;
        if self.stack.len() >= MAX_DEPTH {
            self.error(
                "yaml-limit",
                format!("the document nests deeper than {MAX_DEPTH} levels"),
                mark,
            );
            return Err(Stop);
        }
        Ok(())
    }

    fn count(&mut self, nodes: usize, mark: Mark) -> Result<(), Stop> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > MAX_NODES {
            self.error(
                "yaml-limit",
                format!("the document expands to more than {MAX_NODES} nodes (check its aliases)"),
                mark,
            );
            return Err(Stop);
        }
        Ok(())
    }

    /// Hands a completed node to its parent (or makes it the root) and remembers its anchor.
    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), Stop> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let file = self.file;
        // The field path is only worked out when a duplicate needs it.
        let duplicate_path = match self.stack.last() {
            Some(Frame::Map {
                key: Some(k), seen, ..
            }) if !is_merge_key(k) && seen.contains_key(&key_text(k)) => {
                join(&self.path_of_top(), &key_text(k))
            }
            _ => String::new(),
        };
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                seen,
                key,
                merges,
                ..
            }) => match key.take() {
                None => *key = Some(node),
                Some(k) if is_merge_key(&k) => merges.push(node),
                Some(k) => {
                    let text = key_text(&k);
                    if let Some(first) = seen.get(&text) {
                        let diagnostic = Diagnostic::error(
                            "duplicate-key",
                            format!("duplicate key '{text}' in one mapping"),
                            &k.at(file),
                            &duplicate_path,
                        )
                        .with_related("first defined here", &first.at(file));
                        self.diagnostics.push(diagnostic);
                    } else {
                        seen.insert(text, k.mark);
                        entries.push((k, node));
                    }
                }
            },
        }
        Ok(())
    }

    /// The field path of the innermost open collection (`actions.build`), in the form
    /// the decoder uses, so YAML-level diagnostics point at the same paths.
    fn path_of_top(&self) -> String {
        let mut path = String::new();
        let outer = self.stack.len().saturating_sub(1);
        for frame in &self.stack[..outer] {
            match frame {
                Frame::Map { key: Some(k), .. } => path = join(&path, &key_text(k)),
                Frame::Seq { items, .. } => path = index(&path, items.len()),
                Frame::Map { key: None, .. } => {}
            }
        }
        path
    }

    /// Applies `<<` merge keys: entries of the merged mappings are added unless the mapping
    /// already has the key; explicit keys win, and earlier merged mappings win over later ones.
    fn merge(
        &mut self,
        mut entries: Vec<(Node, Node)>,
        mut seen: HashMap<String, Mark>,
        merges: Vec<Node>,
    ) -> Vec<(Node, Node)> {
        for source in merges {
            let maps = match source.kind {
                NodeKind::Map(map) => vec![map],
                NodeKind::Seq(items) => {
                    let mut maps = Vec::new();
                    for item in items {
                        match item.kind {
                            NodeKind::Map(map) => maps.push(map),
                            _ => self.merge_error(item.mark),
                        }
                    }
                    maps
                }
                NodeKind::Scalar(_) => {
                    self.merge_error(source.mark);
                    Vec::new()
                }
            };
            for (key, value) in maps.into_iter().flatten() {
                let text = key_text(&key);
                if let std::collections::hash_map::Entry::Vacant(slot) = seen.entry(text) {
                    slot.insert(key.mark);
                    entries.push((key, value));
                }
            }
        }
        entries
    }

    fn merge_error(&mut self, mark: Mark) {
        self.error(
            "yaml-merge",
            "the value of a '<<' merge key must be a mapping or a list of mappings",
            mark,
        );
    }

    fn error(&mut self, code: &str, message: impl Into<String>, mark: Mark) {
        self.diagnostics
            .push(Diagnostic::error(code, message, &mark.at(self.file), ""));
    }
}

fn is_merge_key(key: &Node) -> bool {
    matches!(&key.kind, NodeKind::Scalar(s) if s.style == ScalarStyle::Plain && s.text == "<<")
}

/// yaml-rust2 reports 1-based lines and 0-based columns.
fn mark_of(marker: &Marker) -> Mark {
    let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    Mark {
        line: clamp(marker.line().max(1)),
        column: clamp(marker.col().saturating_add(1)),
    }
}

fn scalar(text: String, style: TScalarStyle, tag: Option<&Tag>, mark: Mark) -> Node {
    let style = match style {
        TScalarStyle::Plain => ScalarStyle::Plain,
        TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => ScalarStyle::Quoted,
        TScalarStyle::Literal | TScalarStyle::Folded => ScalarStyle::Block,
    };
    let value = match tag.map(|t| t.suffix.as_str()) {
        Some("str") => Resolved::String,
        // Other explicit core tags are resolved like plain text of any style.
        Some("int" | "float" | "bool" | "null") => resolve_plain(&text),
        _ if style == ScalarStyle::Plain => resolve_plain(&text),
        _ => Resolved::String,
    };
    Node {
        kind: NodeKind::Scalar(Scalar { text, style, value }),
        mark,
    }
}

/// Number of nodes in a tree; depth is bounded by [`MAX_DEPTH`], so recursion is safe.
fn size(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Scalar(_) => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(size).sum::<usize>(),
        NodeKind::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| size(k) + size(v))
                .sum::<usize>()
        }
    }
}
