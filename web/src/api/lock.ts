// One holder at a time across every tab of this browser for the same origin. A refresh token
// works once (API §5.2): two tabs refreshing with the same cookie would look like a stolen token
// and sign everybody out, so refreshes run under this lock.
//
// - The Web Locks API where the browser has it (every current browser, in secure contexts:
//   https and http://localhost). A lock is released when its tab closes.
// - Otherwise (plain http to another host) a lease in localStorage: written, read back after a
//   short pause so a tab that wrote at the same moment sees it lost, and given up after
//   `LEASE_MS` if its holder vanished. Not atomic like Web Locks, but it only has to keep
//   refreshes, a few per hour, apart.
// - Without storage either, a queue within this tab.

const LEASE_MS = 10_000;
/** How long a writer waits before reading its lease back. */
const SETTLE_MS = 30;
const POLL_MS = 50;
/** The longest a tab waits for a stuck lease before going ahead anyway. */
const GIVE_UP_MS = 15_000;

interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

function webLocks(): LockManagerLike | null {
  const locks = (globalThis.navigator as { locks?: LockManagerLike } | undefined)?.locks;
  return locks !== undefined && typeof locks.request === "function" ? locks : null;
}

function storage(): Storage | null {
  try {
    const store = globalThis.localStorage;
    if (store === undefined) return null;
    const probe = "stroem.lock.probe";
    store.setItem(probe, "1");
    store.removeItem(probe);
    return store;
  } catch {
    return null;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Lease {
  owner: string;
  until: number;
}

function readLease(store: Storage, key: string): Lease | null {
  try {
    const value = JSON.parse(store.getItem(key) ?? "null") as Lease | null;
    return value !== null && typeof value.owner === "string" && typeof value.until === "number" ? value : null;
  } catch {
    return null;
  }
}

export async function withStorageLease<T>(store: Storage, name: string, body: () => Promise<T>): Promise<T> {
  const key = `stroem.lock.${name}`;
  const owner = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const started = Date.now();
  for (;;) {
    const lease = readLease(store, key);
    if (lease === null || lease.until < Date.now()) {
      store.setItem(key, JSON.stringify({ owner, until: Date.now() + LEASE_MS }));
      await sleep(SETTLE_MS);
      if (readLease(store, key)?.owner === owner) break;
    } else if (Date.now() - started > GIVE_UP_MS) {
      break;
    }
    await sleep(POLL_MS + Math.random() * POLL_MS);
  }
  try {
    return await body();
  } finally {
    if (readLease(store, key)?.owner === owner) store.removeItem(key);
  }
}

/** This tab's queue: the fallback of the fallback, and what keeps one tab's callers in order. */
const queues = new Map<string, Promise<unknown>>();

function inTab<T>(name: string, body: () => Promise<T>): Promise<T> {
  const previous = queues.get(name) ?? Promise.resolve();
  const run = previous.then(body, body);
  const settled = run.catch(() => undefined);
  queues.set(name, settled);
  void settled.then(() => {
    if (queues.get(name) === settled) queues.delete(name);
  });
  return run;
}

/** Runs `body` while holding the browser-wide lock `name`. */
export function withLock<T>(name: string, body: () => Promise<T>): Promise<T> {
  const locks = webLocks();
  if (locks !== null) return locks.request(`stroem.${name}`, body);
  const store = storage();
  return inTab(name, store === null ? body : () => withStorageLease(store, name, body));
}
