// The job list. Every filter lives in the query string (deep links, back button), mapped onto
// `GET /api/jobs` (API §3.4) with `limit`/`offset` paging and the `X-Total-Count` total.

import { useEffect, useState } from "react";
import { useSearchParams } from "react-router";
import { useApi } from "../api/useApi";
import { JOB_STATUSES, type JobStatus, type JobSummary, type Workspace } from "../api/types";
import { JobsTable } from "../components/JobsTable";
import { Empty, ErrorPanel, PageHeader, Spinner, StaleBanner, useTitle } from "../components/ui";

export const PAGE_SIZE = 25;

/** Who created a job (API §2.4 `source_type`). */
const SOURCE_TYPES = ["api", "user", "trigger", "webhook", "hook", "task", "retry", "rerun", "restart"] as const;

/** The API query of the page's URL filters. */
export function jobsQuery(params: URLSearchParams): string {
  const query = new URLSearchParams();
  const workspace = params.get("workspace") ?? "";
  const task = params.get("task") ?? "";
  const status = params.get("status") ?? "";
  const search = params.get("q") ?? "";
  const source = params.get("source") ?? "";
  const page = Math.max(1, Number.parseInt(params.get("page") ?? "1", 10) || 1);
  if (workspace !== "") query.set("workspace", workspace);
  // `task_name` requires `workspace` (API §3.4); without one the task goes into the search.
  if (task !== "" && workspace !== "") query.set("task_name", task);
  const searchText = task !== "" && workspace === "" ? task : search;
  if (searchText !== "") query.set("search", searchText.slice(0, 200));
  const statuses = status
    .split(",")
    .filter((item): item is JobStatus => (JOB_STATUSES as readonly string[]).includes(item));
  if (statuses.length > 0) query.set("status", statuses.join(","));
  if ((SOURCE_TYPES as readonly string[]).includes(source)) query.set("source_type", source);
  query.set("limit", String(PAGE_SIZE));
  query.set("offset", String((page - 1) * PAGE_SIZE));
  return `/api/jobs?${query.toString()}`;
}

export function Jobs() {
  useTitle("Jobs");
  const [params, setParams] = useSearchParams();
  const workspaces = useApi<Workspace[]>("/api/workspaces");
  const jobs = useApi<JobSummary[]>(jobsQuery(params), { pollMs: 3000, keepPrevious: true });
  const page = Math.max(1, Number.parseInt(params.get("page") ?? "1", 10) || 1);
  const statuses = (params.get("status") ?? "").split(",").filter((item) => item !== "");
  const [search, setSearch] = useState(params.get("q") ?? "");

  const update = (changes: Record<string, string | null>) => {
    const next = new URLSearchParams(params);
    for (const [key, value] of Object.entries(changes)) {
      if (value === null || value === "") next.delete(key);
      else next.set(key, value);
    }
    // A new filter starts at the first page.
    if (!("page" in changes)) next.delete("page");
    setParams(next, { replace: !("page" in changes) });
  };

  // Typing searches after a short pause instead of on every key.
  useEffect(() => {
    if (search === (params.get("q") ?? "")) return;
    const timer = window.setTimeout(() => update({ q: search }), 300);
    return () => window.clearTimeout(timer);
  }, [search]);

  const toggleStatus = (status: string) => {
    const next = statuses.includes(status) ? statuses.filter((item) => item !== status) : [...statuses, status];
    update({ status: next.join(",") });
  };

  const total = jobs.total;
  const pages = total === null ? page : Math.max(1, Math.ceil(total / PAGE_SIZE));
  const filtered = params.toString().replace(/(^|&)page=\d+/, "") !== "";

  return (
    <>
      <PageHeader
        title="Jobs"
        subtitle={
          total === null
            ? undefined
            : `${total.toLocaleString()} ${total === 1 ? "job" : "jobs"}${filtered ? " match the filters" : ""}`
        }
      />
      <form
        role="search"
        aria-label="Filter jobs"
        onSubmit={(event) => event.preventDefault()}
        className="mb-4 grid gap-3 rounded-xl border border-slate-200 bg-white p-4 shadow-sm sm:grid-cols-2 lg:grid-cols-4"
      >
        <div>
          <label htmlFor="filter-workspace" className="mb-1 block text-sm font-medium">
            Workspace
          </label>
          <select
            id="filter-workspace"
            value={params.get("workspace") ?? ""}
            onChange={(event) => update({ workspace: event.target.value })}
            className="field-input"
          >
            <option value="">All workspaces</option>
            {(workspaces.data ?? []).map((workspace) => (
              <option key={workspace.name} value={workspace.name}>
                {workspace.name}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="filter-task" className="mb-1 block text-sm font-medium">
            Task
          </label>
          <input
            id="filter-task"
            type="text"
            defaultValue={params.get("task") ?? ""}
            key={params.get("task") ?? ""}
            placeholder="Task name"
            onBlur={(event) => update({ task: event.target.value.trim() })}
            onKeyDown={(event) => {
              if (event.key === "Enter") update({ task: event.currentTarget.value.trim() });
            }}
            className="field-input"
          />
        </div>
        <div>
          <label htmlFor="filter-source" className="mb-1 block text-sm font-medium">
            Started by
          </label>
          <select
            id="filter-source"
            value={params.get("source") ?? ""}
            onChange={(event) => update({ source: event.target.value })}
            className="field-input"
          >
            <option value="">Anyone</option>
            {SOURCE_TYPES.map((type) => (
              <option key={type} value={type}>
                {type}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="filter-search" className="mb-1 block text-sm font-medium">
            Search
          </label>
          <input
            id="filter-search"
            type="search"
            value={search}
            placeholder="Task, workspace, source or job id prefix"
            onChange={(event) => setSearch(event.target.value)}
            className="field-input"
          />
        </div>
        <fieldset className="sm:col-span-2 lg:col-span-4">
          <legend className="mb-1 text-sm font-medium">Status</legend>
          <div className="flex flex-wrap gap-2">
            {JOB_STATUSES.map((status) => (
              <label
                key={status}
                className={`cursor-pointer rounded-full px-3 py-1 text-xs font-medium ring-1 ring-inset has-[:focus-visible]:outline-2 has-[:focus-visible]:outline-cyan-600 ${statuses.includes(status) ? "bg-cyan-700 text-white ring-cyan-700" : "bg-white text-slate-700 ring-slate-300"}`}
              >
                <input
                  type="checkbox"
                  className="sr-only"
                  checked={statuses.includes(status)}
                  onChange={() => toggleStatus(status)}
                />
                {status}
              </label>
            ))}
            {filtered && (
              <button
                type="button"
                className="ml-auto text-xs text-cyan-800 underline"
                onClick={() => {
                  setSearch("");
                  setParams(new URLSearchParams());
                }}
              >
                Clear filters
              </button>
            )}
          </div>
        </fieldset>
      </form>
      <StaleBanner error={jobs.data !== undefined ? jobs.error : undefined} />
      <div className="rounded-xl border border-slate-200 bg-white shadow-sm">
        {jobs.loading ? (
          <div className="px-4">
            <Spinner />
          </div>
        ) : jobs.data === undefined ? (
          jobs.error && (
            <div className="px-4">
              <ErrorPanel error={jobs.error} onRetry={jobs.reload} what="Jobs" />
            </div>
          )
        ) : jobs.data.length === 0 ? (
          <Empty>{filtered ? "No job matches these filters." : "No jobs yet."}</Empty>
        ) : (
          <JobsTable jobs={jobs.data} />
        )}
      </div>
      {pages > 1 && (
        <nav aria-label="Pages" className="mt-4 flex items-center justify-between text-sm">
          <button
            type="button"
            className="btn-secondary"
            disabled={page <= 1}
            onClick={() => update({ page: String(page - 1) })}
          >
            ← Newer
          </button>
          <span className="text-slate-600">
            Page {page} of {pages}
          </span>
          <button
            type="button"
            className="btn-secondary"
            disabled={page >= pages}
            onClick={() => update({ page: String(page + 1) })}
          >
            Older →
          </button>
        </nav>
      )}
    </>
  );
}
