// The pieces the browser tests stand on: a real `stroem serve` on a free loopback port with a
// throw-away data directory, Debian's Chromium driven by playwright-core, a tiny sequential test
// runner, and screenshots. No test framework: playwright-core has none, and these tests are a
// story (run a job, then find it) rather than independent cases.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));

export const WORKSPACE = join(here, "workspace");
export const SCREENSHOTS = resolve(process.env.STROEM_SCREENSHOTS ?? join(here, "screenshots"));
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
// The flags this offline machine needs: no sandbox as root, no GPU, and no background
// connections to Google that the closed network would refuse (see ENVIRONMENT.md).
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** How long a condition may take before a test fails (a job runs a few seconds at most). */
export const TIMEOUT_MS = 20_000;

/**
 * Starts `stroem serve` on 127.0.0.1 (port 0 unless `listen` names one) with `config` (a
 * stroem.yaml's text, written into the data directory) when given; resolves once it printed
 * its address.
 */
export async function startServer({ listen = "127.0.0.1:0", config = null } = {}) {
  const binary = process.env.STROEM_BIN;
  if (binary === undefined || !existsSync(binary)) {
    throw new Error(
      `STROEM_BIN must name a built stroem binary (got ${binary ?? "nothing"}); ` +
        "`cargo xtask test-ui` builds one and sets it",
    );
  }
  const dataDir = mkdtempSync(join(tmpdir(), "stroem-e2e-"));
  // Only what the server needs from the environment: a developer's STROEM__* settings or
  // STROEM_CONFIG must not change what the tests run against.
  const env = { PATH: process.env.PATH, HOME: dataDir, RUST_LOG: "info,sqlx=warn", NO_COLOR: "1" };
  const args = ["serve", "--listen", listen, "--data-dir", dataDir, "--workspace", WORKSPACE];
  if (config !== null) {
    const file = join(dataDir, "stroem.yaml");
    writeFileSync(file, config, { mode: 0o600 });
    args.push("--config", file);
  }
  const child = spawn(binary, args, {
    cwd: dataDir,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  // However this process ends (a failed assertion, the watchdog), the server goes with it.
  const killOnExit = () => child.kill("SIGKILL");
  process.on("exit", killOnExit);
  const output = [];
  const keep = (chunk) => {
    output.push(chunk.toString());
    if (output.length > 400) output.splice(0, output.length - 400);
  };
  child.stderr.on("data", keep);
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`stroem serve printed no address in 30 s:\n${output.join("")}`)),
      30_000,
    );
    let stdout = "";
    child.stdout.on("data", (chunk) => {
      keep(chunk);
      stdout += chunk.toString();
      const match = /serving on (http:\/\/\S+)/.exec(stdout);
      if (match !== null) {
        clearTimeout(timer);
        resolveUrl(match[1]);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`stroem serve exited with ${code}:\n${output.join("")}`));
    });
  });
  return {
    url,
    log: () => output.join(""),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((done) => child.once("exit", done));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(timer);
      }
      process.off("exit", killOnExit);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no Chromium at ${CHROMIUM}: install Debian's package ` +
        "(apt-get install -y --no-install-recommends chromium) or set CHROMIUM",
    );
  }
  // playwright-core gives every launch a fresh, empty profile directory of its own.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

const shots = [];

/** Removes the screenshots of an earlier run, so the folder shows only this run's. */
export function clearScreenshots() {
  if (!existsSync(SCREENSHOTS)) return;
  for (const name of readdirSync(SCREENSHOTS)) {
    if (name.endsWith(".png")) rmSync(join(SCREENSHOTS, name));
  }
}

/** A full-page screenshot into SCREENSHOTS, listed at the end of the run. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  shots.push(path);
  return path;
}

/** Runs `tests` ([name, async fn]) in order; returns the number that failed. */
export async function runTests(tests, onFailure) {
  let failed = 0;
  for (const [name, body] of tests) {
    const started = performance.now();
    try {
      await body();
      console.log(`  ok    ${name} (${Math.round(performance.now() - started)} ms)`);
    } catch (error) {
      failed += 1;
      console.log(`  FAIL  ${name} (${Math.round(performance.now() - started)} ms)`);
      console.log(indent(String(error?.stack ?? error)));
      await onFailure(name).catch(() => {});
    }
  }
  return failed;
}

export function listScreenshots() {
  if (shots.length === 0) return;
  console.log(`\nscreenshots (${shots.length}) in ${SCREENSHOTS}:`);
  for (const path of shots) console.log(`  ${path}`);
}

export function indent(text) {
  return text
    .split("\n")
    .map((line) => `        ${line}`)
    .join("\n");
}

/** Fails with `message` unless `condition` holds. */
export function check(condition, message) {
  if (!condition) throw new Error(message);
}
