// The signed-in user's menu in the header: who is signed in, their API keys, signing out.
// A disclosure (a button that shows a list of links), closed by Escape, a click elsewhere or
// following one of its links.

import { useEffect, useRef, useState } from "react";
import { Link, useLocation, useNavigate } from "react-router";
import type { User } from "../api/types";
import { useAuth } from "./auth";

export function UserMenu({ user }: { user: User }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const auth = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const root = useRef<HTMLDivElement>(null);

  useEffect(() => setOpen(false), [location.pathname]);
  useEffect(() => {
    if (!open) return;
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") setOpen(false);
    };
    const onClick = (event: MouseEvent) => {
      if (root.current !== null && !root.current.contains(event.target as Node)) setOpen(false);
    };
    document.addEventListener("keydown", onKey);
    document.addEventListener("mousedown", onClick);
    return () => {
      document.removeEventListener("keydown", onKey);
      document.removeEventListener("mousedown", onClick);
    };
  }, [open]);

  const signOut = async () => {
    setBusy(true);
    await auth.signOut();
    navigate("/login", { replace: true });
  };

  const label = user.name ?? user.email;
  return (
    <div ref={root} className="relative">
      <button
        type="button"
        className="flex items-center gap-2 rounded-md px-2 py-1.5 text-sm text-slate-700 hover:bg-slate-100"
        aria-expanded={open}
        aria-controls="user-menu"
        onClick={() => setOpen((value) => !value)}
      >
        <span
          aria-hidden="true"
          className="flex size-7 items-center justify-center rounded-full bg-cyan-700 text-xs font-semibold text-white uppercase"
        >
          {label.slice(0, 1)}
        </span>
        <span className="sr-only">Account menu of </span>
        <span className="hidden max-w-48 truncate sm:inline">{user.email}</span>
      </button>
      {open && (
        <div
          id="user-menu"
          className="absolute right-0 z-40 mt-1 w-72 rounded-lg border border-slate-200 bg-white p-2 text-sm shadow-lg"
        >
          <p className="px-2 py-1 text-slate-500">
            Signed in as
            {user.is_admin && <span className="ml-1 rounded bg-cyan-50 px-1 text-xs text-cyan-800">admin</span>}
            <span className="block font-medium break-all text-slate-900">{user.email}</span>
          </p>
          <ul className="mt-1 border-t border-slate-100 pt-1">
            <li>
              <Link
                to="/api-keys"
                className="block rounded-md px-2 py-1.5 text-slate-700 hover:bg-slate-100 hover:no-underline"
              >
                API keys
              </Link>
            </li>
            <li>
              <button
                type="button"
                className="block w-full rounded-md px-2 py-1.5 text-left text-slate-700 hover:bg-slate-100"
                onClick={() => void signOut()}
                disabled={busy}
              >
                {busy ? "Signing out…" : "Sign out"}
              </button>
            </li>
          </ul>
        </div>
      )}
    </div>
  );
}
