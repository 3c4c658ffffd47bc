// The one way the UI talks to the server: JSON over fetch, errors turned into `ApiError`
// carrying the API §1.3 body, and the bearer token of a signed-in user attached (API §5). The
// token lives in sessionStorage, so it survives a reload but not the closing of the tab.

import type { ErrorBody } from "./types";

const TOKEN_KEY = "stroem.access_token";

/** Fired on `window` when the server answers 401: the page asks the user to sign in. */
export const UNAUTHORIZED_EVENT = "stroem:unauthorized";

function storedToken(): string | null {
  try {
    return typeof sessionStorage === "undefined" ? null : sessionStorage.getItem(TOKEN_KEY);
  } catch {
    // Storage can be disabled (privacy settings); the UI then works without remembering.
    return null;
  }
}

let token: string | null = storedToken();

/** Sets (or clears) the bearer token sent with every request and the log stream. */
export function setToken(value: string | null): void {
  token = value;
  try {
    if (value === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, value);
  } catch {
    // See storedToken.
  }
}

export function getToken(): string | null {
  return token;
}

/** A failed request: an HTTP error with the server's error body, or no answer at all. */
export class ApiError extends Error {
  readonly status: number;
  readonly body: ErrorBody | null;

  constructor(status: number, body: ErrorBody | null, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }

  /** The server could not be reached (status 0), as opposed to answering with an error. */
  get unreachable(): boolean {
    return this.status === 0;
  }

  get notFound(): boolean {
    return this.status === 404;
  }
}

function isErrorBody(value: unknown): value is ErrorBody {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { error?: unknown }).error === "string" &&
    typeof (value as { code?: unknown }).code === "string"
  );
}

export interface Reply<T> {
  data: T;
  /** `X-Total-Count` of paginated lists (API §1.5), else null. */
  total: number | null;
}

export async function request<T>(
  method: string,
  path: string,
  options: { body?: unknown; signal?: AbortSignal } = {},
): Promise<Reply<T>> {
  const headers: Record<string, string> = { Accept: "application/json" };
  // The server refuses state-changing requests that do not declare JSON, even without a body
  // (its defence against cross-site requests, docs/security.md).
  if (options.body !== undefined || method !== "GET") headers["Content-Type"] = "application/json";
  if (token !== null) headers["Authorization"] = `Bearer ${token}`;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
  } catch (cause) {
    if (cause instanceof DOMException && cause.name === "AbortError") throw cause;
    throw new ApiError(0, null, "Cannot reach the Strøm server. Is it running?");
  }
  const text = await response.text();
  let parsed: unknown = null;
  if (text.length > 0) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (!response.ok) {
    const body = isErrorBody(parsed) ? parsed : null;
    // An expired or missing token: forget it and let the page send the user to sign in. The
    // sign-in request itself answers 401 for wrong credentials, which its form shows instead.
    if (response.status === 401 && !path.startsWith("/api/auth/")) {
      setToken(null);
      window.dispatchEvent(new Event(UNAUTHORIZED_EVENT));
    }
    const message = body?.error ?? `The server answered ${response.status} ${response.statusText}`.trim();
    throw new ApiError(response.status, body, message);
  }
  const totalHeader = response.headers.get("X-Total-Count");
  const total = totalHeader === null ? null : Number(totalHeader);
  return { data: parsed as T, total: Number.isFinite(total) ? total : null };
}

export async function get<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await request<T>("GET", path, { signal })).data;
}

export async function post<T>(path: string, body?: unknown): Promise<T> {
  return (await request<T>("POST", path, { body })).data;
}

/** Percent-encodes one path segment (loop instances like `deploy[2]` included, API §1.2). */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

/** The WebSocket URL of a job's log stream (API §4.3); browsers pass the token in the query. */
export function logStreamUrl(jobId: string, after: number, base: Location = window.location): string {
  const scheme = base.protocol === "https:" ? "wss:" : "ws:";
  const params = new URLSearchParams({ after: String(after) });
  if (token !== null) params.set("token", token);
  return `${scheme}//${base.host}/api/jobs/${seg(jobId)}/logs/stream?${params.toString()}`;
}
