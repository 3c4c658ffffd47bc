import { act, renderHook } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { LogLine } from "../api/types";
import { useLogStream } from "./useLogStream";

class FakeSocket {
  static all: FakeSocket[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: (() => void) | null = null;
  closed = false;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  open() {
    this.onopen?.();
  }
  send(lines: LogLine[]) {
    this.onmessage?.(new MessageEvent("message", { data: lines.map((line) => `${JSON.stringify(line)}\n`).join("") }));
  }
  end(status: string) {
    this.onmessage?.(new MessageEvent("message", { data: JSON.stringify({ event: "end", status }) }));
    this.drop();
  }
  drop() {
    this.closed = true;
    this.onclose?.();
  }
  close() {
    this.closed = true;
  }
}

const line = (seq: number): LogLine => ({
  seq,
  ts: "2026-03-01T12:00:00.000Z",
  stream: "stdout",
  step: "build",
  attempt: 1,
  line: `line ${seq}`,
});

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.all = [];
  vi.stubGlobal("WebSocket", FakeSocket);
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("useLogStream", () => {
  it("collects lines, and after a dropped connection resumes with `after` = the last seq seen", () => {
    const { result } = renderHook(() => useLogStream("job-1"));
    act(() => vi.advanceTimersByTime(1));
    const first = FakeSocket.all[0]!;
    expect(first.url).toBe("ws://localhost:3000/api/jobs/job-1/logs/stream?after=0");
    act(() => first.open());
    expect(result.current.state).toBe("live");
    act(() => first.send([line(1), line(2), line(3)]));
    expect(result.current.buffer.lastSeq).toBe(3);

    // The server closes a slow reader (1013); the hook reconnects after a short pause.
    act(() => first.drop());
    expect(result.current.state).toBe("reconnecting");
    act(() => vi.advanceTimersByTime(600));
    const second = FakeSocket.all[1]!;
    expect(second.url).toBe("ws://localhost:3000/api/jobs/job-1/logs/stream?after=3");
    act(() => {
      second.open();
      // An overlap is dropped: every line once, in order.
      second.send([line(3), line(4)]);
    });
    expect(result.current.buffer.lines.map((l) => l.seq)).toEqual([1, 2, 3, 4]);

    act(() => second.end("completed"));
    expect(result.current.state).toBe("ended");
    expect(result.current.endStatus).toBe("completed");
    act(() => vi.advanceTimersByTime(30_000));
    expect(FakeSocket.all).toHaveLength(2);
  });

  it("closes its socket when the page goes away", () => {
    const { unmount } = renderHook(() => useLogStream("job-2"));
    act(() => vi.advanceTimersByTime(1));
    const socket = FakeSocket.all[0]!;
    unmount();
    expect(socket.closed).toBe(true);
    act(() => vi.advanceTimersByTime(30_000));
    expect(FakeSocket.all).toHaveLength(1);
  });
});
