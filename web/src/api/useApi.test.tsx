import { act, renderHook, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { useApi } from "./useApi";

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("useApi", () => {
  it("keeps the last data when a refresh fails, and reports the error beside it", async () => {
    const replies = [() => Promise.resolve(json(200, { n: 1 })), () => Promise.reject(new TypeError("down"))];
    vi.stubGlobal(
      "fetch",
      vi.fn(() => (replies.shift() ?? (() => Promise.resolve(json(200, { n: 2 }))))()),
    );
    const { result } = renderHook(() => useApi<{ n: number }>("/api/thing"));
    expect(result.current.loading).toBe(true);
    await waitFor(() => expect(result.current.data).toEqual({ n: 1 }));
    act(() => result.current.reload());
    await waitFor(() => expect(result.current.error?.unreachable).toBe(true));
    expect(result.current.data).toEqual({ n: 1 });
    expect(result.current.loading).toBe(false);
  });

  it("never aborts a request on its way: a reload meanwhile fetches once more afterwards", async () => {
    const pending: ((response: Response) => void)[] = [];
    const fetchMock = vi.fn(() => new Promise<Response>((resolve) => pending.push(resolve)));
    vi.stubGlobal("fetch", fetchMock);
    const { result } = renderHook(() => useApi<{ n: number }>("/api/job"));
    expect(fetchMock).toHaveBeenCalledTimes(1);
    act(() => {
      result.current.reload();
      result.current.reload();
    });
    expect(fetchMock).toHaveBeenCalledTimes(1);
    await act(async () => pending.shift()?.(json(200, { n: 1 })));
    await waitFor(() => expect(fetchMock).toHaveBeenCalledTimes(2));
    await act(async () => pending.shift()?.(json(200, { n: 2 })));
    await waitFor(() => expect(result.current.data).toEqual({ n: 2 }));
    expect(fetchMock).toHaveBeenCalledTimes(2);
  });

  it("maps an error body onto ApiError with its status and code", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(() => Promise.resolve(json(404, { error: "job 1 not found", code: "not_found" }))),
    );
    const { result } = renderHook(() => useApi("/api/jobs/1"));
    await waitFor(() => expect(result.current.error?.notFound).toBe(true));
    expect(result.current.error?.message).toBe("job 1 not found");
    expect(result.current.error?.body?.code).toBe("not_found");
  });
});
