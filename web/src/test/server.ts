// A stand-in for the Strøm server in component tests: answers by "METHOD /path" (the query
// string ignored unless the key has one), records every request with its bearer token.

import { vi } from "vitest";
import type { ServerConfig, User } from "../api/types";

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

export interface Call {
  method: string;
  path: string;
  token: string | null;
  body: unknown;
}

type Handler = Response | ((call: Call) => Response | Promise<Response>);

export function fakeServer(routes: Record<string, Handler>) {
  const calls: Call[] = [];
  const fetchMock = vi.fn(async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = String(input);
    const method = (init.method ?? "GET").toUpperCase();
    const headers = (init.headers ?? {}) as Record<string, string>;
    const auth = headers["Authorization"];
    const call: Call = {
      method,
      path: url,
      token: auth === undefined ? null : auth.replace(/^Bearer /, ""),
      body: typeof init.body === "string" ? JSON.parse(init.body) : undefined,
    };
    calls.push(call);
    const handler = routes[`${method} ${url}`] ?? routes[`${method} ${url.split("?")[0]}`];
    if (handler === undefined) return json(404, { error: `no fake for ${method} ${url}`, code: "not_found" });
    const response = typeof handler === "function" ? await handler(call) : handler.clone();
    return response;
  });
  vi.stubGlobal("fetch", fetchMock);
  return {
    calls,
    fetchMock,
    count: (key: string) => calls.filter((call) => `${call.method} ${call.path}` === key).length,
  };
}

export function config(overrides: Partial<ServerConfig> = {}): ServerConfig {
  return { version: "0.1.0", auth_required: true, has_internal_auth: true, oidc_providers: [], ...overrides };
}

export function user(overrides: Partial<User> = {}): User {
  return {
    user_id: "0195c0de-0000-7000-8000-000000000001",
    name: null,
    email: "ada@example.com",
    is_admin: false,
    groups: [],
    auth_methods: ["password"],
    created_at: "2026-03-01T12:00:00.000Z",
    last_login_at: null,
    ...overrides,
  };
}

export function tokens(access: string, expiresIn = 900) {
  return { access_token: access, refresh_token: "r", token_type: "Bearer", expires_in: expiresIn };
}

export const UNAUTHORIZED = { error: "the access token is invalid or expired", code: "unauthorized" };
