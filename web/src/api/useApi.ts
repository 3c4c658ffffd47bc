// Loading a resource into a component: keeps the last good data while it refreshes (so polling
// never flashes a spinner), aborts the request when the component goes away or asks for
// another path, and polls while the tab is visible when `pollMs` is set. A poll never aborts a
// slower request still on its way (a large job's JSON on a busy server): it waits for it, so the
// page always ends up updating.

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

interface State<T> {
  path: string | null;
  data?: T;
  total: number | null;
  error?: ApiError;
}

export function useApi<T>(path: string | null, options: { pollMs?: number; keepPrevious?: boolean } = {}): Resource<T> {
  const { pollMs, keepPrevious = false } = options;
  const [state, setState] = useState<State<T>>({ path, total: null });
  const reloadRef = useRef<() => void>(() => {});

  useEffect(() => {
    if (path === null) return;
    const controller = new AbortController();
    let busy = false;
    let again = false;
    const fetchOnce = () => {
      if (busy) {
        // Asked again while a request is on its way: fetch once more when it is back.
        again = true;
        return;
      }
      busy = true;
      request<T>("GET", path, { signal: controller.signal })
        .then((reply) => {
          if (!controller.signal.aborted) setState({ path, data: reply.data, total: reply.total });
        })
        .catch((cause: unknown) => {
          if (controller.signal.aborted) return;
          const error =
            cause instanceof ApiError
              ? cause
              : new ApiError(0, null, cause instanceof Error ? cause.message : String(cause));
          // A failed refresh keeps the data it had, and shows the error beside it.
          setState((previous) => ({
            path,
            data: previous.path === path ? previous.data : undefined,
            total: previous.path === path ? previous.total : null,
            error,
          }));
        })
        .finally(() => {
          busy = false;
          if (again && !controller.signal.aborted) {
            again = false;
            fetchOnce();
          }
        });
    };
    reloadRef.current = fetchOnce;
    fetchOnce();
    const timer =
      pollMs === undefined
        ? undefined
        : window.setInterval(() => {
            if (document.visibilityState !== "hidden") fetchOnce();
          }, pollMs);
    return () => {
      controller.abort();
      window.clearInterval(timer);
      reloadRef.current = () => {};
    };
  }, [path, pollMs]);

  const reload = useCallback(() => reloadRef.current(), []);
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
