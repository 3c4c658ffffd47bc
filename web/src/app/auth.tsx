// Who is using the UI. `/api/config` says whether the server requires signing in; when it does,
// a tab that opens without an access token first tries the refresh cookie (a reload, a new tab,
// a bookmark keep the user signed in), then loads `GET /api/auth/me`. Pages are shown only once
// that is known, so no page sends a request without its token. With authentication off the
// phase is `off` and the UI works without any of this.

import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useState,
  useSyncExternalStore,
  type ReactNode,
} from "react";
import { ApiError, get } from "../api/client";
import {
  refreshSession,
  sessionSnapshot,
  signOut as endServerSession,
  subscribeSession,
  type EndReason,
} from "../api/session";
import type { ServerConfig, User } from "../api/types";

export type AuthPhase = "loading" | "off" | "checking" | "signed-in" | "signed-out" | "error";

export interface AuthState {
  phase: AuthPhase;
  config: ServerConfig | undefined;
  /** The signed-in user (phase `signed-in`), else null. */
  user: User | null;
  /** Why the last session ended (shown on the sign-in page). */
  ended: EndReason;
  /** What went wrong (phase `error`). */
  error: ApiError | undefined;
  retry: () => void;
  signOut: () => Promise<void>;
}

const AuthContext = createContext<AuthState | null>(null);

/** Where the OIDC sign-in hands over its result (API §5.4); it brings its own token. */
export const CALLBACK_PATH = "/login/callback";

function asApiError(cause: unknown): ApiError {
  return cause instanceof ApiError
    ? cause
    : new ApiError(0, null, cause instanceof Error ? cause.message : String(cause));
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const [attempt, setAttempt] = useState(0);
  const [config, setConfig] = useState<ServerConfig | undefined>(undefined);
  const [configError, setConfigError] = useState<ApiError | undefined>(undefined);
  /** The start-up refresh: pending, done, or failed without an answer. */
  const [initial, setInitial] = useState<"pending" | "done" | ApiError>("pending");
  const [user, setUser] = useState<User | null>(null);
  const [userError, setUserError] = useState<ApiError | undefined>(undefined);
  const session = useSyncExternalStore(subscribeSession, sessionSnapshot);
  const signedIn = session.token !== null;

  useEffect(() => {
    const controller = new AbortController();
    setConfigError(undefined);
    get<ServerConfig>("/api/config", controller.signal)
      .then(setConfig)
      .catch((cause: unknown) => {
        if (!controller.signal.aborted) setConfigError(asApiError(cause));
      });
    return () => controller.abort();
  }, [attempt]);

  const authRequired = config?.auth_required === true;

  // A tab without a token tries the refresh cookie once; the OIDC callback brings a token.
  useEffect(() => {
    if (!authRequired || initial !== "pending") return;
    if (sessionSnapshot().token !== null || window.location.pathname === CALLBACK_PATH) {
      setInitial("done");
      return;
    }
    let live = true;
    refreshSession(null)
      .then(() => live && setInitial("done"))
      .catch((cause: unknown) => live && setInitial(asApiError(cause)));
    return () => {
      live = false;
    };
  }, [authRequired, initial]);

  // Each new sign-in (not each refresh) loads the account: its admin flag decides the pages.
  useEffect(() => {
    if (!authRequired || !signedIn) {
      setUser(null);
      return;
    }
    const controller = new AbortController();
    setUserError(undefined);
    get<User>("/api/auth/me", controller.signal)
      .then(setUser)
      .catch((cause: unknown) => {
        if (!controller.signal.aborted) setUserError(asApiError(cause));
      });
    return () => controller.abort();
    // session.token is left out on purpose: a refreshed token is the same sign-in.
  }, [authRequired, signedIn, attempt]);

  const retry = useCallback(() => {
    setConfigError(undefined);
    setUserError(undefined);
    setInitial((value) => (value instanceof ApiError ? "pending" : value));
    setAttempt((value) => value + 1);
  }, []);

  let phase: AuthPhase;
  let error: ApiError | undefined;
  if (config === undefined) {
    phase = configError !== undefined ? "error" : "loading";
    error = configError;
  } else if (!config.auth_required) {
    phase = "off";
  } else if (signedIn) {
    if (user !== null) phase = "signed-in";
    else if (userError !== undefined) {
      phase = "error";
      error = userError;
    } else phase = "checking";
  } else if (initial === "pending") {
    phase = "checking";
  } else if (initial instanceof ApiError) {
    phase = "error";
    error = initial;
  } else {
    phase = "signed-out";
  }

  const state: AuthState = {
    phase,
    config,
    user: phase === "signed-in" ? user : null,
    ended: session.ended,
    error,
    retry,
    signOut: endServerSession,
  };
  return <AuthContext.Provider value={state}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const state = useContext(AuthContext);
  if (state === null) throw new Error("useAuth needs an AuthProvider above it");
  return state;
}

/** Whether the signed-in user may use the admin pages (users, groups, audit). */
export function isAdmin(auth: AuthState): boolean {
  return auth.phase === "signed-in" && auth.user?.is_admin === true;
}
