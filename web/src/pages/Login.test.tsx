import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes, useLocation } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Layout } from "../app/Layout";
import { get, getToken, setToken } from "../api/client";
import { Login, safeNext } from "./Login";

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function Where() {
  const location = useLocation();
  return <p data-testid="where">{`${location.pathname}${location.search}`}</p>;
}

function app(path: string) {
  return render(
    <MemoryRouter initialEntries={[path]}>
      <Routes>
        <Route element={<Layout />}>
          <Route path="login" element={<Login />} />
          <Route path="*" element={<Where />} />
        </Route>
      </Routes>
    </MemoryRouter>,
  );
}

afterEach(() => {
  vi.unstubAllGlobals();
  setToken(null);
});

describe("sign-in", () => {
  it("signs in, keeps the token for every request, and returns to the page asked for", async () => {
    const fetchMock = vi.fn((url: string, init: RequestInit) => {
      if (url === "/api/config") {
        return Promise.resolve(
          json(200, { version: "0.1.0", auth_required: true, has_internal_auth: true, oidc_providers: [] }),
        );
      }
      if (url === "/api/auth/login") {
        expect(JSON.parse(String(init.body))).toEqual({ email: "ada@example.com", password: "correct horse" });
        return Promise.resolve(
          json(200, { access_token: "jwt-1", refresh_token: "r", token_type: "Bearer", expires_in: 900 }),
        );
      }
      return Promise.resolve(json(200, {}));
    });
    vi.stubGlobal("fetch", fetchMock);
    const user = userEvent.setup();
    app("/jobs?status=failed");

    // Without a token the server's auth_required sends the user to sign in first.
    await waitFor(() => expect(screen.getByRole("heading", { name: "Sign in to Strøm" })).toBeInTheDocument());
    await user.type(screen.getByLabelText("E-mail"), "ada@example.com");
    await user.type(screen.getByLabelText("Password"), "correct horse");
    await user.click(screen.getByRole("button", { name: "Sign in" }));

    await waitFor(() => expect(screen.getByTestId("where")).toHaveTextContent("/jobs?status=failed"));
    expect(getToken()).toBe("jwt-1");
    expect(sessionStorage.getItem("stroem.access_token")).toBe("jwt-1");
    await get("/api/stats");
    const [, init] = fetchMock.mock.calls.at(-1)!;
    expect(init.headers).toMatchObject({ Authorization: "Bearer jwt-1" });
  });

  it("says so when the credentials are wrong", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn((url: string) =>
        Promise.resolve(
          url === "/api/auth/login"
            ? json(401, { error: "invalid e-mail or password", code: "invalid_credentials" })
            : json(200, { version: "0.1.0", auth_required: true, has_internal_auth: true, oidc_providers: [] }),
        ),
      ),
    );
    const user = userEvent.setup();
    app("/login");
    await user.type(screen.getByLabelText("E-mail"), "ada@example.com");
    await user.type(screen.getByLabelText("Password"), "wrong");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("The e-mail address or the password is wrong.");
    expect(getToken()).toBeNull();
  });

  it("sends the user to sign in when a request answers 401, forgetting the stale token", async () => {
    setToken("expired");
    vi.stubGlobal(
      "fetch",
      vi.fn((url: string) =>
        Promise.resolve(
          url === "/api/config"
            ? json(200, { version: "0.1.0", auth_required: true, has_internal_auth: true, oidc_providers: [] })
            : json(401, { error: "token expired", code: "unauthorized" }),
        ),
      ),
    );
    app("/workers");
    expect(screen.getByTestId("where")).toHaveTextContent("/workers");
    await expect(get("/api/workers")).rejects.toMatchObject({ status: 401 });
    await waitFor(() => expect(screen.getByRole("heading", { name: "Sign in to Strøm" })).toBeInTheDocument());
    expect(getToken()).toBeNull();
  });

  it("only returns to paths of this site", () => {
    expect(safeNext("/jobs/1?step=a")).toBe("/jobs/1?step=a");
    expect(safeNext("//evil.example/x")).toBe("/");
    expect(safeNext("https://evil.example/")).toBe("/");
    expect(safeNext(null)).toBe("/");
  });
});
