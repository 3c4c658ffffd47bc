// Browser tests of the web UI (issue #6): headless Chromium against a real `stroem serve`
// built from this checkout, serving web/e2e/workspace. `cargo xtask test-ui` builds the UI and
// the binary and runs this with STROEM_BIN set; screenshots of every page go to
// STROEM_SCREENSHOTS (default web/e2e/screenshots, git-ignored) and are listed at the end.
//
// Elements are found the way a person finds them: by role and accessible name, form controls
// by their label (the input names of the test workspace). The first page load time is printed,
// never asserted: timings belong in benchmarks (DESIGN §9), see docs/benchmarks.md.

import {
  TIMEOUT_MS,
  check,
  clearScreenshots,
  indent,
  launchBrowser,
  listScreenshots,
  runTests,
  screenshot,
  startServer,
} from "./harness.mjs";

const UUID = /\/jobs\/([0-9a-f-]{36})$/;

// A hung browser or server must not hang CI: the whole run normally takes well under a minute.
const WATCHDOG_MS = 5 * 60_000;
setTimeout(() => {
  console.error(`browser tests still running after ${WATCHDOG_MS / 60_000} minutes; giving up`);
  process.exit(1);
}, WATCHDOG_MS).unref();

clearScreenshots();
const server = await startServer();
console.log(`stroem serve at ${server.url}`);
const browser = await launchBrowser();
const context = await browser.newContext({ baseURL: server.url, viewport: { width: 1280, height: 900 } });
context.setDefaultTimeout(TIMEOUT_MS);
const page = await context.newPage();
const consoleErrors = [];
page.on("console", (message) => {
  if (message.type() === "error") consoleErrors.push(message.text());
});
page.on("pageerror", (error) => consoleErrors.push(String(error)));

/** The jobs the story creates, by task, for the later tests. */
const jobs = {};

/** Waits until the job page shows `status` (pending, running, completed, …). */
async function jobStatus(status) {
  await page.getByTestId("job-status").locator(`[data-status="${status}"]`).waitFor();
}

/** Waits until the job page's step list shows `step` with `status`. */
async function stepStatus(step, status) {
  await page.getByRole("list", { name: "Steps" }).locator(`li[data-step="${step}"][data-status="${status}"]`).waitFor();
}

/** The job page's log area. */
function logView() {
  return page.getByRole("log", { name: "Job log" });
}

async function runFromTaskPage(task) {
  await page.getByRole("button", { name: "Run", exact: true }).click();
  await page.waitForURL(UUID);
  const id = UUID.exec(new URL(page.url()).pathname)?.[1];
  check(id !== undefined, `no job id in ${page.url()}`);
  jobs[task] = id;
  return id;
}

let firstLoad = null;

const tests = [
  [
    "the dashboard loads (first page load timed on loopback)",
    async () => {
      const started = performance.now();
      await page.goto("/");
      await page.getByRole("heading", { name: "Dashboard", level: 1 }).waitFor();
      const visible = performance.now() - started;
      const timing = await page.evaluate(() => {
        const [entry] = performance.getEntriesByType("navigation");
        return {
          load: entry.loadEventEnd - entry.startTime,
          domContentLoaded: entry.domContentLoadedEventEnd - entry.startTime,
        };
      });
      firstLoad = { visible, ...timing };
      const nav = page.getByRole("navigation", { name: "Main" });
      for (const name of ["Dashboard", "Jobs", "Tasks", "Workspaces", "Workers"]) {
        await nav.getByRole("link", { name, exact: true }).waitFor();
      }
      await page.getByRole("region", { name: "Job counts by status" }).waitFor();
      await screenshot(page, "01-dashboard");
    },
  ],
  [
    "navigating to a task shows its generated form; client-side checks block an empty run",
    async () => {
      await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Tasks", exact: true }).click();
      await page.waitForURL(/\/tasks$/);
      await page.getByRole("link", { name: "every-field" }).first().waitFor();
      await screenshot(page, "02-tasks");
      await page.getByRole("link", { name: "every-field" }).first().click();
      await page.waitForURL(/\/workspaces\/default\/tasks\/every-field$/);
      await page.getByRole("heading", { name: "every-field", level: 1 }).waitFor();
      // Every input type got a control labelled with its input name.
      for (const label of [
        "target",
        "message",
        "notes",
        "count",
        "ratio",
        "dry_run",
        "day",
        "at",
        "tags",
        "extra",
        "token",
      ]) {
        await page.getByLabel(label, { exact: true }).waitFor();
      }
      await page.getByRole("group", { name: /regions/ }).waitFor();
      check(
        (await page.getByLabel("target", { exact: true }).evaluate((el) => el.tagName)) === "SELECT",
        "options render as a select",
      );
      check(
        (await page.getByLabel("notes", { exact: true }).evaluate((el) => el.tagName)) === "TEXTAREA",
        "text renders as a textarea",
      );
      check(
        (await page.getByLabel("token", { exact: true }).getAttribute("type")) === "password",
        "the secret is masked",
      );
      const count = page.getByLabel("count", { exact: true });
      const shown = `${await count.inputValue()} ${(await count.getAttribute("placeholder")) ?? ""}`;
      check(shown.includes("3"), `the default of count (3) is not shown: '${shown}'`);
      await screenshot(page, "03-task-form");

      // Required fields left empty: the form says so and no job is created.
      await page.getByRole("button", { name: "Run", exact: true }).click();
      await page.getByLabel("message", { exact: true }).and(page.locator("[aria-invalid=true]")).waitFor();
      check(/\/tasks\/every-field$/.test(page.url()), `an invalid form navigated to ${page.url()}`);
      await screenshot(page, "04-task-form-errors");
    },
  ],
  [
    "filling every field and running shows the job with masked secret and its steps completed",
    async () => {
      await page.getByLabel("target", { exact: true }).selectOption("production");
      await page.getByLabel("message", { exact: true }).fill("hello from the browser");
      await page.getByLabel("notes", { exact: true }).fill("two\nlines");
      await page.getByLabel("count", { exact: true }).fill("5");
      await page.getByLabel("ratio", { exact: true }).fill("0.25");
      // A boolean without a default is a three-way choice: not set, true or false.
      await page.getByLabel("dry_run", { exact: true }).selectOption("true");
      await page.getByLabel("day", { exact: true }).fill("2026-03-01");
      await page.getByLabel("at", { exact: true }).fill("2026-03-01T12:00:00Z");
      const regions = page.getByRole("group", { name: /regions/ });
      await regions.getByLabel("eu", { exact: true }).check();
      await regions.getByLabel("ap", { exact: true }).check();
      await page.getByLabel("tags", { exact: true }).fill('["a", "b"]');
      await page.getByLabel("extra", { exact: true }).fill('{"k": 1}');
      await page.getByLabel("token", { exact: true }).fill("s3cret-value-42");
      const id = await runFromTaskPage("every-field");

      await jobStatus("completed");
      const log = logView();
      await log.getByText("target=production message=hello from the browser count=5").waitFor();
      await log.getByText('regions=["eu","ap"]').waitFor();
      await log.getByText("token=••••••").waitFor();
      const body = await page.locator("body").innerText();
      check(!body.includes("s3cret-value-42"), "the secret value appears on the job page");
      for (const step of ["show", "finish"]) {
        await stepStatus(step, "completed");
      }
      // The server received typed values, not strings.
      const job = await (await page.request.get(`/api/jobs/${id}`)).json();
      check(
        job.input?.count === 5 && job.input?.dry_run === true && job.input?.ratio === 0.25,
        `typed input: ${JSON.stringify(job.input)}`,
      );
      check(Array.isArray(job.input?.tags) && job.input?.extra?.k === 1, `json input: ${JSON.stringify(job.input)}`);
      await screenshot(page, "05-job-every-field");
    },
  ],
  [
    "the job page streams log lines live, highlights stderr and ends with every step's status",
    async () => {
      // A deep link straight to the task page.
      await page.goto("/workspaces/default/tasks/log-lines");
      await page.getByRole("heading", { name: "log-lines", level: 1 }).waitFor();
      await runFromTaskPage("log-lines");
      const log = logView();
      await log.getByText("line 1 of 8").waitFor();
      // The first line arrived while the job still runs (it prints for about four seconds).
      // The status badge is polled, so it may still say pending; it must not say completed.
      const statusNow = await page.getByTestId("job-status").locator("[data-status]").getAttribute("data-status");
      check(
        statusNow === "running" || statusNow === "pending",
        `the first log line appeared only once the job was ${statusNow}`,
      );
      check(!(await log.getByText("line 8 of 8").isVisible()), "the last line was there as soon as the first");
      await stepStatus("stream", "running");
      await screenshot(page, "06-job-live");

      await log.getByText("line 8 of 8").waitFor();
      const stderr = log.locator('[data-stream="stderr"]', { hasText: "warning 3 on stderr" });
      await stderr.waitFor();
      await jobStatus("completed");
      for (const step of ["stream", "summary"]) {
        await stepStatus(step, "completed");
        // The graph colours its node by the same status.
        await page
          .getByRole("region", { name: "Step graph" })
          .locator(`[data-step="${step}"][data-status="completed"]`)
          .waitFor({ state: "attached" });
      }
      await log.getByText("all lines printed").waitFor();
      await screenshot(page, "07-job-completed");
    },
  ],
  [
    "the jobs list has the finished job and links to it",
    async () => {
      await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Jobs", exact: true }).click();
      await page.waitForURL(/\/jobs$/);
      const row = page.locator(`tr[data-job-id="${jobs["log-lines"]}"]`);
      await row.waitFor();
      await row.locator('[data-status="completed"]').waitFor();
      await page.locator(`tr[data-job-id="${jobs["every-field"]}"]`).waitFor();
      await screenshot(page, "08-jobs");

      // Filtering by task keeps only that task's jobs.
      await page.getByLabel("Task", { exact: true }).fill("log-lines");
      await page.getByLabel("Task", { exact: true }).press("Enter");
      await page.locator(`tr[data-job-id="${jobs["every-field"]}"]`).waitFor({ state: "detached" });
      await row.waitFor();
      await row.getByRole("link", { name: /^Job / }).click();
      await page.waitForURL(new RegExp(`/jobs/${jobs["log-lines"]}$`));
      await jobStatus("completed");
    },
  ],
  [
    "a running job is cancelled from its page",
    async () => {
      await page.goto("/workspaces/default/tasks/long-running");
      await page.getByRole("heading", { name: "long-running", level: 1 }).waitFor();
      const id = await runFromTaskPage("long-running");
      await logView().getByText("waiting to be cancelled").waitFor();
      await jobStatus("running");
      await page.getByRole("button", { name: "Cancel job" }).click();
      const dialog = page.getByRole("alertdialog");
      await dialog.waitFor();
      await screenshot(page, "09-job-cancel-confirm");
      await dialog.getByRole("button", { name: "Confirm" }).click();
      await jobStatus("cancelled");
      // The job is cancelled at once; its running step follows when the worker has stopped it
      // (the job's completed_at is set then), and the page must show that too, with the lines
      // the step printed while stopping: the log stream ends only when the job has finished.
      await stepStatus("wait", "cancelled");
      await logView().getByText("cleaning up").waitFor();
      check(
        (await page.getByRole("button", { name: "Cancel job" }).count()) === 0,
        "a cancelled job still offers Cancel",
      );
      const job = await (await page.request.get(`/api/jobs/${id}`)).json();
      check(job.status === "cancelled", `the server says ${job.status}`);
      await screenshot(page, "10-job-cancelled");
    },
  ],
  [
    "an approval step is approved with its form, and another rejected with a reason",
    async () => {
      await page.goto("/workspaces/default/tasks/gated");
      await page.getByRole("heading", { name: "gated", level: 1 }).waitFor();
      const approvedId = await runFromTaskPage("gated");
      const panel = page.getByRole("region", { name: "Approval of confirm" });
      await panel.getByText("Ship 1.4.0 to production?").waitFor();
      await screenshot(page, "10a-approval");
      // The required ticket is checked before anything is sent; then approve with it.
      await panel.getByRole("button", { name: "Approve", exact: true }).click();
      await panel.getByText("required field is missing").first().waitFor();
      await panel.getByLabel("ticket").fill("CHG-1042");
      await panel.getByRole("button", { name: "Approve", exact: true }).click();
      await jobStatus("completed");
      await stepStatus("confirm", "completed");
      await logView().getByText("shipped with CHG-1042").waitFor();
      const approved = await (await page.request.get(`/api/jobs/${approvedId}`)).json();
      check(approved.steps[0].output.approved_by === "anonymous", `approved_by: ${approved.steps[0].output.approved_by}`);

      await page.goto("/workspaces/default/tasks/gated");
      await page.getByRole("heading", { name: "gated", level: 1 }).waitFor();
      await runFromTaskPage("gated-rejected");
      const second = page.getByRole("region", { name: "Approval of confirm" });
      await second.getByRole("button", { name: "Reject…" }).click();
      await second.getByLabel("Reason for rejecting").fill("wrong version");
      await second.getByRole("button", { name: "Reject", exact: true }).click();
      await jobStatus("failed");
      await stepStatus("confirm", "failed");
      await page.getByText("rejected by anonymous: wrong version").first().waitFor();
      check((await page.getByRole("region", { name: "Approval of confirm" }).count()) === 0, "a decided step still offers a decision");
      await screenshot(page, "10b-approval-rejected");
    },
  ],
  [
    "a failed job is restarted from its failed step, reusing the step that completed",
    async () => {
      await page.goto("/workspaces/default/tasks/flaky-release");
      await page.getByRole("heading", { name: "flaky-release", level: 1 }).waitFor();
      const failedId = await runFromTaskPage("flaky-release");
      await jobStatus("failed");
      await stepStatus("prepare", "completed");
      await stepStatus("deploy", "failed");
      await page.getByRole("button", { name: "Restart from failed step" }).click();
      await page.waitForURL((url) => UUID.test(url.pathname) && !url.pathname.endsWith(failedId));
      const restartedId = UUID.exec(new URL(page.url()).pathname)?.[1];
      await jobStatus("completed");
      await stepStatus("prepare", "completed");
      await stepStatus("deploy", "completed");
      const steps = page.getByRole("list", { name: "Steps" });
      await steps.locator('li[data-step="prepare"]').getByText("reused").waitFor();
      check((await steps.locator('li[data-step="deploy"]').getByText("reused").count()) === 0, "deploy shows as reused");
      await logView().getByText("deployed app-1.4.0.tgz").waitFor();
      check(
        (await logView().getByText("preparing the artifact").count()) === 0,
        "the reused step ran again in the restarted job",
      );
      await page.getByRole("link", { name: failedId.slice(-8) }).first().waitFor();
      const job = await (await page.request.get(`/api/jobs/${restartedId}`)).json();
      check(
        job.source_type === "restart" && job.source_job_id === failedId,
        `source: ${job.source_type} ${job.source_job_id}`,
      );
      await screenshot(page, "10c-job-restarted");

      // The short id the UI shows opens the job at its full address.
      await page.goto(`/jobs/${restartedId.slice(-8)}`);
      await page.waitForURL(new RegExp(`/jobs/${restartedId}$`));
      await jobStatus("completed");
    },
  ],
  [
    "the workspaces and workers pages and an unknown deep link render",
    async () => {
      const nav = page.getByRole("navigation", { name: "Main" });
      await nav.getByRole("link", { name: "Workspaces", exact: true }).click();
      await page.getByRole("link", { name: "default", exact: true }).first().waitFor();
      await screenshot(page, "11-workspaces");
      await page.goto("/workspaces/default");
      await page.getByRole("link", { name: "every-field" }).first().waitFor();
      await screenshot(page, "12-workspace");
      await nav.getByRole("link", { name: "Workers", exact: true }).click();
      await page.getByText("(embedded)").first().waitFor();
      await screenshot(page, "13-workers");
      await page.goto("/no/such/page");
      await page.getByRole("heading", { level: 1 }).waitFor();
      await screenshot(page, "14-not-found");
    },
  ],
  [
    "on a phone-sized screen the dashboard and a job page fit the width",
    async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      try {
        for (const [path, name] of [
          ["/", "15-phone-dashboard"],
          [`/jobs/${jobs["log-lines"]}`, "16-phone-job"],
        ]) {
          await page.goto(path);
          await page.getByRole("heading", { level: 1 }).first().waitFor();
          if (path !== "/") await jobStatus("completed");
          await screenshot(page, name);
          const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
          check(overflow <= 1, `${path} is ${overflow} px wider than a 390 px screen`);
        }
      } finally {
        await page.setViewportSize({ width: 1280, height: 900 });
      }
    },
  ],
];

/**
 * Cold first loads of the dashboard, each in a fresh browser context (empty cache): the time
 * until the dashboard's heading and job counts are on screen, and the navigation's load event.
 */
async function measureFirstLoads(runs) {
  const samples = [];
  for (let run = 0; run < runs; run += 1) {
    const fresh = await browser.newContext({ baseURL: server.url, viewport: { width: 1280, height: 900 } });
    const cold = await fresh.newPage();
    const started = performance.now();
    await cold.goto("/");
    await cold.getByRole("heading", { name: "Dashboard", level: 1 }).waitFor();
    await cold.getByRole("region", { name: "Job counts by status" }).waitFor();
    const visible = performance.now() - started;
    const load = await cold.evaluate(() => {
      const [entry] = performance.getEntriesByType("navigation");
      return entry.loadEventEnd - entry.startTime;
    });
    samples.push({ visible, load });
    await fresh.close();
  }
  const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  return {
    runs,
    visible: median(samples.map((sample) => sample.visible)),
    visibleMax: Math.max(...samples.map((sample) => sample.visible)),
    load: median(samples.map((sample) => sample.load)),
  };
}

let failed = 0;
let loads = null;
try {
  console.log("browser tests:");
  failed = await runTests(tests, async (name) => {
    await screenshot(page, `failed-${name.replace(/[^a-z0-9]+/gi, "-").slice(0, 60)}`);
  });
  if (consoleErrors.length > 0) {
    // Failed requests the tests caused on purpose (the empty form is checked client-side, so
    // there are none) would show here too; any error is worth a look.
    console.log(`\nbrowser console errors (${consoleErrors.length}):`);
    console.log(indent(consoleErrors.slice(0, 20).join("\n")));
  }
  loads = await measureFirstLoads(5);
} finally {
  await browser.close().catch(() => {});
  if (failed > 0) {
    console.log("\nlast lines of the server's output:");
    console.log(indent(server.log().split("\n").slice(-40).join("\n")));
  }
  await server.stop();
}

listScreenshots();
if (firstLoad !== null) {
  console.log(
    `\nfirst page load on loopback, first navigation of a new browser: dashboard visible after ` +
      `${firstLoad.visible.toFixed(0)} ms (DOMContentLoaded ${firstLoad.domContentLoaded.toFixed(0)} ms, ` +
      `load ${firstLoad.load.toFixed(0)} ms)`,
  );
}
if (loads !== null) {
  console.log(
    `first page load on loopback, empty cache, median of ${loads.runs}: dashboard with job counts ` +
      `visible after ${loads.visible.toFixed(0)} ms (max ${loads.visibleMax.toFixed(0)} ms), ` +
      `load event ${loads.load.toFixed(0)} ms`,
  );
}
console.log(`\n${tests.length - failed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
