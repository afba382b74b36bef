import http from "node:http";
import https from "node:https";
import { tail } from "./tail.mjs";

const READY_TIMEOUT_MS = 60_000;
const POLL_MS = 10;

let lastProbeError = null;

/** Resolves to the HTTP status of a GET on a new connection, or null while nothing answers. */
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

/**
 * Polls `check` every 10 ms until it resolves true; throws with the output of `procs` when one of them exits
 * or the time is up.
 */
export async function waitReady(procs, check) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const exits = procs.map((proc) => proc.exited.then((e) => ({ exited: e, proc })));
  const outputs = () => procs.map((p) => `--- ${p.name} ---\n${tail(p.output())}`).join("\n");
  for (;;) {
    const result = await Promise.race([
      ...exits,
      ...procs.map((p) => p.spawnError),
      check().then((ready) => ({ ready })),
    ]);
    if (result.exited) {
      const { code, signal } = result.exited;
      throw new Error(
        `${result.proc.describe()} exited (code ${code}, signal ${signal}) before it was ready` +
          `${signal === "SIGINT" ? " (the benchmark sends only SIGTERM and SIGKILL: another process sent it)" : ""}:\n${outputs()}`,
      );
    }
    if (result.ready) return;
    if (Date.now() > deadline) {
      throw new Error(`not ready after ${READY_TIMEOUT_MS} ms (last probe: ${lastProbeError}):\n${outputs()}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
