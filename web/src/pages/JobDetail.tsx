// One job: status and timing, the DAG coloured by step status, the step list with inputs,
// outputs, errors and retry history, and the live log. The job JSON is polled while the job
// runs (step statuses are not in the log stream); the log follows the WebSocket.

import { lazy, Suspense, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { Link, useLocation, useNavigate, useParams, useSearchParams } from "react-router";
import { ApiError, post, seg } from "../api/client";
import { useApi } from "../api/useApi";
import { isTerminalJob, type JobDetail as JobDetailData, type Json, type Step } from "../api/types";
import { ErrorBoundary } from "../components/ErrorBoundary";
import {
  Card,
  ErrorPanel,
  JsonBlock,
  PageHeader,
  Spinner,
  StaleBanner,
  StatusBadge,
  Time,
  useNow,
  useTitle,
} from "../components/ui";
import { LogView } from "../logs/LogView";
import { StepDetail, StepList, timeSpan } from "./job/Steps";
import { ApprovalPanel } from "./job/Approval";
import { useLogStream, type StreamState } from "../logs/useLogStream";
import { absoluteTime, durationBetween, formatDuration, shortId } from "../lib/format";

const JobGraph = lazy(() => import("../graph/JobGraph"));

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A part of a job id, as the API takes it (issue #15): at least 4 hex digits, dashes allowed. */
const PARTIAL_ID = /^(?=(?:-*[0-9a-f]){4})[0-9a-f-]{4,36}$/i;

export function JobDetailPage() {
  const { id = "" } = useParams();
  // A different job is a different page: fresh log buffer, fresh state.
  return <JobDetail key={id} id={id} />;
}

function JobDetail({ id }: { id: string }) {
  useTitle(`Job ${shortId(id)}`);
  const full = UUID.test(id);
  // The short id the UI shows (or any part of an id) is resolved by the API, then the page
  // moves to the job's canonical address.
  const partial = !full && PARTIAL_ID.test(id);
  const [polling, setPolling] = useState(true);
  const job = useApi<JobDetailData>(full || partial ? `/api/jobs/${seg(id)}` : null, {
    pollMs: polling && full ? 1500 : undefined,
  });
  const settled = job.data !== undefined && isSettled(job.data);
  useEffect(() => setPolling(!settled), [settled]);
  const navigate = useNavigate();
  const location = useLocation();
  const resolved = partial ? job.data?.job_id : undefined;
  useEffect(() => {
    if (resolved !== undefined) navigate(`/jobs/${resolved}${location.search}`, { replace: true });
  }, [resolved, navigate, location.search]);

  if (!full && !partial) {
    return <ErrorPanel error={new ApiError(404, null, `'${id}' is not a job id.`)} what="This job" />;
  }
  if (job.loading || resolved !== undefined) return <Spinner label="Loading job…" />;
  if (job.data === undefined) {
    return job.error ? <ErrorPanel error={job.error} onRetry={job.reload} what={`Job ${shortId(id)}`} /> : null;
  }
  return <JobView job={job.data} refreshError={job.error} reload={job.reload} />;
}

const ACTIVE_STEP = new Set<Step["status"]>(["running", "ready"]);

/**
 * Whether the job will not change any more. A cancelled job is terminal at once, but its running
 * steps turn cancelled only when their workers have stopped them (and `completed_at` is set
 * then), so polling goes on until that has happened too.
 */
export function isSettled(job: JobDetailData): boolean {
  return (
    isTerminalJob(job.status) &&
    job.completed_at !== null &&
    !job.steps.some((step) => ACTIVE_STEP.has(step.status)) &&
    // A task-level retry still to come adds a link to this job when it is made.
    (job.retry_due_at ?? null) === null
  );
}

function JobView({
  job,
  refreshError,
  reload,
}: {
  job: JobDetailData;
  refreshError: ApiError | undefined;
  reload: () => void;
}) {
  const [params, setParams] = useSearchParams();
  const selected = params.get("step");
  const stream = useLogStream(job.job_id);
  const terminal = isTerminalJob(job.status);
  const now = useNow(1000, !terminal);

  // The end frame means the job is terminal: fetch its final state at once.
  const endSeen = useRef(false);
  useEffect(() => {
    if (stream.endStatus !== null && !endSeen.current) {
      endSeen.current = true;
      reload();
    }
  }, [stream.endStatus, reload]);

  const selectStep = (step: string | null) => {
    const next = new URLSearchParams(params);
    if (step === null) next.delete("step");
    else next.set("step", step);
    setParams(next, { replace: true });
  };

  const stepNames = useMemo(() => job.steps.map((step) => step.step_name), [job.steps]);
  // A hook job of a worker action runs `_hook:<action>`, which is no task: no task page, no
  // "Run again" (issue #15). Its original job is linked instead.
  const isTask = !job.task_name.startsWith("_hook:");
  const hookOf = job.hook_of_job_id ?? null;
  const selectedStep = selected === null ? undefined : job.steps.find((step) => step.step_name === selected);
  const retryDue = job.retry_due_at ?? null;
  const chain = job.retry_chain ?? [];

  return (
    <>
      <nav aria-label="Breadcrumb" className="mb-2 text-sm text-slate-500">
        <Link to="/jobs">Jobs</Link> / <span className="font-mono">{shortId(job.job_id)}</span>
      </nav>
      <PageHeader
        title={
          <span className="flex flex-wrap items-center gap-3">
            {isTask ? (
              <Link to={`/workspaces/${seg(job.workspace)}/tasks/${seg(job.task_name)}`} className="text-slate-900">
                {job.task_name}
              </Link>
            ) : (
              <span>{job.task_name}</span>
            )}
            <span data-testid="job-status" aria-live="polite">
              <StatusBadge status={job.status} />
            </span>
          </span>
        }
        subtitle={
          <span>
            Job <span className="font-mono text-xs">{job.job_id}</span> in{" "}
            <Link to={`/workspaces/${seg(job.workspace)}`}>{job.workspace}</Link>
          </span>
        }
        actions={
          <>
            {!terminal && <CancelButton jobId={job.job_id} onCancelled={reload} />}
            {retryDue !== null && (
              <CancelButton jobId={job.job_id} onCancelled={reload} label="Cancel retry" what="the retry" />
            )}
            {isTask && restartable(job) && <RestartButton jobId={job.job_id} />}
            {isTask && (
              <Link
                to={`/workspaces/${seg(job.workspace)}/tasks/${seg(job.task_name)}`}
                state={{ rerun: { jobId: job.job_id, input: rerunInput(job.raw_input) } }}
                className="btn-secondary hover:no-underline"
              >
                Run again
              </Link>
            )}
          </>
        }
      />
      <StaleBanner error={refreshError} />
      {!terminal &&
        job.steps
          .filter((step) => step.status === "suspended")
          .map((step) => <ApprovalPanel key={step.step_name} jobId={job.job_id} step={step} onDecided={reload} />)}
      {job.queue_position != null && (
        <p
          role="status"
          data-testid="job-queued"
          className="mb-4 rounded-md border border-amber-200 bg-amber-50 px-3 py-2 text-sm text-amber-900"
        >
          Queued: #{job.queue_position} in the queue of {job.task_name}. Its concurrency limit is reached; the job
          starts when a running job of the task ends.
        </p>
      )}
      {job.error !== null && (
        <p
          role="alert"
          className="mb-4 rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm break-words text-red-900"
        >
          {job.error}
        </p>
      )}
      <dl className="mb-6 grid grid-cols-2 gap-3 rounded-xl border border-slate-200 bg-white p-4 text-sm shadow-sm sm:grid-cols-3 lg:grid-cols-6">
        <Fact label="Created">
          <Time at={job.created_at} />
        </Fact>
        <Fact label="Started">{job.started_at === null ? "—" : absoluteTime(job.started_at)}</Fact>
        <Fact label="Finished">{job.completed_at === null ? "—" : absoluteTime(job.completed_at)}</Fact>
        <Fact label="Duration">
          <span className="tabular-nums" data-testid="job-duration">
            {formatDuration(durationBetween(job.started_at, job.completed_at, now))}
          </span>
        </Fact>
        <Fact label="Source">
          {job.source_type}
          {job.source_id !== null && <span className="block truncate text-xs text-slate-500">{job.source_id}</span>}
        </Fact>
        <Fact label="Revision">
          <span className="font-mono text-xs" title={job.revision}>
            {job.revision.slice(0, 12)}
          </span>
        </Fact>
        {hookOf !== null && (
          <Fact label="Hook of">
            <Link to={`/jobs/${hookOf}`} className="font-mono text-xs" aria-label={`Hook of job ${shortId(hookOf)}`}>
              {shortId(hookOf)}
            </Link>
          </Fact>
        )}
        {job.priority !== 0 && <Fact label="Priority">{job.priority}</Fact>}
        {chain.length > 0 && <Fact label="Attempt">{job.retry_attempt} of the chain</Fact>}
        {job.source_job_id !== undefined && job.source_job_id !== null && (
          <Fact label={job.source_type === "restart" ? "Restart of" : "Run again from"}>
            <Link to={`/jobs/${job.source_job_id}`} className="font-mono text-xs">
              {shortId(job.source_job_id)}
            </Link>
          </Fact>
        )}
        {job.parent_job_id !== null && (
          <Fact label="Parent job">
            <Link to={`/jobs/${job.parent_job_id}`} className="font-mono text-xs">
              {shortId(job.parent_job_id)}
            </Link>
            {job.parent_step_name !== null && ` · ${job.parent_step_name}`}
          </Fact>
        )}
      </dl>

      {chain.length > 0 && (
        <section aria-label="Retries" className="mb-6">
          <Card title={`Task retries (${chain.length} ${chain.length === 1 ? "job" : "jobs"})`}>
            <ol className="divide-y divide-slate-100">
              {chain.map((link) => (
                <li key={link.job_id} className="flex flex-wrap items-center gap-3 py-2 text-sm">
                  <span className="text-xs text-slate-500">attempt {link.retry_attempt}</span>
                  {link.job_id === job.job_id ? (
                    <span className="font-mono text-xs" aria-current="page">
                      {shortId(link.job_id)} (this job)
                    </span>
                  ) : (
                    <Link
                      to={`/jobs/${link.job_id}`}
                      className="font-mono text-xs"
                      aria-label={`Attempt ${link.retry_attempt}: job ${shortId(link.job_id)}`}
                    >
                      {shortId(link.job_id)}
                    </Link>
                  )}
                  <StatusBadge status={link.status} />
                </li>
              ))}
            </ol>
            {retryDue !== null && (
              <p className="mt-2 text-sm text-slate-600" data-testid="retry-due">
                Next attempt due {absoluteTime(retryDue)}.
              </p>
            )}
          </Card>
        </section>
      )}

      {(job.hook_jobs ?? []).length > 0 && (
        <section aria-label="Hook jobs" className="mb-6">
          <Card title={`Hook jobs (${(job.hook_jobs ?? []).length})`}>
            <ul className="divide-y divide-slate-100">
              {(job.hook_jobs ?? []).map((hook) => (
                <li key={hook.job_id} className="flex flex-wrap items-center gap-3 py-2 text-sm">
                  <span className="text-xs text-slate-500">{hook.event}</span>
                  <Link to={`/jobs/${hook.job_id}`} className="font-medium">
                    {hook.task_name} <span className="font-mono text-xs">{shortId(hook.job_id)}</span>
                  </Link>
                  <StatusBadge status={hook.status} />
                </li>
              ))}
            </ul>
          </Card>
        </section>
      )}

      <section aria-label="Step graph" className="mb-6">
        <ErrorBoundary what="the step graph">
          <Suspense
            fallback={
              <div style={{ height: graphHeight(job.steps) }} className="rounded-xl border border-slate-200 bg-white">
                <Spinner label="Loading graph…" />
              </div>
            }
          >
            <JobGraph steps={job.steps} selected={selected} onSelect={selectStep} height={graphHeight(job.steps)} />
          </Suspense>
        </ErrorBoundary>
      </section>

      <div className="grid items-start gap-6 xl:grid-cols-5">
        <Card title={`Steps (${job.steps.length})`} className="min-w-0 xl:col-span-2">
          {selectedStep !== undefined && <StepDetail step={selectedStep} onClose={() => selectStep(null)} />}
          <StepList
            steps={job.steps}
            selected={selected}
            onSelect={selectStep}
            now={now}
            span={timeSpan(job.started_at, job.completed_at, now)}
          />
        </Card>
        <section aria-label="Logs" className="min-w-0 xl:col-span-3">
          <LogView
            buffer={stream.buffer}
            steps={stepNames}
            step={selected}
            onStepChange={selectStep}
            streamLabel={streamLabel(stream.state)}
          />
        </section>
      </div>

      <div className="mt-6 grid gap-6 lg:grid-cols-2">
        <Card title="Input">
          <JsonBlock value={job.input} label="Job input" />
        </Card>
        <Card title="Output">
          <JsonBlock value={job.output} label="Job output" />
        </Card>
      </div>
    </>
  );
}

/**
 * Whether "Restart from failed step" applies: a failed or cancelled job once its steps have all
 * ended (docs/restart.md; the server answers 409 before that).
 */
function restartable(job: JobDetailData): boolean {
  return (job.status === "failed" || job.status === "cancelled") && job.completed_at !== null;
}

/** The submitted input of a job, as the starting point of a new run. */
function rerunInput(raw: Json): Record<string, Json> {
  return raw !== null && typeof raw === "object" && !Array.isArray(raw) ? raw : {};
}

/** Room for the graph: small jobs need little, large ones a screenful. */
function graphHeight(steps: Step[]): number {
  const flow = steps.filter((step) => step.loop_source === undefined).length;
  return flow <= 3 ? 200 : flow <= 20 ? 300 : 420;
}

function streamLabel(state: StreamState): string {
  switch (state) {
    case "connecting":
      return "connecting…";
    case "live":
      return "● live";
    case "reconnecting":
      return "reconnecting…";
    case "ended":
      return "complete";
  }
}

function Fact({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="min-w-0">
      <dt className="text-xs font-medium tracking-wide text-slate-500 uppercase">{label}</dt>
      <dd className="mt-0.5 truncate">{children}</dd>
    </div>
  );
}

/** Restarts the job from its failed step and opens the new job. */
function RestartButton({ jobId }: { jobId: string }) {
  const navigate = useNavigate();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const restart = async () => {
    setBusy(true);
    setError(null);
    try {
      const reply = await post<{ job_id: string }>(`/api/jobs/${seg(jobId)}/restart`);
      navigate(`/jobs/${reply.job_id}`);
    } catch (cause) {
      setError(cause instanceof ApiError ? cause.message : String(cause));
      setBusy(false);
    }
  };
  return (
    <>
      <button
        type="button"
        className="btn-secondary"
        disabled={busy}
        onClick={restart}
        title="A new job that reuses the outputs of the steps that completed and runs the others"
      >
        {busy ? "Restarting…" : "Restart from failed step"}
      </button>
      {error !== null && (
        <span role="alert" className="w-full text-sm text-red-800">
          {error}
        </span>
      )}
    </>
  );
}

function CancelButton({
  jobId,
  onCancelled,
  label = "Cancel job",
  what = "this job",
}: {
  jobId: string;
  onCancelled: () => void;
  label?: string;
  what?: string;
}) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const confirmRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (confirming) confirmRef.current?.focus();
  }, [confirming]);

  const cancel = async () => {
    setBusy(true);
    setError(null);
    try {
      await post(`/api/jobs/${seg(jobId)}/cancel`);
      setConfirming(false);
      onCancelled();
    } catch (cause) {
      const apiError = cause instanceof ApiError ? cause : null;
      // 409: it finished meanwhile; the refresh shows how.
      if (apiError?.status === 409) {
        setConfirming(false);
        onCancelled();
      } else {
        setError(apiError?.message ?? String(cause));
      }
    } finally {
      setBusy(false);
    }
  };

  if (!confirming) {
    return (
      <button type="button" className="btn-danger" onClick={() => setConfirming(true)}>
        {label}
      </button>
    );
  }
  return (
    <div
      role="alertdialog"
      aria-labelledby="cancel-title"
      aria-describedby="cancel-text"
      className="flex flex-wrap items-center gap-2 rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm"
      onKeyDown={(event) => {
        if (event.key === "Escape") setConfirming(false);
      }}
    >
      <span id="cancel-title" className="font-semibold text-red-900">
        Cancel {what}?
      </span>
      <span id="cancel-text" className="sr-only">
        Running steps are stopped and pending steps will not run.
      </span>
      <button ref={confirmRef} type="button" className="btn-danger" disabled={busy} onClick={cancel}>
        {busy ? "Cancelling…" : "Confirm"}
      </button>
      <button type="button" className="btn-secondary" onClick={() => setConfirming(false)}>
        Keep running
      </button>
      {error !== null && <span className="w-full text-red-800">{error}</span>}
    </div>
  );
}
