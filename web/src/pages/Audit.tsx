// The audit trail (`GET /api/audit`), for admins: every state-changing request and sign-in,
// newest first, filtered by actor, action (exact, or a prefix such as `auth.`) and time. The
// filters live in the address like the job list's.

import { useState, type FormEvent } from "react";
import { useSearchParams } from "react-router";
import type { AuditEntry } from "../api/types";
import { useApi } from "../api/useApi";
import { useAuth } from "../app/auth";
import { restriction, Restricted } from "../components/Restricted";
import { Empty, ErrorPanel, PageHeader, Spinner, StaleBanner, Time, useTitle } from "../components/ui";

export const AUDIT_PAGE_SIZE = 50;

/** The actions the server records (docs/authentication.md), offered as suggestions. */
const ACTIONS = [
  "auth.",
  "auth.login",
  "auth.refresh",
  "auth.logout",
  "auth.password",
  "auth.oidc",
  "api_key.",
  "api_key.create",
  "api_key.revoke",
  "job.",
  "job.trigger",
  "job.cancel",
  "user.",
  "user.create",
  "user.admin",
  "user.password",
  "user.groups",
  "user.delete",
];

/** A `datetime-local` value (the browser's time zone) as RFC 3339, or null when empty/invalid. */
export function localToRfc3339(value: string): string | null {
  if (value === "") return null;
  const at = new Date(value);
  return Number.isNaN(at.getTime()) ? null : at.toISOString();
}

/** The API query of the page's URL filters. */
export function auditQuery(params: URLSearchParams): string {
  const query = new URLSearchParams();
  for (const key of ["actor", "action"]) {
    const value = (params.get(key) ?? "").trim();
    if (value !== "") query.set(key, value);
  }
  for (const key of ["since", "until"]) {
    const value = localToRfc3339(params.get(key) ?? "");
    if (value !== null) query.set(key, value);
  }
  const page = Math.max(1, Number.parseInt(params.get("page") ?? "1", 10) || 1);
  query.set("limit", String(AUDIT_PAGE_SIZE));
  query.set("offset", String((page - 1) * AUDIT_PAGE_SIZE));
  return `/api/audit?${query.toString()}`;
}

export function Audit() {
  useTitle("Audit trail");
  const auth = useAuth();
  const why = restriction(auth, true);
  if (why !== null) return <Restricted why={why} title="Audit trail" />;
  return <AuditPage />;
}

function AuditPage() {
  const [params, setParams] = useSearchParams();
  const entries = useApi<AuditEntry[]>(auditQuery(params), { pollMs: 10_000, keepPrevious: true });
  const page = Math.max(1, Number.parseInt(params.get("page") ?? "1", 10) || 1);
  const total = entries.total;
  const pages = total === null ? page : Math.max(1, Math.ceil(total / AUDIT_PAGE_SIZE));
  const [draft, setDraft] = useState(() => ({
    actor: params.get("actor") ?? "",
    action: params.get("action") ?? "",
    since: params.get("since") ?? "",
    until: params.get("until") ?? "",
  }));
  const filtered = ["actor", "action", "since", "until"].some((key) => (params.get(key) ?? "") !== "");

  const apply = (event: FormEvent) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of Object.entries(draft)) if (value.trim() !== "") next.set(key, value.trim());
    setParams(next);
  };
  const goTo = (target: number) => {
    const next = new URLSearchParams(params);
    next.set("page", String(target));
    setParams(next);
  };

  return (
    <>
      <PageHeader
        title="Audit trail"
        subtitle={
          total === null
            ? "Every sign-in and every request that changed something, newest first."
            : `${total.toLocaleString()} ${total === 1 ? "entry" : "entries"}${filtered ? " match the filters" : ""}`
        }
      />
      <form
        role="search"
        aria-label="Filter the audit trail"
        onSubmit={apply}
        className="mb-4 grid gap-3 rounded-xl border border-slate-200 bg-white p-4 shadow-sm sm:grid-cols-2 lg:grid-cols-5 lg:items-end"
      >
        <div>
          <label htmlFor="audit-actor" className="mb-1 block text-sm font-medium">
            Actor
          </label>
          <input
            id="audit-actor"
            type="text"
            value={draft.actor}
            placeholder="ada@example.com"
            onChange={(event) => setDraft({ ...draft, actor: event.target.value })}
            className="field-input"
          />
        </div>
        <div>
          <label htmlFor="audit-action" className="mb-1 block text-sm font-medium">
            Action
          </label>
          <input
            id="audit-action"
            type="text"
            list="audit-actions"
            value={draft.action}
            placeholder="auth. or job.trigger"
            onChange={(event) => setDraft({ ...draft, action: event.target.value })}
            className="field-input"
          />
          <datalist id="audit-actions">
            {ACTIONS.map((action) => (
              <option key={action} value={action} />
            ))}
          </datalist>
        </div>
        <div>
          <label htmlFor="audit-since" className="mb-1 block text-sm font-medium">
            Since
          </label>
          <input
            id="audit-since"
            type="datetime-local"
            value={draft.since}
            onChange={(event) => setDraft({ ...draft, since: event.target.value })}
            className="field-input"
          />
        </div>
        <div>
          <label htmlFor="audit-until" className="mb-1 block text-sm font-medium">
            Until
          </label>
          <input
            id="audit-until"
            type="datetime-local"
            value={draft.until}
            onChange={(event) => setDraft({ ...draft, until: event.target.value })}
            className="field-input"
          />
        </div>
        <div className="flex gap-2">
          <button type="submit" className="btn-primary">
            Filter
          </button>
          {filtered && (
            <button
              type="button"
              className="btn-secondary"
              onClick={() => {
                setDraft({ actor: "", action: "", since: "", until: "" });
                setParams(new URLSearchParams());
              }}
            >
              Clear
            </button>
          )}
        </div>
      </form>
      <StaleBanner error={entries.data !== undefined ? entries.error : undefined} />
      <div className="rounded-xl border border-slate-200 bg-white shadow-sm">
        {entries.loading ? (
          <div className="px-4">
            <Spinner />
          </div>
        ) : entries.data === undefined ? (
          entries.error && (
            <div className="px-4">
              <ErrorPanel error={entries.error} onRetry={entries.reload} what="The audit trail" />
            </div>
          )
        ) : entries.data.length === 0 ? (
          <Empty>{filtered ? "No entry matches these filters." : "Nothing recorded yet."}</Empty>
        ) : (
          <div className="overflow-x-auto">
            <table className="table-base" aria-label="Audit trail">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Actor</th>
                  <th scope="col">Action</th>
                  <th scope="col">Target</th>
                  <th scope="col">Outcome</th>
                  <th scope="col">Source</th>
                </tr>
              </thead>
              <tbody>
                {entries.data.map((entry) => (
                  <tr key={entry.audit_id} data-action={entry.action} data-outcome={entry.outcome}>
                    <td className="whitespace-nowrap">
                      <Time at={entry.at} />
                    </td>
                    <td>
                      <div className="break-all">{entry.actor ?? <span className="text-slate-400">unknown</span>}</div>
                      {entry.via !== null && <div className="text-xs text-slate-500">via {entry.via}</div>}
                    </td>
                    <td>
                      <code className="font-mono text-xs">{entry.action}</code>
                    </td>
                    <td className="break-all">{entry.target ?? <span className="text-slate-400">—</span>}</td>
                    <td>
                      <span
                        className={`inline-flex rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset ${entry.outcome === "success" ? "bg-emerald-100 text-emerald-800 ring-emerald-300" : "bg-red-100 text-red-800 ring-red-300"}`}
                      >
                        {entry.outcome}
                      </span>
                      <span className="ml-1 text-xs text-slate-500">{entry.status}</span>
                    </td>
                    <td className="font-mono text-xs">{entry.source_ip ?? "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </div>
      {pages > 1 && (
        <nav aria-label="Pages" className="mt-4 flex items-center justify-between text-sm">
          <button type="button" className="btn-secondary" disabled={page <= 1} onClick={() => goTo(page - 1)}>
            ← Newer
          </button>
          <span className="text-slate-600">
            Page {page} of {pages}
          </span>
          <button type="button" className="btn-secondary" disabled={page >= pages} onClick={() => goTo(page + 1)}>
            Older →
          </button>
        </nav>
      )}
    </>
  );
}
