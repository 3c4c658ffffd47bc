// A job's log lines outside React state. Lines arrive in many small WebSocket frames; the
// buffer takes them at once but tells its subscribers at most once per animation frame, so a
// flood of 100,000 lines causes a few dozen renders, not 100,000.

import type { LogLine } from "../api/types";

type Schedule = (callback: () => void) => void;

const defaultSchedule: Schedule = (callback) => {
  if (typeof window !== "undefined" && typeof window.requestAnimationFrame === "function") {
    window.requestAnimationFrame(() => callback());
  } else {
    setTimeout(callback, 16);
  }
};

export class LogBuffer {
  /** Every line received, in `seq` order. */
  readonly lines: LogLine[] = [];
  private seen = 0;
  private listeners = new Set<() => void>();
  private scheduled = false;
  private readonly schedule: Schedule;
  /** Bumped once per delivered batch; React reads it as the snapshot. */
  version = 0;

  constructor(schedule: Schedule = defaultSchedule) {
    this.schedule = schedule;
  }

  /** The highest `seq` received: the `after` of a reconnect (API §4.3). */
  get lastSeq(): number {
    return this.seen;
  }

  /** Adds lines; duplicates (a reconnect's overlap) are dropped by `seq`. */
  append(lines: readonly LogLine[]): void {
    let added = false;
    for (const line of lines) {
      if (line.seq <= this.seen) continue;
      this.lines.push(line);
      this.seen = line.seq;
      added = true;
    }
    if (added) this.notifySoon();
  }

  clear(): void {
    this.lines.length = 0;
    this.seen = 0;
    this.notifySoon();
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getVersion = (): number => this.version;

  /** Delivers a pending batch now (tests, and the end of a stream). */
  flush(): void {
    this.scheduled = false;
    this.version += 1;
    for (const listener of this.listeners) listener();
  }

  private notifySoon(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(() => {
      if (this.scheduled) this.flush();
    });
  }
}

/** Parses one WebSocket text frame: newline-separated JSONL lines, or the end event. */
export function parseFrame(text: string): { lines: LogLine[]; end: string | null } {
  const lines: LogLine[] = [];
  let end: string | null = null;
  for (const raw of text.split("\n")) {
    if (raw.trim() === "") continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      continue;
    }
    if (typeof parsed !== "object" || parsed === null) continue;
    const record = parsed as Record<string, unknown>;
    if (record.event === "end") {
      end = typeof record.status === "string" ? record.status : "completed";
    } else if (typeof record.seq === "number") {
      lines.push(record as unknown as LogLine);
    }
  }
  return { lines, end };
}

/** Whether a line belongs to the step filter: exact name, or any instance of a loop step. */
export function matchesStep(line: LogLine, step: string | null): boolean {
  if (step === null) return true;
  return line.step === step || (line.step.startsWith(step) && line.step.charAt(step.length) === "[");
}

/**
 * The indices of the lines that pass a step filter, extended incrementally: each batch scans
 * only the lines added since the last call, so filtering stays cheap while 100,000 lines stream.
 */
export class FilteredIndex {
  private step: string | null = null;
  private scanned = 0;
  private source: LogLine[] | null = null;
  readonly indices: number[] = [];

  update(lines: LogLine[], step: string | null): number[] {
    if (step !== this.step || lines !== this.source || lines.length < this.scanned) {
      this.step = step;
      this.source = lines;
      this.scanned = 0;
      this.indices.length = 0;
    }
    for (let index = this.scanned; index < lines.length; index += 1) {
      const line = lines[index];
      if (line !== undefined && matchesStep(line, step)) this.indices.push(index);
    }
    this.scanned = lines.length;
    return this.indices;
  }
}
