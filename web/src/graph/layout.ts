// Places a job's steps left to right with dagre, one rank per dependency level.

import dagre from "@dagrejs/dagre";

export const NODE_WIDTH = 190;
export const NODE_HEIGHT = 58;

export interface PlacedNode {
  id: string;
  x: number;
  y: number;
}

/** Top-left positions of every node; edges name `[from, to]`. */
export function layoutGraph(nodes: string[], edges: [string, string][]): Map<string, PlacedNode> {
  const graph = new dagre.graphlib.Graph();
  graph.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 60, marginx: 10, marginy: 10 });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const id of nodes) graph.setNode(id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const [from, to] of edges) {
    if (graph.hasNode(from) && graph.hasNode(to)) graph.setEdge(from, to);
  }
  dagre.layout(graph);
  const placed = new Map<string, PlacedNode>();
  for (const id of nodes) {
    const node = graph.node(id) as { x: number; y: number } | undefined;
    // dagre gives centres; React Flow wants top-left corners.
    placed.set(id, { id, x: (node?.x ?? 0) - NODE_WIDTH / 2, y: (node?.y ?? 0) - NODE_HEIGHT / 2 });
  }
  return placed;
}
