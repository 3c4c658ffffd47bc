import { render, screen } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";
import { config, fakeServer, json } from "../test/server";
import { AuthProvider } from "./auth";
import { Layout, loginPath } from "./Layout";

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("Layout", () => {
  it("links every top-level page from the main navigation", async () => {
    fakeServer({ "GET /api/config": json(200, config({ auth_required: false })) });
    render(
      <MemoryRouter initialEntries={["/jobs"]}>
        <AuthProvider>
          <Routes>
            <Route element={<Layout />}>
              <Route path="jobs" element={<p>jobs page</p>} />
            </Route>
          </Routes>
        </AuthProvider>
      </MemoryRouter>,
    );
    expect(await screen.findByText("jobs page")).toBeInTheDocument();
    const nav = screen.getByRole("navigation", { name: "Main" });
    for (const label of ["Dashboard", "Jobs", "Tasks", "Workspaces", "Workers"]) {
      expect(nav).toContainElement(screen.getByRole("link", { name: label }));
    }
  });

  it("says when the server cannot be reached, with a way to try again", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(() => Promise.reject(new TypeError("connection refused"))),
    );
    render(
      <MemoryRouter initialEntries={["/"]}>
        <AuthProvider>
          <Routes>
            <Route element={<Layout />}>
              <Route index element={<p>dashboard</p>} />
            </Route>
          </Routes>
        </AuthProvider>
      </MemoryRouter>,
    );
    expect(await screen.findByRole("alert")).toHaveTextContent("not reachable");
    expect(screen.getByRole("button", { name: "Try again" })).toBeInTheDocument();
  });

  it("the sign-in address returns to the page", () => {
    expect(loginPath({ pathname: "/", search: "" })).toBe("/login");
    expect(loginPath({ pathname: "/jobs", search: "?status=failed" })).toBe("/login?next=%2Fjobs%3Fstatus%3Dfailed");
  });
});
