// Shared building blocks of every page: status badges, loading and error states, headers,
// cards, and the live clock that makes running durations tick.

import { useEffect, useState, type ReactNode } from "react";
import { Link } from "react-router";
import type { ApiError } from "../api/client";
import type { JobStatus, StepStatus } from "../api/types";
import { absoluteTime, relativeTime } from "../lib/format";

type AnyStatus = JobStatus | StepStatus | "active" | "inactive" | "ok" | "stale" | "error";

const STATUS_STYLE: Record<AnyStatus, string> = {
  pending: "bg-slate-100 text-slate-700 ring-slate-300",
  ready: "bg-sky-50 text-sky-800 ring-sky-300",
  running: "bg-blue-100 text-blue-800 ring-blue-300",
  suspended: "bg-violet-100 text-violet-800 ring-violet-300",
  completed: "bg-emerald-100 text-emerald-800 ring-emerald-300",
  failed: "bg-red-100 text-red-800 ring-red-300",
  cancelled: "bg-amber-100 text-amber-800 ring-amber-300",
  skipped: "bg-slate-100 text-slate-500 ring-slate-200",
  active: "bg-emerald-100 text-emerald-800 ring-emerald-300",
  inactive: "bg-slate-100 text-slate-500 ring-slate-200",
  ok: "bg-emerald-100 text-emerald-800 ring-emerald-300",
  stale: "bg-amber-100 text-amber-800 ring-amber-300",
  error: "bg-red-100 text-red-800 ring-red-300",
};

export function StatusBadge({ status }: { status: AnyStatus }) {
  return (
    <span
      data-status={status}
      className={`inline-flex items-center gap-1 rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset ${STATUS_STYLE[status] ?? STATUS_STYLE.pending}`}
    >
      {status === "running" && <span aria-hidden="true" className="size-1.5 animate-pulse rounded-full bg-blue-600" />}
      {status}
    </span>
  );
}

export function Spinner({ label = "Loading…" }: { label?: string }) {
  return (
    <div role="status" className="flex items-center gap-2 py-8 text-sm text-slate-500">
      <span
        aria-hidden="true"
        className="size-4 animate-spin rounded-full border-2 border-slate-300 border-t-cyan-700"
      />
      {label}
    </div>
  );
}

/** A failed load: what went wrong in words, and a way to try again. */
export function ErrorPanel({ error, onRetry, what }: { error: ApiError; onRetry?: () => void; what?: string }) {
  const title = error.unreachable
    ? "The server is not reachable"
    : error.status === 401
      ? "Sign-in required"
      : error.notFound
        ? `${what ?? "This page"} was not found`
        : `Could not load ${what?.toLowerCase() ?? "this page"}`;
  return (
    <div role="alert" className="my-4 rounded-lg border border-red-200 bg-red-50 p-4 text-sm text-red-900">
      <p className="font-semibold">{title}</p>
      <p className="mt-1 break-words">{error.message}</p>
      <div className="mt-3 flex gap-3">
        {onRetry && !error.notFound && (
          <button type="button" onClick={onRetry} className="btn-secondary">
            Try again
          </button>
        )}
        {error.notFound && (
          <Link to="/" className="underline">
            Back to the dashboard
          </Link>
        )}
      </div>
    </div>
  );
}

/** A small banner for a refresh that failed while older data is still shown. */
export function StaleBanner({ error }: { error: ApiError | undefined }) {
  if (error === undefined) return null;
  return (
    <p role="status" className="mb-3 rounded-md bg-amber-50 px-3 py-2 text-sm text-amber-900 ring-1 ring-amber-200">
      Refreshing failed ({error.message}); showing the last data received.
    </p>
  );
}

export function PageHeader({
  title,
  subtitle,
  actions,
}: {
  title: ReactNode;
  subtitle?: ReactNode;
  actions?: ReactNode;
}) {
  return (
    <div className="mb-6 flex flex-wrap items-start justify-between gap-3">
      <div className="min-w-0">
        <h1 className="truncate text-2xl font-semibold tracking-tight">{title}</h1>
        {subtitle !== undefined && <div className="mt-1 text-sm text-slate-600">{subtitle}</div>}
      </div>
      {actions !== undefined && <div className="flex flex-wrap items-center gap-2">{actions}</div>}
    </div>
  );
}

export function Card({
  title,
  children,
  actions,
  className = "",
}: {
  title?: ReactNode;
  children: ReactNode;
  actions?: ReactNode;
  className?: string;
}) {
  return (
    <section className={`min-w-0 rounded-xl border border-slate-200 bg-white shadow-sm ${className}`}>
      {title !== undefined && (
        <div className="flex items-center justify-between gap-2 border-b border-slate-100 px-4 py-3">
          <h2 className="text-sm font-semibold text-slate-800">{title}</h2>
          {actions}
        </div>
      )}
      <div className="p-4">{children}</div>
    </section>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="py-6 text-center text-sm text-slate-500">{children}</p>;
}

/** A time shown relative ("3 min ago") with the absolute time on hover. */
export function Time({ at }: { at: string | null }) {
  useNow(15_000);
  if (at === null) return <span className="text-slate-400">—</span>;
  return (
    <time dateTime={at} title={absoluteTime(at)}>
      {relativeTime(at)}
    </time>
  );
}

/** Re-renders the caller every `ms` so running durations and relative times move. */
export function useNow(ms: number, enabled = true): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!enabled) return;
    const timer = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(timer);
  }, [ms, enabled]);
  return now;
}

export function JsonBlock({ value, label }: { value: unknown; label?: string }) {
  const text = JSON.stringify(value, null, 2) ?? "null";
  return (
    <pre
      aria-label={label}
      className="max-h-80 overflow-auto rounded-md bg-slate-900 p-3 font-mono text-xs leading-5 text-slate-100"
    >
      {text}
    </pre>
  );
}

/** Sets the browser tab's title while the page is shown. */
export function useTitle(title: string): void {
  useEffect(() => {
    const previous = document.title;
    document.title = `${title} · Strøm`;
    return () => {
      document.title = previous;
    };
  }, [title]);
}
