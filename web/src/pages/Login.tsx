// Signing in (API §5.3, §5.4): an e-mail and password form when the server has internal
// accounts, and one button per OIDC provider from `/api/config`. Afterwards the user goes to
// `?next=` (a path of this site only). The OIDC sign-in comes back to `/login/callback` with the
// access token in the address's fragment, which never reaches a server.

import { useEffect, useRef, useState, type FormEvent } from "react";
import { Navigate, useNavigate, useSearchParams } from "react-router";
import { ApiError, post } from "../api/client";
import { startSession, type TokenReply } from "../api/session";
import { useAuth } from "../app/auth";
import { ErrorPanel, Spinner, useTitle } from "../components/ui";

/**
 * Only paths of this site are followed after signing in, never another origin: `/…` but not
 * `//host` or `/\host`, and nothing with control characters (the rules of API §5.4's `next`).
 */
export function safeNext(next: string | null): string {
  if (next === null || !next.startsWith("/") || next.startsWith("//")) return "/";
  if (next.includes("\\") || /[\u0000-\u001f\u007f]/.test(next)) return "/";
  if (next === "/login" || next.startsWith("/login?") || next.startsWith("/login/")) return "/";
  return next;
}

/** What an OIDC sign-in's error code (API §5.4) means for the person signing in. */
export const OIDC_ERRORS: Record<string, string> = {
  invalid_state: "The sign-in took too long or was started in another window. Please try again.",
  access_denied: "The sign-in was cancelled at the identity provider.",
  provider_error: "The identity provider could not be reached or answered with an error. Please try again later.",
  invalid_id_token: "The identity provider's answer could not be verified.",
  missing_email: "The identity provider did not share an e-mail address, which Strøm needs.",
  email_not_verified:
    "An account with this e-mail address exists, but the identity provider has not verified the address, so they cannot be linked.",
};

/** The address that starts an OIDC sign-in with `provider` and returns to `next`. */
export function oidcStartPath(provider: string, next: string): string {
  return `/api/auth/oidc/${encodeURIComponent(provider)}?next=${encodeURIComponent(next)}`;
}

export function Login() {
  useTitle("Sign in");
  const auth = useAuth();
  const [params] = useSearchParams();
  const next = safeNext(params.get("next"));
  const oidcError = params.get("error");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  // Signed in (here, by the refresh cookie, or in another tab): on to the page asked for.
  if (auth.phase === "signed-in" || auth.phase === "off") return <Navigate to={next} replace />;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const reply = await post<TokenReply>("/api/auth/login", { email, password });
      startSession(reply.access_token, reply.expires_in);
    } catch (cause) {
      const apiError = cause instanceof ApiError ? cause : null;
      if (apiError?.status === 401) setError("The e-mail address or the password is wrong.");
      else if (apiError?.status === 404) setError("Signing in with a password is not enabled on this server.");
      else if (apiError?.status === 429)
        setError(`Too many attempts. Try again in ${apiError.body?.retry_after_secs ?? "a few"} seconds.`);
      else setError(apiError?.message ?? String(cause));
    } finally {
      setBusy(false);
    }
  };

  const config = auth.config;
  const providers = config?.oidc_providers ?? [];
  const notice =
    oidcError !== null
      ? (OIDC_ERRORS[oidcError] ?? `The sign-in failed (${oidcError}).`)
      : auth.ended === "expired"
        ? "Your session has ended. Please sign in again."
        : null;

  return (
    <main id="main" className="min-h-screen px-4 py-12">
      <div className="mx-auto max-w-sm rounded-xl border border-slate-200 bg-white p-6 shadow-sm">
        <h1 className="text-xl font-semibold">Sign in to Strøm</h1>
        {auth.phase === "loading" || auth.phase === "checking" ? (
          <Spinner />
        ) : auth.phase === "error" && auth.error !== undefined ? (
          <ErrorPanel error={auth.error} onRetry={auth.retry} what="Strøm" />
        ) : (
          <>
            {notice !== null && (
              <p
                role="status"
                className="mt-4 rounded-md bg-amber-50 px-3 py-2 text-sm text-amber-900 ring-1 ring-amber-200"
              >
                {notice}
              </p>
            )}
            {config?.has_internal_auth !== false && (
              <form onSubmit={submit} className="mt-5 space-y-4" aria-label="Sign in">
                <div>
                  <label htmlFor="login-email" className="mb-1 block text-sm font-medium">
                    E-mail
                  </label>
                  <input
                    id="login-email"
                    type="email"
                    autoComplete="username"
                    required
                    value={email}
                    onChange={(event) => setEmail(event.target.value)}
                    className="field-input"
                  />
                </div>
                <div>
                  <label htmlFor="login-password" className="mb-1 block text-sm font-medium">
                    Password
                  </label>
                  <input
                    id="login-password"
                    type="password"
                    autoComplete="current-password"
                    required
                    value={password}
                    onChange={(event) => setPassword(event.target.value)}
                    className="field-input"
                  />
                </div>
                {error !== null && (
                  <p role="alert" className="text-sm text-red-700">
                    {error}
                  </p>
                )}
                <button type="submit" className="btn-primary w-full" disabled={busy}>
                  {busy ? "Signing in…" : "Sign in"}
                </button>
              </form>
            )}
            {providers.length > 0 && (
              <div className="mt-5 space-y-2">
                {config?.has_internal_auth !== false && (
                  <p className="flex items-center gap-2 text-xs text-slate-500 before:h-px before:flex-1 before:bg-slate-200 after:h-px after:flex-1 after:bg-slate-200">
                    or
                  </p>
                )}
                {providers.map((provider) => (
                  // A full page load: the server redirects to the provider.
                  <a
                    key={provider.id}
                    href={oidcStartPath(provider.id, next)}
                    className="btn-secondary w-full py-2 hover:no-underline"
                  >
                    Sign in with {provider.display_name}
                  </a>
                ))}
              </div>
            )}
            {config?.has_internal_auth === false && providers.length === 0 && (
              <p role="alert" className="mt-4 text-sm text-red-700">
                This server offers no way to sign in. Ask its administrator to configure a provider.
              </p>
            )}
          </>
        )}
      </div>
    </main>
  );
}

/** What an OIDC callback's fragment says: a token (and where to go), or an error code. */
export function parseCallback(hash: string): { token: string; expiresIn: number; next: string } | { error: string } {
  const params = new URLSearchParams(hash.startsWith("#") ? hash.slice(1) : hash);
  const token = params.get("access_token");
  const expiresIn = Number(params.get("expires_in"));
  if (token !== null && token !== "" && Number.isFinite(expiresIn) && expiresIn > 0) {
    return { token, expiresIn, next: safeNext(params.get("next")) };
  }
  return { error: params.get("error") ?? "invalid_state" };
}

/** `/login/callback#…`: takes the OIDC sign-in's token (and removes it from the address). */
export function LoginCallback() {
  useTitle("Signing in");
  const navigate = useNavigate();
  const done = useRef(false);
  useEffect(() => {
    if (done.current) return;
    done.current = true;
    const result = parseCallback(window.location.hash);
    if ("token" in result) {
      startSession(result.token, result.expiresIn);
      navigate(result.next, { replace: true });
    } else {
      navigate(`/login?error=${encodeURIComponent(result.error)}`, { replace: true });
    }
  }, [navigate]);
  return (
    <main id="main" className="px-4 py-12">
      <Spinner label="Signing in…" />
    </main>
  );
}
