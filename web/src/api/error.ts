// A failed request: an HTTP error with the server's API §1.3 error body, or no answer at all.

import type { ErrorBody } from "./types";

export class ApiError extends Error {
  readonly status: number;
  readonly body: ErrorBody | null;

  constructor(status: number, body: ErrorBody | null, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }

  /** The server could not be reached (status 0), as opposed to answering with an error. */
  get unreachable(): boolean {
    return this.status === 0;
  }

  get notFound(): boolean {
    return this.status === 404;
  }

  /** The stable machine code of the error body (`invalid_credentials`, `forbidden`, …). */
  get code(): string | null {
    return this.body?.code ?? null;
  }
}

export function isErrorBody(value: unknown): value is ErrorBody {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { error?: unknown }).error === "string" &&
    typeof (value as { code?: unknown }).code === "string"
  );
}

/** The JSON of a response text, or null when it is empty or not JSON. */
export function parseJson(text: string): unknown {
  if (text.length === 0) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The ApiError of a failed response whose text was read. */
export function errorOf(response: Response, text: string): ApiError {
  const parsed = parseJson(text);
  const body = isErrorBody(parsed) ? parsed : null;
  const message = body?.error ?? `The server answered ${response.status} ${response.statusText}`.trim();
  return new ApiError(response.status, body, message);
}

export const UNREACHABLE_MESSAGE = "Cannot reach the Strøm server. Is it running?";
