import { Link, useParams } from "react-router";
import { useApi } from "../api/useApi";
import { seg } from "../api/client";
import type { Diagnostic, TaskSummary, Workspace } from "../api/types";
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

function revisionText(revision: string | null): string {
  return revision === null ? "—" : revision.slice(0, 12);
}

export function Workspaces() {
  useTitle("Workspaces");
  const workspaces = useApi<Workspace[]>("/api/workspaces", { pollMs: 15000 });
  return (
    <>
      <PageHeader title="Workspaces" subtitle="Where tasks are loaded from, and whether they validate" />
      <StaleBanner error={workspaces.data !== undefined ? workspaces.error : undefined} />
      {workspaces.loading ? (
        <Spinner />
      ) : workspaces.data === undefined ? (
        workspaces.error && <ErrorPanel error={workspaces.error} onRetry={workspaces.reload} what="Workspaces" />
      ) : workspaces.data.length === 0 ? (
        <Empty>No workspaces are configured.</Empty>
      ) : (
        <div className="grid gap-4 md:grid-cols-2">
          {workspaces.data.map((workspace) => (
            <Card
              key={workspace.name}
              title={<Link to={`/workspaces/${seg(workspace.name)}`}>{workspace.name}</Link>}
              actions={<StatusBadge status={workspace.status} />}
            >
              <WorkspaceFacts workspace={workspace} />
              {workspace.errors.length > 0 && (
                <p className="mt-3 text-sm text-red-700">
                  {workspace.errors.length} validation {workspace.errors.length === 1 ? "error" : "errors"} —{" "}
                  <Link to={`/workspaces/${seg(workspace.name)}`}>see details</Link>
                </p>
              )}
            </Card>
          ))}
        </div>
      )}
    </>
  );
}

function WorkspaceFacts({ workspace }: { workspace: Workspace }) {
  const source = workspace.source;
  return (
    <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1 text-sm">
      <dt className="text-slate-500">Revision</dt>
      <dd className="font-mono text-xs" title={workspace.revision ?? undefined}>
        {revisionText(workspace.revision)}
      </dd>
      <dt className="text-slate-500">Source</dt>
      <dd className="break-all">
        {source.type}
        {source.path !== undefined && `: ${source.path}`}
        {source.url !== undefined && `: ${source.url}`}
        {source.ref !== undefined && ` (${source.ref})`}
      </dd>
      <dt className="text-slate-500">Loaded</dt>
      <dd>
        <Time at={workspace.loaded_at} />
      </dd>
      <dt className="text-slate-500">Contents</dt>
      <dd>
        {workspace.tasks_count} tasks · {workspace.actions_count} actions · {workspace.triggers_count} triggers
      </dd>
      {workspace.failed_revision !== null && (
        <>
          <dt className="text-slate-500">Failed revision</dt>
          <dd className="font-mono text-xs">{revisionText(workspace.failed_revision)}</dd>
        </>
      )}
    </dl>
  );
}

export function DiagnosticList({ diagnostics }: { diagnostics: Diagnostic[] }) {
  return (
    <ul className="space-y-3">
      {diagnostics.map((diagnostic, index) => (
        <li
          key={`${diagnostic.file}:${diagnostic.line}:${diagnostic.column}:${index}`}
          className={`rounded-md border-l-4 p-3 text-sm ${diagnostic.severity === "error" ? "border-red-500 bg-red-50" : "border-amber-500 bg-amber-50"}`}
        >
          <p className="font-mono text-xs text-slate-600">
            {diagnostic.file}:{diagnostic.line}:{diagnostic.column}
            <span className="ml-2 font-sans font-semibold">
              {diagnostic.severity}[{diagnostic.code}]
            </span>
          </p>
          <p className="mt-1 text-slate-900">{diagnostic.message}</p>
          {diagnostic.path !== "" && <p className="mt-1 font-mono text-xs text-slate-500">at {diagnostic.path}</p>}
          {diagnostic.help !== undefined && <p className="mt-1 text-xs text-slate-700">{diagnostic.help}</p>}
          {diagnostic.related.map((related) => (
            <p
              key={`${related.file}:${related.line}:${related.column}`}
              className="mt-1 font-mono text-xs text-slate-500"
            >
              {related.file}:{related.line}:{related.column}: {related.message}
            </p>
          ))}
        </li>
      ))}
    </ul>
  );
}

export function WorkspacePage() {
  const { ws = "" } = useParams();
  useTitle(`Workspace ${ws}`);
  const workspace = useApi<Workspace>(`/api/workspaces/${seg(ws)}`, { pollMs: 15000 });
  const tasks = useApi<TaskSummary[]>(`/api/workspaces/${seg(ws)}/tasks`);
  if (workspace.loading) return <Spinner />;
  if (workspace.data === undefined) {
    return workspace.error ? (
      <ErrorPanel error={workspace.error} onRetry={workspace.reload} what={`Workspace ${ws}`} />
    ) : null;
  }
  const data = workspace.data;
  return (
    <>
      <PageHeader
        title={data.name}
        subtitle={
          <span className="flex items-center gap-2">
            Workspace <StatusBadge status={data.status} />
          </span>
        }
        actions={
          <Link to={`/jobs?workspace=${seg(data.name)}`} className="btn-secondary hover:no-underline">
            Jobs of this workspace
          </Link>
        }
      />
      <StaleBanner error={workspace.error} />
      {data.errors.length > 0 && (
        <Card title={`Errors (${data.errors.length})`} className="mb-6">
          {data.status === "stale" && (
            <p className="mb-3 text-sm text-slate-700">
              The newest revision failed validation; the last good revision keeps serving.
            </p>
          )}
          <DiagnosticList diagnostics={data.errors} />
        </Card>
      )}
      <div className="grid gap-6 lg:grid-cols-3">
        <Card title="Revision">
          <WorkspaceFacts workspace={data} />
        </Card>
        <Card title={`Tasks (${data.tasks_count})`} className="lg:col-span-2">
          {tasks.loading ? (
            <Spinner />
          ) : (tasks.data ?? []).length === 0 ? (
            <Empty>No tasks are served from this workspace.</Empty>
          ) : (
            <ul className="divide-y divide-slate-100">
              {(tasks.data ?? []).map((task) => (
                <li key={task.name} className="py-2 text-sm">
                  <Link to={`/workspaces/${seg(ws)}/tasks/${seg(task.name)}`} className="font-medium">
                    {task.display_name ?? task.name}
                  </Link>
                  {task.folder !== null && <span className="ml-2 text-xs text-slate-500">{task.folder}/</span>}
                  {task.description !== null && <p className="text-xs text-slate-600">{task.description}</p>}
                </li>
              ))}
            </ul>
          )}
        </Card>
      </div>
      {data.warnings.length > 0 && (
        <Card title={`Warnings (${data.warnings.length})`} className="mt-6">
          <DiagnosticList diagnostics={data.warnings} />
        </Card>
      )}
    </>
  );
}
