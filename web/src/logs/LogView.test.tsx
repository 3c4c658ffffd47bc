import { act, fireEvent, render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it, vi } from "vitest";
import type { LogLine } from "../api/types";
import { FilteredIndex, LogBuffer, parseFrame } from "./buffer";
import { LogView, ROW_HEIGHT } from "./LogView";

const VIEW_HEIGHT = 400;

function line(seq: number, step = "build", stream: "stdout" | "stderr" = "stdout", text = `line ${seq}`): LogLine {
  return { seq, ts: "2026-03-01T12:00:01.250Z", stream, step, attempt: 1, line: text };
}

function lines(from: number, count: number, step = "build"): LogLine[] {
  return Array.from({ length: count }, (_, index) => line(from + index, step));
}

/** A buffer whose batches are delivered when the test says so, like animation frames. */
function manualBuffer() {
  const frames: (() => void)[] = [];
  const buffer = new LogBuffer((callback) => frames.push(callback));
  const nextFrame = () =>
    act(() => {
      for (const callback of frames.splice(0)) callback();
    });
  return { buffer, frames, nextFrame };
}

function Harness({ buffer, steps = ["build", "test", "fan"] }: { buffer: LogBuffer; steps?: string[] }) {
  const [step, setStep] = useState<string | null>(null);
  return <LogView buffer={buffer} steps={steps} step={step} onStepChange={setStep} height={VIEW_HEIGHT} />;
}

/** jsdom has no layout: give the scroll area the geometry a browser would. */
function fakeGeometry(element: HTMLElement, buffer: LogBuffer, visible: () => number = () => buffer.lines.length) {
  let top = 0;
  Object.defineProperty(element, "clientHeight", { configurable: true, get: () => VIEW_HEIGHT });
  Object.defineProperty(element, "scrollHeight", {
    configurable: true,
    get: () => Math.max(VIEW_HEIGHT, visible() * ROW_HEIGHT),
  });
  Object.defineProperty(element, "scrollTop", {
    configurable: true,
    get: () => top,
    set: (value: number) => {
      top = Math.max(0, Math.min(value, Math.max(VIEW_HEIGHT, visible() * ROW_HEIGHT) - VIEW_HEIGHT));
    },
  });
  const bottom = () => Math.max(VIEW_HEIGHT, visible() * ROW_HEIGHT) - VIEW_HEIGHT;
  return {
    bottom,
    get top() {
      return top;
    },
  };
}

function renderedSeqs(): number[] {
  return [...document.querySelectorAll<HTMLElement>("[data-seq]")].map((row) => Number(row.dataset.seq));
}

describe("LogBuffer", () => {
  it("delivers many appended batches in one notification per frame", () => {
    const { buffer, frames, nextFrame } = manualBuffer();
    const listener = vi.fn();
    buffer.subscribe(listener);
    buffer.append(lines(1, 10));
    buffer.append(lines(11, 10));
    buffer.append(lines(21, 10));
    expect(frames).toHaveLength(1);
    expect(listener).not.toHaveBeenCalled();
    nextFrame();
    expect(listener).toHaveBeenCalledTimes(1);
    expect(buffer.lines).toHaveLength(30);
    expect(buffer.lastSeq).toBe(30);
  });

  it("drops lines it already has, as a reconnect with `after` may resend them", () => {
    const { buffer } = manualBuffer();
    buffer.append(lines(1, 5));
    buffer.append(lines(3, 5));
    expect(buffer.lines.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it("parses frames of several JSONL lines and the end event", () => {
    const text = `${JSON.stringify(line(1))}\n${JSON.stringify(line(2, "test", "stderr"))}\n`;
    expect(parseFrame(text)).toEqual({ lines: [line(1), line(2, "test", "stderr")], end: null });
    expect(parseFrame('{"event":"end","status":"failed"}')).toEqual({ lines: [], end: "failed" });
  });

  it("extends a filtered index with only the new lines", () => {
    const all = [line(1, "build"), line(2, "fan[0]"), line(3, "fan[1]"), line(4, "fanfare")];
    const index = new FilteredIndex();
    expect([...index.update(all, "fan")]).toEqual([1, 2]);
    all.push(line(5, "fan[2]"));
    expect([...index.update(all, "fan")]).toEqual([1, 2, 4]);
    expect([...index.update(all, "fanfare")]).toEqual([3]);
    expect([...index.update(all, null)]).toEqual([0, 1, 2, 3, 4]);
  });
});

describe("LogView", () => {
  it("shows appended lines once their batch is delivered", () => {
    const { buffer, nextFrame } = manualBuffer();
    render(<Harness buffer={buffer} />);
    expect(screen.getByText("No log lines yet.")).toBeInTheDocument();
    buffer.append(lines(1, 3));
    buffer.append(lines(4, 2));
    expect(renderedSeqs()).toEqual([]);
    nextFrame();
    expect(renderedSeqs()).toEqual([1, 2, 3, 4, 5]);
    expect(screen.getByTestId("log-count")).toHaveTextContent("5 lines");
  });

  it("filters by step, a loop step matching all of its instances", async () => {
    const { buffer, nextFrame } = manualBuffer();
    const user = userEvent.setup();
    render(<Harness buffer={buffer} />);
    buffer.append([
      line(1, "build"),
      line(2, "test"),
      line(3, "fan[0]"),
      line(4, "build"),
      line(5, "fan[1]"),
      line(6, "_server", "stderr"),
    ]);
    nextFrame();
    await user.selectOptions(screen.getByLabelText("Step"), "build");
    expect(renderedSeqs()).toEqual([1, 4]);
    expect(screen.getByTestId("log-count")).toHaveTextContent("2 lines (4 hidden by the filter)");
    await user.selectOptions(screen.getByLabelText("Step"), "fan");
    expect(renderedSeqs()).toEqual([3, 5]);
    // New lines of the filtered step keep arriving; others stay hidden.
    buffer.append([line(7, "fan[2]"), line(8, "test")]);
    nextFrame();
    expect(renderedSeqs()).toEqual([3, 5, 7]);
    await user.selectOptions(screen.getByLabelText("Step"), "_server");
    expect(renderedSeqs()).toEqual([6]);
    await user.selectOptions(screen.getByLabelText("Step"), "All steps");
    expect(renderedSeqs()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("highlights stderr lines", () => {
    const { buffer, nextFrame } = manualBuffer();
    render(<Harness buffer={buffer} />);
    buffer.append([line(1, "build", "stdout", "compiling"), line(2, "build", "stderr", "warning: unused")]);
    nextFrame();
    const stderr = screen.getByText("warning: unused").closest<HTMLElement>("[data-seq]")!;
    const stdout = screen.getByText("compiling").closest<HTMLElement>("[data-seq]")!;
    expect(stderr.dataset.stream).toBe("stderr");
    expect(stderr.className).toMatch(/text-red-200/);
    expect(stderr.className).toMatch(/border-red-500/);
    expect(stdout.className).not.toMatch(/red/);
  });

  it("follows new lines, stops when the user scrolls up, and resumes at the bottom", async () => {
    const { buffer, nextFrame } = manualBuffer();
    const user = userEvent.setup();
    render(<Harness buffer={buffer} />);
    const scroller = screen.getByTestId("log-scroll");
    const geometry = fakeGeometry(scroller, buffer);

    buffer.append(lines(1, 100));
    nextFrame();
    expect(geometry.top).toBe(geometry.bottom());
    buffer.append(lines(101, 50));
    nextFrame();
    expect(geometry.top).toBe(150 * ROW_HEIGHT - VIEW_HEIGHT);
    expect(screen.queryByRole("button", { name: /Jump to latest/ })).toBeNull();

    // The user scrolls up: new lines no longer move the view.
    scroller.scrollTop = 500;
    fireEvent.scroll(scroller);
    buffer.append(lines(151, 50));
    nextFrame();
    expect(geometry.top).toBe(500);
    expect(screen.getByRole("button", { name: /Jump to latest/ })).toBeInTheDocument();

    // Scrolling back to the bottom resumes following.
    scroller.scrollTop = geometry.bottom();
    fireEvent.scroll(scroller);
    expect(screen.queryByRole("button", { name: /Jump to latest/ })).toBeNull();
    buffer.append(lines(201, 10));
    nextFrame();
    expect(geometry.top).toBe(210 * ROW_HEIGHT - VIEW_HEIGHT);

    // And "Jump to latest" resumes it too.
    scroller.scrollTop = 0;
    fireEvent.scroll(scroller);
    buffer.append(lines(211, 10));
    nextFrame();
    expect(geometry.top).toBe(0);
    await user.click(screen.getByRole("button", { name: /Jump to latest/ }));
    expect(geometry.top).toBe(220 * ROW_HEIGHT - VIEW_HEIGHT);
    buffer.append(lines(221, 10));
    nextFrame();
    expect(geometry.top).toBe(230 * ROW_HEIGHT - VIEW_HEIGHT);
  });

  it("renders a window of rows, not 100,000, and keeps the full scroll height", () => {
    const { buffer, nextFrame } = manualBuffer();
    render(<Harness buffer={buffer} />);
    const batch: LogLine[] = [];
    for (let seq = 1; seq <= 100_000; seq += 1) batch.push(line(seq, seq % 2 === 0 ? "build" : "test"));
    buffer.append(batch);
    nextFrame();
    const rows = renderedSeqs();
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.length).toBeLessThan(100);
    expect(screen.getByTestId("log-count")).toHaveTextContent("100,000 lines");
    const inner = screen.getByTestId("log-scroll").firstElementChild as HTMLElement;
    expect(inner.style.height).toBe(`${100_000 * ROW_HEIGHT}px`);
  });
});
