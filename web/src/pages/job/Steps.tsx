// The job page's steps: a virtualised list (a job of 1,000 steps renders only the rows in
// view), each row with its place in the job's timeline, and the selected step's detail with its
// input, output, error and earlier attempts.

import { useVirtualizer } from "@tanstack/react-virtual";
import { memo, useRef } from "react";
import { Link } from "react-router";
import type { Step } from "../../api/types";
import { JsonBlock, StatusBadge } from "../../components/ui";
import { absoluteTime, durationBetween, formatDuration, shortId } from "../../lib/format";
import { observeFixedRect } from "../../lib/virtual";

const DOT: Record<Step["status"], string> = {
  pending: "bg-slate-300",
  ready: "bg-sky-400",
  running: "bg-blue-500 animate-pulse",
  suspended: "bg-violet-500",
  completed: "bg-emerald-500",
  failed: "bg-red-500",
  skipped: "bg-slate-200",
  cancelled: "bg-amber-500",
};

const STEP_ROW = 36;

/** The job's run time in epoch milliseconds, for the steps' timeline bars; null before it starts. */
export function timeSpan(started: string | null, completed: string | null, now: number): [number, number] | null {
  if (started === null) return null;
  const start = Date.parse(started);
  const end = completed === null ? now : Date.parse(completed);
  return Number.isNaN(start) || Number.isNaN(end) || end <= start ? null : [start, end];
}

/** Where a step's bar sits in the job's timeline, as percentages of the job's run time. */
export function barOf(step: Step, span: [number, number] | null, now: number): { left: number; width: number } | null {
  if (span === null || step.started_at === null) return null;
  const [start, end] = span;
  const from = Date.parse(step.started_at);
  const to = step.completed_at === null ? now : Date.parse(step.completed_at);
  if (Number.isNaN(from) || Number.isNaN(to)) return null;
  const total = end - start;
  const left = Math.min(100, Math.max(0, ((from - start) / total) * 100));
  // At least a sliver, so a step of a few milliseconds still shows where it ran.
  const width = Math.max(0.8, Math.min(100 - left, ((to - from) / total) * 100));
  return { left, width };
}

/** The steps, virtualised: a job of 1,000 steps renders only the rows in view. */
export function StepList({
  steps,
  selected,
  onSelect,
  now,
  span,
}: {
  steps: Step[];
  selected: string | null;
  onSelect: (step: string | null) => void;
  now: number;
  span: [number, number] | null;
}) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const height = Math.min(steps.length * STEP_ROW + 4, 520);
  const virtualizer = useVirtualizer({
    count: steps.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => STEP_ROW,
    overscan: 10,
    initialRect: { width: 400, height },
    observeElementRect: observeFixedRect(height),
  });
  return (
    <div ref={scrollRef} style={{ maxHeight: height, height }} className="overflow-y-auto">
      <ol aria-label="Steps" style={{ height: virtualizer.getTotalSize(), position: "relative" }}>
        {virtualizer.getVirtualItems().map((item) => {
          const step = steps[item.index];
          if (step === undefined) return null;
          return (
            <StepRow
              key={step.step_name}
              step={step}
              top={item.start}
              selected={selected === step.step_name}
              onSelect={onSelect}
              now={now}
              bar={barOf(step, span, now)}
            />
          );
        })}
      </ol>
    </div>
  );
}

const StepRow = memo(function StepRow({
  step,
  top,
  selected,
  onSelect,
  now,
  bar,
}: {
  step: Step;
  top: number;
  selected: boolean;
  onSelect: (step: string | null) => void;
  now: number;
  bar: { left: number; width: number } | null;
}) {
  return (
    <li
      data-step={step.step_name}
      data-status={step.status}
      className="absolute left-0 w-full"
      style={{ top, height: STEP_ROW }}
    >
      <button
        type="button"
        aria-pressed={selected}
        onClick={() => onSelect(selected ? null : step.step_name)}
        className={`flex h-8 w-full items-center gap-2 rounded-md px-2 text-left text-sm hover:bg-slate-50 ${selected ? "bg-cyan-50 ring-1 ring-cyan-200" : ""} ${step.loop_source !== undefined ? "pl-6" : ""}`}
      >
        <span aria-hidden="true" className={`size-2.5 shrink-0 rounded-full ${DOT[step.status]}`} />
        <span className="min-w-0 flex-1 truncate font-medium">{step.step_name}</span>
        <span className="text-xs text-slate-500">{step.status}</span>
        {step.reused_from !== undefined && (
          <span className="text-xs text-slate-400" title={`output reused from job ${step.reused_from}`}>
            reused
          </span>
        )}
        {step.max_attempts > 1 && (
          <span className="text-xs text-slate-400" title="attempt">
            {step.attempt}/{step.max_attempts}
          </span>
        )}
        <span className="w-16 shrink-0 text-right text-xs text-slate-500 tabular-nums">
          {formatDuration(durationBetween(step.started_at, step.completed_at, now))}
        </span>
      </button>
      {bar !== null && (
        // The step's place in the job's timeline: when it started and how long it ran.
        <span aria-hidden="true" className="absolute right-2 bottom-0 left-2 h-1 rounded-full bg-slate-100">
          <span
            className={`absolute h-1 rounded-full ${DOT[step.status]}`}
            style={{ left: `${bar.left}%`, width: `${bar.width}%` }}
          />
        </span>
      )}
    </li>
  );
});

export function StepDetail({ step, onClose }: { step: Step; onClose: () => void }) {
  return (
    <div
      className="mb-3 space-y-3 rounded-md border border-cyan-100 bg-slate-50 p-3 text-sm"
      aria-label={`Step ${step.step_name}`}
      role="region"
    >
      <div className="flex items-center gap-2">
        <h3 className="min-w-0 flex-1 truncate font-semibold">{step.step_name}</h3>
        <StatusBadge status={step.status} />
        <button type="button" onClick={onClose} className="btn-secondary px-2 py-0.5 text-xs">
          Close
        </button>
      </div>
      <dl className="grid grid-cols-[auto_1fr] gap-x-3 gap-y-1 text-xs">
        <dt className="text-slate-500">Action</dt>
        <dd>
          {step.action_name} ({step.action_type}
          {step.runner !== "none" ? `, ${step.runner}` : ""})
          {step.action_image !== undefined && ` · ${step.action_image}`}
        </dd>
        {step.depends_on.length > 0 && (
          <>
            <dt className="text-slate-500">After</dt>
            <dd>{step.depends_on.join(", ")}</dd>
          </>
        )}
        {step.worker_id !== undefined && step.worker_id !== null && (
          <>
            <dt className="text-slate-500">Worker</dt>
            <dd>
              <Link to={`/workers/${step.worker_id}`} className="font-mono">
                {shortId(step.worker_id)}
              </Link>
            </dd>
          </>
        )}
        {step.child_job_id !== undefined && step.child_job_id !== null && (
          <>
            <dt className="text-slate-500">Child job</dt>
            <dd>
              <Link to={`/jobs/${step.child_job_id}`} className="font-mono">
                {shortId(step.child_job_id)}
              </Link>
            </dd>
          </>
        )}
        {step.reused_from !== undefined && (
          <>
            <dt className="text-slate-500">Reused from</dt>
            <dd>
              <Link
                to={`/jobs/${step.reused_from}`}
                className="font-mono"
                aria-label={`Reused from job ${shortId(step.reused_from)}`}
              >
                {shortId(step.reused_from)}
              </Link>{" "}
              (not run again)
            </dd>
          </>
        )}
        <dt className="text-slate-500">Attempt</dt>
        <dd>
          {step.attempt} of {step.max_attempts}
          {step.retry_at !== null && ` · next try ${absoluteTime(step.retry_at)}`}
        </dd>
        {step.when !== null && (
          <>
            <dt className="text-slate-500">When</dt>
            <dd className="font-mono">{JSON.stringify(step.when)}</dd>
          </>
        )}
      </dl>
      {step.error_message !== null && (
        <p className="rounded bg-red-50 px-2 py-1 text-xs break-words whitespace-pre-wrap text-red-800 ring-1 ring-red-200">
          {step.error_message}
        </p>
      )}
      {step.input !== null && (
        <div>
          <h3 className="mb-1 text-xs font-semibold text-slate-600">Input</h3>
          <JsonBlock value={step.input} label={`Input of ${step.step_name}`} />
        </div>
      )}
      {step.output !== null && (
        <div>
          <h3 className="mb-1 text-xs font-semibold text-slate-600">Output</h3>
          <JsonBlock value={step.output} label={`Output of ${step.step_name}`} />
        </div>
      )}
      {step.retry_history.length > 0 && (
        <div>
          <h3 className="mb-1 text-xs font-semibold text-slate-600">Earlier attempts</h3>
          <ul className="space-y-1 text-xs">
            {step.retry_history.map((record) => (
              <li key={record.attempt} className="rounded bg-white px-2 py-1 ring-1 ring-slate-200">
                Attempt {record.attempt}: {record.error_message ?? "failed"}{" "}
                <span className="text-slate-500">
                  ({formatDuration(durationBetween(record.started_at, record.completed_at))}, ended{" "}
                  {absoluteTime(record.completed_at)})
                </span>
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}
