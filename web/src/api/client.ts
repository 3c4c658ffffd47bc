// The one way the UI talks to the server: JSON over fetch, errors turned into `ApiError`
// carrying the API §1.3 body, and the access token of the signed-in user attached (API §5),
// refreshed when it is about to expire and once more when the server still says 401 (see
// `session.ts`). Without authentication on the server there is no token and nothing of this
// happens.

import { ApiError, errorOf, parseJson, UNREACHABLE_MESSAGE } from "./error";
import { freshToken, getToken, refreshSession, tokenNeedsRefresh } from "./session";

export { ApiError } from "./error";
export { getToken } from "./session";

/**
 * Routes that take no access token, or whose 401 means wrong credentials rather than an expired
 * token: their 401 is never answered with a refresh.
 */
const SIGN_IN_ROUTE = /^\/api\/auth\/(login|refresh|logout|oidc)(\/|$|\?)/;

/** 401 codes that a new access token may cure. `token_expired` is not in API §1.3 (yet). */
const RETRY_CODES = new Set(["unauthorized", "token_expired"]);

export interface Reply<T> {
  data: T;
  /** `X-Total-Count` of paginated lists (API §1.5), else null. */
  total: number | null;
}

async function send(
  method: string,
  path: string,
  options: { body?: unknown; signal?: AbortSignal },
  token: string | null,
): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  // The server refuses state-changing requests that do not declare JSON, even without a body
  // (its defence against cross-site requests, docs/security.md).
  if (options.body !== undefined || method !== "GET") headers["Content-Type"] = "application/json";
  if (token !== null) headers["Authorization"] = `Bearer ${token}`;
  try {
    return await fetch(path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
  } catch (cause) {
    if (cause instanceof DOMException && cause.name === "AbortError") throw cause;
    throw new ApiError(0, null, UNREACHABLE_MESSAGE);
  }
}

export async function request<T>(
  method: string,
  path: string,
  options: { body?: unknown; signal?: AbortSignal } = {},
): Promise<Reply<T>> {
  const renewable = !SIGN_IN_ROUTE.test(path);
  // Awaited only when a refresh is due, so a request otherwise leaves at once.
  const token = renewable && tokenNeedsRefresh() ? await freshToken() : getToken();
  let response = await send(method, path, options, token);
  let text = await response.text();
  if (response.status === 401 && renewable) {
    const code = errorOf(response, text).code;
    // A refused request changed nothing (the gate answers before the route runs), so sending
    // it again with a new token is safe, even a POST.
    if (code !== null && RETRY_CODES.has(code) && (await refreshSession(token)) === "refreshed") {
      options.signal?.throwIfAborted();
      response = await send(method, path, options, getToken());
      text = await response.text();
    }
  }
  if (!response.ok) throw errorOf(response, text);
  const totalHeader = response.headers.get("X-Total-Count");
  const total = totalHeader === null ? null : Number(totalHeader);
  return { data: parseJson(text) as T, total: Number.isFinite(total) ? total : null };
}

export async function get<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await request<T>("GET", path, { signal })).data;
}

export async function post<T>(path: string, body?: unknown): Promise<T> {
  return (await request<T>("POST", path, { body })).data;
}

export async function put<T>(path: string, body?: unknown): Promise<T> {
  return (await request<T>("PUT", path, { body })).data;
}

export async function del(path: string): Promise<void> {
  await request<unknown>("DELETE", path);
}

/** Percent-encodes one path segment (loop instances like `deploy[2]` included, API §1.2). */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

/** The WebSocket URL of a job's log stream (API §4.3); browsers pass the token in the query. */
export function logStreamUrl(
  jobId: string,
  after: number,
  base: Location = window.location,
  token: string | null = getToken(),
): string {
  const scheme = base.protocol === "https:" ? "wss:" : "ws:";
  const params = new URLSearchParams({ after: String(after) });
  if (token !== null) params.set("token", token);
  return `${scheme}//${base.host}/api/jobs/${seg(jobId)}/logs/stream?${params.toString()}`;
}

export { freshToken, tokenNeedsRefresh };
