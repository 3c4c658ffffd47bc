import { render, screen } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router";
import { describe, expect, it } from "vitest";
import { Layout } from "./Layout";

describe("Layout", () => {
  it("links every top-level page from the main navigation", () => {
    render(
      <MemoryRouter initialEntries={["/jobs"]}>
        <Routes>
          <Route element={<Layout />}>
            <Route path="jobs" element={<p>jobs page</p>} />
          </Route>
        </Routes>
      </MemoryRouter>,
    );
    const nav = screen.getByRole("navigation", { name: "Main" });
    for (const label of ["Dashboard", "Jobs", "Tasks", "Workspaces", "Workers"]) {
      expect(nav).toContainElement(screen.getByRole("link", { name: label }));
    }
    expect(screen.getByText("jobs page")).toBeInTheDocument();
  });
});
