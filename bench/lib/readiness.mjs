import http from "node:http";
import https from "node:https";
import { tail } from "./tail.mjs";

const READY_TIMEOUT_MS = 30_000;

// Resolves to the HTTP status of a GET, or null while nothing answers (the error is kept for the report).
let lastProbeError = null;
export function probe(url, agent) {
  return new Promise((resolve) => {
    const get = url.startsWith("https:") ? https.get : http.get;
    const req = get(url, { agent: agent ?? false }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.setTimeout(2000, () => req.destroy(new Error(`GET ${url}: no answer within 2 s`)));
    req.on("error", (err) => {
      lastProbeError = `${url}: ${err.message}`;
      resolve(null);
    });
  });
}

/** Polls `check` until it resolves true; throws with the process's output when it exits or the time is up. */
export async function waitReady(proc, check) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const result = await Promise.race([
      proc.exited.then((e) => ({ exited: e })),
      proc.spawnError,
      check().then((ready) => ({ ready })),
    ]);
    if (result.exited) {
      const { code, signal } = result.exited;
      throw new Error(
        `${proc.describe()} exited (code ${code}, signal ${signal}) before it was ready:\n${tail(proc.output())}`,
      );
    }
    if (result.ready) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${proc.describe()} not ready after ${READY_TIMEOUT_MS} ms (last probe: ${lastProbeError}):\n${tail(proc.output())}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
