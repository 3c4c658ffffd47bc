// The decision of a suspended approval step (WF §6.8, API §3.4): its rendered message, the
// approver's form pre-filled with the step's input, and Approve / Reject (with a reason).

import { useId, useState } from "react";
import { ApiError, post, seg } from "../../api/client";
import type { Json, Step } from "../../api/types";
import { RunForm } from "../../form/RunForm";

export function ApprovalPanel({ jobId, step, onDecided }: { jobId: string; step: Step; onDecided: () => void }) {
  const [rejecting, setRejecting] = useState(false);
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const reasonId = useId();
  const path = `/api/jobs/${seg(jobId)}/steps/${seg(step.step_name)}/approve`;

  const approve = async (input: Record<string, Json>) => {
    try {
      await post(path, { approved: true, input });
      onDecided();
    } catch (cause) {
      // Decided meanwhile (409): the refresh shows how.
      if (cause instanceof ApiError && cause.status === 409) onDecided();
      else throw cause;
    }
  };

  const reject = async () => {
    setBusy(true);
    setError(null);
    try {
      await post(path, { approved: false, rejection_reason: reason.trim() === "" ? undefined : reason.trim() });
      onDecided();
    } catch (cause) {
      if (cause instanceof ApiError && cause.status === 409) onDecided();
      else setError(cause instanceof ApiError ? cause.message : String(cause));
    } finally {
      setBusy(false);
    }
  };

  const prefill = step.input !== null && typeof step.input === "object" && !Array.isArray(step.input) ? step.input : {};
  return (
    <section
      aria-label={`Approval of ${step.step_name}`}
      data-testid={`approval-${step.step_name}`}
      className="mb-6 rounded-xl border border-violet-300 bg-violet-50 p-4 shadow-sm"
    >
      <h2 className="text-sm font-semibold text-violet-900">Step {step.step_name} waits for approval</h2>
      <p className="mt-1 text-sm break-words whitespace-pre-wrap text-slate-900" data-testid="approval-message">
        {step.approval_message}
      </p>
      <div className="mt-4">
        <RunForm
          workspace=""
          task={step.step_name}
          input={step.approval_fields ?? {}}
          previous={prefill}
          onCreated={() => undefined}
          onSubmit={approve}
          submitLabel="Approve"
          formLabel={`Approve ${step.step_name}`}
          failureTitle="The step was not approved"
        />
      </div>
      <div className="mt-4 border-t border-violet-200 pt-3">
        {!rejecting ? (
          <button type="button" className="btn-danger" onClick={() => setRejecting(true)}>
            Reject…
          </button>
        ) : (
          <div className="flex flex-wrap items-end gap-2">
            <div className="min-w-64 grow">
              <label htmlFor={reasonId} className="text-sm font-medium text-slate-800">
                Reason for rejecting
              </label>
              <input
                id={reasonId}
                type="text"
                maxLength={4096}
                value={reason}
                onChange={(event) => setReason(event.target.value)}
                className="field-input mt-1"
              />
            </div>
            <button type="button" className="btn-danger" disabled={busy} onClick={reject}>
              {busy ? "Rejecting…" : "Reject"}
            </button>
            <button type="button" className="btn-secondary" onClick={() => setRejecting(false)}>
              Keep waiting
            </button>
            {error !== null && <p className="w-full text-sm text-red-800">{error}</p>}
          </div>
        )}
      </div>
    </section>
  );
}
