// A button that asks before it does something that cannot be undone (revoking a key, deleting
// a user): the first click shows "Confirm" and "Keep" in its place.

import { useEffect, useRef, useState } from "react";

export function ConfirmButton({
  label,
  question,
  confirmLabel = "Confirm",
  keepLabel = "Keep",
  onConfirm,
}: {
  /** The button's text; also its accessible name. */
  label: string;
  question: string;
  confirmLabel?: string;
  keepLabel?: string;
  /** Resolves when done; a thrown error's message is shown beside the buttons. */
  onConfirm: () => Promise<void>;
}) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const confirmRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (asking) confirmRef.current?.focus();
  }, [asking]);

  if (!asking) {
    return (
      <button type="button" className="btn-secondary px-2 py-1 text-xs" onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      setAsking(false);
    } catch (cause) {
      setError(cause instanceof Error ? cause.message : String(cause));
    } finally {
      setBusy(false);
    }
  };
  return (
    <span
      role="alertdialog"
      aria-label={question}
      className="inline-flex flex-wrap items-center gap-2"
      onKeyDown={(event) => {
        if (event.key === "Escape") setAsking(false);
      }}
    >
      <span className="text-xs text-red-900">{question}</span>
      <button ref={confirmRef} type="button" className="btn-danger px-2 py-1 text-xs" disabled={busy} onClick={confirm}>
        {busy ? "Working…" : confirmLabel}
      </button>
      <button type="button" className="btn-secondary px-2 py-1 text-xs" onClick={() => setAsking(false)}>
        {keepLabel}
      </button>
      {error !== null && (
        <span role="alert" className="w-full text-xs text-red-800">
          {error}
        </span>
      )}
    </span>
  );
}
