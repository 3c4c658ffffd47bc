import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";
import { endSession, startSession } from "../api/session";
import type { ApiKey, AuditEntry } from "../api/types";
import { AuthProvider } from "../app/auth";
import { config, fakeServer, json, user } from "../test/server";
import { ApiKeys } from "./ApiKeys";
import { Audit, auditQuery, localToRfc3339 } from "./Audit";
import { parseGroups, Users } from "./Users";

function page(path: string, element: React.ReactNode, route: string) {
  return render(
    <MemoryRouter initialEntries={[path]}>
      <AuthProvider>
        <Routes>
          <Route path={route} element={element} />
        </Routes>
      </AuthProvider>
    </MemoryRouter>,
  );
}

afterEach(() => {
  endSession("none");
  vi.unstubAllGlobals();
});

const KEY: ApiKey = {
  prefix: "strm_0a1b2c3",
  name: "ci-deploy",
  created_at: "2026-03-01T12:00:00.000Z",
  expires_at: null,
  last_used_at: null,
};

describe("API keys", () => {
  it("creates a key and shows it once, lists the keys, and revokes one after confirmation", async () => {
    let keys: ApiKey[] = [KEY];
    const server = fakeServer({
      "GET /api/config": json(200, config()),
      "GET /api/auth/me": json(200, user()),
      "GET /api/auth/api-keys": () => json(200, keys),
      "POST /api/auth/api-keys": (call) => {
        const body = call.body as { name: string };
        keys = [...keys, { ...KEY, prefix: "strm_9f8e7d6", name: body.name }];
        return json(201, {
          key: "strm_9f8e7d6c5b4a39281706f5e4d3c2b1a0",
          prefix: "strm_9f8e7d6",
          name: body.name,
          expires_at: null,
        });
      },
      "DELETE /api/auth/api-keys/strm_0a1b2c3": () => {
        keys = keys.filter((key) => key.prefix !== "strm_0a1b2c3");
        return new Response(null, { status: 204 });
      },
    });
    startSession("jwt", 900);
    const person = userEvent.setup();
    page("/api-keys", <ApiKeys />, "api-keys");

    const table = await screen.findByRole("table", { name: "API keys" });
    expect(within(table).getByText("ci-deploy")).toBeInTheDocument();

    await person.type(screen.getByLabelText("Name"), "laptop");
    await person.clear(screen.getByLabelText("Expires after (days)"));
    await person.click(screen.getByRole("button", { name: "Create key" }));
    expect(await screen.findByLabelText("New API key")).toHaveValue("strm_9f8e7d6c5b4a39281706f5e4d3c2b1a0");
    // Empty days: a key that never expires (no expires_in_days sent).
    expect(server.calls.find((call) => call.method === "POST")?.body).toEqual({ name: "laptop" });
    await waitFor(() =>
      expect(within(screen.getByRole("table", { name: "API keys" })).getByText("laptop")).toBeInTheDocument(),
    );
    await person.click(screen.getByRole("button", { name: "Done" }));
    expect(screen.queryByLabelText("New API key")).toBeNull();
    expect(document.body.textContent).not.toContain("strm_9f8e7d6c5b4a39281706f5e4d3c2b1a0");

    await person.click(screen.getByRole("button", { name: "Revoke ci-deploy" }));
    await person.click(within(screen.getByRole("alertdialog")).getByRole("button", { name: "Revoke" }));
    await waitFor(() => expect(screen.queryByText("ci-deploy")).toBeNull());
    expect(server.count("DELETE /api/auth/api-keys/strm_0a1b2c3")).toBe(1);
  });

  it("names the clash when a key of that name exists, and checks days first", async () => {
    const server = fakeServer({
      "GET /api/config": json(200, config()),
      "GET /api/auth/me": json(200, user()),
      "GET /api/auth/api-keys": json(200, [KEY]),
      "POST /api/auth/api-keys": json(409, { error: "exists", code: "conflict", field: "name" }),
    });
    startSession("jwt", 900);
    const person = userEvent.setup();
    page("/api-keys", <ApiKeys />, "api-keys");
    await screen.findByRole("table", { name: "API keys" });
    await person.type(screen.getByLabelText("Name"), "ci-deploy");
    await person.clear(screen.getByLabelText("Expires after (days)"));
    await person.type(screen.getByLabelText("Expires after (days)"), "0");
    await person.click(screen.getByRole("button", { name: "Create key" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Days must be a whole number");
    expect(server.count("POST /api/auth/api-keys")).toBe(0);
    await person.clear(screen.getByLabelText("Expires after (days)"));
    await person.type(screen.getByLabelText("Expires after (days)"), "7");
    await person.click(screen.getByRole("button", { name: "Create key" }));
    expect(await screen.findByText("You already have a key named ci-deploy.")).toBeInTheDocument();
    expect(screen.getByLabelText("Name")).toHaveAttribute("aria-invalid", "true");
  });

  it("says there are none with authentication off", async () => {
    fakeServer({ "GET /api/config": json(200, config({ auth_required: false })) });
    page("/api-keys", <ApiKeys />, "api-keys");
    expect(await screen.findByText(/does not use authentication/)).toBeInTheDocument();
  });
});

describe("users", () => {
  it("lists accounts, creates one, and edits groups and the admin flag", async () => {
    const admin = user({ is_admin: true, email: "root@example.com", user_id: "u-root" });
    const bob = user({ email: "bob@example.com", user_id: "u-bob", groups: ["ops"] });
    const server = fakeServer({
      "GET /api/config": json(200, config()),
      "GET /api/auth/me": json(200, admin),
      "GET /api/users": json(200, [bob, admin], { "X-Total-Count": "2" }),
      "GET /api/groups": json(200, ["ops"]),
      "POST /api/users": (call) => json(201, user({ email: (call.body as { email: string }).email })),
      "PUT /api/users/u-bob/groups": (call) => json(200, call.body),
      "PUT /api/users/u-bob/admin": (call) => json(200, { ...bob, ...(call.body as object) }),
    });
    startSession("jwt", 900);
    const person = userEvent.setup();
    page("/users", <Users />, "users");

    const table = await screen.findByRole("table", { name: "Users" });
    const bobRow = within(table).getByText("bob@example.com").closest("tr")!;
    const rootRow = within(table).getByText("root@example.com").closest("tr")!;
    // One cannot delete oneself or drop one's own admin flag.
    expect(within(rootRow).queryByRole("button", { name: "Delete" })).toBeNull();
    expect(within(rootRow).getByRole("button", { name: "Remove admin" })).toBeDisabled();

    const form = screen.getByRole("form", { name: "Create an account" });
    await person.type(within(form).getByLabelText("E-mail"), "carol@example.com");
    await person.type(within(form).getByLabelText("Groups"), "ops, finance");
    await person.click(within(form).getByRole("button", { name: "Create account" }));
    expect(await within(form).findByRole("status")).toHaveTextContent("carol@example.com was created.");
    // No password: an OIDC-only account.
    expect(server.calls.find((call) => call.method === "POST")?.body).toEqual({
      email: "carol@example.com",
      is_admin: false,
      groups: ["ops", "finance"],
    });

    await person.click(within(bobRow).getByRole("button", { name: "Groups" }));
    const groups = within(bobRow).getByLabelText("Groups of bob@example.com");
    await person.clear(groups);
    await person.type(groups, "ops dev!");
    await person.click(within(bobRow).getByRole("button", { name: "Save" }));
    expect(within(bobRow).getByRole("alert")).toHaveTextContent("'dev!' is not a group name");
    await person.clear(groups);
    await person.type(groups, "ops, dev");
    await person.click(within(bobRow).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(server.count("PUT /api/users/u-bob/groups")).toBe(1));
    expect(server.calls.find((call) => call.path === "/api/users/u-bob/groups")?.body).toEqual({
      groups: ["ops", "dev"],
    });

    await person.click(within(bobRow).getByRole("button", { name: "Make admin" }));
    await waitFor(() => expect(server.count("PUT /api/users/u-bob/admin")).toBe(1));
    expect(server.calls.find((call) => call.path === "/api/users/u-bob/admin")?.body).toEqual({ is_admin: true });
  });

  it("is only for admins", async () => {
    const server = fakeServer({
      "GET /api/config": json(200, config()),
      "GET /api/auth/me": json(200, user()),
    });
    startSession("jwt", 900);
    page("/users", <Users />, "users");
    expect(await screen.findByText("Only administrators may use this page.")).toBeInTheDocument();
    expect(server.count("GET /api/users")).toBe(0);
  });

  it("parses group lists", () => {
    expect(parseGroups(" ops, finance  dev,ops ")).toEqual({ groups: ["ops", "finance", "dev"] });
    expect(parseGroups("")).toEqual({ groups: [] });
    expect(parseGroups("ok bad.name")).toEqual({ invalid: "bad.name" });
  });
});

describe("the audit trail", () => {
  const ENTRY: AuditEntry = {
    audit_id: "a1",
    at: "2026-03-01T12:00:00.123Z",
    actor: "ada@example.com",
    via: "password",
    source_ip: "203.0.113.7",
    action: "auth.login",
    target: null,
    outcome: "invalid_credentials",
    status: 401,
    request_id: "r1",
  };

  it("lists entries and filters them through the address", async () => {
    const server = fakeServer({
      "GET /api/config": json(200, config()),
      "GET /api/auth/me": json(200, user({ is_admin: true })),
      "GET /api/audit": json(200, [ENTRY], { "X-Total-Count": "1" }),
    });
    startSession("jwt", 900);
    const person = userEvent.setup();
    page("/audit", <Audit />, "audit");
    const table = await screen.findByRole("table", { name: "Audit trail" });
    const row = within(table).getByText("auth.login").closest("tr")!;
    expect(row).toHaveTextContent("ada@example.com");
    expect(row).toHaveTextContent("invalid_credentials");
    expect(row).toHaveTextContent("203.0.113.7");
    await person.type(screen.getByLabelText("Action"), "auth.");
    await person.type(screen.getByLabelText("Actor"), "ada@example.com");
    await person.click(screen.getByRole("button", { name: "Filter" }));
    await waitFor(() =>
      expect(server.calls.at(-1)?.path).toBe("/api/audit?actor=ada%40example.com&action=auth.&limit=50&offset=0"),
    );
  });

  it("maps the address's filters onto the API query", () => {
    const since = "2026-03-01T12:00";
    expect(auditQuery(new URLSearchParams({ since, page: "3", action: " job. " }))).toBe(
      `/api/audit?action=job.&since=${encodeURIComponent(localToRfc3339(since) ?? "")}&limit=50&offset=100`,
    );
    expect(localToRfc3339("")).toBeNull();
    expect(localToRfc3339("not a date")).toBeNull();
  });

  it("is hidden from non-admins", async () => {
    fakeServer({
      "GET /api/config": json(200, config()),
      "GET /api/auth/me": json(200, user()),
    });
    startSession("jwt", 900);
    page("/audit", <Audit />, "audit");
    expect(await screen.findByText("Only administrators may use this page.")).toBeInTheDocument();
  });
});
