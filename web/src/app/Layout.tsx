// The frame of every page: a header with the main navigation (a menu button on small
// screens), the server version from /api/config, and a skip link for keyboard users.

import { useEffect, useState } from "react";
import { Link, NavLink, Outlet, useLocation, useNavigate } from "react-router";
import { ErrorBoundary } from "../components/ErrorBoundary";
import { ErrorPanel, Spinner } from "../components/ui";
import { isAdmin, useAuth } from "./auth";
import { UserMenu } from "./UserMenu";

const NAV = [
  { to: "/", label: "Dashboard", end: true },
  { to: "/jobs", label: "Jobs", end: false },
  { to: "/tasks", label: "Tasks", end: false },
  { to: "/workspaces", label: "Workspaces", end: false },
  { to: "/workers", label: "Workers", end: false },
];

/** Pages for admins only: the others never see them. */
const ADMIN_NAV = [
  { to: "/users", label: "Users", end: false },
  { to: "/audit", label: "Audit", end: false },
];

/** A task's page lives under /workspaces/… but belongs to "Tasks" in the navigation. */
const TASK_PAGE = /^\/workspaces\/[^/]+\/tasks\//;

function navClass(to: string, pathname: string) {
  return ({ isActive }: { isActive: boolean }): string => {
    const onTaskPage = TASK_PAGE.test(pathname);
    const active = (isActive && !(to === "/workspaces" && onTaskPage)) || (to === "/tasks" && onTaskPage);
    return `block rounded-md px-3 py-2 text-sm font-medium hover:no-underline ${active ? "bg-cyan-50 text-cyan-900" : "text-slate-700 hover:bg-slate-100"}`;
  };
}

/** The sign-in page's address that returns to `location` afterwards. */
export function loginPath(location: { pathname: string; search: string }): string {
  const next = `${location.pathname}${location.search}`;
  return next === "/" ? "/login" : `/login?next=${encodeURIComponent(next)}`;
}

export function Layout() {
  const [open, setOpen] = useState(false);
  const location = useLocation();
  const auth = useAuth();
  const navigate = useNavigate();
  // Following a link closes the phone menu.
  useEffect(() => setOpen(false), [location.pathname]);

  // A server with authentication: without a session, or when it ends (here, in another tab, or
  // because the refresh cookie stopped working), the user signs in and comes back here.
  const signedOut = auth.phase === "signed-out";
  useEffect(() => {
    if (signedOut) navigate(loginPath(location), { replace: true });
  }, [signedOut]);

  const nav = isAdmin(auth) ? [...NAV, ...ADMIN_NAV] : NAV;
  const ready = auth.phase === "off" || auth.phase === "signed-in";

  return (
    <div className="min-h-screen">
      <a
        href="#main"
        className="sr-only focus:not-sr-only focus:absolute focus:top-2 focus:left-2 focus:z-50 focus:rounded focus:bg-white focus:px-3 focus:py-2"
      >
        Skip to content
      </a>
      <header className="sticky top-0 z-30 border-b border-slate-200 bg-white/95 backdrop-blur">
        <div className="mx-auto flex max-w-7xl items-center gap-4 px-4 py-2">
          <Link to="/" className="flex items-center gap-2 font-semibold text-cyan-800 hover:no-underline">
            <svg aria-hidden="true" viewBox="0 0 32 32" className="size-7">
              <rect width="32" height="32" rx="7" fill="#0e7490" />
              <path d="M6 20c4-6 8 6 12 0s6-6 8-2" stroke="white" strokeWidth="3" fill="none" strokeLinecap="round" />
            </svg>
            Strøm
          </Link>
          <nav aria-label="Main" className="hidden md:block">
            <ul className="flex gap-1">
              {nav.map((item) => (
                <li key={item.to}>
                  <NavLink to={item.to} end={item.end} className={navClass(item.to, location.pathname)}>
                    {item.label}
                  </NavLink>
                </li>
              ))}
            </ul>
          </nav>
          <div className="ml-auto flex items-center gap-2">
            <span className="hidden text-xs text-slate-400 sm:inline">
              {auth.config !== undefined ? `v${auth.config.version}` : ""}
            </span>
            {auth.phase === "signed-in" && auth.user !== null && <UserMenu user={auth.user} />}
            <button
              type="button"
              className="rounded-md p-2 text-slate-700 hover:bg-slate-100 md:hidden"
              aria-expanded={open}
              aria-controls="mobile-nav"
              onClick={() => setOpen((value) => !value)}
            >
              <span className="sr-only">{open ? "Close menu" : "Open menu"}</span>
              <svg
                aria-hidden="true"
                viewBox="0 0 24 24"
                className="size-6"
                fill="none"
                stroke="currentColor"
                strokeWidth="2"
              >
                {open ? <path d="M6 6l12 12M18 6L6 18" /> : <path d="M4 7h16M4 12h16M4 17h16" />}
              </svg>
            </button>
          </div>
        </div>
        {open && (
          <nav id="mobile-nav" aria-label="Main" className="border-t border-slate-100 px-4 py-2 md:hidden">
            <ul>
              {nav.map((item) => (
                <li key={item.to}>
                  <NavLink to={item.to} end={item.end} className={navClass(item.to, location.pathname)}>
                    {item.label}
                  </NavLink>
                </li>
              ))}
            </ul>
          </nav>
        )}
      </header>
      <main id="main" className="mx-auto max-w-7xl px-4 py-6">
        {ready ? (
          <ErrorBoundary what="this page" resetKey={location.pathname}>
            <Outlet />
          </ErrorBoundary>
        ) : auth.phase === "error" && auth.error !== undefined ? (
          <ErrorPanel error={auth.error} onRetry={auth.retry} what="Strøm" />
        ) : (
          <Spinner label={auth.phase === "checking" ? "Checking your session…" : "Loading…"} />
        )}
      </main>
    </div>
  );
}
