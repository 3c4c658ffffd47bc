import { Link } from "react-router";
import { useApi } from "../api/useApi";
import { JOB_STATUSES, type JobStatus, type JobSummary, type Stats, type Workspace } from "../api/types";
import { JobsTable } from "../components/JobsTable";
import {
  Card,
  Empty,
  ErrorPanel,
  PageHeader,
  Spinner,
  StaleBanner,
  StatusBadge,
  Time,
  useTitle,
} from "../components/ui";
import { durationBetween, formatDuration } from "../lib/format";

const TILE_ACCENT: Record<JobStatus, string> = {
  pending: "text-slate-700",
  running: "text-blue-700",
  completed: "text-emerald-700",
  failed: "text-red-700",
  cancelled: "text-amber-700",
  skipped: "text-slate-500",
};

export function Dashboard() {
  useTitle("Dashboard");
  const stats = useApi<Stats>("/api/stats", { pollMs: 5000 });
  const recent = useApi<JobSummary[]>("/api/jobs?limit=10", { pollMs: 5000 });
  const failing = useApi<JobSummary[]>("/api/jobs?status=failed&limit=5", { pollMs: 10000 });
  const workspaces = useApi<Workspace[]>("/api/workspaces", { pollMs: 30000 });

  if (stats.error !== undefined && stats.data === undefined) {
    return (
      <>
        <PageHeader title="Dashboard" />
        <ErrorPanel error={stats.error} onRetry={stats.reload} what="Job statistics" />
      </>
    );
  }
  const broken = (workspaces.data ?? []).filter((workspace) => workspace.status !== "ok");

  return (
    <>
      <PageHeader
        title="Dashboard"
        subtitle="Jobs across all workspaces"
        actions={
          <Link to="/tasks" className="btn-primary hover:no-underline">
            Run a task
          </Link>
        }
      />
      <StaleBanner error={stats.error} />
      {broken.map((workspace) => (
        <p
          key={workspace.name}
          role="alert"
          className="mb-4 rounded-md bg-amber-50 px-3 py-2 text-sm text-amber-900 ring-1 ring-amber-200"
        >
          Workspace <Link to={`/workspaces/${encodeURIComponent(workspace.name)}`}>{workspace.name}</Link> is{" "}
          <StatusBadge status={workspace.status} />: {workspace.errors.length} validation{" "}
          {workspace.errors.length === 1 ? "error" : "errors"}.
        </p>
      ))}
      <section aria-label="Job counts by status" className="mb-6 grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-6">
        {JOB_STATUSES.map((status) => (
          <Link
            key={status}
            to={`/jobs?status=${status}`}
            className="rounded-xl border border-slate-200 bg-white p-4 shadow-sm hover:border-cyan-600 hover:no-underline"
          >
            <span className="block text-xs font-medium tracking-wide text-slate-500 uppercase">{status}</span>
            <span
              className={`mt-1 block text-3xl font-semibold tabular-nums ${TILE_ACCENT[status]}`}
              data-testid={`count-${status}`}
            >
              {stats.data === undefined ? "…" : stats.data[status].toLocaleString()}
            </span>
          </Link>
        ))}
      </section>
      <div className="grid gap-6 lg:grid-cols-3">
        <Card
          title="Recent jobs"
          className="lg:col-span-2"
          actions={
            <Link to="/jobs" className="text-sm">
              All jobs →
            </Link>
          }
        >
          {recent.loading ? (
            <Spinner />
          ) : recent.error !== undefined && recent.data === undefined ? (
            <ErrorPanel error={recent.error} onRetry={recent.reload} what="Recent jobs" />
          ) : (recent.data ?? []).length === 0 ? (
            <Empty>
              No jobs yet. <Link to="/tasks">Pick a task</Link> and run it.
            </Empty>
          ) : (
            <JobsTable jobs={recent.data ?? []} />
          )}
        </Card>
        <Card
          title="Recent failures"
          actions={
            <Link to="/jobs?status=failed" className="text-sm">
              All failed →
            </Link>
          }
        >
          {failing.loading ? (
            <Spinner />
          ) : (failing.data ?? []).length === 0 ? (
            <Empty>No failed jobs. </Empty>
          ) : (
            <ul className="divide-y divide-slate-100">
              {(failing.data ?? []).map((job) => (
                <li key={job.job_id} className="py-2 text-sm">
                  <Link to={`/jobs/${job.job_id}`} className="font-medium">
                    {job.task_name}
                  </Link>
                  <span className="ml-2 text-xs text-slate-500">{job.workspace}</span>
                  <span className="block text-xs text-slate-500 tabular-nums">
                    <Time at={job.created_at} /> ·{" "}
                    <span>{formatDuration(durationBetween(job.started_at, job.completed_at))}</span>
                  </span>
                  {job.error !== null && (
                    <p className="truncate text-xs text-red-700" title={job.error}>
                      {job.error}
                    </p>
                  )}
                </li>
              ))}
            </ul>
          )}
        </Card>
      </div>
    </>
  );
}
