// The run form's model, generated from a task's input schema (WF §3): which control each field
// gets, its initial value (defaults prefilled), and the conversion of what the user typed into
// the JSON the execute route expects, with the same checks the server makes (WF §3.1, §3.2) so
// most mistakes are caught before the request. The server stays the authority: its 400
// `invalid_input` details are mapped back onto the fields by `serverFieldErrors`.

import type { ErrorBody, InputFieldDef, Json } from "../api/types";

/** The value the server shows instead of a secret (API §1.2). */
export const MASK = "••••••";

export type Control =
  | "text"
  | "textarea"
  | "password"
  | "integer"
  | "number"
  | "checkbox"
  | "tristate"
  | "date"
  | "datetime"
  | "json"
  | "select"
  | "combo"
  | "checkboxes";

/** What the user entered for a `multiple` field: the ticked options and free-typed extras. */
export interface MultiValue {
  selected: string[];
  custom: string;
}

/** The raw state of one control. */
export type RawValue = string | boolean | MultiValue;

export interface FormField {
  /** The input key sent to the server. */
  key: string;
  /** The field's `name`, else its key. */
  label: string;
  description: string | null;
  /** The schema type, `bool` normalised to `boolean`. */
  type: string;
  control: Control;
  required: boolean;
  secret: boolean;
  multiple: boolean;
  allowCustom: boolean;
  /** Option values as the controls show them (`String` of each option). */
  options: string[] | null;
  /** Shown as a placeholder when the default is not prefilled (templates, masked secrets). */
  defaultHint: string | null;
  /** For `array`/`object`/connection fields: the JSON type the value must have. */
  jsonType: "array" | "object" | null;
  order: number | null;
}

function optionText(option: Json): string {
  return typeof option === "string" ? option : JSON.stringify(option);
}

const SCALAR_TYPES = new Set(["string", "text", "integer", "number", "boolean", "date", "datetime"]);

function controlOf(def: InputFieldDef, type: string, hasOptions: boolean): Control {
  if (def.multiple === true && hasOptions) return "checkboxes";
  if (hasOptions && type !== "boolean") return def.allow_custom === true ? "combo" : "select";
  if (def.secret === true && (type === "string" || type === "text")) return "password";
  switch (type) {
    case "string":
      return "text";
    case "text":
      return "textarea";
    case "integer":
      return "integer";
    case "number":
      return "number";
    case "boolean":
      // Without a default or `required`, "not set" is a third answer, distinct from false.
      return def.required === true || (def.default !== undefined && def.default !== null) ? "checkbox" : "tristate";
    case "date":
      return "date";
    case "datetime":
      return "datetime";
    default:
      return "json";
  }
}

/** The form's fields in WF §3 order: by `order`, then fields without one, by key. */
export function buildFields(input: Record<string, InputFieldDef> | null | undefined): FormField[] {
  const fields = Object.entries(input ?? {}).map(([key, def]): FormField => {
    const rawType = def.type ?? "string";
    const type = rawType === "bool" ? "boolean" : rawType;
    const options = Array.isArray(def.options) && def.options.length > 0 ? def.options.map(optionText) : null;
    const control = controlOf(def, type, options !== null);
    const isDefaultTemplate = typeof def.default === "string" && def.default.includes("{{");
    const isMaskedDefault = def.secret === true && def.default !== undefined && def.default !== null;
    let defaultHint: string | null = null;
    if (isMaskedDefault) defaultHint = "Leave empty to use the stored default";
    else if (isDefaultTemplate) defaultHint = `Default: ${String(def.default)}`;
    return {
      key,
      label: def.name !== undefined && def.name !== null && def.name !== "" ? def.name : key,
      description: def.description ?? null,
      type,
      control,
      required: def.required === true,
      secret: def.secret === true,
      multiple: def.multiple === true,
      allowCustom: def.allow_custom === true,
      options,
      defaultHint,
      jsonType: type === "array" ? "array" : SCALAR_TYPES.has(type) ? null : "object",
      order: typeof def.order === "number" ? def.order : null,
    };
  });
  return fields.sort((a, b) => {
    if (a.order !== null && b.order !== null && a.order !== b.order) return a.order - b.order;
    if (a.order !== null && b.order === null) return -1;
    if (a.order === null && b.order !== null) return 1;
    return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
  });
}

/**
 * The initial raw value of every field: the value of an earlier run when one is given ("Run
 * again"), else its default where the form can show it. Secret fields never take an earlier
 * value: the server only ever shows it masked.
 */
export function initialValues(
  fields: FormField[],
  input: Record<string, InputFieldDef> | null | undefined,
  previous?: Record<string, Json> | null,
): Record<string, RawValue> {
  const values: Record<string, RawValue> = {};
  for (const field of fields) {
    const def = input?.[field.key];
    const earlier = field.secret ? undefined : previous?.[field.key];
    const value: Json | undefined =
      earlier !== undefined && earlier !== null && earlier !== MASK
        ? earlier
        : field.defaultHint === null
          ? def?.default
          : undefined;
    values[field.key] = initialRaw(field, value ?? null);
  }
  return values;
}

function initialRaw(field: FormField, value: Json): RawValue {
  switch (field.control) {
    case "checkbox":
      return value === true || (typeof value === "string" && value.toLowerCase() === "true");
    case "tristate":
      return value === null ? "" : String(value);
    case "checkboxes": {
      const items = value === null ? [] : Array.isArray(value) ? value.map(optionText) : [optionText(value)];
      const known = field.options ?? [];
      return {
        selected: items.filter((item) => known.includes(item)),
        custom: items.filter((item) => !known.includes(item)).join(", "),
      };
    }
    case "json":
      return value === null ? "" : JSON.stringify(value, null, 2);
    default:
      return value === null ? "" : optionText(value);
  }
}

/** The result of converting one field: the JSON to send (absent: leave the key out) or why not. */
export type Converted = { ok: true; value?: Json } | { ok: false; message: string };

const INTEGER = /^-?[0-9]+$/;
const NUMERIC = /^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

function isRealDate(text: string): boolean {
  const match = DATE.exec(text);
  if (match === null) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

function missing(field: FormField): Converted {
  return field.required ? { ok: false, message: "required field is missing" } : { ok: true };
}

/** Converts one scalar text to the field's type (WF §3.1). */
function convertScalar(field: FormField, text: string): Converted {
  switch (field.type) {
    case "string":
    case "text":
      return { ok: true, value: text };
    case "integer": {
      const trimmed = text.trim();
      if (!INTEGER.test(trimmed)) return { ok: false, message: "expected a whole number, like 42" };
      const big = BigInt(trimmed);
      if (big < I64_MIN || big > I64_MAX) return { ok: false, message: "integer out of the 64-bit range" };
      const number = Number(trimmed);
      // Beyond 2^53 a JSON number would lose digits; the server converts the exact text instead.
      return { ok: true, value: Number.isSafeInteger(number) ? number : trimmed };
    }
    case "number": {
      const trimmed = text.trim();
      const number = Number(trimmed);
      if (!NUMERIC.test(trimmed) || !Number.isFinite(number))
        return { ok: false, message: "expected a number, like 1.5" };
      return { ok: true, value: number };
    }
    case "boolean": {
      const lower = text.trim().toLowerCase();
      if (lower === "true") return { ok: true, value: true };
      if (lower === "false") return { ok: true, value: false };
      return { ok: false, message: "expected true or false" };
    }
    case "date":
      return isRealDate(text.trim())
        ? { ok: true, value: text.trim() }
        : { ok: false, message: "expected a valid date written YYYY-MM-DD" };
    case "datetime":
      return DATETIME.test(text.trim()) && !Number.isNaN(Date.parse(text.trim()))
        ? { ok: true, value: text.trim() }
        : { ok: false, message: "expected an RFC 3339 date and time with offset, like 2024-05-01T12:00:00Z" };
    default:
      return { ok: true, value: text };
  }
}

function checkOption(field: FormField, text: string): string | null {
  if (field.options === null || field.allowCustom || field.options.includes(text)) return null;
  return `must be one of: ${field.options.join(", ")}`;
}

/** Converts the raw value of one field into what the API expects. */
export function convertField(field: FormField, raw: RawValue): Converted {
  switch (field.control) {
    case "checkbox":
      return { ok: true, value: raw === true };
    case "tristate":
      return raw === "" ? missing(field) : convertScalar(field, String(raw));
    case "checkboxes": {
      const multi = typeof raw === "object" ? raw : { selected: [], custom: "" };
      const custom = field.allowCustom
        ? multi.custom
            .split(",")
            .map((item) => item.trim())
            .filter((item) => item !== "")
        : [];
      const items = [...multi.selected, ...custom];
      if (items.length === 0) return missing(field);
      const outside = items.find((item) => checkOption(field, item) !== null);
      if (outside !== undefined)
        return { ok: false, message: `'${outside}' is not one of: ${(field.options ?? []).join(", ")}` };
      return { ok: true, value: items };
    }
    case "json": {
      const text = String(raw).trim();
      if (text === "") return missing(field);
      let parsed: Json;
      try {
        parsed = JSON.parse(text) as Json;
      } catch (cause) {
        return { ok: false, message: `invalid JSON: ${cause instanceof Error ? cause.message : String(cause)}` };
      }
      const actual = parsed === null ? "null" : Array.isArray(parsed) ? "array" : typeof parsed;
      if (field.jsonType !== null && actual !== field.jsonType) {
        return {
          ok: false,
          message: `expected ${field.jsonType === "array" ? "an array" : "an object"}, got ${actual}`,
        };
      }
      return { ok: true, value: parsed };
    }
    default: {
      const text = String(raw);
      // An empty text means "not given": the server then applies the default, if any.
      if (text === "" || (field.type !== "string" && field.type !== "text" && text.trim() === ""))
        return missing(field);
      const optionProblem = checkOption(field, text);
      if (optionProblem !== null) return { ok: false, message: optionProblem };
      return convertScalar(field, text);
    }
  }
}

export interface FormResult {
  /** The execute request's `input` (API §3.3). */
  input: Record<string, Json>;
  /** Field key → message, for every field that failed a check. */
  errors: Record<string, string>;
}

/** Converts and checks every field; `errors` is empty when the form may be sent. */
export function validateForm(fields: FormField[], values: Record<string, RawValue>): FormResult {
  const input: Record<string, Json> = {};
  const errors: Record<string, string> = {};
  for (const field of fields) {
    const converted = convertField(field, values[field.key] ?? "");
    if (!converted.ok) errors[field.key] = converted.message;
    else if (converted.value !== undefined) input[field.key] = converted.value;
  }
  return { input, errors };
}

/**
 * Maps a 400 body onto the form: `details` (or the lone `field`) entries naming `input.<key>` of
 * a form field land on that field; everything else is a message for the whole form.
 */
export function serverFieldErrors(
  body: ErrorBody | null,
  fields: FormField[],
  fallback: string,
): { fieldErrors: Record<string, string>; formErrors: string[] } {
  const fieldErrors: Record<string, string> = {};
  const formErrors: string[] = [];
  const keys = new Set(fields.map((field) => field.key));
  const entries =
    body?.details !== undefined && body.details.length > 0
      ? body.details
      : body?.field !== undefined
        ? [{ field: body.field, message: messageAfterField(body.error, body.field) }]
        : [];
  for (const { field, message } of entries) {
    const key = field.startsWith("input.") ? field.slice("input.".length) : field;
    if (keys.has(key)) {
      fieldErrors[key] = fieldErrors[key] === undefined ? message : `${fieldErrors[key]}; ${message}`;
    } else {
      formErrors.push(`${field}: ${message}`);
    }
  }
  if (entries.length === 0) formErrors.push(body?.error ?? fallback);
  return { fieldErrors, formErrors };
}

/** `input.version: required field is missing` → `required field is missing`. */
function messageAfterField(error: string, field: string): string {
  const prefix = `${field}: `;
  return error.startsWith(prefix) ? error.slice(prefix.length) : error;
}
