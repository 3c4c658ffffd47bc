// The job log: a virtualised list of fixed-height rows (so 100,000 lines render a screenful of
// DOM nodes and streaming never shifts the layout), a per-step filter, stderr highlighted, and
// auto-scroll that follows new lines until the user scrolls up; "Jump to latest" resumes it.

import { useVirtualizer } from "@tanstack/react-virtual";
import { useCallback, useLayoutEffect, useRef, useState, useSyncExternalStore } from "react";
import { clockTime } from "../lib/format";
import { observeFixedRect } from "../lib/virtual";
import { FilteredIndex, type LogBuffer } from "./buffer";

/** Row height in pixels; fixed, so positions are known without measuring. */
export const ROW_HEIGHT = 20;

export interface LogViewProps {
  buffer: LogBuffer;
  /** Step names offered by the filter (in job order). */
  steps: string[];
  /** The step filter; null shows every line. */
  step: string | null;
  onStepChange: (step: string | null) => void;
  /** Height of the scrolling area in pixels. */
  height?: number;
  /** A short status of the stream shown in the toolbar ("live", "ended", …). */
  streamLabel?: string;
}

// A stable colour per step name makes interleaved lines of parallel steps easy to tell apart.
const STEP_COLOURS = [
  "text-cyan-300",
  "text-violet-300",
  "text-emerald-300",
  "text-amber-300",
  "text-pink-300",
  "text-sky-300",
  "text-lime-300",
  "text-orange-300",
];

function stepColour(step: string): string {
  if (step === "_server") return "text-slate-400";
  let hash = 0;
  const base = step.replace(/\[\d+\]$/, "");
  for (let index = 0; index < base.length; index += 1) hash = (hash * 31 + base.charCodeAt(index)) | 0;
  return STEP_COLOURS[Math.abs(hash) % STEP_COLOURS.length] ?? "text-cyan-300";
}

export function LogView({ buffer, steps, step, onStepChange, height = 480, streamLabel }: LogViewProps) {
  useSyncExternalStore(buffer.subscribe, buffer.getVersion, buffer.getVersion);
  const filterRef = useRef(new FilteredIndex());
  const indices = filterRef.current.update(buffer.lines, step);
  const count = indices.length;
  const scrollRef = useRef<HTMLDivElement>(null);
  const [follow, setFollow] = useState(true);
  const followRef = useRef(true);
  const lastTop = useRef(0);

  const virtualizer = useVirtualizer({
    count,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 15,
    initialRect: { width: 800, height },
    observeElementRect: observeFixedRect(height),
  });

  const setFollowing = useCallback((value: boolean) => {
    followRef.current = value;
    setFollow(value);
  }, []);

  const scrollToEnd = useCallback(() => {
    const element = scrollRef.current;
    if (element === null) return;
    element.scrollTop = element.scrollHeight;
    lastTop.current = element.scrollTop;
  }, []);

  // After every delivered batch (and filter change) a following view moves to the newest line
  // before the browser paints, so there is no visible jump.
  useLayoutEffect(() => {
    if (followRef.current) scrollToEnd();
  }, [count, step, scrollToEnd]);

  const onScroll = () => {
    const element = scrollRef.current;
    if (element === null) return;
    const top = element.scrollTop;
    const atBottom = top + element.clientHeight >= element.scrollHeight - ROW_HEIGHT;
    // Only a move upwards stops following: scroll events of our own jumps to the end (which
    // may arrive after more lines grew the list) never do.
    if (atBottom) {
      if (!followRef.current) setFollowing(true);
    } else if (top < lastTop.current && followRef.current) {
      setFollowing(false);
    }
    lastTop.current = top;
  };

  const jumpToLatest = () => {
    setFollowing(true);
    scrollToEnd();
  };

  const items = virtualizer.getVirtualItems();
  const hidden = buffer.lines.length - count;

  return (
    <div className="overflow-hidden rounded-xl border border-slate-800 bg-slate-950 text-slate-100 shadow-sm">
      <div className="flex flex-wrap items-center gap-3 border-b border-slate-800 px-3 py-2 text-xs">
        <label htmlFor="log-step-filter" className="text-slate-300">
          Step
        </label>
        <select
          id="log-step-filter"
          value={step ?? ""}
          onChange={(event) => onStepChange(event.target.value === "" ? null : event.target.value)}
          className="rounded bg-slate-800 px-2 py-1 text-slate-100 ring-1 ring-slate-700"
        >
          <option value="">All steps</option>
          {steps.map((name) => (
            <option key={name} value={name}>
              {name}
            </option>
          ))}
          <option value="_server">_server (server events)</option>
        </select>
        <span className="text-slate-400" aria-live="off" data-testid="log-count">
          {count.toLocaleString()} {count === 1 ? "line" : "lines"}
          {hidden > 0 ? ` (${hidden.toLocaleString()} hidden by the filter)` : ""}
        </span>
        {streamLabel !== undefined && <span className="ml-auto text-slate-400">{streamLabel}</span>}
      </div>
      <div className="relative">
        <div
          ref={scrollRef}
          onScroll={onScroll}
          role="log"
          aria-label="Job log"
          aria-live="off"
          tabIndex={0}
          data-testid="log-scroll"
          style={{ height }}
          className="overflow-auto font-mono text-xs leading-5"
        >
          {count === 0 ? (
            <p className="p-4 text-slate-400">
              {step === null ? "No log lines yet." : `No log lines for ${step} yet.`}
            </p>
          ) : (
            <div
              style={{
                height: virtualizer.getTotalSize(),
                position: "relative",
                minWidth: "100%",
                width: "max-content",
              }}
            >
              {items.map((item) => {
                const line = buffer.lines[indices[item.index] ?? -1];
                if (line === undefined) return null;
                const stderr = line.stream === "stderr";
                return (
                  <div
                    key={line.seq}
                    data-seq={line.seq}
                    data-stream={line.stream}
                    className={`absolute left-0 flex w-full gap-3 px-3 whitespace-pre ${stderr ? "border-l-2 border-red-500 bg-red-950/60 text-red-200" : "border-l-2 border-transparent"}`}
                    style={{ top: 0, height: ROW_HEIGHT, transform: `translateY(${item.start}px)` }}
                  >
                    <span className="hidden shrink-0 text-slate-500 select-none sm:inline">{clockTime(line.ts)}</span>
                    <span
                      className={`w-28 shrink-0 truncate select-none ${stepColour(line.step)}`}
                      title={line.attempt !== null ? `${line.step}, attempt ${line.attempt}` : line.step}
                    >
                      {line.step}
                      {line.attempt !== null && line.attempt > 1 && (
                        <span className="text-slate-500"> #{line.attempt}</span>
                      )}
                    </span>
                    <span>{line.line}</span>
                  </div>
                );
              })}
            </div>
          )}
        </div>
        {!follow && (
          <button
            type="button"
            onClick={jumpToLatest}
            className="absolute right-4 bottom-4 rounded-full bg-cyan-600 px-3 py-1.5 text-xs font-semibold text-white shadow-lg hover:bg-cyan-500"
          >
            Jump to latest ↓
          </button>
        )}
      </div>
    </div>
  );
}
