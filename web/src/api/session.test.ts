import { afterEach, describe, expect, it, vi } from "vitest";
import { fakeServer, json, tokens, UNAUTHORIZED } from "../test/server";
import { get, getToken, post, request } from "./client";
import { withLock, withStorageLease } from "./lock";
import { endSession, refreshSession, sessionSnapshot, signOut, startSession } from "./session";

afterEach(() => {
  endSession("none");
  vi.unstubAllGlobals();
});

/** Resolves once `channel` has received a message. */
function nextMessage(channel: BroadcastChannel): Promise<unknown> {
  return new Promise((resolve) => channel.addEventListener("message", (event) => resolve(event.data), { once: true }));
}

describe("access tokens", () => {
  it("are kept in memory only and sent as bearer tokens", async () => {
    const server = fakeServer({ "GET /api/stats": json(200, {}) });
    startSession("jwt-1", 900);
    await get("/api/stats");
    expect(server.calls[0]?.token).toBe("jwt-1");
    expect(sessionStorage.length).toBe(0);
    expect(localStorage.getItem("stroem.access_token")).toBeNull();
  });

  it("a request answered 401 unauthorized is sent again once with a refreshed token", async () => {
    const server = fakeServer({
      "GET /api/jobs": (call) => (call.token === "old" ? json(401, UNAUTHORIZED) : json(200, [{ job_id: "1" }])),
      "POST /api/auth/refresh": json(200, tokens("new")),
    });
    startSession("old", 900);
    const reply = await request<unknown[]>("GET", "/api/jobs");
    expect(reply.data).toEqual([{ job_id: "1" }]);
    expect(server.calls.map((call) => `${call.method} ${call.path} ${call.token}`)).toEqual([
      "GET /api/jobs old",
      "POST /api/auth/refresh null",
      "GET /api/jobs new",
    ]);
    expect(getToken()).toBe("new");
  });

  it("a POST refused for an expired token is retried with its body", async () => {
    const server = fakeServer({
      "POST /api/workspaces/default/tasks/deploy/execute": (call) =>
        call.token === "old" ? json(401, UNAUTHORIZED) : json(200, { job_id: "j" }),
      "POST /api/auth/refresh": json(200, tokens("new")),
    });
    startSession("old", 900);
    await post("/api/workspaces/default/tasks/deploy/execute", { input: { n: 1 } });
    const executes = server.calls.filter((call) => call.path.endsWith("/execute"));
    expect(executes.map((call) => [call.token, call.body])).toEqual([
      ["old", { input: { n: 1 } }],
      ["new", { input: { n: 1 } }],
    ]);
  });

  it("requests that find the token expired at once share one refresh", async () => {
    const server = fakeServer({
      "GET /api/a": (call) => (call.token === "new" ? json(200, "a") : json(401, UNAUTHORIZED)),
      "GET /api/b": (call) => (call.token === "new" ? json(200, "b") : json(401, UNAUTHORIZED)),
      "GET /api/c": (call) => (call.token === "new" ? json(200, "c") : json(401, UNAUTHORIZED)),
      "POST /api/auth/refresh": json(200, tokens("new")),
    });
    startSession("old", 900);
    const results = await Promise.all([get("/api/a"), get("/api/b"), get("/api/c")]);
    expect(results).toEqual(["a", "b", "c"]);
    expect(server.count("POST /api/auth/refresh")).toBe(1);
  });

  it("a token about to expire is refreshed before the request leaves", async () => {
    const server = fakeServer({
      "GET /api/stats": json(200, {}),
      "POST /api/auth/refresh": json(200, tokens("new")),
    });
    // 10 s tokens, 9.5 s old: within the margin (a quarter of the lifetime).
    startSession("old", 10, Date.now() - 9_500);
    await get("/api/stats");
    expect(server.calls.map((call) => `${call.method} ${call.path} ${call.token}`)).toEqual([
      "POST /api/auth/refresh null",
      "GET /api/stats new",
    ]);
  });

  it("a refused refresh ends the session and the request fails with 401", async () => {
    fakeServer({
      "GET /api/jobs": json(401, UNAUTHORIZED),
      "POST /api/auth/refresh": json(401, { error: "the refresh token is invalid", code: "refresh_token_reused" }),
    });
    startSession("old", 900);
    await expect(get("/api/jobs")).rejects.toMatchObject({ status: 401 });
    expect(getToken()).toBeNull();
    expect(sessionSnapshot().ended).toBe("expired");
  });

  it("a refresh the server could not answer keeps the session", async () => {
    fakeServer({
      "GET /api/jobs": json(401, UNAUTHORIZED),
      "POST /api/auth/refresh": json(429, { error: "slow down", code: "rate_limited", retry_after_secs: 2 }),
    });
    startSession("old", 900);
    await expect(get("/api/jobs")).rejects.toMatchObject({ status: 429 });
    expect(getToken()).toBe("old");
  });

  it("a 401 for wrong credentials is not answered with a refresh", async () => {
    const server = fakeServer({
      "POST /api/auth/password": json(401, { error: "wrong password", code: "invalid_credentials" }),
      "POST /api/auth/login": json(401, { error: "invalid e-mail or password", code: "invalid_credentials" }),
    });
    startSession("jwt", 900);
    await expect(post("/api/auth/password", { current_password: "x", new_password: "y" })).rejects.toMatchObject({
      status: 401,
    });
    await expect(post("/api/auth/login", { email: "a@b.c", password: "x" })).rejects.toMatchObject({ status: 401 });
    expect(server.count("POST /api/auth/refresh")).toBe(0);
    expect(getToken()).toBe("jwt");
  });
});

describe("several tabs", () => {
  it("a tab that waited for another tab's refresh takes its token instead of refreshing again", async () => {
    const server = fakeServer({ "POST /api/auth/refresh": json(200, tokens("mine")) });
    startSession("stale", 900);
    const otherTab = new BroadcastChannel("stroem.auth");
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    // The other tab holds the refresh lock, refreshes, and announces its token.
    const other = withLock("refresh", () => held);
    const mine = refreshSession("stale");
    const delivered = nextMessage(otherTab);
    const listening = new BroadcastChannel("stroem.auth");
    const seen = nextMessage(listening);
    otherTab.postMessage({ type: "session", token: "from-other-tab", expiresAt: Date.now() + 900_000, ttlMs: 900_000 });
    await seen;
    release();
    await other;
    await expect(mine).resolves.toBe("refreshed");
    expect(getToken()).toBe("from-other-tab");
    expect(server.count("POST /api/auth/refresh")).toBe(0);
    otherTab.close();
    listening.close();
    void delivered;
  });

  it("signing in announces the token, signing out ends the session in every tab", async () => {
    const server = fakeServer({ "POST /api/auth/logout": json(200, { ok: true }) });
    const otherTab = new BroadcastChannel("stroem.auth");
    const announced = nextMessage(otherTab);
    startSession("jwt", 900);
    await expect(announced).resolves.toMatchObject({ type: "session", token: "jwt" });
    const ended = nextMessage(otherTab);
    await signOut();
    await expect(ended).resolves.toEqual({ type: "signed-out" });
    expect(server.count("POST /api/auth/logout")).toBe(1);
    expect(getToken()).toBeNull();
    expect(sessionSnapshot().ended).toBe("signed-out");
    otherTab.close();
  });

  it("another tab signing out ends this tab's session", async () => {
    startSession("jwt", 900);
    const otherTab = new BroadcastChannel("stroem.auth");
    const listening = new BroadcastChannel("stroem.auth");
    const seen = nextMessage(listening);
    otherTab.postMessage({ type: "signed-out" });
    await seen;
    await vi.waitFor(() => expect(getToken()).toBeNull());
    expect(sessionSnapshot().ended).toBe("signed-out");
    otherTab.close();
    listening.close();
  });
});

describe("the refresh lock", () => {
  it("uses the Web Locks API where the browser has it", async () => {
    const names: string[] = [];
    vi.stubGlobal("navigator", {
      locks: {
        request: (name: string, body: () => Promise<unknown>) => {
          names.push(name);
          return body();
        },
      },
    });
    await expect(withLock("refresh", async () => 7)).resolves.toBe(7);
    expect(names).toEqual(["stroem.refresh"]);
  });

  it("without Web Locks, a lease in localStorage keeps holders apart", async () => {
    const events: string[] = [];
    const holder = (name: string) => async () => {
      events.push(`${name} in`);
      await new Promise((resolve) => setTimeout(resolve, 40));
      events.push(`${name} out`);
    };
    await Promise.all([
      withStorageLease(localStorage, "t", holder("a")),
      withStorageLease(localStorage, "t", holder("b")),
      withStorageLease(localStorage, "t", holder("c")),
    ]);
    expect(events).toHaveLength(6);
    for (let index = 0; index < events.length; index += 2) {
      const entered = events[index] ?? "";
      expect(entered.endsWith(" in")).toBe(true);
      expect(events[index + 1]).toBe(entered.replace(" in", " out"));
    }
    expect(localStorage.getItem("stroem.lock.t")).toBeNull();
  });

  it("a lease whose holder vanished is taken over after it lapses", async () => {
    localStorage.setItem("stroem.lock.gone", JSON.stringify({ owner: "dead-tab", until: Date.now() - 1 }));
    await expect(withStorageLease(localStorage, "gone", async () => "mine")).resolves.toBe("mine");
  });
});
