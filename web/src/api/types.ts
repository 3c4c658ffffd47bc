// Wire shapes of the Strøm HTTP API (API.md §2–§4), as the server in src/api and
// src/workspace/manager/views.rs serialises them. Times are RFC 3339 strings.

export type JobStatus = "pending" | "running" | "completed" | "failed" | "cancelled" | "skipped";

export type StepStatus =
  "pending" | "ready" | "running" | "suspended" | "completed" | "failed" | "skipped" | "cancelled";

export const JOB_STATUSES: readonly JobStatus[] = ["pending", "running", "completed", "failed", "cancelled", "skipped"];

export const TERMINAL_JOB_STATUSES: readonly JobStatus[] = ["completed", "failed", "cancelled", "skipped"];

export function isTerminalJob(status: JobStatus): boolean {
  return TERMINAL_JOB_STATUSES.includes(status);
}

/** A JSON value as the API carries it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface Diagnostic {
  severity: "error" | "warning";
  code: string;
  message: string;
  file: string;
  line: number;
  column: number;
  path: string;
  related: { message: string; file: string; line: number; column: number }[];
  help?: string;
}

export interface Workspace {
  name: string;
  status: "ok" | "stale" | "error";
  revision: string | null;
  loaded_at: string | null;
  source: { type: string; path?: string; url?: string; ref?: string; commit?: string | null };
  tasks_count: number;
  actions_count: number;
  triggers_count: number;
  connections_count: number;
  failed_revision: string | null;
  errors: Diagnostic[];
  warnings: Diagnostic[];
}

export interface TaskSummary {
  name: string;
  id: string;
  display_name: string | null;
  description: string | null;
  workspace: string;
  folder: string | null;
  mode: "distributed" | "local";
  has_triggers: boolean;
}

/** One input field definition as written (WF §3). */
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

export interface TaskFlowStep {
  action: Json;
  action_type: string | null;
  name: string | null;
  description: string | null;
  depends_on: string[];
  input: Json;
  continue_on_failure: boolean;
  when: Json;
  for_each: Json;
  sequential: boolean;
  timeout_secs: number | null;
}

export interface Trigger {
  name: string;
  type: "scheduler" | "webhook";
  task: string;
  enabled: boolean;
  input: Json;
  cron?: string;
  timezone?: string;
  webhook?: { path: string; mode: string; timeout_secs: number; has_secret: boolean };
  last_run_at: string | null;
  next_runs: string[];
}

export interface TaskDetail extends TaskSummary {
  input: Record<string, InputFieldDef>;
  flow: Record<string, TaskFlowStep>;
  triggers: Trigger[];
  timeout_secs: number | null;
  concurrency: number | null;
  priority: number | null;
}

export interface JobSummary {
  job_id: string;
  workspace: string;
  task_name: string;
  mode: string;
  status: JobStatus;
  source_type: string;
  source_id: string | null;
  revision: string;
  priority: number;
  parent_job_id: string | null;
  retry_of_job_id: string | null;
  retry_attempt: number;
  /** A job waiting under its task's `concurrency` limit: its place in the queue, from 1. */
  queue_position?: number | null;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  error: string | null;
}

export interface RetryRecord {
  attempt: number;
  worker_id: string | null;
  started_at: string | null;
  completed_at: string;
  error_message: string | null;
}

export interface Step {
  step_name: string;
  action_name: string;
  action_type: string;
  action_image?: string;
  runner: string;
  status: StepStatus;
  depends_on: string[];
  input: Json;
  output: Json;
  error_message: string | null;
  worker_id?: string | null;
  attempt: number;
  max_attempts: number;
  retry_at: string | null;
  retry_history: RetryRecord[];
  ready_at: string | null;
  started_at: string | null;
  completed_at: string | null;
  when: Json;
  for_each: Json;
  loop_source?: string;
  loop_index?: number;
  loop_total?: number;
  child_job_id?: string | null;
  /** Approval steps only (WF §6.8). */
  suspended_at?: string | null;
  approval_message?: string | null;
  approval_fields?: Record<string, InputFieldDef> | null;
  /** Steps of a restarted job that did not run again: the job whose output they reuse. */
  reused_from?: string;
}

export interface JobDetail extends JobSummary {
  input: Json;
  raw_input: Json;
  output: Json;
  parent_step_name: string | null;
  timeout_secs: number | null;
  source_job_id?: string | null;
  steps: Step[];
  /** The hook jobs this job fired (servers before issue #15 leave it out). */
  hook_jobs?: HookJob[];
  /** For a hook job: the job whose end fired it. */
  hook_of_job_id?: string | null;
  /** A failed job whose task-level retry is still to come: when it is due. */
  retry_due_at?: string | null;
  /** The retry job made from this one. */
  retry_job_id?: string | null;
  /** Every job of the task-level retry chain, in attempt order (empty or left out: no chain). */
  retry_chain?: ChainJob[];
}

export interface ChainJob {
  job_id: string;
  retry_attempt: number;
  status: JobStatus;
  created_at: string;
  completed_at: string | null;
}

export interface HookJob {
  job_id: string;
  event: string;
  task_name: string;
  status: JobStatus;
  completed_at: string | null;
}

export interface Worker {
  worker_id: string;
  name: string;
  status: "active" | "inactive";
  version: string;
  capabilities: string[];
  tags: string[];
  max_concurrent: number;
  running_steps: number;
  last_heartbeat: string | null;
  registered_at: string;
}

export interface WorkerStep {
  job_id: string;
  workspace: string;
  task_name: string;
  step_name: string;
  action_type: string;
  status: StepStatus;
  started_at: string | null;
  completed_at: string | null;
  error_message: string | null;
}

export interface WorkerDetail extends Worker {
  steps: WorkerStep[];
}

export type Stats = Record<JobStatus, number>;

export interface ServerConfig {
  version: string;
  auth_required: boolean;
  has_internal_auth: boolean;
  oidc_providers: { id: string; display_name: string }[];
}

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
export interface ErrorBody {
  error: string;
  code: string;
  field?: string;
  details?: { field: string; message: string }[];
  retry_after_secs?: number;
}

/** A user (API §5.5), also the answer of `GET /api/auth/me`. */
export interface User {
  user_id: string;
  name: string | null;
  email: string;
  is_admin: boolean;
  groups: string[];
  /** `password` and the ids of linked OIDC providers. */
  auth_methods: string[];
  created_at: string;
  last_login_at: string | null;
}

/** One of the caller's API keys (`GET /api/auth/api-keys`). */
export interface ApiKey {
  prefix: string;
  name: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
}

/** 201 of `POST /api/auth/api-keys`: the only time `key` is shown. */
export interface ApiKeyCreated {
  key: string;
  prefix: string;
  name: string;
  expires_at: string | null;
}

/** One audit-trail entry (`GET /api/audit`). */
export interface AuditEntry {
  audit_id: string;
  at: string;
  actor: string | null;
  via: string | null;
  source_ip: string | null;
  action: string;
  target: string | null;
  outcome: string;
  status: number;
  request_id: string | null;
}
