// A table of job summaries, shared by the dashboard and the jobs page. On a phone it collapses
// into stacked rows.

import { Link } from "react-router";
import type { JobSummary } from "../api/types";
import { durationBetween, formatDuration, shortId } from "../lib/format";
import { StatusBadge, Time, useNow } from "./ui";

export function JobsTable({ jobs, showWorkspace = true }: { jobs: JobSummary[]; showWorkspace?: boolean }) {
  const running = jobs.some((job) => job.status === "running");
  const now = useNow(1000, running);
  return (
    <div className="overflow-x-auto">
      <table className="table-base">
        <thead>
          <tr>
            <th scope="col">Job</th>
            <th scope="col">Task</th>
            <th scope="col">Status</th>
            <th scope="col" className="hidden md:table-cell">
              Source
            </th>
            <th scope="col" className="hidden sm:table-cell">
              Created
            </th>
            <th scope="col" className="hidden sm:table-cell">
              Duration
            </th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((job) => (
            <tr key={job.job_id} className="hover:bg-slate-50" data-job-id={job.job_id}>
              <td className="font-mono text-xs">
                <Link to={`/jobs/${job.job_id}`} aria-label={`Job ${shortId(job.job_id)} of ${job.task_name}`}>
                  {shortId(job.job_id)}
                </Link>
              </td>
              <td>
                <Link
                  to={`/workspaces/${encodeURIComponent(job.workspace)}/tasks/${encodeURIComponent(job.task_name)}`}
                  className="text-slate-900"
                >
                  {job.task_name}
                </Link>
                {showWorkspace && <span className="ml-1 text-xs text-slate-500">{job.workspace}</span>}
                <span className="block text-xs text-slate-500 tabular-nums sm:hidden">
                  <Time at={job.created_at} /> ·{" "}
                  <span>{formatDuration(durationBetween(job.started_at, job.completed_at, now))}</span>
                </span>
                {job.error !== null && (
                  <p className="mt-0.5 max-w-md truncate text-xs text-red-700" title={job.error}>
                    {job.error}
                  </p>
                )}
              </td>
              <td>
                <StatusBadge status={job.status} />
                {job.queue_position != null && (
                  <span
                    className="block text-xs text-slate-500"
                    title="Waiting for a slot of the task's concurrency limit"
                  >
                    queued #{job.queue_position}
                  </span>
                )}
                {job.retry_attempt > 1 && (
                  <span className="block text-xs text-slate-500">retry #{job.retry_attempt}</span>
                )}
              </td>
              <td className="hidden text-xs text-slate-600 md:table-cell">
                {job.source_type}
                {job.source_id !== null && <span className="block truncate text-slate-400">{job.source_id}</span>}
              </td>
              <td className="hidden text-xs whitespace-nowrap text-slate-600 sm:table-cell">
                <Time at={job.created_at} />
              </td>
              <td className="hidden text-xs whitespace-nowrap text-slate-600 tabular-nums sm:table-cell">
                {formatDuration(durationBetween(job.started_at, job.completed_at, now))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
