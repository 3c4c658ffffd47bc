import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes, useLocation } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";
import { getToken } from "../api/client";
import { endSession, startSession } from "../api/session";
import { AuthProvider } from "../app/auth";
import { Layout } from "../app/Layout";
import { config, fakeServer, json, tokens, UNAUTHORIZED, user } from "../test/server";
import { Login, LoginCallback, oidcStartPath, parseCallback, safeNext } from "./Login";

function Where() {
  const location = useLocation();
  return <p data-testid="where">{`${location.pathname}${location.search}`}</p>;
}

function app(path: string) {
  return render(
    <MemoryRouter initialEntries={[path]}>
      <AuthProvider>
        <Routes>
          <Route path="login" element={<Login />} />
          <Route path="login/callback" element={<LoginCallback />} />
          <Route element={<Layout />}>
            <Route path="*" element={<Where />} />
          </Route>
        </Routes>
      </AuthProvider>
    </MemoryRouter>,
  );
}

const NO_COOKIE = json(401, { error: "no refresh token", code: "unauthorized" });

afterEach(() => {
  endSession("none");
  vi.unstubAllGlobals();
  window.history.replaceState(null, "", "/");
});

describe("signing in", () => {
  it("signs in with a password, keeps the token in memory only, and returns to the page asked for", async () => {
    const server = fakeServer({
      "GET /api/config": json(200, config()),
      "POST /api/auth/refresh": NO_COOKIE,
      "POST /api/auth/login": json(200, tokens("jwt-1")),
      "GET /api/auth/me": json(200, user()),
    });
    const person = userEvent.setup();
    app("/jobs?status=failed");

    // No session and no refresh cookie: the sign-in page, remembering where the user was going.
    await screen.findByRole("heading", { name: "Sign in to Strøm" });
    // A first visit: no session ended, so no notice says so.
    expect(screen.queryByText(/session has ended/)).toBeNull();
    await person.type(screen.getByLabelText("E-mail"), "ada@example.com");
    await person.type(screen.getByLabelText("Password"), "correct horse");
    await person.click(screen.getByRole("button", { name: "Sign in" }));

    await waitFor(() => expect(screen.getByTestId("where")).toHaveTextContent("/jobs?status=failed"));
    expect(server.calls.find((call) => call.path === "/api/auth/login")?.body).toEqual({
      email: "ada@example.com",
      password: "correct horse",
    });
    expect(getToken()).toBe("jwt-1");
    expect(sessionStorage.length + localStorage.length).toBe(0);
    expect(server.calls.find((call) => call.path === "/api/auth/me")?.token).toBe("jwt-1");
    // The user menu shows who is signed in.
    expect(screen.getByRole("button", { name: /Account menu of/ })).toHaveTextContent("ada@example.com");
  });

  it("says so when the credentials are wrong", async () => {
    fakeServer({
      "GET /api/config": json(200, config()),
      "POST /api/auth/refresh": NO_COOKIE,
      "POST /api/auth/login": json(401, { error: "invalid e-mail or password", code: "invalid_credentials" }),
    });
    const person = userEvent.setup();
    app("/login");
    await person.type(await screen.findByLabelText("E-mail"), "ada@example.com");
    await person.type(screen.getByLabelText("Password"), "wrong");
    await person.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("The e-mail address or the password is wrong.");
    expect(getToken()).toBeNull();
  });

  it("offers one button per OIDC provider, carrying next", async () => {
    fakeServer({
      "GET /api/config": json(
        200,
        config({
          oidc_providers: [
            { id: "company-sso", display_name: "Company SSO" },
            { id: "google", display_name: "Google" },
          ],
        }),
      ),
      "POST /api/auth/refresh": NO_COOKIE,
    });
    app("/login?next=%2Fjobs%3Fstatus%3Dfailed");
    const sso = await screen.findByRole("link", { name: "Sign in with Company SSO" });
    expect(sso).toHaveAttribute("href", "/api/auth/oidc/company-sso?next=%2Fjobs%3Fstatus%3Dfailed");
    expect(screen.getByRole("link", { name: "Sign in with Google" })).toHaveAttribute(
      "href",
      "/api/auth/oidc/google?next=%2Fjobs%3Fstatus%3Dfailed",
    );
    expect(screen.getByLabelText("Password")).toBeInTheDocument();
  });

  it("shows no password form when the server has only OIDC providers", async () => {
    fakeServer({
      "GET /api/config": json(
        200,
        config({ has_internal_auth: false, oidc_providers: [{ id: "sso", display_name: "SSO" }] }),
      ),
      "POST /api/auth/refresh": NO_COOKIE,
    });
    app("/login");
    await screen.findByRole("link", { name: "Sign in with SSO" });
    expect(screen.queryByLabelText("Password")).toBeNull();
  });

  it("a tab opened with a valid refresh cookie is signed in without the form", async () => {
    const server = fakeServer({
      "GET /api/config": json(200, config()),
      "POST /api/auth/refresh": json(200, tokens("from-cookie")),
      "GET /api/auth/me": json(200, user()),
    });
    app("/workers");
    await waitFor(() => expect(screen.getByTestId("where")).toHaveTextContent("/workers"));
    expect(getToken()).toBe("from-cookie");
    expect(server.count("POST /api/auth/refresh")).toBe(1);
    expect(screen.queryByRole("heading", { name: "Sign in to Strøm" })).toBeNull();
  });

  it("a session that ends sends the user to sign in, then back", async () => {
    fakeServer({
      "GET /api/config": json(200, config()),
      "POST /api/auth/refresh": json(401, { error: "revoked", code: "unauthorized" }),
      "GET /api/auth/me": json(200, user()),
      "GET /api/workers": json(401, UNAUTHORIZED),
    });
    startSession("expired", 900);
    app("/workers");
    await waitFor(() => expect(screen.getByTestId("where")).toHaveTextContent("/workers"));
    endSession("expired");
    await screen.findByRole("heading", { name: "Sign in to Strøm" });
    expect(screen.getByRole("status")).toHaveTextContent("Your session has ended");
  });

  it("only returns to paths of this site", () => {
    expect(safeNext("/jobs/1?step=a")).toBe("/jobs/1?step=a");
    expect(safeNext("//evil.example/x")).toBe("/");
    expect(safeNext("/\\evil.example")).toBe("/");
    expect(safeNext("https://evil.example/")).toBe("/");
    expect(safeNext("/jobs\n")).toBe("/");
    expect(safeNext("/login?next=/x")).toBe("/");
    expect(safeNext(null)).toBe("/");
    expect(oidcStartPath("a b", "/jobs?x=1")).toBe("/api/auth/oidc/a%20b?next=%2Fjobs%3Fx%3D1");
  });
});

describe("the OIDC callback", () => {
  it("takes the token from the fragment and goes to next", async () => {
    const server = fakeServer({
      "GET /api/config": json(200, config()),
      "GET /api/auth/me": json(200, user({ email: "alice@example.test", auth_methods: ["sso"] })),
    });
    window.history.replaceState(
      null,
      "",
      "/login/callback#access_token=oidc-jwt&token_type=Bearer&expires_in=900&next=%2Fjobs",
    );
    app("/login/callback");
    await waitFor(() => expect(screen.getByTestId("where")).toHaveTextContent("/jobs"));
    expect(getToken()).toBe("oidc-jwt");
    // The start-up refresh is skipped: the callback brought a token.
    expect(server.count("POST /api/auth/refresh")).toBe(0);
  });

  it("shows what a failed sign-in means", async () => {
    fakeServer({ "GET /api/config": json(200, config({ oidc_providers: [{ id: "sso", display_name: "SSO" }] })) });
    window.history.replaceState(null, "", "/login/callback#error=email_not_verified");
    app("/login/callback");
    expect(await screen.findByText(/has not verified the address/)).toBeInTheDocument();
    expect(getToken()).toBeNull();
  });

  it("parses the fragment strictly", () => {
    expect(parseCallback("#access_token=t&expires_in=60&next=%2Fa%3Fb%3D1")).toEqual({
      token: "t",
      expiresIn: 60,
      next: "/a?b=1",
    });
    expect(parseCallback("#access_token=t&expires_in=60&next=%2F%2Fevil")).toMatchObject({ next: "/" });
    expect(parseCallback("#error=access_denied")).toEqual({ error: "access_denied" });
    expect(parseCallback("")).toEqual({ error: "invalid_state" });
  });
});

describe("signing out and what each user sees", () => {
  it("a non-admin sees no admin pages; sign-out ends the session on the server", async () => {
    const server = fakeServer({
      "GET /api/config": json(200, config()),
      "GET /api/auth/me": json(200, user()),
      "POST /api/auth/logout": json(200, { ok: true }),
    });
    startSession("jwt", 900);
    const person = userEvent.setup();
    app("/jobs");
    await screen.findByTestId("where");
    const nav = screen.getByRole("navigation", { name: "Main" });
    expect(within(nav).getByRole("link", { name: "Jobs" })).toBeInTheDocument();
    expect(within(nav).queryByRole("link", { name: "Users" })).toBeNull();
    expect(within(nav).queryByRole("link", { name: "Audit" })).toBeNull();

    await person.click(screen.getByRole("button", { name: /Account menu of/ }));
    expect(screen.getByRole("link", { name: "API keys" })).toHaveAttribute("href", "/api-keys");
    await person.click(screen.getByRole("button", { name: "Sign out" }));
    await screen.findByRole("heading", { name: "Sign in to Strøm" });
    expect(server.count("POST /api/auth/logout")).toBe(1);
    expect(getToken()).toBeNull();
  });

  it("an admin sees the users and audit pages", async () => {
    fakeServer({
      "GET /api/config": json(200, config()),
      "GET /api/auth/me": json(200, user({ is_admin: true })),
    });
    startSession("jwt", 900);
    app("/jobs");
    await screen.findByTestId("where");
    const nav = screen.getByRole("navigation", { name: "Main" });
    expect(within(nav).getByRole("link", { name: "Users" })).toHaveAttribute("href", "/users");
    expect(within(nav).getByRole("link", { name: "Audit" })).toHaveAttribute("href", "/audit");
  });

  it("with authentication off there is no sign-in, menu or admin page, and no refresh", async () => {
    const server = fakeServer({ "GET /api/config": json(200, config({ auth_required: false })) });
    app("/login?next=%2Fworkers");
    await waitFor(() => expect(screen.getByTestId("where")).toHaveTextContent("/workers"));
    expect(screen.queryByRole("button", { name: /Account menu/ })).toBeNull();
    expect(within(screen.getByRole("navigation", { name: "Main" })).queryByRole("link", { name: "Users" })).toBeNull();
    expect(server.calls.map((call) => call.path)).toEqual(["/api/config"]);
  });
});
