// Users and groups (API §5.5), for admins: every account with its groups, admin flag and
// sign-in methods; creating an account; changing groups, the admin flag or the password;
// deleting an account. Groups exist while they have members, so they are edited on the users.

import { useState, type FormEvent } from "react";
import { useSearchParams } from "react-router";
import { ApiError, del, post, put, seg } from "../api/client";
import type { User } from "../api/types";
import { useApi } from "../api/useApi";
import { useAuth } from "../app/auth";
import { ConfirmButton } from "../components/Confirm";
import { restriction, Restricted } from "../components/Restricted";
import { Card, Empty, ErrorPanel, PageHeader, Spinner, StaleBanner, Time, useTitle } from "../components/ui";

export const USERS_PAGE_SIZE = 25;
const GROUP = /^[A-Za-z0-9_-]{1,64}$/;

/** `ops, finance  dev` → `["ops", "finance", "dev"]`, or the first name that is not valid. */
export function parseGroups(text: string): { groups: string[] } | { invalid: string } {
  const groups: string[] = [];
  for (const name of text.split(/[\s,]+/).filter((item) => item !== "")) {
    if (!GROUP.test(name)) return { invalid: name };
    if (!groups.includes(name)) groups.push(name);
  }
  return { groups };
}

function message(cause: unknown): string {
  return cause instanceof ApiError || cause instanceof Error ? cause.message : String(cause);
}

export function Users() {
  useTitle("Users");
  const auth = useAuth();
  const why = restriction(auth, true);
  if (why !== null) return <Restricted why={why} title="Users" />;
  return <UsersPage me={auth.user?.user_id ?? ""} />;
}

function UsersPage({ me }: { me: string }) {
  const [params, setParams] = useSearchParams();
  const page = Math.max(1, Number.parseInt(params.get("page") ?? "1", 10) || 1);
  const users = useApi<User[]>(`/api/users?limit=${USERS_PAGE_SIZE}&offset=${(page - 1) * USERS_PAGE_SIZE}`, {
    keepPrevious: true,
  });
  const groups = useApi<string[]>("/api/groups");
  const reload = () => {
    users.reload();
    groups.reload();
  };
  const total = users.total;
  const pages = total === null ? page : Math.max(1, Math.ceil(total / USERS_PAGE_SIZE));

  return (
    <>
      <PageHeader
        title="Users"
        subtitle={total === null ? undefined : `${total.toLocaleString()} ${total === 1 ? "account" : "accounts"}`}
      />
      <div className="space-y-6">
        <CreateUser onCreated={reload} />
        <StaleBanner error={users.data !== undefined ? users.error : undefined} />
        <Card title="Accounts">
          {users.loading ? (
            <Spinner />
          ) : users.data === undefined ? (
            users.error && <ErrorPanel error={users.error} onRetry={users.reload} what="Users" />
          ) : users.data.length === 0 ? (
            <Empty>No accounts.</Empty>
          ) : (
            <div className="overflow-x-auto">
              <table className="table-base" aria-label="Users">
                <thead>
                  <tr>
                    <th scope="col">User</th>
                    <th scope="col">Groups</th>
                    <th scope="col">Sign-in</th>
                    <th scope="col">Last sign-in</th>
                    <th scope="col">
                      <span className="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {users.data.map((user) => (
                    <UserRow key={user.user_id} user={user} self={user.user_id === me} onChange={reload} />
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Card>
        {pages > 1 && (
          <nav aria-label="Pages" className="flex items-center justify-between text-sm">
            <button
              type="button"
              className="btn-secondary"
              disabled={page <= 1}
              onClick={() => setParams({ page: String(page - 1) })}
            >
              ← Newer
            </button>
            <span className="text-slate-600">
              Page {page} of {pages}
            </span>
            <button
              type="button"
              className="btn-secondary"
              disabled={page >= pages}
              onClick={() => setParams({ page: String(page + 1) })}
            >
              Older →
            </button>
          </nav>
        )}
        <Card title="Groups">
          {groups.data === undefined ? (
            groups.error ? (
              <ErrorPanel error={groups.error} onRetry={groups.reload} what="Groups" />
            ) : (
              <Spinner />
            )
          ) : groups.data.length === 0 ? (
            <Empty>No groups yet: give a user a group and it exists.</Empty>
          ) : (
            <ul aria-label="Groups" className="flex flex-wrap gap-2">
              {groups.data.map((group) => (
                <li key={group} className="rounded-full bg-slate-100 px-3 py-1 text-xs font-medium text-slate-700">
                  {group}
                </li>
              ))}
            </ul>
          )}
          <p className="mt-3 text-xs text-slate-500">
            Groups decide what the access rules (auth.acl in stroem.yaml) let their members see and run.
          </p>
        </Card>
      </div>
    </>
  );
}

function UserRow({ user, self, onChange }: { user: User; self: boolean; onChange: () => void }) {
  const [editing, setEditing] = useState<null | "groups" | "password">(null);
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const act = async (work: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
      setEditing(null);
      onChange();
    } catch (cause) {
      setError(message(cause));
    } finally {
      setBusy(false);
    }
  };

  const save = (event: FormEvent) => {
    event.preventDefault();
    if (editing === "groups") {
      const parsed = parseGroups(value);
      if ("invalid" in parsed) {
        setError(`'${parsed.invalid}' is not a group name: use letters, digits, - and _ (at most 64).`);
        return;
      }
      void act(() => put(`/api/users/${seg(user.user_id)}/groups`, { groups: parsed.groups }));
    } else if (editing === "password") {
      if (value.length < 12) {
        setError("A password needs at least 12 characters.");
        return;
      }
      void act(() => put(`/api/users/${seg(user.user_id)}/password`, { password: value }));
    }
  };

  return (
    <tr data-user={user.email}>
      <td>
        <div className="font-medium break-all">{user.email}</div>
        {user.name !== null && <div className="text-xs text-slate-500">{user.name}</div>}
        {user.is_admin && (
          <span className="mt-1 inline-block rounded bg-cyan-50 px-1 text-xs text-cyan-800">admin</span>
        )}
        {self && <span className="mt-1 ml-1 inline-block rounded bg-slate-100 px-1 text-xs text-slate-600">you</span>}
      </td>
      <td>{user.groups.length === 0 ? <span className="text-slate-400">—</span> : user.groups.join(", ")}</td>
      <td className="text-xs">{user.auth_methods.length === 0 ? "—" : user.auth_methods.join(", ")}</td>
      <td>
        <Time at={user.last_login_at} />
      </td>
      <td className="min-w-64">
        {editing === null ? (
          <div className="flex flex-wrap justify-end gap-1">
            <button
              type="button"
              className="btn-secondary px-2 py-1 text-xs"
              onClick={() => {
                setValue(user.groups.join(", "));
                setError(null);
                setEditing("groups");
              }}
            >
              Groups
            </button>
            <button
              type="button"
              className="btn-secondary px-2 py-1 text-xs"
              disabled={busy || (self && user.is_admin)}
              title={self && user.is_admin ? "You cannot remove your own admin flag" : undefined}
              onClick={() => void act(() => put(`/api/users/${seg(user.user_id)}/admin`, { is_admin: !user.is_admin }))}
            >
              {user.is_admin ? "Remove admin" : "Make admin"}
            </button>
            <button
              type="button"
              className="btn-secondary px-2 py-1 text-xs"
              onClick={() => {
                setValue("");
                setError(null);
                setEditing("password");
              }}
            >
              Set password
            </button>
            {!self && (
              <ConfirmButton
                label="Delete"
                question={`Delete ${user.email}?`}
                confirmLabel="Delete"
                onConfirm={async () => {
                  await del(`/api/users/${seg(user.user_id)}`);
                  onChange();
                }}
              />
            )}
          </div>
        ) : (
          <form
            onSubmit={save}
            className="flex flex-wrap items-center justify-end gap-1"
            aria-label={`Edit ${user.email}`}
          >
            <label className="sr-only" htmlFor={`edit-${user.user_id}`}>
              {editing === "groups" ? `Groups of ${user.email}` : `New password of ${user.email}`}
            </label>
            <input
              id={`edit-${user.user_id}`}
              type={editing === "password" ? "password" : "text"}
              autoComplete={editing === "password" ? "new-password" : "off"}
              value={value}
              placeholder={editing === "groups" ? "ops, finance" : "at least 12 characters"}
              onChange={(event) => setValue(event.target.value)}
              className="field-input w-48"
            />
            <button type="submit" className="btn-primary px-2 py-1 text-xs" disabled={busy}>
              Save
            </button>
            <button type="button" className="btn-secondary px-2 py-1 text-xs" onClick={() => setEditing(null)}>
              Cancel
            </button>
          </form>
        )}
        {error !== null && (
          <p role="alert" className="mt-1 text-right text-xs text-red-700">
            {error}
          </p>
        )}
      </td>
    </tr>
  );
}

function CreateUser({ onCreated }: { onCreated: () => void }) {
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [groups, setGroups] = useState("");
  const [admin, setAdmin] = useState(false);
  const [error, setError] = useState<{ field: string | null; message: string } | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setDone(null);
    const parsed = parseGroups(groups);
    if ("invalid" in parsed) {
      setError({ field: "groups", message: `'${parsed.invalid}' is not a group name: use letters, digits, - and _.` });
      return;
    }
    if (password !== "" && password.length < 12) {
      setError({ field: "password", message: "A password needs at least 12 characters (or none: OIDC sign-in only)." });
      return;
    }
    setBusy(true);
    try {
      const body: Record<string, unknown> = { email: email.trim(), is_admin: admin, groups: parsed.groups };
      if (name.trim() !== "") body.name = name.trim();
      if (password !== "") body.password = password;
      const user = await post<User>("/api/users", body);
      setDone(`${user.email} was created.`);
      setEmail("");
      setName("");
      setPassword("");
      setGroups("");
      setAdmin(false);
      onCreated();
    } catch (cause) {
      const apiError = cause instanceof ApiError ? cause : null;
      if (apiError?.status === 409)
        setError({ field: "email", message: "An account with this e-mail already exists." });
      else setError({ field: apiError?.body?.field ?? null, message: message(cause) });
    } finally {
      setBusy(false);
    }
  };

  const invalid = (field: string) => error?.field === field;
  return (
    <Card title="Create an account">
      <form onSubmit={submit} aria-label="Create an account" className="grid gap-3 sm:grid-cols-2 lg:grid-cols-4">
        <div>
          <label htmlFor="user-email" className="mb-1 block text-sm font-medium">
            E-mail
          </label>
          <input
            id="user-email"
            type="email"
            required
            value={email}
            onChange={(event) => setEmail(event.target.value)}
            aria-invalid={invalid("email")}
            className="field-input"
          />
        </div>
        <div>
          <label htmlFor="user-name" className="mb-1 block text-sm font-medium">
            Name
          </label>
          <input
            id="user-name"
            type="text"
            value={name}
            onChange={(event) => setName(event.target.value)}
            className="field-input"
          />
        </div>
        <div>
          <label htmlFor="user-password" className="mb-1 block text-sm font-medium">
            Password
          </label>
          <input
            id="user-password"
            type="password"
            autoComplete="new-password"
            value={password}
            placeholder="empty: OIDC sign-in only"
            onChange={(event) => setPassword(event.target.value)}
            aria-invalid={invalid("password")}
            className="field-input"
          />
        </div>
        <div>
          <label htmlFor="user-groups" className="mb-1 block text-sm font-medium">
            Groups
          </label>
          <input
            id="user-groups"
            type="text"
            value={groups}
            placeholder="ops, finance"
            onChange={(event) => setGroups(event.target.value)}
            aria-invalid={invalid("groups")}
            className="field-input"
          />
        </div>
        <label className="flex items-center gap-2 text-sm sm:col-span-2 lg:col-span-3">
          <input type="checkbox" checked={admin} onChange={(event) => setAdmin(event.target.checked)} />
          Administrator (manages users, sees the audit trail, bypasses access rules)
        </label>
        <button type="submit" className="btn-primary" disabled={busy}>
          {busy ? "Creating…" : "Create account"}
        </button>
        {error !== null && (
          <p role="alert" className="text-sm text-red-700 sm:col-span-2 lg:col-span-4">
            {error.message}
          </p>
        )}
        {done !== null && (
          <p role="status" className="text-sm text-emerald-800 sm:col-span-2 lg:col-span-4">
            {done}
          </p>
        )}
      </form>
    </Card>
  );
}
