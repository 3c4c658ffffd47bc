// Small formatting helpers for times and durations as the pages show them.

/** `1.2 s`, `3 m 04 s`, `2 h 05 m`; em dash when unknown. */
export function formatDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const whole = Math.floor(seconds);
  const minutes = Math.floor(whole / 60);
  if (minutes < 60) return `${minutes} m ${String(whole % 60).padStart(2, "0")} s`;
  const hours = Math.floor(minutes / 60);
  return `${hours} h ${String(minutes % 60).padStart(2, "0")} m`;
}

/** Duration between two RFC 3339 times; running when `end` is null (measured to `now`). */
export function durationBetween(start: string | null, end: string | null, now: number = Date.now()): number | null {
  if (start === null) return null;
  const from = Date.parse(start);
  const to = end === null ? now : Date.parse(end);
  if (Number.isNaN(from) || Number.isNaN(to)) return null;
  return Math.max(0, to - from);
}

/** `5 s ago`, `3 min ago`, `2 h ago`, `4 d ago`. */
export function relativeTime(at: string | null, now: number = Date.now()): string {
  if (at === null) return "—";
  const then = Date.parse(at);
  if (Number.isNaN(then)) return at;
  const seconds = Math.round((now - then) / 1000);
  // A time to come (an API key's expiry): "in 30 d".
  if (seconds <= -5) return `in ${span(-seconds)}`;
  if (seconds < 5) return "just now";
  return `${span(seconds)} ago`;
}

/** `12 s`, `3 min`, `5 h`, `30 d` (at least 5 seconds). */
function span(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h`;
  return `${Math.round(hours / 24)} d`;
}

/** Local date and time with seconds, for tooltips and detail fields. */
export function absoluteTime(at: string | null): string {
  if (at === null) return "—";
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) return at;
  return date.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/** `HH:MM:SS.mmm` of a log line's time stamp, in local time. */
export function clockTime(at: string): string {
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) return at;
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

/**
 * Eight hex digits that tell jobs apart in a list. Job ids are UUIDv7, whose first digits are
 * the creation time — identical for jobs made in the same minute — so take the random tail.
 */
export function shortId(id: string): string {
  return id.replace(/-/g, "").slice(-8);
}

export function pretty(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? "null";
}
