// Wire shapes of the Strøm HTTP API (API.md §2–§5). They come from the server's OpenAPI
// document (docs/openapi.json, `GET /api/openapi.json`), which is derived from the Rust wire
// types: `npm run api-types` regenerates ./schema.gen.ts from it, and `npm run lint` fails when
// that file is stale. This module only adapts the generated shapes for the UI (below). Times are
// RFC 3339 strings.

import type { components } from "./schema.gen";

type Schemas = components["schemas"];

export type JobStatus = Schemas["JobStatus"];

export type StepStatus = Schemas["StepStatus"];

export const JOB_STATUSES: readonly JobStatus[] = ["pending", "running", "completed", "failed", "cancelled", "skipped"];

export const TERMINAL_JOB_STATUSES: readonly JobStatus[] = ["completed", "failed", "cancelled", "skipped"];

export function isTerminalJob(status: JobStatus): boolean {
  return TERMINAL_JOB_STATUSES.includes(status);
}

/** A JSON value as the API carries it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * A response shape as the UI reads it. The server always sends a field whose value may be
 * `null` (the document lists only fields that are never `null` as required), so every field is
 * present except those named in `Absent`, which the server leaves out when they do not apply
 * and never sends as `null`, and those in `MaybeNull`, which it leaves out or sends as `null`.
 * Free-form values (`unknown` in the document) are {@link Json}.
 */
type Wire<T, Absent extends keyof T = never, MaybeNull extends keyof T = never> = Jsonify<
  Required<Omit<T, Absent | MaybeNull>> & { [K in Absent]?: Exclude<T[K], null | undefined> } & Pick<T, MaybeNull>
>;

type Jsonify<T> = { [K in keyof T]: unknown extends T[K] ? Json : T[K] };

export type Diagnostic = Wire<Schemas["Diagnostic"], "help">;

export type Workspace = Wire<Omit<Schemas["WorkspaceView"], "source" | "errors" | "warnings">> & {
  source: Wire<Schemas["SourceView"], "path" | "url" | "ref", "commit">;
  errors: Diagnostic[];
  warnings: Diagnostic[];
};

export type TaskSummary = Wire<Schemas["TaskSummary"]>;

/** One input field definition as written (WF §3); the document leaves it free-form. */
export interface InputFieldDef {
  type: string;
  name?: string | null;
  description?: string | null;
  required?: boolean;
  default?: Json;
  options?: Json[] | null;
  allow_custom?: boolean;
  multiple?: boolean;
  secret?: boolean;
  order?: number | null;
}

export type TaskFlowStep = Wire<Schemas["FlowStep"]>;

export type Trigger = Wire<
  Omit<Schemas["TriggerView"], "webhook">,
  "cron" | "timezone" | "concurrency" | "catch_up"
> & {
  webhook?: Wire<Schemas["WebhookView"]>;
};

export type TaskDetail = Wire<Omit<Schemas["TaskDetail"], "input" | "flow" | "triggers">> & {
  input: Record<string, InputFieldDef>;
  flow: Record<string, TaskFlowStep>;
  triggers: Trigger[];
};

export type JobSummary = Wire<Schemas["JobSummary"], "queue_position">;

export type RetryRecord = Wire<Schemas["RetryView"]>;

export type Step = Wire<
  Omit<Schemas["StepView"], "approval_fields" | "retry_history">,
  "action_image" | "loop_source" | "loop_index" | "loop_total" | "reused_from",
  "worker_id" | "child_job_id" | "suspended_at" | "approval_message"
> & {
  retry_history: RetryRecord[];
  /** Approval steps only (WF §6.8). */
  approval_fields?: Record<string, InputFieldDef> | null;
};

export type HookJob = Wire<Schemas["HookJob"]>;

export type JobDetail = JobSummary &
  Wire<
    Omit<Schemas["JobDetail"], keyof Schemas["JobSummary"] | "steps" | "hook_jobs">,
    "source_job_id" | "retry_due_at" | "retry_job_id" | "retry_chain"
  > & {
    steps: Step[];
    /** The hook jobs this job fired (servers before issue #15 leave it out). */
    hook_jobs?: HookJob[];
  };

export type ChainJob = Wire<Schemas["ChainJob"]>;

export type Worker = Wire<Schemas["WorkerView"]>;

export type WorkerStep = Wire<Schemas["WorkerStep"]>;

export type WorkerDetail = Worker & { steps: WorkerStep[] };

export type Stats = Record<JobStatus, number>;

export type ServerConfig = Wire<Schemas["ConfigReply"]>;

/** One log line (API §4.1). */
export interface LogLine {
  seq: number;
  ts: string;
  stream: "stdout" | "stderr";
  step: string;
  attempt: number | null;
  line: string;
}

/** The error body every failing request carries (API §1.3). */
export type ErrorBody = Wire<Schemas["ErrorBody"], "field" | "details" | "candidates" | "retry_after_secs">;

/** A user (API §5.5), also the answer of `GET /api/auth/me`. */
export type User = Wire<Schemas["UserView"]>;

/** One of the caller's API keys (`GET /api/auth/api-keys`). */
export type ApiKey = Wire<Schemas["ApiKeyView"]>;

/** 201 of `POST /api/auth/api-keys`: the only time `key` is shown. */
export type ApiKeyCreated = Wire<Schemas["ApiKeyCreatedReply"]>;

/** One audit-trail entry (`GET /api/audit`). */
export type AuditEntry = Wire<Schemas["AuditView"]>;
