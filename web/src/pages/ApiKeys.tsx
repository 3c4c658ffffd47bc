// The signed-in user's API keys (API §5.3): create one (its key is shown this once and never
// again: the server keeps only its hash), list them with when they were last used, revoke one.

import { useState, type FormEvent } from "react";
import { ApiError, del, post, seg } from "../api/client";
import type { ApiKey, ApiKeyCreated } from "../api/types";
import { useApi } from "../api/useApi";
import { useAuth } from "../app/auth";
import { ConfirmButton } from "../components/Confirm";
import { restriction, Restricted } from "../components/Restricted";
import { Card, Empty, ErrorPanel, PageHeader, Spinner, Time, useTitle } from "../components/ui";

export function ApiKeys() {
  useTitle("API keys");
  const auth = useAuth();
  const why = restriction(auth, false);
  if (why !== null) return <Restricted why={why} title="API keys" />;
  return <ApiKeysPage />;
}

function ApiKeysPage() {
  const keys = useApi<ApiKey[]>("/api/auth/api-keys");
  const [created, setCreated] = useState<ApiKeyCreated | null>(null);

  return (
    <>
      <PageHeader
        title="API keys"
        subtitle="For scripts, CI and the command line (stroem login --api-key). A key acts as you, with your current permissions."
      />
      <div className="space-y-6">
        {created !== null && <NewKey created={created} onDone={() => setCreated(null)} />}
        <CreateKey
          onCreated={(key) => {
            setCreated(key);
            keys.reload();
          }}
        />
        <Card title="Your keys">
          {keys.loading ? (
            <Spinner />
          ) : keys.data === undefined ? (
            keys.error && <ErrorPanel error={keys.error} onRetry={keys.reload} what="API keys" />
          ) : keys.data.length === 0 ? (
            <Empty>You have no API keys.</Empty>
          ) : (
            <div className="overflow-x-auto">
              <table className="table-base" aria-label="API keys">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Prefix</th>
                    <th scope="col">Created</th>
                    <th scope="col">Expires</th>
                    <th scope="col">Last used</th>
                    <th scope="col">
                      <span className="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {keys.data.map((key) => (
                    <tr key={key.prefix} data-key-prefix={key.prefix}>
                      <td className="font-medium">{key.name}</td>
                      <td>
                        <code className="font-mono text-xs">{key.prefix}…</code>
                      </td>
                      <td>
                        <Time at={key.created_at} />
                      </td>
                      <td>{key.expires_at === null ? "never" : <Time at={key.expires_at} />}</td>
                      <td>{key.last_used_at === null ? "never" : <Time at={key.last_used_at} />}</td>
                      <td className="text-right">
                        <ConfirmButton
                          label={`Revoke ${key.name}`}
                          question={`Revoke ${key.name}?`}
                          confirmLabel="Revoke"
                          onConfirm={async () => {
                            await del(`/api/auth/api-keys/${seg(key.prefix)}`);
                            keys.reload();
                          }}
                        />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Card>
      </div>
    </>
  );
}

function CreateKey({ onCreated }: { onCreated: (key: ApiKeyCreated) => void }) {
  const [name, setName] = useState("");
  const [days, setDays] = useState("90");
  const [error, setError] = useState<{ field: "name" | "days" | null; message: string } | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    const trimmed = name.trim();
    if (trimmed === "") {
      setError({ field: "name", message: "Give the key a name, such as the machine or job that uses it." });
      return;
    }
    let expires: number | undefined;
    if (days.trim() !== "") {
      expires = Number(days);
      if (!Number.isInteger(expires) || expires < 1) {
        setError({
          field: "days",
          message: "Days must be a whole number of at least 1, or empty for a key that never expires.",
        });
        return;
      }
    }
    setBusy(true);
    try {
      const created = await post<ApiKeyCreated>(
        "/api/auth/api-keys",
        expires === undefined ? { name: trimmed } : { name: trimmed, expires_in_days: expires },
      );
      setName("");
      onCreated(created);
    } catch (cause) {
      const apiError = cause instanceof ApiError ? cause : null;
      if (apiError?.status === 409) setError({ field: "name", message: `You already have a key named ${trimmed}.` });
      else if (apiError?.body?.field === "expires_in_days") setError({ field: "days", message: apiError.message });
      else if (apiError?.body?.field === "name") setError({ field: "name", message: apiError.message });
      else setError({ field: null, message: apiError?.message ?? String(cause) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card title="Create a key">
      <form
        onSubmit={submit}
        aria-label="Create an API key"
        className="grid gap-3 sm:grid-cols-[2fr_1fr_auto] sm:items-end"
      >
        <div>
          <label htmlFor="key-name" className="mb-1 block text-sm font-medium">
            Name
          </label>
          <input
            id="key-name"
            type="text"
            value={name}
            maxLength={100}
            placeholder="ci-deploy"
            onChange={(event) => setName(event.target.value)}
            aria-invalid={error?.field === "name"}
            aria-describedby={error?.field === "name" ? "key-error" : undefined}
            className="field-input"
          />
        </div>
        <div>
          <label htmlFor="key-days" className="mb-1 block text-sm font-medium">
            Expires after (days)
          </label>
          <input
            id="key-days"
            type="text"
            inputMode="numeric"
            value={days}
            placeholder="never"
            onChange={(event) => setDays(event.target.value)}
            aria-invalid={error?.field === "days"}
            aria-describedby={error?.field === "days" ? "key-error" : undefined}
            className="field-input"
          />
        </div>
        <button type="submit" className="btn-primary" disabled={busy}>
          {busy ? "Creating…" : "Create key"}
        </button>
        {error !== null && (
          <p id="key-error" role="alert" className="text-sm text-red-700 sm:col-span-3">
            {error.message}
          </p>
        )}
      </form>
    </Card>
  );
}

function NewKey({ created, onDone }: { created: ApiKeyCreated; onDone: () => void }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(created.key);
      setCopied(true);
    } catch {
      // No clipboard (plain http): the field is selected for the user to copy.
      document.getElementById("new-key")?.focus();
    }
  };
  return (
    <section
      aria-labelledby="new-key-title"
      className="rounded-xl border border-emerald-300 bg-emerald-50 p-4 text-sm text-emerald-950 shadow-sm"
    >
      <h2 id="new-key-title" className="font-semibold">
        New key {created.name}
      </h2>
      <p className="mt-1">Copy it now: this is the only time it is shown. Strøm keeps only its hash.</p>
      <div className="mt-3 flex flex-wrap items-center gap-2">
        <input
          id="new-key"
          aria-label="New API key"
          readOnly
          value={created.key}
          onFocus={(event) => event.currentTarget.select()}
          className="field-input max-w-md font-mono"
        />
        <button type="button" className="btn-secondary" onClick={() => void copy()}>
          {copied ? "Copied" : "Copy"}
        </button>
        <button type="button" className="btn-secondary" onClick={onDone}>
          Done
        </button>
      </div>
    </section>
  );
}
