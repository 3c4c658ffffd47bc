// The DAG of a large job (hundreds of steps) as one light SVG: a column per dependency level,
// a small square per step coloured by status, faint dependency lines. React Flow with a node
// per step would freeze the page at that size; this draws 1,000 steps in a few milliseconds.

import { memo, useMemo } from "react";
import type { Step, StepStatus } from "../api/types";

const FILL: Record<StepStatus, string> = {
  pending: "#e2e8f0",
  ready: "#7dd3fc",
  running: "#3b82f6",
  suspended: "#8b5cf6",
  completed: "#10b981",
  failed: "#ef4444",
  skipped: "#f1f5f9",
  cancelled: "#f59e0b",
};

const CELL = 14;
const GAP = 6;
const COLUMN_GAP = 18;

/** Column (longest dependency path) of every step; unknown or cyclic dependencies count as 0. */
export function levels(steps: Pick<Step, "step_name" | "depends_on">[]): Map<string, number> {
  const byName = new Map(steps.map((step) => [step.step_name, step]));
  const level = new Map<string, number>();
  const visiting = new Set<string>();
  const visit = (name: string): number => {
    const known = level.get(name);
    if (known !== undefined) return known;
    const step = byName.get(name);
    if (step === undefined || visiting.has(name)) return -1;
    visiting.add(name);
    let value = 0;
    for (const dependency of step.depends_on) value = Math.max(value, visit(dependency) + 1);
    visiting.delete(name);
    level.set(name, value);
    return value;
  };
  for (const step of steps) visit(step.step_name);
  return level;
}

export const Overview = memo(function Overview({
  steps,
  selected,
  onSelect,
  height,
}: {
  steps: Step[];
  selected: string | null;
  onSelect: (step: string | null) => void;
  height: number;
}) {
  const structureKey = steps.map((step) => `${step.step_name}<${step.depends_on.join(",")}`).join(";");
  const layout = useMemo(() => {
    const level = levels(steps);
    const rows = new Map<number, number>();
    const position = new Map<string, { x: number; y: number }>();
    for (const step of steps) {
      const column = level.get(step.step_name) ?? 0;
      const row = rows.get(column) ?? 0;
      rows.set(column, row + 1);
      position.set(step.step_name, { x: column * (CELL + COLUMN_GAP), y: row * (CELL + GAP) });
    }
    const columns = Math.max(1, ...[...rows.keys()].map((column) => column + 1));
    const maxRows = Math.max(1, ...rows.values());
    return { position, width: columns * (CELL + COLUMN_GAP), height: maxRows * (CELL + GAP) };
    // Positions depend only on the structure; statuses recolour without a new layout.
  }, [structureKey]);

  const counts = new Map<StepStatus, number>();
  for (const step of steps) counts.set(step.status, (counts.get(step.status) ?? 0) + 1);

  return (
    <div
      style={{ height }}
      className="flex flex-col rounded-xl border border-slate-200 bg-white"
      data-testid="job-graph"
    >
      <p className="flex flex-wrap gap-3 border-b border-slate-100 px-3 py-2 text-xs text-slate-600">
        <span className="font-medium">{steps.length} steps</span>
        {[...counts.entries()].map(([status, count]) => (
          <span key={status} className="flex items-center gap-1">
            <span
              aria-hidden="true"
              className="inline-block size-2.5 rounded-sm"
              style={{ background: FILL[status] }}
            />
            {count} {status}
          </span>
        ))}
      </p>
      <div className="min-h-0 flex-1 overflow-auto p-3">
        <svg width={layout.width} height={layout.height} role="img" aria-label={`Graph of ${steps.length} steps`}>
          <g stroke="#94a3b8" strokeOpacity={0.35} strokeWidth={1}>
            {steps.flatMap((step) => {
              const to = layout.position.get(step.step_name);
              return step.depends_on.map((dependency) => {
                const from = layout.position.get(dependency);
                if (from === undefined || to === undefined) return null;
                return (
                  <line
                    key={`${dependency}->${step.step_name}`}
                    x1={from.x + CELL}
                    y1={from.y + CELL / 2}
                    x2={to.x}
                    y2={to.y + CELL / 2}
                  />
                );
              });
            })}
          </g>
          {steps.map((step) => {
            const at = layout.position.get(step.step_name);
            if (at === undefined) return null;
            return (
              <rect
                key={step.step_name}
                data-step={step.step_name}
                data-status={step.status}
                x={at.x}
                y={at.y}
                width={CELL}
                height={CELL}
                rx={3}
                fill={FILL[step.status]}
                stroke={selected === step.step_name ? "#0e7490" : step.status === "pending" ? "#cbd5e1" : "none"}
                strokeWidth={selected === step.step_name ? 3 : 1}
                className="cursor-pointer"
                onClick={() => onSelect(selected === step.step_name ? null : step.step_name)}
              >
                <title>{`${step.step_name}: ${step.status}`}</title>
              </rect>
            );
          })}
        </svg>
      </div>
    </div>
  );
});
