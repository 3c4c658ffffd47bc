import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import type { Step } from "../api/types";
import JobGraph, { DETAILED_LIMIT } from "./JobGraph";
import { layoutGraph, NODE_WIDTH } from "./layout";
import { levels } from "./Overview";

function step(name: string, depends_on: string[], status: Step["status"] = "pending"): Step {
  return {
    step_name: name,
    action_name: "echo",
    action_type: "script",
    runner: "local",
    status,
    depends_on,
    input: null,
    output: null,
    error_message: null,
    attempt: 0,
    max_attempts: 1,
    retry_at: null,
    retry_history: [],
    ready_at: null,
    started_at: null,
    completed_at: null,
    when: null,
    for_each: null,
  };
}

describe("graph layout", () => {
  it("puts each step one column after its latest dependency", () => {
    const diamond = [
      step("plan", []),
      step("build", ["plan"]),
      step("test", ["plan"]),
      step("ship", ["build", "test"]),
    ];
    expect(Object.fromEntries(levels(diamond))).toEqual({ plan: 0, build: 1, test: 1, ship: 2 });
    // A cycle or an unknown dependency never loops forever.
    expect(Object.fromEntries(levels([step("a", ["b"]), step("b", ["a"]), step("c", ["nope"])]))).toEqual({
      a: 1,
      b: 0,
      c: 0,
    });
  });

  it("lays dagre's ranks out left to right", () => {
    const placed = layoutGraph(
      ["plan", "build", "ship"],
      [
        ["plan", "build"],
        ["build", "ship"],
      ],
    );
    const x = (id: string) => placed.get(id)?.x ?? Number.NaN;
    expect(x("build") - x("plan")).toBeGreaterThanOrEqual(NODE_WIDTH);
    expect(x("ship") - x("build")).toBeGreaterThanOrEqual(NODE_WIDTH);
  });
});

describe("JobGraph", () => {
  it("draws a job of 1,000 steps as a light overview, coloured by status and clickable", async () => {
    const steps = Array.from({ length: 1000 }, (_, index) =>
      step(
        `s${index}`,
        index >= 20 ? [`s${index - 20}`] : [],
        index < 300 ? "completed" : index < 320 ? "running" : "pending",
      ),
    );
    expect(steps.length).toBeGreaterThan(DETAILED_LIMIT);
    const onSelect = vi.fn();
    const { container } = render(<JobGraph steps={steps} selected="s5" onSelect={onSelect} height={400} />);
    expect(container.querySelectorAll("rect[data-step]")).toHaveLength(1000);
    expect(container.querySelectorAll('rect[data-status="running"]')).toHaveLength(20);
    expect(screen.getByTestId("job-graph")).toHaveTextContent("300 completed");
    expect(container.querySelector('rect[data-step="s5"]')).toHaveAttribute("stroke-width", "3");
    await userEvent.setup().click(container.querySelector('rect[data-step="s42"]')!);
    expect(onSelect).toHaveBeenCalledWith("s42");
  });
});
