// Browser tests of signing in (issue #12): headless Chromium against a real `stroem serve` with
// authentication on — internal accounts and a real OpenID provider (the npm package
// oidc-provider, tests/oidc/provider.mjs, installed by `cargo xtask oidc` into
// $STROEM_TEST_OIDC_DIR) — and access tokens that live 5 seconds, so refreshing is exercised
// within the run. `cargo xtask test-ui` runs this after run.mjs.
//
// The tests are a story in order: password sign-in, refresh after expiry, several tabs,
// API keys, users, the audit trail, sign-out, OIDC sign-in.

import { spawn } from "node:child_process";
import { copyFileSync, existsSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { request as apiRequest } from "playwright-core";
import {
  TIMEOUT_MS,
  check,
  indent,
  launchBrowser,
  listScreenshots,
  runTests,
  screenshot,
  startServer,
} from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const ADMIN = { email: "admin@example.test", password: "e2e-admin-password-1" };
const BOB = { email: "bob@example.test", password: "bob-password-12345" };
/** The access tokens' lifetime: short, so they expire while the tests run. */
const TTL_SECS = 5;

const WATCHDOG_MS = 5 * 60_000;
setTimeout(() => {
  console.error(`auth browser tests still running after ${WATCHDOG_MS / 60_000} minutes; giving up`);
  process.exit(1);
}, WATCHDOG_MS).unref();

/** A free loopback port (the server's address must be known before it starts: OIDC redirects). */
function freePort() {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

/** Polls `condition` until it is truthy; fails naming `what` after `timeoutMs`. */
async function eventually(what, condition, timeoutMs = TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 100));
  }
}

/** The real OpenID provider on `port`, accepting `redirect`. */
async function startProvider(port, redirect) {
  const dir = process.env.STROEM_TEST_OIDC_DIR;
  if (dir === undefined || !existsSync(join(dir, "node_modules/oidc-provider/package.json"))) {
    throw new Error(
      `the OIDC test provider is not installed (STROEM_TEST_OIDC_DIR=${dir ?? "unset"}): ` +
        "run `cargo xtask oidc` and set STROEM_TEST_OIDC_DIR, or use `cargo xtask test-ui`, which does both",
    );
  }
  // An ES module resolves its imports next to itself: the script goes beside node_modules.
  const script = join(dir, `provider-e2e-${process.pid}.mjs`);
  copyFileSync(resolve(here, "../../tests/oidc/provider.mjs"), script);
  const child = spawn(process.execPath, [script, String(port), redirect], { stdio: ["ignore", "pipe", "pipe"] });
  const output = [];
  child.stdout.on("data", (chunk) => output.push(chunk.toString()));
  child.stderr.on("data", (chunk) => output.push(chunk.toString()));
  const kill = () => child.kill("SIGKILL");
  process.on("exit", kill);
  const issuer = `http://127.0.0.1:${port}`;
  await eventually("the OpenID provider to answer its discovery document", async () => {
    if (child.exitCode !== null) throw new Error(`the OpenID provider exited:\n${output.join("")}`);
    try {
      return (await fetch(`${issuer}/.well-known/openid-configuration`)).ok;
    } catch {
      return false;
    }
  });
  return {
    issuer,
    stop() {
      child.kill("SIGTERM");
      process.off("exit", kill);
      rmSync(script, { force: true });
    },
  };
}

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const provider = await startProvider(await freePort(), `${base}/api/auth/oidc/test/callback`);
const server = await startServer({
  listen: `127.0.0.1:${port}`,
  config: `auth:
  jwt_secret: e2e-jwt-secret-0123456789abcdef0123456789
  refresh_secret: e2e-refresh-secret-0123456789abcdef
  base_url: ${base}
  access_token_ttl: ${TTL_SECS}s
  providers:
    internal: { provider_type: internal }
    test:
      provider_type: oidc
      display_name: Test IdP
      issuer_url: ${provider.issuer}
      client_id: stroem
      client_secret: stroem-secret
  initial_user: { email: "${ADMIN.email}", password: "${ADMIN.password}" }
`,
});
console.log(`stroem serve at ${server.url}, OpenID provider at ${provider.issuer}`);
const browser = await launchBrowser();
const consoleErrors = [];
/** Content Security Policy violations Chromium reported on any page of Strøm. */
const cspViolations = [];

/** A fresh browser profile's context: its own cookies, tabs that share them. */
async function newContext() {
  const context = await browser.newContext({ baseURL: server.url, viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(TIMEOUT_MS);
  context.on("page", (tab) => {
    tab.on("pageerror", (error) => consoleErrors.push(String(error)));
    tab.on("console", (message) => {
      if (tab.url().startsWith(server.url) && /Content Security Policy/i.test(message.text())) {
        cspViolations.push(`${tab.url()}: ${message.text()}`);
      }
    });
  });
  return context;
}

/** Every /api answer a context received: [method, path, status, bearer token]. */
function recordApi(context) {
  const answers = [];
  context.on("response", async (response) => {
    const url = new URL(response.url());
    if (!url.pathname.startsWith("/api/")) return;
    const auth = (await response.request().headerValue("authorization").catch(() => null)) ?? null;
    answers.push({
      method: response.request().method(),
      path: url.pathname,
      status: response.status(),
      token: auth?.replace(/^Bearer /, "") ?? null,
    });
  });
  return answers;
}

/** An API client outside the browser (its own cookies), signed in as `who`. */
async function apiAs(who) {
  const api = await apiRequest.newContext({ baseURL: server.url });
  const reply = await api.post("/api/auth/login", { data: who });
  check(reply.ok(), `API sign-in as ${who.email}: ${reply.status()} ${await reply.text()}`);
  const { access_token: token } = await reply.json();
  return { api, headers: { Authorization: `Bearer ${token}` } };
}

async function signIn(page, who) {
  await page.getByLabel("E-mail").fill(who.email);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
}

function accountButton(page) {
  return page.getByRole("button", { name: /Account menu of/ });
}

const context = await newContext();
const answers = recordApi(context);
const page = await context.newPage();
const state = {};

const tests = [
  [
    "password sign-in: a deep link asks to sign in, a wrong password is refused, then the page opens",
    async () => {
      const response = await page.goto("/jobs?status=completed");
      const csp = response?.headers()["content-security-policy"] ?? "";
      check(csp.includes("script-src 'self';"), `the page's CSP allows more scripts: ${csp}`);
      await page.waitForURL(/\/login\?next=%2Fjobs%3Fstatus%3Dcompleted$/);
      await page.getByRole("heading", { name: "Sign in to Strøm" }).waitFor();
      await page.getByRole("link", { name: "Sign in with Test IdP" }).waitFor();
      await screenshot(page, "auth-01-login");
      await signIn(page, { email: ADMIN.email, password: "not the password" });
      await page.getByRole("alert").getByText("The e-mail address or the password is wrong.").waitFor();
      await screenshot(page, "auth-02-login-refused");
      await signIn(page, ADMIN);
      await page.waitForURL(/\/jobs\?status=completed$/);
      await page.getByRole("heading", { name: "Jobs", level: 1 }).waitFor();
      check((await accountButton(page).innerText()).includes(ADMIN.email), "the user menu names the admin");
      const nav = page.getByRole("navigation", { name: "Main" });
      await nav.getByRole("link", { name: "Users", exact: true }).waitFor();
      await nav.getByRole("link", { name: "Audit", exact: true }).waitFor();
      // The access token is in memory only; the refresh token only in an HttpOnly cookie.
      const stored = await page.evaluate(() => JSON.stringify({ ...sessionStorage, ...localStorage }));
      check(!stored.includes("eyJ"), `a token was stored in web storage: ${stored}`);
      const cookie = (await context.cookies()).find((item) => item.name === "stroem_refresh");
      check(cookie?.httpOnly === true && cookie.path === "/api/auth", `refresh cookie: ${JSON.stringify(cookie)}`);
      await accountButton(page).click();
      await screenshot(page, "auth-03-signed-in-menu");
      await page.keyboard.press("Escape");
    },
  ],
  [
    "the access token is refreshed after it expires, and the page keeps working",
    async () => {
      const start = answers.length;
      await page.goto("/");
      await page.getByRole("heading", { name: "Dashboard", level: 1 }).waitFor();
      const first = await eventually("an authorised request", () => answers.findLast((item) => item.token !== null));
      const firstToken = first.token;
      // The dashboard polls; within two lifetimes its requests carry a refreshed token.
      const later = await eventually(
        "a request with a refreshed token",
        () => answers.find((item) => item.token !== null && item.token !== firstToken && item.status === 200),
        TTL_SECS * 3000,
      );
      check(later !== undefined, "no refreshed token");
      check(
        answers.some((item) => item.path === "/api/auth/refresh" && item.status === 200),
        "no successful refresh",
      );
      // The first token really expired: the server refuses it now.
      const api = await apiRequest.newContext({ baseURL: server.url });
      await eventually(
        "the first access token to expire",
        async () => (await api.get("/api/stats", { headers: { Authorization: `Bearer ${firstToken}` } })).status() === 401,
        TTL_SECS * 2000,
      );
      await api.dispose();
      await page.getByRole("region", { name: "Job counts by status" }).waitFor();
      check(!page.url().includes("/login"), `sent to ${page.url()}`);
      const refused = answers.slice(start).filter((item) => item.status === 401);
      check(refused.length === 0, `requests refused: ${JSON.stringify(refused)}`);
      // A reload has no token in memory: the refresh cookie signs the tab in again.
      await page.reload();
      await page.getByRole("heading", { name: "Dashboard", level: 1 }).waitFor();
      await accountButton(page).waitFor();
      check(!page.url().includes("/login"), `a reload sent the user to ${page.url()}`);
    },
  ],
  [
    "three tabs refreshing and reloading at once stay signed in (refreshes serialised)",
    async () => {
      const tabs = [page, await context.newPage(), await context.newPage()];
      const before = answers.length;
      const since = new Date().toISOString();
      await Promise.all(tabs.slice(1).map((tab) => tab.goto("/jobs")));
      await Promise.all(tabs.map((tab) => tab.getByRole("button", { name: /Account menu of/ }).waitFor()));
      for (let round = 0; round < 3; round += 1) {
        // All three reload together: each starts without a token and refreshes from the one
        // cookie they share. Unserialised, the second use of a refresh token revokes them all.
        await Promise.all(tabs.map((tab) => tab.reload()));
        await Promise.all(tabs.map((tab) => tab.getByRole("button", { name: /Account menu of/ }).waitFor()));
      }
      // And they keep refreshing as their tokens expire.
      const refreshes = () => answers.slice(before).filter((item) => item.path === "/api/auth/refresh").length;
      const target = refreshes() + 3;
      await eventually("three more refreshes", () => refreshes() >= target, TTL_SECS * 4000);
      const failed = answers.slice(before).filter((item) => item.status === 401);
      check(failed.length === 0, `refused in some tab: ${JSON.stringify(failed)}`);
      for (const tab of tabs) check(!tab.url().includes("/login"), `a tab was signed out: ${tab.url()}`);
      const { api, headers } = await apiAs(ADMIN);
      const reused = await (await api.get(`/api/audit?action=auth.refresh&limit=500&since=${encodeURIComponent(since)}`, { headers })).json();
      check(
        reused.every((entry) => entry.outcome === "success"),
        `refreshes refused: ${JSON.stringify(reused.filter((entry) => entry.outcome !== "success"))}`,
      );
      check(reused.length >= 3, `only ${reused.length} refreshes recorded`);
      await api.dispose();
      await screenshot(tabs[2], "auth-04-third-tab");
      await Promise.all(tabs.slice(1).map((tab) => tab.close()));
    },
  ],
  [
    "API keys: a new key is shown once, works, is listed, and is revoked",
    async () => {
      await accountButton(page).click();
      await page.getByRole("link", { name: "API keys" }).click();
      await page.waitForURL(/\/api-keys$/);
      await page.getByRole("heading", { name: "API keys", level: 1 }).waitFor();
      await page.getByLabel("Name", { exact: true }).fill("e2e-key");
      await page.getByLabel("Expires after (days)").fill("30");
      await page.getByRole("button", { name: "Create key" }).click();
      const field = page.getByLabel("New API key");
      await field.waitFor();
      const key = await field.inputValue();
      check(/^strm_[0-9a-f]{32}$/.test(key), `not a key: ${key}`);
      const row = page.locator(`tr[data-key-prefix="${key.slice(0, 12)}"]`);
      await row.waitFor();
      await screenshot(page, "auth-05-api-key-created");
      const api = await apiRequest.newContext({ baseURL: server.url });
      const works = await api.get("/api/workers", { headers: { Authorization: `Bearer ${key}` } });
      check(works.status() === 200, `the new key gets ${works.status()}`);
      await page.getByRole("button", { name: "Done" }).click();
      await field.waitFor({ state: "detached" });
      check(!(await page.locator("body").innerText()).includes(key), "the key is still shown after Done");
      await row.getByRole("button", { name: "Revoke e2e-key" }).click();
      await row.getByRole("alertdialog").getByRole("button", { name: "Revoke" }).click();
      await row.waitFor({ state: "detached" });
      const revoked = await api.get("/api/workers", { headers: { Authorization: `Bearer ${key}` } });
      check(revoked.status() === 401, `a revoked key gets ${revoked.status()}`);
      await api.dispose();
    },
  ],
  [
    "a job runs and its log streams live with authentication on (the WebSocket carries the token)",
    async () => {
      await page.goto("/workspaces/default/tasks/log-lines");
      await page.getByRole("heading", { name: "log-lines", level: 1 }).waitFor();
      await page.getByRole("button", { name: "Run", exact: true }).click();
      await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
      const id = new URL(page.url()).pathname.split("/").pop();
      const log = page.getByRole("log", { name: "Job log" });
      await log.getByText("line 1 of 8").waitFor();
      await log.getByText("line 8 of 8").waitFor();
      await page.getByTestId("job-status").locator('[data-status="completed"]').waitFor();
      const { api, headers } = await apiAs(ADMIN);
      const job = await (await api.get(`/api/jobs/${id}`, { headers })).json();
      check(
        job.source_type === "user" && job.source_id === ADMIN.email,
        `the job was started by ${job.source_type}/${job.source_id}`,
      );
      await api.dispose();
      await screenshot(page, "auth-05b-job-log");
    },
  ],
  [
    "users: an admin creates an account and sets its groups",
    async () => {
      await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Users", exact: true }).click();
      await page.waitForURL(/\/users$/);
      const form = page.getByRole("form", { name: "Create an account" });
      await form.getByLabel("E-mail").fill(BOB.email);
      await form.getByLabel("Name").fill("Bob");
      await form.getByLabel("Password").fill(BOB.password);
      await form.getByLabel("Groups").fill("ops, readers");
      await form.getByRole("button", { name: "Create account" }).click();
      await form.getByRole("status").getByText(`${BOB.email} was created.`).waitFor();
      const row = page.locator(`tr[data-user="${BOB.email}"]`);
      await row.getByText("ops, readers").waitFor();
      await row.getByRole("button", { name: "Groups" }).click();
      await row.getByLabel(`Groups of ${BOB.email}`).fill("ops");
      await row.getByRole("button", { name: "Save" }).click();
      await row.locator("td", { hasText: /^ops$/ }).waitFor();
      await page.getByRole("list", { name: "Groups" }).getByText("ops", { exact: true }).waitFor();
      await screenshot(page, "auth-06-users");
    },
  ],
  [
    "audit: the trail lists sign-ins, refusals and changes, and filters by action",
    async () => {
      await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit", exact: true }).click();
      await page.waitForURL(/\/audit$/);
      const table = page.getByRole("table", { name: "Audit trail" });
      await table.locator('tr[data-action="user.create"][data-outcome="success"]').first().waitFor();
      await table.locator('tr[data-action="api_key.revoke"]').first().waitFor();
      await page.getByLabel("Action").fill("auth.login");
      await page.getByRole("button", { name: "Filter" }).click();
      await page.waitForURL(/action=auth\.login/);
      await table.locator('tr[data-action="auth.login"][data-outcome="invalid_credentials"]').first().waitFor();
      await eventually(
        "only auth.login rows",
        async () => (await table.locator("tbody tr:not([data-action='auth.login'])").count()) === 0,
      );
      await screenshot(page, "auth-07-audit");
    },
  ],
  [
    "a non-admin does not see the admin pages",
    async () => {
      const other = await newContext();
      const tab = await other.newPage();
      await tab.goto("/login");
      await signIn(tab, BOB);
      await tab.getByRole("heading", { name: "Dashboard", level: 1 }).waitFor();
      const nav = tab.getByRole("navigation", { name: "Main" });
      await nav.getByRole("link", { name: "Jobs", exact: true }).waitFor();
      check((await nav.getByRole("link", { name: "Users", exact: true }).count()) === 0, "Bob sees Users");
      check((await nav.getByRole("link", { name: "Audit", exact: true }).count()) === 0, "Bob sees Audit");
      await tab.goto("/users");
      await tab.getByText("Only administrators may use this page.").waitFor();
      await screenshot(tab, "auth-08-not-admin");
      // On a phone the user menu still fits beside the menu button.
      await tab.setViewportSize({ width: 390, height: 844 });
      await tab.goto("/api-keys");
      await tab.getByRole("heading", { name: "API keys", level: 1 }).waitFor();
      await accountButton(tab).click();
      await tab.getByRole("button", { name: "Sign out" }).waitFor();
      await screenshot(tab, "auth-08b-phone-menu");
      const box = await tab.locator("#user-menu").boundingBox();
      check(box !== null && box.x >= 0 && box.x + box.width <= 390, `the menu leaves the screen: ${JSON.stringify(box)}`);
      const overflow = await tab.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      check(overflow <= 1, `the API keys page is ${overflow} px wider than a 390 px screen`);
      await other.close();
    },
  ],
  [
    "sign-out ends the session in every tab and on the server",
    async () => {
      const second = await context.newPage();
      await second.goto("/workers");
      await accountButton(second).waitFor();
      await page.goto("/");
      await accountButton(page).click();
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(/\/login$/);
      // The other tab learns it at once, not only when its token runs out.
      await second.waitForURL(/\/login\?next=%2Fworkers$/, { timeout: 2_000 });
      const cookie = (await context.cookies()).find((item) => item.name === "stroem_refresh");
      check(cookie === undefined, `the refresh cookie is still there: ${JSON.stringify(cookie)}`);
      await page.reload();
      await page.getByRole("heading", { name: "Sign in to Strøm" }).waitFor();
      await screenshot(page, "auth-09-signed-out");
      await second.close();
    },
  ],
  [
    "OIDC sign-in through the real provider's login and consent pages",
    async () => {
      const fresh = await newContext();
      const tab = await fresh.newPage();
      state.oidcTab = tab;
      await tab.goto("/workers");
      await tab.waitForURL(/\/login\?next=%2Fworkers$/);
      await tab.getByRole("link", { name: "Sign in with Test IdP" }).click();
      await tab.waitForURL((url) => url.origin === provider.issuer);
      await tab.locator('input[name="login"]').waitFor();
      await screenshot(tab, "auth-10-provider-login");
      await tab.locator('input[name="login"]').fill("carol");
      await tab.locator('input[name="password"]').fill("any-password");
      await tab.locator('button[type="submit"]').first().click();
      // The consent page (first sign-in of this account at this client).
      await eventually("the consent page or the way back to Strøm", async () => {
        if (tab.url().startsWith(server.url)) return true;
        try {
          const consent = tab.locator('button[type="submit"]');
          if ((await consent.count()) > 0 && (await tab.locator('input[name="login"]').count()) === 0) {
            await screenshot(tab, "auth-11-provider-consent");
            await consent.first().click();
            return true;
          }
        } catch {
          // The page navigated while it was looked at: look again.
        }
        return false;
      });
      await tab.waitForURL(`${server.url}/workers`);
      await accountButton(tab).waitFor();
      check((await accountButton(tab).innerText()).includes("carol@example.test"), "signed in as someone else");
      // The fragment with the token is gone from the address and the history.
      check(!tab.url().includes("access_token"), `the token stays in the address: ${tab.url()}`);
      const nav = tab.getByRole("navigation", { name: "Main" });
      check((await nav.getByRole("link", { name: "Users", exact: true }).count()) === 0, "a new OIDC user is admin");
      await screenshot(tab, "auth-12-oidc-signed-in");
      // The refresh cookie came with the callback: a reload stays signed in.
      await tab.reload();
      await accountButton(tab).waitFor();
      await fresh.close();
    },
  ],
  [
    "no page of Strøm reported a Content Security Policy violation",
    async () => {
      check(cspViolations.length === 0, `CSP violations:\n${cspViolations.join("\n")}`);
    },
  ],
];

let failed = 0;
try {
  console.log("auth browser tests:");
  failed = await runTests(tests, async (name) => {
    await screenshot(state.oidcTab ?? page, `failed-auth-${name.replace(/[^a-z0-9]+/gi, "-").slice(0, 60)}`);
  });
  if (consoleErrors.length > 0) {
    console.log(`\npage errors (${consoleErrors.length}):`);
    console.log(indent(consoleErrors.slice(0, 20).join("\n")));
  }
} finally {
  await browser.close().catch(() => {});
  if (failed > 0) {
    console.log("\nlast lines of the server's output:");
    console.log(indent(server.log().split("\n").slice(-40).join("\n")));
  }
  await server.stop();
  provider.stop();
}

listScreenshots();
console.log(`\n${tests.length - failed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
