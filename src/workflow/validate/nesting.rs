//! Task actions between tasks (WF §6.7, §18.2 rule 28): a task must not reach itself through
//! `type: task` actions in its flow or its hooks, and child jobs nest at most 10 deep.

use std::collections::HashMap;

use super::dag::find_cycles;
use super::{Checker, action_path, hooks, resolve, steps};
use crate::workflow::diagnostic::Diagnostic;
use crate::workflow::model::ActionKind;
use crate::workflow::source::join;

/// The deepest child job allowed; the top-level job is depth 0.
const MAX_DEPTH: usize = 10;

/// One task action: `from` runs `to`, written at `path`, from a flow step or a hook.
struct Edge {
    from: usize,
    to: usize,
    path: String,
    in_flow: bool,
}

pub(super) fn check(c: &mut Checker<'_>) {
    let edges = collect(c);
    let count = c.def.tasks.len();
    let mut all = vec![Vec::new(); count];
    let mut flow_only = vec![Vec::new(); count];
    for edge in &edges {
        all[edge.from].push(edge.to);
        if edge.in_flow {
            flow_only[edge.from].push(edge.to);
        }
    }
    let name = |i: usize| c.def.tasks.get_index(i).map_or("", |(n, _)| n.as_str());
    let edge_path = |from: usize, to: usize| {
        edges
            .iter()
            .find(|e| e.from == from && e.to == to)
            .map(|e| e.path.clone())
            .unwrap_or_default()
    };
    let mut found = Vec::new();
    for cycle in find_cycles(&all) {
        let chain: Vec<usize> = cycle.iter().chain(cycle.first()).copied().collect();
        let names: Vec<&str> = chain.iter().map(|&i| name(i)).collect();
        let message = format!("task action cycle: {}", names.join(" → "));
        let first = edge_path(chain[0], chain[1]);
        let mut diagnostic = Diagnostic::error("task-cycle", message, &c.at(&first), &first);
        for pair in chain.windows(2).skip(1) {
            let at = c.at(&edge_path(pair[0], pair[1]));
            let note = format!("'{}' runs task '{}'", name(pair[0]), name(pair[1]));
            diagnostic = diagnostic.with_related(note, &at);
        }
        found.push(diagnostic);
    }
    // Depth only counts child jobs (flow steps); hook jobs start a new chain.
    let chains = longest_chains(&flow_only);
    let targets: Vec<bool> = (0..count)
        .map(|i| {
            flow_only
                .iter()
                .enumerate()
                .any(|(from, to)| to.contains(&i) && chains[from].len() > MAX_DEPTH + 1)
        })
        .collect();
    for (task, chain) in chains.iter().enumerate() {
        // Report a too-deep chain once, at the task that starts it.
        if chain.len() > MAX_DEPTH + 1 && !targets[task] {
            let names: Vec<&str> = chain.iter().map(|&i| name(i)).collect();
            let message = format!(
                "task actions nest {} levels deep ({}); the maximum is {MAX_DEPTH}",
                chain.len() - 1,
                names.join(" → ")
            );
            let first = edge_path(chain[0], chain[1]);
            found.push(Diagnostic::error(
                "nesting-too-deep",
                message,
                &c.at(&first),
                &first,
            ));
        }
    }
    for diagnostic in found {
        c.push(diagnostic);
    }
}

/// Every task action between tasks of the workspace, with where it was written.
fn collect(c: &Checker<'_>) -> Vec<Edge> {
    let def = c.def;
    let index = |task: &str| def.tasks.get_index_of(task);
    let mut edges = Vec::new();
    let owners = steps(def)
        .map(|(task, _, step, path)| (Some(task), &step.action, path, true))
        .chain(
            hooks(def)
                .into_iter()
                .map(|site| (site.task, &site.hook.action, site.path, false)),
        );
    for (task, action_ref, owner, in_flow) in owners {
        let (Some(from), Some(action)) = (task.and_then(index), resolve(def, action_ref)) else {
            continue;
        };
        if let ActionKind::Task(target) = &action.kind
            && let Some(to) = index(&target.task)
        {
            edges.push(Edge {
                from,
                to,
                path: join(&action_path(&owner, action_ref), "task"),
                in_flow,
            });
        }
    }
    edges
}

/// For each node, the longest path starting there (the node included), ignoring edges that
/// close a cycle (those are reported as cycles).
fn longest_chains(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    fn visit(
        node: usize,
        edges: &[Vec<usize>],
        memo: &mut HashMap<usize, Vec<usize>>,
        on_stack: &mut Vec<bool>,
    ) -> Vec<usize> {
        if let Some(chain) = memo.get(&node) {
            return chain.clone();
        }
        on_stack[node] = true;
        let mut best = Vec::new();
        for &next in &edges[node] {
            if on_stack[next] {
                continue;
            }
            let chain = visit(next, edges, memo, on_stack);
            if chain.len() > best.len() {
                best = chain;
            }
        }
        on_stack[node] = false;
        let mut chain = vec![node];
        chain.extend(best);
        memo.insert(node, chain.clone());
        chain
    }
    let mut memo = HashMap::new();
    let mut on_stack = vec![false; edges.len()];
    (0..edges.len())
        .map(|node| visit(node, edges, &mut memo, &mut on_stack))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::longest_chains;

    #[test]
    fn longest_chain_follows_the_deepest_branch() {
        // 0 → 1 → 2, 0 → 2.
        let edges = vec![vec![2, 1], vec![2], vec![]];
        assert_eq!(longest_chains(&edges)[0], vec![0, 1, 2]);
    }
}
