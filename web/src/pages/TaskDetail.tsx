import { Link, useLocation, useNavigate, useParams } from "react-router";
import { seg } from "../api/client";
import { useApi } from "../api/useApi";
import type { Json, JobSummary, TaskDetail as TaskDetailData } from "../api/types";
import { JobsTable } from "../components/JobsTable";
import { Card, Empty, ErrorPanel, PageHeader, Spinner, useTitle } from "../components/ui";
import { RunForm } from "../form/RunForm";
import { absoluteTime } from "../lib/format";

export function TaskDetail() {
  const { ws = "", task = "" } = useParams();
  useTitle(`Task ${task}`);
  const navigate = useNavigate();
  // "Run again" on a job page brings that job's input along.
  const location = useLocation();
  const rerun = (location.state as { rerun?: { jobId: string; input: Record<string, Json> } } | null)?.rerun;
  const detail = useApi<TaskDetailData>(`/api/workspaces/${seg(ws)}/tasks/${seg(task)}`);
  const jobs = useApi<JobSummary[]>(
    `/api/jobs?workspace=${encodeURIComponent(ws)}&task_name=${encodeURIComponent(task)}&limit=10`,
    { pollMs: 5000 },
  );

  if (detail.loading) return <Spinner />;
  if (detail.data === undefined) {
    return detail.error ? <ErrorPanel error={detail.error} onRetry={detail.reload} what={`Task ${task}`} /> : null;
  }
  const data = detail.data;
  const steps = Object.entries(data.flow);

  return (
    <>
      <nav aria-label="Breadcrumb" className="mb-2 text-sm text-slate-500">
        <Link to="/tasks">Tasks</Link> / <Link to={`/workspaces/${seg(ws)}`}>{ws}</Link>
        {data.folder !== null && ` / ${data.folder}`}
      </nav>
      <PageHeader
        title={data.display_name ?? data.name}
        subtitle={
          <>
            {data.display_name !== null && <span className="mr-2 font-mono text-xs">{data.name}</span>}
            {data.description ?? "No description."}
          </>
        }
      />
      <div className="grid gap-6 lg:grid-cols-5">
        <Card title="Run this task" className="lg:col-span-3">
          {rerun !== undefined && (
            <p className="mb-4 rounded-md bg-cyan-50 px-3 py-2 text-sm text-cyan-900 ring-1 ring-cyan-100">
              Filled in from job{" "}
              <Link to={`/jobs/${rerun.jobId}`} className="font-mono">
                {rerun.jobId.slice(0, 8)}
              </Link>
              ; secret fields left empty keep that job's values.
            </p>
          )}
          <RunForm
            key={`${ws}/${task}/${rerun?.jobId ?? ""}`}
            workspace={ws}
            task={task}
            input={data.input}
            previous={rerun?.input}
            sourceJobId={rerun?.jobId}
            onCreated={(jobId) => navigate(`/jobs/${jobId}`)}
          />
        </Card>
        <div className="space-y-6 lg:col-span-2">
          <Card title={`Flow (${steps.length} ${steps.length === 1 ? "step" : "steps"})`}>
            <ol className="space-y-2 text-sm">
              {steps.map(([name, step]) => (
                <li key={name} className="rounded-md bg-slate-50 px-3 py-2">
                  <span className="font-medium">{step.name ?? name}</span>
                  <span className="ml-2 text-xs text-slate-500">
                    {typeof step.action === "string" ? step.action : "inline action"}
                    {step.action_type !== null && ` · ${step.action_type}`}
                    {step.for_each !== null && " · loop"}
                  </span>
                  {step.depends_on.length > 0 && (
                    <p className="text-xs text-slate-500">after {step.depends_on.join(", ")}</p>
                  )}
                  {step.description !== null && <p className="text-xs text-slate-600">{step.description}</p>}
                </li>
              ))}
            </ol>
          </Card>
          <Card title="Settings">
            <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1 text-sm">
              <dt className="text-slate-500">Mode</dt>
              <dd>{data.mode}</dd>
              <dt className="text-slate-500">Timeout</dt>
              <dd>{data.timeout_secs === null ? "none" : `${data.timeout_secs} s`}</dd>
              <dt className="text-slate-500">Concurrency</dt>
              <dd>{data.concurrency ?? "unlimited"}</dd>
            </dl>
          </Card>
          {data.triggers.length > 0 && (
            <Card title="Triggers">
              <ul className="space-y-2 text-sm">
                {data.triggers.map((trigger) => (
                  <li key={trigger.name}>
                    <span className="font-medium">{trigger.name}</span>{" "}
                    <span className="text-xs text-slate-500">
                      {trigger.type}
                      {!trigger.enabled && " · disabled"}
                      {trigger.cron !== undefined &&
                        ` · ${trigger.cron}${trigger.timezone !== undefined ? ` (${trigger.timezone})` : ""}`}
                      {trigger.webhook !== undefined && ` · ${trigger.webhook.path}`}
                    </span>
                    {trigger.next_runs[0] !== undefined && (
                      <p className="text-xs text-slate-500">next: {absoluteTime(trigger.next_runs[0])}</p>
                    )}
                  </li>
                ))}
              </ul>
            </Card>
          )}
        </div>
      </div>
      <Card
        title="Recent runs"
        className="mt-6"
        actions={
          <Link to={`/jobs?workspace=${encodeURIComponent(ws)}&task=${encodeURIComponent(task)}`} className="text-sm">
            All runs →
          </Link>
        }
      >
        {jobs.loading ? (
          <Spinner />
        ) : (jobs.data ?? []).length === 0 ? (
          <Empty>This task has not run yet.</Empty>
        ) : (
          <JobsTable jobs={jobs.data ?? []} showWorkspace={false} />
        )}
      </Card>
    </>
  );
}
