// The run form of a task: one control per input field (see ./schema), client-side checks on
// submit, then `POST …/execute`. Server-side 400 details land on their fields; on success the
// caller gets the new job's id.

import { useId, useMemo, useRef, useState, type FormEvent, type ReactNode } from "react";
import { ApiError, post, seg } from "../api/client";
import type { InputFieldDef, Json } from "../api/types";
import {
  MASK,
  buildFields,
  initialValues,
  serverFieldErrors,
  validateForm,
  type FormField,
  type MultiValue,
  type RawValue,
} from "./schema";

export interface RunFormProps {
  workspace: string;
  task: string;
  input: Record<string, InputFieldDef> | null | undefined;
  /** The input of an earlier job to start from ("Run again"). */
  previous?: Record<string, Json> | null;
  onCreated: (jobId: string) => void;
  /**
   * Sends the checked input instead of `POST …/execute` (the approval form); a thrown
   * `ApiError` is mapped onto the fields like the execute route's.
   */
  onSubmit?: (input: Record<string, Json>) => Promise<void>;
  submitLabel?: string;
  formLabel?: string;
  failureTitle?: string;
  /**
   * A re-run of this job (API §3.3 `source_job_id`): secret fields left empty whose earlier
   * value was masked are sent as `••••••`, which the server replaces with that job's value.
   */
  sourceJobId?: string;
}

export function RunForm({
  workspace,
  task,
  input,
  previous,
  onCreated,
  onSubmit,
  submitLabel = "Run",
  formLabel,
  failureTitle = "The job was not created",
  sourceJobId,
}: RunFormProps) {
  const fields = useMemo(() => buildFields(input), [input]);
  const [values, setValues] = useState<Record<string, RawValue>>(() => initialValues(fields, input, previous));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formErrors, setFormErrors] = useState<string[]>([]);
  const [submitting, setSubmitting] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);
  const idPrefix = useId();

  const setValue = (key: string, value: RawValue) => {
    setValues((previous) => ({ ...previous, [key]: value }));
    // Editing a field clears its error: the next submit checks it again.
    setErrors((previous) => {
      if (previous[key] === undefined) return previous;
      const next = { ...previous };
      delete next[key];
      return next;
    });
  };

  const focusFirstError = (failed: Record<string, string>) => {
    const first = fields.find((field) => failed[field.key] !== undefined);
    if (first === undefined) return;
    // Wait for React to render the error state before moving focus.
    requestAnimationFrame(() => {
      const element = formRef.current?.querySelector<HTMLElement>(`[data-field="${CSS.escape(first.key)}"]`);
      element?.focus();
    });
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (submitting) return;
    const result = validateForm(fields, values);
    if (sourceJobId !== undefined) {
      for (const field of fields) {
        const reused = field.secret && values[field.key] === "" && previous?.[field.key] === MASK;
        if (reused) {
          result.input[field.key] = MASK;
          delete result.errors[field.key];
        }
      }
    }
    setErrors(result.errors);
    setFormErrors([]);
    if (Object.keys(result.errors).length > 0) {
      focusFirstError(result.errors);
      return;
    }
    setSubmitting(true);
    try {
      if (onSubmit !== undefined) {
        await onSubmit(result.input);
      } else {
        const reply = await post<{ job_id: string; status: string }>(
          `/api/workspaces/${seg(workspace)}/tasks/${seg(task)}/execute`,
          sourceJobId === undefined ? { input: result.input } : { input: result.input, source_job_id: sourceJobId },
        );
        onCreated(reply.job_id);
      }
    } catch (cause) {
      const error = cause instanceof ApiError ? cause : new ApiError(0, null, String(cause));
      const mapped = serverFieldErrors(error.body, fields, error.message);
      setErrors(mapped.fieldErrors);
      setFormErrors(mapped.formErrors);
      focusFirstError(mapped.fieldErrors);
    } finally {
      setSubmitting(false);
    }
  };

  return (
    <form ref={formRef} noValidate onSubmit={submit} aria-label={formLabel ?? `Run ${task}`} className="space-y-5">
      {fields.length === 0 && onSubmit === undefined && (
        <p className="text-sm text-slate-600">This task takes no input.</p>
      )}
      {fields.map((field) => (
        <FieldControl
          key={field.key}
          id={`${idPrefix}-${field.key}`}
          field={field}
          value={values[field.key] ?? ""}
          error={errors[field.key]}
          onChange={(value) => setValue(field.key, value)}
        />
      ))}
      {formErrors.length > 0 && (
        <div role="alert" className="rounded-md border border-red-200 bg-red-50 p-3 text-sm text-red-900">
          <p className="font-semibold">{failureTitle}</p>
          <ul className="mt-1 list-disc pl-5">
            {formErrors.map((message) => (
              <li key={message}>{message}</li>
            ))}
          </ul>
        </div>
      )}
      <div className="flex items-center gap-3">
        <button type="submit" className="btn-primary" disabled={submitting}>
          {submitting ? (onSubmit === undefined ? "Starting…" : "Sending…") : submitLabel}
        </button>
        {Object.keys(errors).length > 0 && (
          <p className="text-sm text-red-700">
            {Object.keys(errors).length === 1
              ? "One field needs attention."
              : `${Object.keys(errors).length} fields need attention.`}
          </p>
        )}
      </div>
    </form>
  );
}

interface FieldControlProps {
  id: string;
  field: FormField;
  value: RawValue;
  error: string | undefined;
  onChange: (value: RawValue) => void;
}

function FieldControl({ id, field, value, error, onChange }: FieldControlProps) {
  const helpId = `${id}-help`;
  const errorId = `${id}-error`;
  const describedBy = [field.description !== null ? helpId : null, error !== undefined ? errorId : null]
    .filter((part) => part !== null)
    .join(" ");
  const common = {
    id,
    "data-field": field.key,
    "aria-invalid": error !== undefined ? true : undefined,
    "aria-describedby": describedBy === "" ? undefined : describedBy,
    required: field.required || undefined,
  };
  const text = typeof value === "string" ? value : "";
  const placeholder = field.defaultHint ?? undefined;

  let control: ReactNode;
  switch (field.control) {
    case "checkbox":
      return (
        <Wrapper field={field} helpId={helpId} errorId={errorId} error={error}>
          <div className="flex items-center gap-2">
            <input
              {...common}
              type="checkbox"
              checked={value === true}
              onChange={(event) => onChange(event.target.checked)}
              className="size-4 rounded border-slate-300 text-cyan-700 focus:ring-cyan-600"
            />
            <FieldLabel field={field} htmlFor={id} />
          </div>
        </Wrapper>
      );
    case "checkboxes":
      return <CheckboxGroup id={id} field={field} value={value} error={error} onChange={onChange} />;
    case "tristate":
      control = (
        <select {...common} value={text} onChange={(event) => onChange(event.target.value)} className="field-input">
          <option value="">(not set)</option>
          <option value="true">true</option>
          <option value="false">false</option>
        </select>
      );
      break;
    case "select":
      control = (
        <select {...common} value={text} onChange={(event) => onChange(event.target.value)} className="field-input">
          {(!field.required || text === "") && <option value="">{field.required ? "Choose…" : "(not set)"}</option>}
          {(field.options ?? []).map((option) => (
            <option key={option} value={option}>
              {option}
            </option>
          ))}
        </select>
      );
      break;
    case "combo":
      control = (
        <>
          <input
            {...common}
            type="text"
            list={`${id}-options`}
            value={text}
            placeholder={placeholder}
            onChange={(event) => onChange(event.target.value)}
            className="field-input"
          />
          <datalist id={`${id}-options`}>
            {(field.options ?? []).map((option) => (
              <option key={option} value={option} />
            ))}
          </datalist>
        </>
      );
      break;
    case "textarea":
      control = (
        <textarea
          {...common}
          rows={4}
          value={text}
          placeholder={placeholder}
          onChange={(event) => onChange(event.target.value)}
          className="field-input font-mono"
        />
      );
      break;
    case "json":
      control = (
        <textarea
          {...common}
          rows={3}
          spellCheck={false}
          value={text}
          placeholder={placeholder ?? (field.jsonType === "array" ? '["a", "b"]' : '{"key": "value"}')}
          onChange={(event) => onChange(event.target.value)}
          className="field-input font-mono"
        />
      );
      break;
    case "password":
      control = <SecretInput common={common} value={text} placeholder={placeholder} onChange={onChange} />;
      break;
    default: {
      const inputType = field.control === "date" ? "date" : "text";
      const inputMode = field.control === "integer" ? "numeric" : field.control === "number" ? "decimal" : undefined;
      control = (
        <input
          {...common}
          type={inputType}
          inputMode={inputMode}
          autoComplete="off"
          value={text}
          placeholder={placeholder ?? (field.control === "datetime" ? "2024-05-01T12:00:00Z" : undefined)}
          onChange={(event) => onChange(event.target.value)}
          className="field-input"
        />
      );
    }
  }
  return (
    <Wrapper field={field} helpId={helpId} errorId={errorId} error={error}>
      <FieldLabel field={field} htmlFor={id} />
      <div className="mt-1">{control}</div>
    </Wrapper>
  );
}

function FieldLabel({ field, htmlFor }: { field: FormField; htmlFor: string }) {
  return (
    <span className="flex items-baseline gap-1.5 text-sm">
      <label htmlFor={htmlFor} className="font-medium text-slate-800">
        {field.label}
      </label>
      {field.required && (
        <span aria-hidden="true" className="font-semibold text-red-600" title="required">
          *
        </span>
      )}
      <span className="text-xs text-slate-400">
        {field.multiple ? `list of ${field.type}` : field.type}
        {field.secret ? " · secret" : ""}
      </span>
    </span>
  );
}

function Wrapper({
  field,
  helpId,
  errorId,
  error,
  children,
}: {
  field: FormField;
  helpId: string;
  errorId: string;
  error: string | undefined;
  children: ReactNode;
}) {
  return (
    <div data-testid={`field-${field.key}`}>
      {children}
      {field.description !== null && (
        <p id={helpId} className="mt-1 text-xs text-slate-500">
          {field.description}
        </p>
      )}
      {error !== undefined && (
        <p id={errorId} className="mt-1 text-sm text-red-700">
          {error}
        </p>
      )}
    </div>
  );
}

function SecretInput({
  common,
  value,
  placeholder,
  onChange,
}: {
  common: Record<string, unknown>;
  value: string;
  placeholder: string | undefined;
  onChange: (value: RawValue) => void;
}) {
  const [shown, setShown] = useState(false);
  return (
    <div className="flex gap-2">
      <input
        {...common}
        type={shown ? "text" : "password"}
        autoComplete="new-password"
        value={value}
        placeholder={placeholder}
        onChange={(event) => onChange(event.target.value)}
        className="field-input"
      />
      <button
        type="button"
        className="btn-secondary shrink-0"
        aria-pressed={shown}
        // The field's name stays out of this label so "find the field by its label" finds one element.
        aria-label={shown ? "Hide secret value" : "Show secret value"}
        aria-controls={String(common.id)}
        onClick={() => setShown((previous) => !previous)}
      >
        {shown ? "Hide" : "Show"}
      </button>
    </div>
  );
}

function CheckboxGroup({
  id,
  field,
  value,
  error,
  onChange,
}: {
  id: string;
  field: FormField;
  value: RawValue;
  error: string | undefined;
  onChange: (value: RawValue) => void;
}) {
  const multi: MultiValue = typeof value === "object" ? value : { selected: [], custom: "" };
  const errorId = `${id}-error`;
  const toggle = (option: string, checked: boolean) => {
    const selected = checked ? [...multi.selected, option] : multi.selected.filter((item) => item !== option);
    // Keep the schema's option order, whatever order they were ticked in.
    onChange({ ...multi, selected: (field.options ?? []).filter((item) => selected.includes(item)) });
  };
  return (
    <fieldset
      data-testid={`field-${field.key}`}
      aria-invalid={error !== undefined ? true : undefined}
      aria-describedby={error !== undefined ? errorId : undefined}
    >
      <legend className="flex items-baseline gap-1.5 text-sm">
        <span className="font-medium text-slate-800">{field.label}</span>
        {field.required && (
          <span aria-hidden="true" className="font-semibold text-red-600">
            *
          </span>
        )}
        <span className="text-xs text-slate-400">list of {field.type}</span>
      </legend>
      <div className="mt-2 flex flex-wrap gap-x-5 gap-y-2">
        {(field.options ?? []).map((option, index) => (
          <label key={option} className="flex items-center gap-2 text-sm">
            <input
              type="checkbox"
              data-field={index === 0 ? field.key : undefined}
              checked={multi.selected.includes(option)}
              onChange={(event) => toggle(option, event.target.checked)}
              className="size-4 rounded border-slate-300"
            />
            {option}
          </label>
        ))}
      </div>
      {field.allowCustom && (
        <div className="mt-2">
          <label htmlFor={`${id}-custom`} className="text-xs text-slate-600">
            Other values for {field.label} (comma-separated)
          </label>
          <input
            id={`${id}-custom`}
            type="text"
            value={multi.custom}
            onChange={(event) => onChange({ ...multi, custom: event.target.value })}
            className="field-input mt-1"
          />
        </div>
      )}
      {field.description !== null && <p className="mt-1 text-xs text-slate-500">{field.description}</p>}
      {error !== undefined && (
        <p id={errorId} className="mt-1 text-sm text-red-700">
          {error}
        </p>
      )}
    </fieldset>
  );
}
