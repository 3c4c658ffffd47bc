// Follows a job's log over the WebSocket of API §4.3 into a LogBuffer. Reconnects with
// `after` = the last seq it saw when the connection drops (including the server's 1013 for a
// slow reader) and stops after the end frame.

import { useEffect, useState } from "react";
import { freshToken, getToken, logStreamUrl, tokenNeedsRefresh } from "../api/client";
import { LogBuffer, parseFrame } from "./buffer";

export type StreamState = "connecting" | "live" | "reconnecting" | "ended";

export interface LogStream {
  buffer: LogBuffer;
  state: StreamState;
  /** The job status from the end frame, once received. */
  endStatus: string | null;
}

const MAX_BACKOFF_MS = 10_000;

export function useLogStream(jobId: string): LogStream {
  // One buffer per mounted job page; the page is keyed by job id, so another job remounts it.
  const [buffer] = useState(() => new LogBuffer());
  const [state, setState] = useState<StreamState>("connecting");
  const [endStatus, setEndStatus] = useState<string | null>(null);

  useEffect(() => {
    let socket: WebSocket | null = null;
    let stopped = false;
    let ended = false;
    let attempts = 0;
    let retryTimer: number | undefined;
    setState("connecting");
    setEndStatus(null);

    const connect = async () => {
      // The token goes in the URL; one about to expire is refreshed first.
      const token = tokenNeedsRefresh() ? await freshToken() : getToken();
      if (stopped) return;
      socket = new WebSocket(logStreamUrl(jobId, buffer.lastSeq, window.location, token));
      socket.onopen = () => {
        attempts = 0;
        setState("live");
      };
      socket.onmessage = (event: MessageEvent) => {
        if (typeof event.data !== "string") return;
        const frame = parseFrame(event.data);
        if (frame.lines.length > 0) buffer.append(frame.lines);
        if (frame.end !== null) {
          ended = true;
          buffer.flush();
          setEndStatus(frame.end);
          setState("ended");
        }
      };
      socket.onclose = () => {
        socket = null;
        if (stopped || ended) return;
        setState("reconnecting");
        attempts += 1;
        const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(attempts - 1, 5));
        retryTimer = window.setTimeout(() => void connect(), delay);
      };
    };
    // Connecting on the next tick lets a mount that is undone at once (React's development
    // double mount, a quick navigation) end without opening a socket at all.
    retryTimer = window.setTimeout(() => void connect(), 0);
    return () => {
      stopped = true;
      window.clearTimeout(retryTimer);
      socket?.close(1000);
    };
  }, [jobId, buffer]);

  return { buffer, state, endStatus };
}
