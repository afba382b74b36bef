import http from "node:http";
import https from "node:https";
import { tail } from "./tail.mjs";

const READY_TIMEOUT_MS = 60_000;
const PROBE_EVERY_MS = 10;
const MAX_IN_FLIGHT = 50;
// How long connections the server took before the one it answered first get to be answered too.
const STALLED_MS = 2000;

/**
 * Sends GET `url` on a new connection every 10 ms, without waiting for earlier ones, until an answer passes
 * `accept(status)`; a connection the server accepts but never answers then cannot hide the moment it can
 * answer. `agent()` is the agent to use, or null while there is nothing to trust yet (no request is sent).
 * Resolves to `{ ms, stalled }`: the time from `since` (the spawn) to that answer, and how many connections the
 * server accepted before that one and still had not answered 2 s after it. Throws with the
 * output of `procs` when one of them exits first or nothing passes within a minute.
 */
export function waitForAnswer(procs, url, { agent, accept, since = performance.now() }) {
  const started = since;
  const get = url.startsWith("https:") ? https.get : http.get;
  const inFlight = new Set();
  let lastError = null;
  let timer = null;
  let won = false;
  const outputs = () => procs.map((p) => `--- ${p.name} ---\n${tail(p.output())}`).join("\n");

  return new Promise((resolve, reject) => {
    const finish = (err, value) => {
      clearInterval(timer);
      for (const probe of inFlight) probe.req.destroy();
      inFlight.clear();
      if (err) reject(err);
      else resolve(value);
    };
    for (const proc of procs) {
      proc.exited.then(({ code, signal }) =>
        finish(
          new Error(
            `${proc.describe()} exited (code ${code}, signal ${signal}) before it answered` +
              `${signal === "SIGINT" ? " (the benchmark sends only SIGTERM and SIGKILL: another process sent it)" : ""}:\n${outputs()}`,
          ),
        ),
      );
      proc.spawnError.catch((err) => finish(err));
    }
    const send = () => {
      const now = performance.now();
      if (now - started > READY_TIMEOUT_MS) {
        return finish(
          new Error(`no answer on ${url} after ${READY_TIMEOUT_MS} ms (last: ${lastError}):\n${outputs()}`),
        );
      }
      const trusting = agent();
      if (trusting === null || inFlight.size >= MAX_IN_FLIGHT) return;
      const probe = { sentAt: now, connected: false };
      probe.req = get(url, { agent: trusting }, (res) => {
        res.resume();
        inFlight.delete(probe);
        if (won || !accept(res.statusCode)) return;
        won = true;
        const ms = performance.now() - started;
        clearInterval(timer);
        const earlier = [...inFlight].filter((p) => p.connected && p.sentAt < probe.sentAt);
        for (const p of inFlight) if (!earlier.includes(p)) p.req.destroy();
        if (earlier.length === 0) return finish(null, { ms, stalled: 0 });
        setTimeout(() => finish(null, { ms, stalled: earlier.filter((p) => inFlight.has(p)).length }), STALLED_MS);
      });
      probe.req.on("socket", (socket) => socket.once("connect", () => (probe.connected = true)));
      probe.req.on("error", (err) => {
        lastError = err.message;
        inFlight.delete(probe);
      });
      inFlight.add(probe);
    };
    timer = setInterval(send, PROBE_EVERY_MS);
    send();
  });
}

/**
 * Resolves once `proc`'s output contains `text` (Portcullis prints its banner when every worker accepts);
 * throws when the process exits first or `timeoutMs` passes.
 */
export async function waitForOutput(proc, text, timeoutMs = READY_TIMEOUT_MS) {
  const started = performance.now();
  while (!proc.output().includes(text)) {
    if (!proc.alive()) throw new Error(`${proc.name} exited before it printed "${text}":\n${tail(proc.output())}`);
    if (performance.now() - started > timeoutMs) {
      throw new Error(`${proc.name} did not print "${text}" within ${timeoutMs / 1000} s:\n${tail(proc.output())}`);
    }
    await new Promise((resolve) => setTimeout(resolve, PROBE_EVERY_MS));
  }
}
