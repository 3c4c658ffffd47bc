// Sign-in with e-mail and password (API §5.3 `POST /api/auth/login`), shown when the server
// requires authentication. The access token then goes with every request; when it expires the
// server answers 401 and the user comes back here, then returns to the page they were on.

import { useState, type FormEvent } from "react";
import { useNavigate, useSearchParams } from "react-router";
import { ApiError, post, setToken } from "../api/client";
import { useTitle } from "../components/ui";

interface LoginReply {
  access_token: string;
  token_type: string;
  expires_in: number;
}

/** Only same-site paths are followed after signing in, never another origin. */
export function safeNext(next: string | null): string {
  return next !== null && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

export function Login() {
  useTitle("Sign in");
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const reply = await post<LoginReply>("/api/auth/login", { email, password });
      setToken(reply.access_token);
      navigate(safeNext(params.get("next")), { replace: true });
    } catch (cause) {
      const apiError = cause instanceof ApiError ? cause : null;
      if (apiError?.status === 401) setError("The e-mail address or the password is wrong.");
      else if (apiError?.status === 404) setError("Signing in with a password is not enabled on this server.");
      else setError(apiError?.message ?? String(cause));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="mx-auto mt-12 max-w-sm rounded-xl border border-slate-200 bg-white p-6 shadow-sm">
      <h1 className="text-xl font-semibold">Sign in to Strøm</h1>
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
    </div>
  );
}
