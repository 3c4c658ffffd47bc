import { describe, expect, it } from "vitest";
import type { InputFieldDef } from "../api/types";
import {
  buildFields,
  convertField,
  initialValues,
  MASK,
  serverFieldErrors,
  validateForm,
  type FormField,
} from "./schema";

function field(def: InputFieldDef, key = "f"): FormField {
  const [built] = buildFields({ [key]: def });
  if (built === undefined) throw new Error("no field built");
  return built;
}

describe("buildFields", () => {
  it("orders fields by `order`, then the rest by key (WF §3)", () => {
    const fields = buildFields({
      zeta: { type: "string" },
      alpha: { type: "string" },
      second: { type: "string", order: 2 },
      first: { type: "string", order: 1 },
    });
    expect(fields.map((f) => f.key)).toEqual(["first", "second", "alpha", "zeta"]);
  });

  it("picks a control for every field type", () => {
    const controls = Object.fromEntries(
      buildFields({
        s: { type: "string" },
        t: { type: "text" },
        i: { type: "integer" },
        n: { type: "number" },
        b: { type: "boolean", default: false },
        bool: { type: "bool", required: true },
        maybe: { type: "boolean" },
        d: { type: "date" },
        dt: { type: "datetime" },
        a: { type: "array" },
        o: { type: "object" },
        sel: { type: "string", options: ["x", "y"] },
        combo: { type: "string", options: ["x"], allow_custom: true },
        many: { type: "string", options: ["x", "y"], multiple: true },
        pw: { type: "string", secret: true },
        conn: { type: "postgres" },
      }).map((f) => [f.key, f.control]),
    );
    expect(controls).toEqual({
      s: "text",
      t: "textarea",
      i: "integer",
      n: "number",
      b: "checkbox",
      bool: "checkbox",
      maybe: "tristate",
      d: "date",
      dt: "datetime",
      a: "json",
      o: "json",
      sel: "select",
      combo: "combo",
      many: "checkboxes",
      pw: "password",
      conn: "json",
    });
  });

  it("uses the field's name as its label, else its key", () => {
    expect(field({ type: "string", name: "Environment" }, "env").label).toBe("Environment");
    expect(field({ type: "string", name: null }, "env").label).toBe("env");
  });
});

describe("initialValues", () => {
  it("prefills defaults in each control's shape", () => {
    const input: Record<string, InputFieldDef> = {
      env: { type: "string", default: "staging", options: ["staging", "production"] },
      replicas: { type: "integer", default: 2 },
      dry: { type: "boolean", default: true },
      tags: { type: "array", default: ["a", "b"] },
      regions: { type: "string", multiple: true, options: ["eu", "us"], allow_custom: true, default: ["eu", "mars"] },
      none: { type: "string" },
    };
    const values = initialValues(buildFields(input), input);
    expect(values).toEqual({
      env: "staging",
      replicas: "2",
      dry: true,
      tags: JSON.stringify(["a", "b"], null, 2),
      regions: { selected: ["eu"], custom: "mars" },
      none: "",
    });
  });

  it("starts from an earlier run's input, except for secrets and masked values", () => {
    const input: Record<string, InputFieldDef> = {
      version: { type: "string", required: true },
      replicas: { type: "integer", default: 2 },
      token: { type: "string", secret: true },
      tags: { type: "array" },
      note: { type: "string", default: "none" },
    };
    const values = initialValues(buildFields(input), input, {
      version: "1.4.0",
      replicas: 5,
      token: MASK,
      tags: ["a"],
      note: null,
    });
    expect(values).toEqual({
      version: "1.4.0",
      replicas: "5",
      token: "",
      tags: JSON.stringify(["a"], null, 2),
      note: "none",
    });
  });

  it("never prefills a masked secret default or a template default", () => {
    const input: Record<string, InputFieldDef> = {
      token: { type: "string", secret: true, default: MASK },
      greeting: { type: "string", default: "Hello {{ job.id }}" },
    };
    const fields = buildFields(input);
    expect(initialValues(fields, input)).toEqual({ token: "", greeting: "" });
    expect(fields.find((f) => f.key === "token")?.defaultHint).toMatch(/stored default/);
    expect(fields.find((f) => f.key === "greeting")?.defaultHint).toBe("Default: Hello {{ job.id }}");
  });
});

describe("convertField", () => {
  it("converts integers to JSON numbers and keeps 64-bit values exact", () => {
    expect(convertField(field({ type: "integer" }), " 42 ")).toEqual({ ok: true, value: 42 });
    expect(convertField(field({ type: "integer" }), "-7")).toEqual({ ok: true, value: -7 });
    expect(convertField(field({ type: "integer" }), "9223372036854775807")).toEqual({
      ok: true,
      value: "9223372036854775807",
    });
    expect(convertField(field({ type: "integer" }), "9223372036854775808")).toEqual({
      ok: false,
      message: "integer out of the 64-bit range",
    });
    expect(convertField(field({ type: "integer" }), "1.5")).toMatchObject({
      ok: false,
      message: expect.stringMatching(/whole number/),
    });
    expect(convertField(field({ type: "integer" }), "abc")).toMatchObject({ ok: false });
  });

  it("converts numbers the way the server accepts numeric strings", () => {
    expect(convertField(field({ type: "number" }), "1.5")).toEqual({ ok: true, value: 1.5 });
    expect(convertField(field({ type: "number" }), "+2e3")).toEqual({ ok: true, value: 2000 });
    for (const bad of ["NaN", "Infinity", "0x10", "1,5", "one"]) {
      expect(convertField(field({ type: "number" }), bad)).toMatchObject({
        ok: false,
        message: expect.stringMatching(/number/),
      });
    }
  });

  it("sends booleans as booleans, and leaves an unset tri-state out", () => {
    expect(convertField(field({ type: "boolean", default: true }), false)).toEqual({ ok: true, value: false });
    expect(convertField(field({ type: "boolean" }), "")).toEqual({ ok: true });
    expect(convertField(field({ type: "boolean" }), "true")).toEqual({ ok: true, value: true });
  });

  it("checks real calendar dates and RFC 3339 datetimes with an offset", () => {
    expect(convertField(field({ type: "date" }), "2024-02-29")).toEqual({ ok: true, value: "2024-02-29" });
    expect(convertField(field({ type: "date" }), "2023-02-29")).toMatchObject({
      ok: false,
      message: expect.stringMatching(/YYYY-MM-DD/),
    });
    expect(convertField(field({ type: "datetime" }), "2024-05-01T12:00:00+02:00")).toEqual({
      ok: true,
      value: "2024-05-01T12:00:00+02:00",
    });
    expect(convertField(field({ type: "datetime" }), "2024-05-01T12:00:00")).toMatchObject({
      ok: false,
      message: expect.stringMatching(/offset/),
    });
  });

  it("parses JSON editors and checks the JSON type", () => {
    expect(convertField(field({ type: "array" }), '["a", 1]')).toEqual({ ok: true, value: ["a", 1] });
    expect(convertField(field({ type: "object" }), '{"k": {"n": 1}}')).toEqual({ ok: true, value: { k: { n: 1 } } });
    expect(convertField(field({ type: "array" }), '{"k": 1}')).toEqual({
      ok: false,
      message: "expected an array, got object",
    });
    expect(convertField(field({ type: "object" }), "{oops")).toMatchObject({
      ok: false,
      message: expect.stringMatching(/^invalid JSON/),
    });
  });

  it("leaves empty optional fields out and reports empty required ones as the server does", () => {
    expect(convertField(field({ type: "string" }), "")).toEqual({ ok: true });
    expect(convertField(field({ type: "string", required: true }), "")).toEqual({
      ok: false,
      message: "required field is missing",
    });
    expect(convertField(field({ type: "array", required: true }), "  ")).toEqual({
      ok: false,
      message: "required field is missing",
    });
    expect(convertField(field({ type: "integer", required: true }), " ")).toEqual({
      ok: false,
      message: "required field is missing",
    });
  });

  it("converts option values to the field's type", () => {
    const level = field({ type: "integer", options: [1, 2, 3] });
    expect(level.options).toEqual(["1", "2", "3"]);
    expect(convertField(level, "2")).toEqual({ ok: true, value: 2 });
  });

  it("turns a multiple field into a list of strings, custom values included when allowed", () => {
    const regions = field({ type: "string", multiple: true, options: ["eu", "us"], allow_custom: true });
    expect(convertField(regions, { selected: ["eu"], custom: "mars, venus" })).toEqual({
      ok: true,
      value: ["eu", "mars", "venus"],
    });
    const strict = field({ type: "string", multiple: true, options: ["eu", "us"], required: true });
    expect(convertField(strict, { selected: [], custom: "" })).toEqual({
      ok: false,
      message: "required field is missing",
    });
    expect(convertField(strict, { selected: ["us"], custom: "ignored" })).toEqual({ ok: true, value: ["us"] });
  });
});

describe("validateForm", () => {
  it("builds the execute input and collects every problem at once", () => {
    const input: Record<string, InputFieldDef> = {
      version: { type: "string", required: true },
      replicas: { type: "integer" },
      ratio: { type: "number" },
      notes: { type: "text" },
    };
    const fields = buildFields(input);
    expect(validateForm(fields, { version: "", replicas: "x", ratio: "0.5", notes: "" })).toEqual({
      input: { ratio: 0.5 },
      errors: { version: "required field is missing", replicas: "expected a whole number, like 42" },
    });
    expect(validateForm(fields, { version: "1.4.0", replicas: "3", ratio: "", notes: "line 1\nline 2" })).toEqual({
      input: { version: "1.4.0", replicas: 3, notes: "line 1\nline 2" },
      errors: {},
    });
  });
});

describe("serverFieldErrors", () => {
  const fields = buildFields({ version: { type: "string" }, replicas: { type: "integer" } });

  it("maps each `details` entry onto its field and keeps the rest for the form", () => {
    const mapped = serverFieldErrors(
      {
        error: "input.version: required field is missing",
        code: "invalid_input",
        field: "input.version",
        details: [
          { field: "input.version", message: "required field is missing" },
          { field: "input.replicas", message: "expected integer, got string" },
          { field: "input.colour", message: "unknown field, did you mean 'color'?" },
        ],
      },
      fields,
      "failed",
    );
    expect(mapped.fieldErrors).toEqual({
      version: "required field is missing",
      replicas: "expected integer, got string",
    });
    expect(mapped.formErrors).toEqual(["input.colour: unknown field, did you mean 'color'?"]);
  });

  it("uses the lone `field` when there are no details, and the message otherwise", () => {
    expect(
      serverFieldErrors(
        { error: "input.replicas: out of range", code: "invalid_input", field: "input.replicas" },
        fields,
        "x",
      ).fieldErrors,
    ).toEqual({ replicas: "out of range" });
    expect(serverFieldErrors({ error: "task 'x' in workspace 'y' not found", code: "not_found" }, fields, "x")).toEqual(
      {
        fieldErrors: {},
        formErrors: ["task 'x' in workspace 'y' not found"],
      },
    );
    expect(serverFieldErrors(null, fields, "Cannot reach the server").formErrors).toEqual(["Cannot reach the server"]);
  });
});
