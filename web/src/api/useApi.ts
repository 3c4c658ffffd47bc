// Loading a resource into a component: keeps the last good data while it refreshes (so polling
// never flashes a spinner), aborts requests of unmounted components, and polls while the tab is
// visible when `pollMs` is set.

import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, request } from "./client";

export interface Resource<T> {
  data: T | undefined;
  total: number | null;
  error: ApiError | undefined;
  /** True only until the first answer (data or error). */
  loading: boolean;
  reload: () => void;
}

export function useApi<T>(path: string | null, options: { pollMs?: number; keepPrevious?: boolean } = {}): Resource<T> {
  const { pollMs, keepPrevious = false } = options;
  const [state, setState] = useState<{ path: string | null; data?: T; total: number | null; error?: ApiError }>({
    path,
    total: null,
  });
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  const pathRef = useRef(path);
  pathRef.current = path;

  useEffect(() => {
    if (path === null) return;
    const controller = new AbortController();
    request<T>("GET", path, { signal: controller.signal })
      .then((reply) => {
        if (pathRef.current === path) setState({ path, data: reply.data, total: reply.total });
      })
      .catch((cause: unknown) => {
        if (controller.signal.aborted) return;
        const error =
          cause instanceof ApiError ? cause : new ApiError(0, null, cause instanceof Error ? cause.message : String(cause));
        // A failed refresh keeps the data it had, and shows the error beside it.
        setState((previous) => ({
          path,
          data: previous.path === path ? previous.data : undefined,
          total: previous.path === path ? previous.total : null,
          error,
        }));
      });
    return () => controller.abort();
  }, [path, tick]);

  useEffect(() => {
    if (path === null || pollMs === undefined) return;
    const timer = window.setInterval(() => {
      if (document.visibilityState !== "hidden") reload();
    }, pollMs);
    return () => window.clearInterval(timer);
  }, [path, pollMs, reload]);

  const current = state.path === path;
  // A list whose filters changed keeps showing the previous rows until the new ones arrive,
  // instead of flashing a spinner.
  if (!current && keepPrevious && state.data !== undefined) {
    return { data: state.data, total: state.total, error: undefined, loading: false, reload };
  }
  return {
    data: current ? state.data : undefined,
    total: current ? state.total : null,
    error: current ? state.error : undefined,
    loading: path !== null && (!current || (state.data === undefined && state.error === undefined)),
    reload,
  };
}
