import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { JobDetail, JobSummary, Step, TaskSummary } from "../api/types";
import { Dashboard } from "./Dashboard";
import { JobDetailPage } from "./JobDetail";
import { barOf, timeSpan } from "./job/Steps";
import { jobsQuery } from "./Jobs";
import { buildTree, matchesSearch } from "./Tasks";

const JOB_ID = "01a21bdc-f12b-70c0-b820-c4bccaf2aeac";

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

/** A WebSocket that never connects: the job page's log stream stays quiet in these tests. */
class SilentSocket {
  static instances: SilentSocket[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: (() => void) | null = null;
  constructor(readonly url: string) {
    SilentSocket.instances.push(this);
  }
  close() {}
}

function step(name: string, status: Step["status"], depends_on: string[] = []): Step {
  return {
    step_name: name,
    action_name: "echo",
    action_type: "script",
    runner: "local",
    status,
    depends_on,
    input: null,
    output: null,
    error_message: status === "failed" ? "exit code 3" : null,
    worker_id: null,
    attempt: status === "failed" ? 2 : 1,
    max_attempts: 2,
    retry_at: null,
    retry_history:
      status === "failed"
        ? [
            {
              attempt: 1,
              worker_id: null,
              started_at: "2026-03-01T12:00:00.000Z",
              completed_at: "2026-03-01T12:00:01.000Z",
              error_message: "exit code 3",
            },
          ]
        : [],
    ready_at: null,
    started_at: "2026-03-01T12:00:00.000Z",
    completed_at: status === "running" ? null : "2026-03-01T12:00:02.000Z",
    when: null,
    for_each: null,
  };
}

function job(status: JobDetail["status"], steps: Step[]): JobDetail {
  return {
    job_id: JOB_ID,
    workspace: "default",
    task_name: "deploy",
    mode: "distributed",
    status,
    source_type: "api",
    source_id: null,
    revision: "cb603250b1fd2177",
    priority: 0,
    parent_job_id: null,
    retry_of_job_id: null,
    retry_attempt: 1,
    created_at: "2026-03-01T12:00:00.000Z",
    started_at: "2026-03-01T12:00:00.000Z",
    completed_at: null,
    error: null,
    input: { version: "1.4.0" },
    raw_input: { version: "1.4.0" },
    output: null,
    parent_step_name: null,
    timeout_secs: null,
    hook_of_job_id: null,
    hooks_fired: true,
    steps,
  };
}

function renderAt(path: string, element: React.ReactNode, route: string) {
  return render(
    <MemoryRouter initialEntries={[path]}>
      <Routes>
        <Route path={route} element={element} />
      </Routes>
    </MemoryRouter>,
  );
}

afterEach(() => {
  vi.unstubAllGlobals();
  SilentSocket.instances = [];
});

describe("Dashboard", () => {
  it("says the server is down, and offers to try again", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(() => Promise.reject(new TypeError("fetch failed"))),
    );
    renderAt("/", <Dashboard />, "/");
    expect(await screen.findByRole("alert")).toHaveTextContent("The server is not reachable");
    expect(screen.getByRole("button", { name: "Try again" })).toBeInTheDocument();
  });

  it("shows job counts by status, each linking to its filtered job list", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn((url: string) => {
        if (url === "/api/stats")
          return Promise.resolve(
            json(200, { pending: 1, running: 2, completed: 40, failed: 3, cancelled: 0, skipped: 0 }),
          );
        return Promise.resolve(json(200, [], { "X-Total-Count": "0" }));
      }),
    );
    renderAt("/", <Dashboard />, "/");
    // The tiles show "…" until the counts arrive.
    await waitFor(() => expect(screen.getByTestId("count-completed")).toHaveTextContent("40"));
    expect(screen.getByTestId("count-failed")).toHaveTextContent("3");
    expect(screen.getByTestId("count-failed").closest("a")).toHaveAttribute("href", "/jobs?status=failed");
  });
});

describe("Dashboard recent jobs", () => {
  it("shows when each recent and each failed job ran, and for how long", async () => {
    const job = (id: string, status: JobSummary["status"]): JobSummary => ({
      job_id: id,
      workspace: "default",
      task_name: `task-${status}`,
      mode: "distributed",
      status,
      source_type: "api",
      source_id: null,
      revision: "abc",
      priority: 0,
      parent_job_id: null,
      retry_of_job_id: null,
      retry_attempt: 1,
      created_at: "2026-03-01T12:00:00.000Z",
      started_at: "2026-03-01T12:00:00.000Z",
      completed_at: "2026-03-01T12:00:42.000Z",
      error: status === "failed" ? "exit code 3" : null,
    });
    vi.stubGlobal(
      "fetch",
      vi.fn((url: string) => {
        if (url === "/api/stats")
          return Promise.resolve(
            json(200, { pending: 0, running: 0, completed: 1, failed: 1, cancelled: 0, skipped: 0 }),
          );
        if (url.startsWith("/api/jobs?status=failed"))
          return Promise.resolve(json(200, [job("01a21bdc-f12b-70c0-b820-00000000beef", "failed")]));
        if (url.startsWith("/api/jobs"))
          return Promise.resolve(json(200, [job("01a21bdc-f12b-70c0-b820-00000000cafe", "completed")]));
        return Promise.resolve(json(200, []));
      }),
    );
    renderAt("/", <Dashboard />, "/");
    for (const title of ["Recent jobs", "Recent failures"]) {
      const heading = await screen.findByRole("heading", { name: title });
      const card = heading.closest("section") ?? heading.parentElement?.parentElement;
      if (card === null || card === undefined) throw new Error(`no card for ${title}`);
      await waitFor(() => expect(within(card).getAllByText(/^task-/).length).toBeGreaterThan(0));
      // The time (as a <time> element) and the duration, in the row itself, at every width.
      const row =
        within(card)
          .getAllByText(/^task-/)
          .at(0)
          ?.closest("tr, li") ?? null;
      if (row === null) throw new Error(`no row in ${title}`);
      expect(row.querySelector("time")).toHaveAttribute("dateTime", "2026-03-01T12:00:00.000Z");
      expect(within(row as HTMLElement).getAllByText("42 s").length).toBeGreaterThan(0);
    }
  });
});

describe("Hook jobs", () => {
  const HOOK_ID = "01a21bdc-f12b-70c0-b820-0000000000aa";

  it("are listed on the job that fired them, with links", async () => {
    const fired = {
      ...job("completed", [step("build", "completed")]),
      hook_jobs: [
        { job_id: HOOK_ID, event: "on_success", task_name: "_hook:notify", status: "completed", completed_at: null },
      ],
      hook_of_job_id: null,
    };
    vi.stubGlobal(
      "fetch",
      vi.fn(() => Promise.resolve(json(200, fired))),
    );
    vi.stubGlobal("WebSocket", SilentSocket);
    renderAt(`/jobs/${JOB_ID}`, <JobDetailPage />, "/jobs/:id");
    const list = await screen.findByRole("region", { name: "Hook jobs" });
    const link = within(list).getByRole("link", { name: /_hook:notify/ });
    expect(link).toHaveAttribute("href", `/jobs/${HOOK_ID}`);
    expect(list).toHaveTextContent("on_success");
  });

  it("of a worker action link back to their job, not to a task that does not exist", async () => {
    const hook = {
      ...job("completed", [step("notify", "completed")]),
      job_id: HOOK_ID,
      task_name: "_hook:notify",
      source_type: "hook",
      source_id: `${JOB_ID}/on_success`,
      hook_jobs: [],
      hook_of_job_id: JOB_ID,
    };
    vi.stubGlobal(
      "fetch",
      vi.fn(() => Promise.resolve(json(200, hook))),
    );
    vi.stubGlobal("WebSocket", SilentSocket);
    renderAt(`/jobs/${HOOK_ID}`, <JobDetailPage />, "/jobs/:id");
    await screen.findByTestId("job-status");
    // No link to a task page for `_hook:notify`, and no "Run again" that would open one.
    for (const link of screen.getAllByRole("link")) {
      expect(link.getAttribute("href") ?? "").not.toContain("/tasks/");
    }
    expect(screen.queryByRole("link", { name: "Run again" })).toBeNull();
    expect(screen.getByRole("link", { name: /Hook of/ })).toHaveAttribute("href", `/jobs/${JOB_ID}`);
  });
});

describe("Job detail", () => {
  it("reports an unknown job as not found", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(() => Promise.resolve(json(404, { error: `job ${JOB_ID} not found`, code: "not_found" }))),
    );
    vi.stubGlobal("WebSocket", SilentSocket);
    renderAt(`/jobs/${JOB_ID}`, <JobDetailPage />, "/jobs/:id");
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Job caf2aeac was not found");
    expect(alert).toHaveTextContent(`job ${JOB_ID} not found`);
  });

  it("rejects a malformed id without asking the server", async () => {
    const fetchMock = vi.fn();
    vi.stubGlobal("fetch", fetchMock);
    renderAt("/jobs/nope", <JobDetailPage />, "/jobs/:id");
    expect(await screen.findByRole("alert")).toHaveTextContent("'nope' is not a job id.");
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it("takes the short id the UI shows, resolved by the API, and moves to the job's own address", async () => {
    const urls: string[] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn((url: string) => {
        urls.push(url);
        return Promise.resolve(json(200, job("completed", [step("build", "completed")])));
      }),
    );
    vi.stubGlobal("WebSocket", SilentSocket);
    renderAt("/jobs/caf2aeac?step=build", <JobDetailPage />, "/jobs/:id");
    expect(await screen.findByRole("heading", { name: /deploy/ })).toBeInTheDocument();
    expect(urls[0]).toBe("/api/jobs/caf2aeac");
    // On its canonical address the page follows the job by its full id, the step still selected.
    await waitFor(() => expect(urls).toContain(`/api/jobs/${JOB_ID}`));
    expect(screen.getByRole("region", { name: "Step build" })).toBeInTheDocument();
  });

  it("shows why a short id matching several jobs is refused", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(() =>
        Promise.resolve(
          json(400, { error: "'beef' matches several jobs: 1…beef, 2…beef", code: "ambiguous", field: "id" }),
        ),
      ),
    );
    vi.stubGlobal("WebSocket", SilentSocket);
    renderAt("/jobs/beef", <JobDetailPage />, "/jobs/:id");
    expect(await screen.findByRole("alert")).toHaveTextContent("matches several jobs");
  });

  it("restarts a failed job from its failed step and opens the new job", async () => {
    const NEW_ID = "01a21bdc-f12b-70c0-b820-00000000f00d";
    const calls: { url: string; method: string }[] = [];
    const failed = {
      ...job("failed", [step("plan", "completed"), step("build", "failed", ["plan"])]),
      completed_at: "2026-03-01T12:00:05.000Z",
    };
    const restarted = {
      ...job("running", [{ ...step("plan", "completed"), reused_from: JOB_ID }, step("build", "running", ["plan"])]),
      job_id: NEW_ID,
      source_type: "restart",
      source_job_id: JOB_ID,
    };
    vi.stubGlobal(
      "fetch",
      vi.fn((url: string, init: RequestInit) => {
        calls.push({ url, method: init.method ?? "GET" });
        if (url.endsWith("/restart")) return Promise.resolve(json(200, { job_id: NEW_ID, status: "running" }));
        return Promise.resolve(json(200, url.includes(NEW_ID) ? restarted : failed));
      }),
    );
    vi.stubGlobal("WebSocket", SilentSocket);
    const user = userEvent.setup();
    renderAt(`/jobs/${JOB_ID}`, <JobDetailPage />, "/jobs/:id");
    await user.click(await screen.findByRole("button", { name: "Restart from failed step" }));
    await waitFor(() => expect(screen.getByTestId("job-status")).toHaveTextContent("running"));
    expect(calls.filter((call) => call.method === "POST").map((call) => call.url)).toEqual([
      `/api/jobs/${JOB_ID}/restart`,
    ]);
    expect(screen.getByRole("link", { name: "caf2aeac" })).toHaveAttribute("href", `/jobs/${JOB_ID}`);
    const steps = await screen.findByRole("list", { name: "Steps" });
    expect(steps.querySelector('[data-step="plan"]')).toHaveTextContent("reused");
    // A running job offers no restart.
    expect(screen.queryByRole("button", { name: "Restart from failed step" })).toBeNull();
  });

  it("lists steps with retry history, follows the log stream, and cancels after confirmation", async () => {
    const calls: { url: string; method: string }[] = [];
    // Reads of the job after the cancel: the first still has the running step (its worker has
    // not stopped it yet), the next ones have it cancelled and the job's completed_at set.
    let readsAfterCancel: number | null = null;
    vi.stubGlobal(
      "fetch",
      vi.fn((url: string, init: RequestInit) => {
        calls.push({ url, method: init.method ?? "GET" });
        if (url.endsWith("/cancel")) {
          readsAfterCancel = 0;
          return Promise.resolve(json(200, { job_id: JOB_ID, status: "cancelled" }));
        }
        if (readsAfterCancel === null) {
          return Promise.resolve(
            json(
              200,
              job("running", [
                step("plan", "completed"),
                step("build", "failed", ["plan"]),
                step("ship", "running", ["plan"]),
              ]),
            ),
          );
        }
        readsAfterCancel += 1;
        const stopped = readsAfterCancel > 1;
        const cancelled = job("cancelled", [
          step("plan", "completed"),
          step("build", "failed", ["plan"]),
          step("ship", stopped ? "cancelled" : "running", ["plan"]),
        ]);
        return Promise.resolve(json(200, { ...cancelled, completed_at: stopped ? "2026-03-01T12:00:05.000Z" : null }));
      }),
    );
    vi.stubGlobal("WebSocket", SilentSocket);
    const user = userEvent.setup();
    renderAt(`/jobs/${JOB_ID}`, <JobDetailPage />, "/jobs/:id");

    expect(await screen.findByRole("heading", { name: /deploy/ })).toBeInTheDocument();
    await waitFor(() =>
      expect(SilentSocket.instances[0]?.url).toBe(`ws://localhost:3000/api/jobs/${JOB_ID}/logs/stream?after=0`),
    );
    const steps = await screen.findByRole("list", { name: "Steps" });
    await waitFor(() => expect(steps.querySelector('[data-step="build"]')).toHaveAttribute("data-status", "failed"));

    await user.click(within(steps).getByRole("button", { name: /^build/ }));
    const detail = screen.getByRole("region", { name: "Step build" });
    expect(detail).toHaveTextContent("exit code 3");
    expect(detail).toHaveTextContent("Attempt 1: exit code 3");

    await user.click(screen.getByRole("button", { name: "Cancel job" }));
    expect(screen.getByRole("alertdialog", { name: "Cancel this job?" })).toBeInTheDocument();
    expect(calls.some((call) => call.method === "POST")).toBe(false);
    await user.click(screen.getByRole("button", { name: "Confirm" }));
    await waitFor(() => expect(screen.getByTestId("job-status")).toHaveTextContent("cancelled"));
    expect(calls.filter((call) => call.method === "POST").map((call) => call.url)).toEqual([
      `/api/jobs/${JOB_ID}/cancel`,
    ]);
    expect(screen.queryByRole("button", { name: "Cancel job" })).toBeNull();
    // The page keeps polling until the stopped step shows as cancelled too.
    await waitFor(() => expect(steps.querySelector('[data-step="ship"]')).toHaveAttribute("data-status", "cancelled"));
  });
});

describe("Task retries and queues", () => {
  const FIRST = "01a21bdc-f12b-70c0-b820-000000000001";
  const NEXT = "01a21bdc-f12b-70c0-b820-000000000003";

  it("show the retry chain with links, when the next attempt is due, and cancel the retry", async () => {
    const calls: { url: string; method: string }[] = [];
    let cancelled = false;
    const failed = {
      ...job("failed", [step("call", "failed")]),
      completed_at: "2026-03-01T12:00:02.000Z",
      error: "step 'call' failed: exit code 3",
      retry_attempt: 2,
      retry_of_job_id: FIRST,
      source_type: "retry",
      source_id: FIRST,
      hook_jobs: [],
      retry_chain: [
        {
          job_id: FIRST,
          retry_attempt: 1,
          status: "failed",
          created_at: "2026-03-01T11:00:00.000Z",
          completed_at: "2026-03-01T11:00:02.000Z",
        },
        {
          job_id: JOB_ID,
          retry_attempt: 2,
          status: "failed",
          created_at: "2026-03-01T12:00:00.000Z",
          completed_at: "2026-03-01T12:00:02.000Z",
        },
      ],
    };
    vi.stubGlobal(
      "fetch",
      vi.fn((url: string, init: RequestInit) => {
        calls.push({ url, method: init.method ?? "GET" });
        if (url.endsWith("/cancel")) {
          cancelled = true;
          return Promise.resolve(json(200, { job_id: JOB_ID, status: "failed" }));
        }
        return Promise.resolve(json(200, cancelled ? failed : { ...failed, retry_due_at: "2026-03-01T12:05:00.000Z" }));
      }),
    );
    vi.stubGlobal("WebSocket", SilentSocket);
    const user = userEvent.setup();
    renderAt(`/jobs/${JOB_ID}`, <JobDetailPage />, "/jobs/:id");

    const retries = await screen.findByRole("region", { name: "Retries" });
    expect(within(retries).getByRole("link", { name: /Attempt 1/ })).toHaveAttribute("href", `/jobs/${FIRST}`);
    expect(retries).toHaveTextContent("(this job)");
    expect(within(retries).getByTestId("retry-due")).toHaveTextContent("Next attempt due");
    // A failed job is over, but its retry can still be cancelled.
    expect(screen.queryByRole("button", { name: "Cancel job" })).toBeNull();
    await user.click(screen.getByRole("button", { name: "Cancel retry" }));
    expect(screen.getByRole("alertdialog", { name: "Cancel the retry?" })).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Confirm" }));
    await waitFor(() => expect(screen.queryByTestId("retry-due")).toBeNull());
    expect(calls.filter((call) => call.method === "POST").map((call) => call.url)).toEqual([
      `/api/jobs/${JOB_ID}/cancel`,
    ]);
    expect(screen.queryByRole("button", { name: "Cancel retry" })).toBeNull();
  });

  it("show a queued job's place in its task's queue", async () => {
    const queued = {
      ...job("pending", [step("wait", "pending")]),
      started_at: null,
      queue_position: 2,
      priority: 7,
      hook_jobs: [],
    };
    vi.stubGlobal(
      "fetch",
      vi.fn(() => Promise.resolve(json(200, queued))),
    );
    vi.stubGlobal("WebSocket", SilentSocket);
    renderAt(`/jobs/${JOB_ID}`, <JobDetailPage />, "/jobs/:id");
    expect(await screen.findByTestId("job-queued")).toHaveTextContent("Queued: #2 in the queue of deploy");
    expect(screen.getByText("Priority").nextSibling).toHaveTextContent("7");
  });

  it("mark queued jobs and retries in the jobs table", async () => {
    const { JobsTable } = await import("../components/JobsTable");
    const base = job("pending", []);
    const rows: JobSummary[] = [
      { ...base, job_id: JOB_ID, queue_position: 3 },
      { ...base, job_id: NEXT, status: "running", retry_attempt: 2, retry_of_job_id: FIRST },
    ];
    render(
      <MemoryRouter>
        <JobsTable jobs={rows} />
      </MemoryRouter>,
    );
    expect(screen.getByText("queued #3")).toBeInTheDocument();
    expect(screen.getByText("retry #2")).toBeInTheDocument();
  });
});

describe("Jobs filters", () => {
  it("maps the page's query string onto GET /api/jobs", () => {
    expect(jobsQuery(new URLSearchParams(""))).toBe("/api/jobs?limit=25&offset=0");
    expect(jobsQuery(new URLSearchParams("workspace=default&task=deploy&status=failed,running,bogus&page=3"))).toBe(
      "/api/jobs?workspace=default&task_name=deploy&status=failed%2Crunning&limit=25&offset=50",
    );
    // `task_name` needs a workspace (API §3.4); without one the task name is searched for.
    expect(jobsQuery(new URLSearchParams("task=deploy"))).toBe("/api/jobs?search=deploy&limit=25&offset=0");
    expect(jobsQuery(new URLSearchParams("q=01a2&page=0"))).toBe("/api/jobs?search=01a2&limit=25&offset=0");
    expect(jobsQuery(new URLSearchParams("source=trigger"))).toBe("/api/jobs?source_type=trigger&limit=25&offset=0");
    expect(jobsQuery(new URLSearchParams("source=nobody"))).toBe("/api/jobs?limit=25&offset=0");
  });
});

describe("Task tree", () => {
  const task = (
    workspace: string,
    name: string,
    folder: string | null,
    description: string | null = null,
  ): TaskSummary => ({
    name,
    id: name,
    display_name: null,
    description,
    workspace,
    folder,
    mode: "distributed",
    has_triggers: false,
  });

  it("nests tasks by workspace and folder path", () => {
    const tree = buildTree([
      task("default", "a", "ops/deploy"),
      task("default", "b", "ops"),
      task("default", "c", null),
      task("site", "d", null),
    ]);
    expect(tree.map((root) => root.name)).toEqual(["default", "site"]);
    const ops = tree[0]!.folders.get("ops")!;
    expect(ops.tasks.map((t) => t.name)).toEqual(["b"]);
    expect(ops.folders.get("deploy")!.tasks.map((t) => t.name)).toEqual(["a"]);
    expect(tree[0]!.tasks.map((t) => t.name)).toEqual(["c"]);
  });

  it("searches names, descriptions and folders, ignoring case", () => {
    const release = task("default", "release", "deploy", "Ships a Version");
    expect(matchesSearch(release, "VERSION")).toBe(true);
    expect(matchesSearch(release, "depl")).toBe(true);
    expect(matchesSearch(release, "backup")).toBe(false);
    expect(matchesSearch(release, "  ")).toBe(true);
  });
});

describe("Step timeline", () => {
  it("places each step's bar by its start and duration within the job's run time", () => {
    const span = timeSpan("2026-03-01T12:00:00.000Z", "2026-03-01T12:00:10.000Z", 0);
    expect(span).toEqual([Date.parse("2026-03-01T12:00:00.000Z"), Date.parse("2026-03-01T12:00:10.000Z")]);
    const later = {
      ...step("b", "completed"),
      started_at: "2026-03-01T12:00:05.000Z",
      completed_at: "2026-03-01T12:00:07.500Z",
    };
    expect(barOf(later, span, 0)).toEqual({ left: 50, width: 25 });
    // A running step reaches to now; a step that has not started has no bar.
    const now = Date.parse("2026-03-01T12:00:08.000Z");
    const running = { ...step("c", "running"), started_at: "2026-03-01T12:00:06.000Z" };
    expect(barOf(running, timeSpan("2026-03-01T12:00:00.000Z", null, now), now)).toEqual({ left: 75, width: 25 });
    expect(barOf({ ...step("d", "pending"), started_at: null }, span, 0)).toBeNull();
    expect(timeSpan(null, null, now)).toBeNull();
  });
});
