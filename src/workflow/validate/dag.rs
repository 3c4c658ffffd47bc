//! The flow DAG (WF §18.2 rules 22, 23): `depends_on` names steps of the same flow, never the
//! step itself, and the dependencies form no cycle. Also the transitive-dependency closure the
//! template checks use (a template may only read steps that finished before it renders).

use std::collections::{BTreeSet, HashSet};

use super::{Checker, steps};
use crate::workflow::diagnostic::{Diagnostic, suggest};
use crate::workflow::model::{Map, Step};
use crate::workflow::source::{index, join};

pub(super) fn check(c: &mut Checker<'_>) {
    let def = c.def;
    for (task, name, step, path) in steps(def) {
        let flow = &def.tasks[task].flow;
        let mut seen = HashSet::new();
        for (i, dep) in step.depends_on.iter().enumerate() {
            let at = index(&join(&path, "depends_on"), i);
            if dep == name {
                c.error(
                    "self-dependency",
                    format!("step '{name}' depends on itself"),
                    &at,
                );
            } else if !flow.contains_key(dep) {
                let others = flow.keys().map(String::as_str).filter(|s| *s != name);
                let message = match suggest(dep, others) {
                    Some(close) => {
                        format!("depends_on names unknown step '{dep}' — did you mean '{close}'?")
                    }
                    None => format!("depends_on names unknown step '{dep}' of task '{task}'"),
                };
                c.error("unknown-dependency", message, &at);
            }
            if !seen.insert(dep) {
                let message = format!("step '{dep}' is listed twice in depends_on");
                c.warning("duplicate-dependency", message, &at);
            }
        }
    }
    for (task, t) in &def.tasks {
        check_cycles(c, task, &t.flow);
    }
}

/// Reports each dependency cycle of one flow once, as `a → b → c → a` read "a depends on b".
fn check_cycles(c: &mut Checker<'_>, task: &str, flow: &Map<Step>) {
    let names: Vec<&str> = flow.keys().map(String::as_str).collect();
    // Self-dependencies are reported on their own; they are not cycles worth a chain.
    let edges: Vec<Vec<usize>> = flow
        .values()
        .enumerate()
        .map(|(own, step)| {
            step.depends_on
                .iter()
                .filter_map(|dep| flow.get_index_of(dep))
                .filter(|&dep| dep != own)
                .collect()
        })
        .collect();
    let flow_path = join(&join("tasks", task), "flow");
    for cycle in find_cycles(&edges) {
        let chain: Vec<&str> = cycle
            .iter()
            .chain(cycle.first())
            .map(|&i| names[i])
            .collect();
        let message = format!("dependency cycle: {}", chain.join(" → "));
        let edge_path = |from: &str, to: &str| {
            let position = flow[from]
                .depends_on
                .iter()
                .position(|d| d == to)
                .unwrap_or(0);
            index(&join(&join(&flow_path, from), "depends_on"), position)
        };
        let first = edge_path(chain[0], chain[1]);
        let mut diagnostic = Diagnostic::error("dag-cycle", message, &c.at(&first), &first);
        for pair in chain.windows(2).skip(1) {
            let at = c.at(&edge_path(pair[0], pair[1]));
            diagnostic =
                diagnostic.with_related(format!("'{}' depends on '{}'", pair[0], pair[1]), &at);
        }
        c.push(diagnostic);
    }
}

/// Finds cycles of a directed graph given as adjacency lists, each once (by its set of nodes),
/// as node sequences `[a, b, c]` meaning `a → b → c → a`, starting from the earliest node found.
pub(crate) fn find_cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    fn visit(
        node: usize,
        edges: &[Vec<usize>],
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
        found: &mut Vec<Vec<usize>>,
        seen: &mut HashSet<BTreeSet<usize>>,
    ) {
        marks[node] = Mark::OnStack;
        stack.push(node);
        for &next in &edges[node] {
            match marks[next] {
                Mark::New => visit(next, edges, marks, stack, found, seen),
                Mark::OnStack => {
                    let start = stack.iter().position(|&n| n == next).unwrap_or(0);
                    let cycle = stack[start..].to_vec();
                    if seen.insert(cycle.iter().copied().collect()) {
                        found.push(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[node] = Mark::Done;
    }
    let mut marks = vec![Mark::New; edges.len()];
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    for node in 0..edges.len() {
        if marks[node] == Mark::New {
            visit(
                node,
                edges,
                &mut marks,
                &mut Vec::new(),
                &mut found,
                &mut seen,
            );
        }
    }
    found
}

/// Every step `step` depends on, directly or through other steps (unknown names ignored).
pub(crate) fn transitive_dependencies<'a>(flow: &'a Map<Step>, step: &str) -> HashSet<&'a str> {
    let mut found = HashSet::new();
    let mut queue: Vec<&str> = flow
        .get(step)
        .map(|s| s.depends_on.iter().map(String::as_str).collect())
        .unwrap_or_default();
    while let Some(next) = queue.pop() {
        if let Some((name, dep)) = flow.get_key_value(next)
            && found.insert(name.as_str())
        {
            queue.extend(dep.depends_on.iter().map(String::as_str));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::find_cycles;

    #[test]
    fn finds_each_cycle_once_in_order() {
        // 0 → 1 → 2 → 0, and 3 → 3.
        let edges = vec![vec![1], vec![2], vec![0], vec![3]];
        assert_eq!(find_cycles(&edges), vec![vec![0, 1, 2], vec![3]]);
    }

    #[test]
    fn a_dag_has_no_cycles() {
        let edges = vec![vec![1, 2], vec![2], vec![]];
        assert!(find_cycles(&edges).is_empty());
    }
}
