import { Link, useParams } from "react-router";
import { seg } from "../api/client";
import { useApi } from "../api/useApi";
import type { Worker, WorkerDetail } from "../api/types";
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
import { durationBetween, formatDuration, shortId } from "../lib/format";

export function Workers() {
  useTitle("Workers");
  const workers = useApi<Worker[]>("/api/workers?limit=200", { pollMs: 5000 });
  return (
    <>
      <PageHeader
        title="Workers"
        subtitle={workers.total === null ? "Processes that run steps" : `${workers.total} registered`}
      />
      <StaleBanner error={workers.data !== undefined ? workers.error : undefined} />
      <div className="rounded-xl border border-slate-200 bg-white shadow-sm">
        {workers.loading ? (
          <div className="px-4">
            <Spinner />
          </div>
        ) : workers.data === undefined ? (
          workers.error && (
            <div className="px-4">
              <ErrorPanel error={workers.error} onRetry={workers.reload} what="Workers" />
            </div>
          )
        ) : workers.data.length === 0 ? (
          <Empty>
            No worker has registered yet. Start one with <code>stroem work</code>.
          </Empty>
        ) : (
          <div className="overflow-x-auto">
            <table className="table-base">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Status</th>
                  <th scope="col">Running</th>
                  <th scope="col" className="hidden md:table-cell">
                    Capabilities
                  </th>
                  <th scope="col" className="hidden md:table-cell">
                    Tags
                  </th>
                  <th scope="col">Last heartbeat</th>
                </tr>
              </thead>
              <tbody>
                {workers.data.map((worker) => (
                  <tr key={worker.worker_id} className="hover:bg-slate-50">
                    <td>
                      <Link to={`/workers/${worker.worker_id}`} className="font-medium">
                        {worker.name}
                      </Link>
                      <span className="block font-mono text-xs text-slate-400">{shortId(worker.worker_id)}</span>
                    </td>
                    <td>
                      <StatusBadge status={worker.status} />
                    </td>
                    <td className="tabular-nums">
                      {worker.running_steps} / {worker.max_concurrent}
                    </td>
                    <td className="hidden text-xs md:table-cell">{worker.capabilities.join(", ") || "—"}</td>
                    <td className="hidden text-xs md:table-cell">{worker.tags.join(", ") || "—"}</td>
                    <td className="text-xs">
                      <Time at={worker.last_heartbeat} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </div>
    </>
  );
}

export function WorkerPage() {
  const { id = "" } = useParams();
  useTitle(`Worker ${shortId(id)}`);
  const worker = useApi<WorkerDetail>(`/api/workers/${seg(id)}`, { pollMs: 5000 });
  if (worker.loading) return <Spinner />;
  if (worker.data === undefined) {
    return worker.error ? (
      <ErrorPanel error={worker.error} onRetry={worker.reload} what={`Worker ${shortId(id)}`} />
    ) : null;
  }
  const data = worker.data;
  return (
    <>
      <nav aria-label="Breadcrumb" className="mb-2 text-sm text-slate-500">
        <Link to="/workers">Workers</Link> / {data.name}
      </nav>
      <PageHeader
        title={
          <span className="flex items-center gap-3">
            {data.name} <StatusBadge status={data.status} />
          </span>
        }
        subtitle={<span className="font-mono text-xs">{data.worker_id}</span>}
      />
      <StaleBanner error={worker.error} />
      <div className="grid gap-6 lg:grid-cols-3">
        <Card title="Worker">
          <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1 text-sm">
            <dt className="text-slate-500">Version</dt>
            <dd>{data.version}</dd>
            <dt className="text-slate-500">Running</dt>
            <dd>
              {data.running_steps} of {data.max_concurrent} slots
            </dd>
            <dt className="text-slate-500">Capabilities</dt>
            <dd>{data.capabilities.join(", ") || "—"}</dd>
            <dt className="text-slate-500">Tags</dt>
            <dd>{data.tags.join(", ") || "—"}</dd>
            <dt className="text-slate-500">Registered</dt>
            <dd>
              <Time at={data.registered_at} />
            </dd>
            <dt className="text-slate-500">Heartbeat</dt>
            <dd>
              <Time at={data.last_heartbeat} />
            </dd>
          </dl>
        </Card>
        <Card title="Recent steps" className="lg:col-span-2">
          {data.steps.length === 0 ? (
            <Empty>This worker has not run a step yet.</Empty>
          ) : (
            <div className="overflow-x-auto">
              <table className="table-base">
                <thead>
                  <tr>
                    <th scope="col">Step</th>
                    <th scope="col">Task</th>
                    <th scope="col">Status</th>
                    <th scope="col">Started</th>
                    <th scope="col">Duration</th>
                  </tr>
                </thead>
                <tbody>
                  {data.steps.map((step) => (
                    <tr key={`${step.job_id}/${step.step_name}`}>
                      <td>
                        <Link to={`/jobs/${step.job_id}?step=${encodeURIComponent(step.step_name)}`}>
                          {step.step_name}
                        </Link>
                        {step.error_message !== null && (
                          <p className="max-w-xs truncate text-xs text-red-700">{step.error_message}</p>
                        )}
                      </td>
                      <td className="text-xs">
                        {step.task_name} <span className="text-slate-400">{step.workspace}</span>
                      </td>
                      <td>
                        <StatusBadge status={step.status} />
                      </td>
                      <td className="text-xs">
                        <Time at={step.started_at} />
                      </td>
                      <td className="text-xs tabular-nums">
                        {formatDuration(durationBetween(step.started_at, step.completed_at))}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Card>
      </div>
    </>
  );
}
