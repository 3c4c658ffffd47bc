import { NavLink, Outlet } from "react-router";

const NAV = [
  { to: "/", label: "Dashboard", end: true },
  { to: "/jobs", label: "Jobs", end: false },
  { to: "/tasks", label: "Tasks", end: false },
  { to: "/workspaces", label: "Workspaces", end: false },
  { to: "/workers", label: "Workers", end: false },
];

export function Layout() {
  return (
    <div className="min-h-screen">
      <header className="border-b border-slate-200 bg-white">
        <nav aria-label="Main" className="mx-auto flex max-w-7xl items-center gap-4 px-4 py-3">
          <span className="font-semibold text-cyan-800">Strøm</span>
          {NAV.map((item) => (
            <NavLink key={item.to} to={item.to} end={item.end}>
              {item.label}
            </NavLink>
          ))}
        </nav>
      </header>
      <main className="mx-auto max-w-7xl px-4 py-6">
        <Outlet />
      </main>
    </div>
  );
}
