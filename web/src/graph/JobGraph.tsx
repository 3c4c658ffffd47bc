// The job's DAG: one node per flow step (loop instances are summarised on their loop step),
// edges from `depends_on`, coloured by step status and recoloured as the job detail refreshes.
// Loaded lazily: React Flow and dagre stay out of the first page load.

import "@xyflow/react/dist/style.css";
import { Background, Controls, Handle, Position, ReactFlow, type Edge, type Node, type NodeProps } from "@xyflow/react";
import { memo, useMemo } from "react";
import type { Step, StepStatus } from "../api/types";
import { layoutGraph, NODE_HEIGHT, NODE_WIDTH } from "./layout";
import { Overview } from "./Overview";

/** Above this many flow steps the graph is drawn as a light overview instead of React Flow. */
export const DETAILED_LIMIT = 120;

export interface JobGraphProps {
  steps: Step[];
  selected: string | null;
  onSelect: (step: string | null) => void;
  height?: number;
}

type StepNodeData = {
  name: string;
  status: StepStatus;
  label: string;
  selected: boolean;
};

const NODE_STYLE: Record<StepStatus, string> = {
  pending: "border-slate-300 bg-white text-slate-700",
  ready: "border-sky-400 bg-sky-50 text-sky-900",
  running: "border-blue-500 bg-blue-50 text-blue-900 shadow-[0_0_0_3px_rgba(59,130,246,0.25)]",
  suspended: "border-violet-500 bg-violet-50 text-violet-900",
  completed: "border-emerald-500 bg-emerald-50 text-emerald-900",
  failed: "border-red-500 bg-red-50 text-red-900",
  skipped: "border-dashed border-slate-300 bg-slate-50 text-slate-500",
  cancelled: "border-amber-500 bg-amber-50 text-amber-900",
};

const StepNode = memo(function StepNode({ data }: NodeProps<Node<StepNodeData>>) {
  return (
    <div
      data-step={data.name}
      data-status={data.status}
      style={{ width: NODE_WIDTH, height: NODE_HEIGHT }}
      className={`flex flex-col justify-center rounded-lg border-2 px-3 text-xs ${NODE_STYLE[data.status]} ${data.selected ? "ring-2 ring-cyan-600 ring-offset-1" : ""}`}
    >
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <span className="truncate font-semibold" title={data.name}>
        {data.name}
      </span>
      <span className="flex items-center gap-1 truncate">
        {data.status === "running" && (
          <span aria-hidden="true" className="size-1.5 animate-pulse rounded-full bg-blue-600" />
        )}
        {data.label}
      </span>
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
});

const NODE_TYPES = { step: StepNode };

/** The loop step's label: `3/4 completed`, else its status. */
function labelOf(step: Step, instances: Step[]): string {
  if (instances.length === 0) return step.attempt > 1 ? `${step.status} · attempt ${step.attempt}` : step.status;
  const done = instances.filter((instance) => instance.status === "completed").length;
  const failed = instances.filter((instance) => instance.status === "failed").length;
  return `${done}/${instances.length} done${failed > 0 ? ` · ${failed} failed` : ""}`;
}

export default function JobGraph(props: JobGraphProps) {
  const flowCount = props.steps.reduce((count, step) => (step.loop_source === undefined ? count + 1 : count), 0);
  if (flowCount > DETAILED_LIMIT) {
    return (
      <Overview steps={props.steps} selected={props.selected} onSelect={props.onSelect} height={props.height ?? 320} />
    );
  }
  return <DetailedGraph {...props} />;
}

function DetailedGraph({ steps, selected, onSelect, height = 320 }: JobGraphProps) {
  const flowSteps = useMemo(() => steps.filter((step) => step.loop_source === undefined), [steps]);
  // The layout depends only on the structure, not on statuses: recompute it only when the set
  // of steps or their dependencies change.
  const structureKey = flowSteps.map((step) => `${step.step_name}<${step.depends_on.join(",")}`).join(";");
  const positions = useMemo(() => {
    const edges: [string, string][] = [];
    for (const step of flowSteps) for (const dependency of step.depends_on) edges.push([dependency, step.step_name]);
    return layoutGraph(
      flowSteps.map((step) => step.step_name),
      edges,
    );
  }, [structureKey]);

  const nodes = useMemo<Node<StepNodeData>[]>(() => {
    const instancesOf = new Map<string, Step[]>();
    for (const step of steps) {
      if (step.loop_source === undefined) continue;
      const list = instancesOf.get(step.loop_source) ?? [];
      list.push(step);
      instancesOf.set(step.loop_source, list);
    }
    return flowSteps.map((step) => {
      const position = positions.get(step.step_name) ?? { x: 0, y: 0 };
      return {
        id: step.step_name,
        type: "step",
        position: { x: position.x, y: position.y },
        data: {
          name: step.step_name,
          status: step.status,
          label: labelOf(step, instancesOf.get(step.step_name) ?? []),
          selected: selected === step.step_name,
        },
        draggable: false,
        connectable: false,
        ariaLabel: `Step ${step.step_name}: ${step.status}`,
      };
    });
  }, [steps, flowSteps, positions, selected]);

  const edges = useMemo<Edge[]>(() => {
    const status = new Map(flowSteps.map((step) => [step.step_name, step.status]));
    return flowSteps.flatMap((step) =>
      step.depends_on.map((dependency) => ({
        id: `${dependency}->${step.step_name}`,
        source: dependency,
        target: step.step_name,
        animated: status.get(step.step_name) === "running",
        style: { stroke: status.get(dependency) === "completed" ? "#10b981" : "#94a3b8", strokeWidth: 1.5 },
      })),
    );
  }, [flowSteps]);

  return (
    <div style={{ height }} className="rounded-xl border border-slate-200 bg-white" data-testid="job-graph">
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={NODE_TYPES}
        fitView
        fitViewOptions={{ padding: 0.15, maxZoom: 1.2 }}
        minZoom={0.05}
        nodesDraggable={false}
        nodesConnectable={false}
        elementsSelectable
        // Edges say nothing on their own; the keyboard path is the nodes and the step list.
        edgesFocusable={false}
        onNodeClick={(_, node) => onSelect(node.id === selected ? null : node.id)}
        onPaneClick={() => onSelect(null)}
      >
        <Background gap={16} size={1} color="#e2e8f0" />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
