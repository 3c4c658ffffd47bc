// The signed-in session of this tab (API §5.2, §5.3). The access token lives only in memory;
// the refresh token only in the HttpOnly cookie `stroem_refresh`, which scripts cannot read and
// which every tab of the browser shares.
//
// A refresh token works once: the answer carries a new one (in the cookie) and presenting a
// used one again revokes the whole sign-in. So refreshes are serialised across the tabs of the
// browser (`withLock`), and a tab that got the lock after another tab refreshed uses that tab's
// new access token, announced over a BroadcastChannel, instead of refreshing again. Within a
// tab, concurrent callers share one refresh.
//
// Tokens are refreshed when a request is about to leave with one that expires within a short
// margin, and once more when the server still answers 401 `unauthorized` (a clock or a sleep
// laptop can fool the margin): the request is then sent again, once.

import { ApiError, errorOf, UNREACHABLE_MESSAGE } from "./error";
import { withLock } from "./lock";

/** The answer of sign-in and refresh (API §5.3). */
export interface TokenReply {
  access_token: string;
  refresh_token?: string;
  token_type: string;
  expires_in: number;
}

/** Why a tab has no session: never had one, signed out (here or in another tab), or it ran out. */
export type EndReason = "none" | "signed-out" | "expired";

export interface SessionSnapshot {
  token: string | null;
  /** Why the last session ended; `none` while signed in or before any sign-in. */
  ended: EndReason;
  /** Changes whenever the session does (a new token included). */
  version: number;
}

const CHANNEL = "stroem.auth";
/** Refresh this long before the token expires (at most; a quarter of its lifetime when shorter). */
const MARGIN_MS = 30_000;

type Message = { type: "session"; token: string; expiresAt: number; ttlMs: number } | { type: "signed-out" };

let token: string | null = null;
let expiresAt = 0;
let ttlMs = 0;
let snapshot: SessionSnapshot = { token: null, ended: "none", version: 0 };
const listeners = new Set<() => void>();
let inflight: Promise<RefreshOutcome> | null = null;

const channel: BroadcastChannel | null = (() => {
  try {
    return typeof BroadcastChannel === "undefined" ? null : new BroadcastChannel(CHANNEL);
  } catch {
    return null;
  }
})();

// Node (the unit tests) would otherwise wait for the channel before exiting.
(channel as unknown as { unref?: () => void } | null)?.unref?.();

channel?.addEventListener("message", (event: MessageEvent<Message>) => {
  const message = event.data;
  if (message?.type === "session" && typeof message.token === "string") {
    adopt(message.token, message.expiresAt, message.ttlMs);
  } else if (message?.type === "signed-out") {
    end("signed-out", false);
  }
});

function publish(ended: EndReason): void {
  snapshot = { token, ended, version: snapshot.version + 1 };
  for (const listener of [...listeners]) listener();
}

function adopt(value: string, until: number, lifetime: number): void {
  token = value;
  expiresAt = until;
  ttlMs = lifetime;
  publish("none");
}

function end(reason: EndReason, broadcast: boolean): void {
  if (token === null && snapshot.ended === reason) return;
  token = null;
  expiresAt = 0;
  ttlMs = 0;
  publish(reason);
  if (broadcast) channel?.postMessage({ type: "signed-out" } satisfies Message);
}

/** The access token sent with requests, or null. */
export function getToken(): string | null {
  return token;
}

export function sessionSnapshot(): SessionSnapshot {
  return snapshot;
}

/** Calls `listener` whenever the session changes; returns the unsubscribe function. */
export function subscribeSession(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** A new access token (sign-in, refresh, OIDC callback), shared with the other tabs. */
export function startSession(accessToken: string, expiresInSecs: number, now: number = Date.now()): void {
  const lifetime = Math.max(0, expiresInSecs) * 1000;
  adopt(accessToken, now + lifetime, lifetime);
  channel?.postMessage({ type: "session", token: accessToken, expiresAt, ttlMs } satisfies Message);
}

/** Forgets this tab's session; `broadcast` also ends it in the browser's other tabs. */
export function endSession(reason: EndReason = "expired", broadcast = false): void {
  end(reason, broadcast);
}

function expiresSoon(now: number = Date.now()): boolean {
  return token === null || now >= expiresAt - Math.min(MARGIN_MS, ttlMs / 4);
}

/** Whether this tab holds a token that should be refreshed before it is sent. */
export function tokenNeedsRefresh(): boolean {
  return token !== null && expiresSoon();
}

export type RefreshOutcome = "refreshed" | "signed-out";

/**
 * A new access token from the refresh cookie. `stale` is the token the caller found wanting
 * (null when it had none): when this tab holds another, still fresh token by the time it gets
 * the lock — another tab refreshed and shared it — that one is used. Resolves `signed-out` when
 * the server refuses the cookie (none, expired, revoked, reused); throws an ApiError when it
 * could not answer (unreachable, rate-limited), leaving the session as it was.
 */
export function refreshSession(stale: string | null): Promise<RefreshOutcome> {
  if (inflight !== null) return inflight;
  const run = withLock("refresh", async (): Promise<RefreshOutcome> => {
    if (token !== null && token !== stale && !expiresSoon()) return "refreshed";
    let response: Response;
    try {
      response = await fetch("/api/auth/refresh", {
        method: "POST",
        headers: { Accept: "application/json", "Content-Type": "application/json" },
        body: "{}",
        credentials: "same-origin",
      });
    } catch {
      throw new ApiError(0, null, UNREACHABLE_MESSAGE);
    }
    const text = await response.text();
    if (response.ok) {
      const reply = JSON.parse(text) as TokenReply;
      startSession(reply.access_token, reply.expires_in);
      return "refreshed";
    }
    // 401: no valid refresh cookie; 404: the server no longer has authentication.
    if (response.status === 401 || response.status === 404) {
      // A tab that had no session (a first visit) has nothing that "ended".
      if (token !== null) end("expired", false);
      return "signed-out";
    }
    throw errorOf(response, text);
  });
  inflight = run;
  const clear = () => {
    if (inflight === run) inflight = null;
  };
  run.then(clear, clear);
  return run;
}

/**
 * The token to send now: refreshed first when it is about to expire. A refresh that fails for
 * want of an answer leaves the current token, and the request finds out.
 */
export async function freshToken(): Promise<string | null> {
  if (token === null || !expiresSoon()) return token;
  try {
    await refreshSession(token);
  } catch {
    // Unreachable or rate-limited: try with what we have.
  }
  return token;
}

/** Signs out: the server revokes the sign-in (and clears the cookie), every tab forgets it. */
export async function signOut(): Promise<void> {
  try {
    await withLock("refresh", () =>
      fetch("/api/auth/logout", {
        method: "POST",
        headers: { Accept: "application/json", "Content-Type": "application/json" },
        body: "{}",
        credentials: "same-origin",
      }),
    );
  } catch {
    // Unreachable: the tab forgets the session anyway.
  }
  end("signed-out", true);
}
