import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { InputFieldDef } from "../api/types";
import { RunForm } from "./RunForm";
import { MASK } from "./schema";

const SCHEMA: Record<string, InputFieldDef> = {
  environment: {
    type: "string",
    name: "Environment",
    required: true,
    options: ["staging", "production"],
    default: "staging",
    order: 1,
  },
  version: { type: "string", required: true, description: "Version to deploy", order: 2 },
  replicas: { type: "integer", default: 2 },
  ratio: { type: "number" },
  dry_run: { type: "boolean", default: true },
  notes: { type: "text" },
  day: { type: "date" },
  regions: { type: "string", multiple: true, options: ["eu", "us", "asia"] },
  tags: { type: "array" },
  extra: { type: "object" },
  api_token: { type: "string", secret: true },
  stored_token: { type: "string", secret: true, default: MASK },
};

function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function setup(fetchImpl: (url: string, init: RequestInit) => Promise<Response>) {
  const fetchMock = vi.fn(fetchImpl);
  vi.stubGlobal("fetch", fetchMock);
  const onCreated = vi.fn();
  const user = userEvent.setup();
  render(<RunForm workspace="default" task="deploy" input={SCHEMA} onCreated={onCreated} />);
  return { fetchMock, onCreated, user };
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("RunForm", () => {
  it("renders a labelled control of the right kind for every field type", () => {
    setup(() => Promise.reject(new Error("no request expected")));
    expect(screen.getByLabelText("Environment").tagName).toBe("SELECT");
    expect(screen.getByLabelText("version")).toHaveAttribute("type", "text");
    expect(screen.getByLabelText("replicas")).toHaveAttribute("inputmode", "numeric");
    expect(screen.getByLabelText("ratio")).toHaveAttribute("inputmode", "decimal");
    expect(screen.getByLabelText("dry_run")).toHaveAttribute("type", "checkbox");
    expect(screen.getByLabelText("notes").tagName).toBe("TEXTAREA");
    expect(screen.getByLabelText("day")).toHaveAttribute("type", "date");
    expect(screen.getByLabelText("tags").tagName).toBe("TEXTAREA");
    expect(screen.getByLabelText("extra").tagName).toBe("TEXTAREA");
    const regions = screen.getByRole("group", { name: /regions/ });
    expect(
      within(regions)
        .getAllByRole("checkbox")
        .map((box) => box.closest("label")?.textContent),
    ).toEqual(["eu", "us", "asia"]);
    expect(
      within(screen.getByLabelText("Environment"))
        .getAllByRole("option")
        .map((o) => o.textContent),
    ).toEqual(["staging", "production"]);
  });

  it("prefills defaults and marks required fields", () => {
    setup(() => Promise.reject(new Error("no request expected")));
    expect(screen.getByLabelText("Environment")).toHaveValue("staging");
    expect(screen.getByLabelText("replicas")).toHaveValue("2");
    expect(screen.getByLabelText("dry_run")).toBeChecked();
    expect(screen.getByLabelText("version")).toBeRequired();
    expect(screen.getByLabelText("replicas")).not.toBeRequired();
    expect(screen.getByTestId("field-version")).toHaveTextContent("*");
    expect(screen.getByTestId("field-replicas")).not.toHaveTextContent("*");
    expect(screen.getByLabelText("version")).toHaveAccessibleDescription("Version to deploy");
  });

  it("masks secret fields and never shows a stored secret default", async () => {
    const { user } = setup(() => Promise.reject(new Error("no request expected")));
    const token = screen.getByLabelText("api_token");
    expect(token).toHaveAttribute("type", "password");
    await user.type(token, "hunter2");
    expect(token).toHaveValue("hunter2");
    const [show] = screen.getAllByRole("button", { name: "Show secret value" });
    await user.click(show!);
    expect(token).toHaveAttribute("type", "text");
    await user.click(screen.getByRole("button", { name: "Hide secret value" }));
    expect(token).toHaveAttribute("type", "password");
    const stored = screen.getByLabelText("stored_token");
    expect(stored).toHaveValue("");
    expect(stored).toHaveAttribute("placeholder", expect.stringMatching(/stored default/));
    expect(screen.queryByDisplayValue(MASK)).toBeNull();
  });

  it("shows client-side messages on their fields and sends nothing", async () => {
    const { fetchMock, user } = setup(() => Promise.reject(new Error("no request expected")));
    await user.clear(screen.getByLabelText("replicas"));
    await user.type(screen.getByLabelText("replicas"), "two");
    await user.click(screen.getByLabelText("tags"));
    await user.paste("[1, 2");
    await user.click(screen.getByRole("button", { name: "Run" }));
    expect(fetchMock).not.toHaveBeenCalled();
    expect(screen.getByLabelText("version")).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByLabelText("version")).toHaveAccessibleDescription(/required field is missing/);
    expect(screen.getByTestId("field-replicas")).toHaveTextContent("expected a whole number, like 42");
    expect(screen.getByTestId("field-tags")).toHaveTextContent(/invalid JSON/);
    expect(screen.getByText("3 fields need attention.")).toBeInTheDocument();
    await waitFor(() => expect(screen.getByLabelText("version")).toHaveFocus());
    // Fixing a field clears its message.
    await user.type(screen.getByLabelText("version"), "1.0");
    expect(screen.getByLabelText("version")).not.toHaveAttribute("aria-invalid");
  });

  it("re-runs a job: an empty secret field is sent masked with source_job_id, so the server reuses it", async () => {
    const fetchMock = vi.fn(() => Promise.resolve(jsonResponse(200, { job_id: "0195-rerun", status: "pending" })));
    vi.stubGlobal("fetch", fetchMock);
    const onCreated = vi.fn();
    const user = userEvent.setup();
    const schema: Record<string, InputFieldDef> = {
      name: { type: "string", required: true },
      token: { type: "string", secret: true, required: true },
    };
    render(
      <RunForm
        workspace="default"
        task="login"
        input={schema}
        previous={{ name: "a", token: MASK }}
        sourceJobId="0195-source"
        onCreated={onCreated}
      />,
    );
    expect(screen.getByLabelText("token")).toHaveValue("");
    await user.click(screen.getByRole("button", { name: "Run" }));
    await waitFor(() => expect(onCreated).toHaveBeenCalledWith("0195-rerun"));
    const [, init] = fetchMock.mock.calls[0]! as unknown as [string, RequestInit];
    expect(JSON.parse(String(init.body))).toEqual({
      input: { name: "a", token: MASK },
      source_job_id: "0195-source",
    });
  });

  it("posts the input converted to the JSON types the API expects, then reports the job", async () => {
    const { fetchMock, onCreated, user } = setup(() =>
      Promise.resolve(jsonResponse(200, { job_id: "0195-job", status: "pending" })),
    );
    await user.selectOptions(screen.getByLabelText("Environment"), "production");
    await user.type(screen.getByLabelText("version"), "1.4.0");
    await user.clear(screen.getByLabelText("replicas"));
    await user.type(screen.getByLabelText("replicas"), "3");
    await user.type(screen.getByLabelText("ratio"), "0.25");
    await user.click(screen.getByLabelText("dry_run"));
    await user.type(screen.getByLabelText("day"), "2024-05-01");
    await user.click(screen.getByRole("checkbox", { name: "us" }));
    await user.click(screen.getByRole("checkbox", { name: "eu" }));
    await user.click(screen.getByLabelText("tags"));
    await user.paste('["a", "b"]');
    await user.click(screen.getByLabelText("extra"));
    await user.paste('{"owner": "ops"}');
    await user.type(screen.getByLabelText("api_token"), "s3cret");
    await user.click(screen.getByRole("button", { name: "Run" }));

    await waitFor(() => expect(onCreated).toHaveBeenCalledWith("0195-job"));
    expect(fetchMock).toHaveBeenCalledTimes(1);
    const [url, init] = fetchMock.mock.calls[0]!;
    expect(url).toBe("/api/workspaces/default/tasks/deploy/execute");
    expect(init.method).toBe("POST");
    expect(init.headers).toMatchObject({ "Content-Type": "application/json" });
    expect(JSON.parse(String(init.body))).toEqual({
      input: {
        environment: "production",
        version: "1.4.0",
        replicas: 3,
        ratio: 0.25,
        dry_run: false,
        day: "2024-05-01",
        regions: ["eu", "us"],
        tags: ["a", "b"],
        extra: { owner: "ops" },
        api_token: "s3cret",
      },
    });
  });

  it("puts a server 400 `field` error on that field, and other problems above the button", async () => {
    const { onCreated, user } = setup(() =>
      Promise.resolve(
        jsonResponse(400, {
          error: "input.version: must look like a version",
          code: "invalid_input",
          field: "input.version",
          details: [
            { field: "input.version", message: "must look like a version" },
            { field: "input.colour", message: "unknown field" },
          ],
        }),
      ),
    );
    await user.type(screen.getByLabelText("version"), "latest");
    await user.click(screen.getByRole("button", { name: "Run" }));
    await waitFor(() => expect(screen.getByLabelText("version")).toHaveAttribute("aria-invalid", "true"));
    expect(screen.getByLabelText("version")).toHaveAccessibleDescription(/must look like a version/);
    expect(screen.getByRole("alert")).toHaveTextContent("input.colour: unknown field");
    expect(onCreated).not.toHaveBeenCalled();
    expect(screen.getByRole("button", { name: "Run" })).toBeEnabled();
  });

  it("says so when the server cannot be reached", async () => {
    const { user } = setup(() => Promise.reject(new TypeError("fetch failed")));
    await user.type(screen.getByLabelText("version"), "1.0");
    await user.click(screen.getByRole("button", { name: "Run" }));
    expect(await screen.findByRole("alert")).toHaveTextContent(/Cannot reach the Strøm server/);
  });
});
