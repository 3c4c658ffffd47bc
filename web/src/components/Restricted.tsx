// What a page shows to someone who may not use it: with authentication off (accounts, keys and
// the audit trail do not exist), or to a signed-in user who is not an admin. The navigation
// never links there; this is for typed or bookmarked addresses.

import { Link } from "react-router";
import { isAdmin, type AuthState } from "../app/auth";

/** Why `auth` may not see a page: null when it may. */
export function restriction(auth: AuthState, adminOnly: boolean): "auth-off" | "admin-only" | null {
  if (auth.phase === "off") return "auth-off";
  if (adminOnly && !isAdmin(auth)) return "admin-only";
  return null;
}

export function Restricted({ why, title }: { why: "auth-off" | "admin-only"; title: string }) {
  return (
    <div className="py-16 text-center">
      <h1 className="text-2xl font-semibold">{title}</h1>
      <p className="mt-2 text-slate-600">
        {why === "auth-off"
          ? "This server does not use authentication, so there are no accounts, API keys or audit trail."
          : "Only administrators may use this page."}
      </p>
      <Link to="/" className="mt-4 inline-block">
        Back to the dashboard
      </Link>
    </div>
  );
}
