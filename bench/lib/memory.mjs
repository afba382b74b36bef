// Peak memory of one side's processes (a server, its workers, nginx's master and workers) while it runs,
// over its whole life and over a phase such as one push.

import { processName, processTree, readProcStatus, resetPeakRss } from "./proc-stats.mjs";

const POLL_MS = 100;

/**
 * Samples the VmHWM of every process under `rootPids()` (polled, so a worker forked later is found). A peak
 * is the sum of each process's own peak: an upper bound of what they held at one moment. Only the server's
 * own processes count: those running the same program as a root, seen in two polls or more. A helper it runs
 * for a moment (Portcullis runs `hostname -f` at start) is left out: just forked, it shows its parent's memory.
 */
export function memorySampler(rootPids) {
  const seen = new Map(); // pid → { name, root, polls, lifetime, phase }
  let inPhase = false;
  let exact = true;
  const pids = () => rootPids().flatMap((pid) => processTree(pid));
  const rootNames = () => new Set(rootPids().map((pid) => seen.get(pid)?.name ?? processName(pid)));
  const poll = () => {
    const roots = rootPids();
    for (const pid of pids()) {
      const hwm = readProcStatus(pid)?.hwm;
      if (!hwm) continue;
      const entry = seen.get(pid) ?? { root: roots.includes(pid), polls: 0, lifetime: 0, phase: 0 };
      entry.name = processName(pid);
      entry.polls += 1;
      entry.lifetime = Math.max(entry.lifetime, hwm);
      if (inPhase) entry.phase = Math.max(entry.phase, hwm);
      seen.set(pid, entry);
    }
  };
  const servers = () => {
    const names = rootNames();
    return [...seen].filter(([, e]) => e.root || (e.polls >= 2 && names.has(e.name)));
  };
  const total = (key) => servers().reduce((a, [, e]) => a + e[key], 0);
  poll();
  const timer = setInterval(poll, POLL_MS);
  timer.unref();
  return {
    /** Starts a phase: each process's peak is reset to what it holds now. Its `end()` resolves to the bytes. */
    phase() {
      poll();
      for (const entry of seen.values()) entry.phase = 0;
      for (const pid of pids()) if (!resetPeakRss(pid)) exact = false;
      inPhase = true;
      poll();
      return {
        end() {
          poll();
          inPhase = false;
          return total("phase");
        },
      };
    },
    /** The peak over the whole time sampled. */
    lifetimePeak() {
      poll();
      return total("lifetime");
    },
    /** How many of the server's processes were seen. */
    processCount: () => servers().length,
    /** The server's processes seen that are gone now (a worker that died, say): `[name]`. */
    exitedSoFar: () =>
      servers()
        .filter(([pid]) => readProcStatus(pid) === null)
        .map(([, e]) => `${e.name}${e.root ? "" : " (child)"}`),
    /** Each process's peak over the whole time sampled: `[{ name, bytes }]`, largest first. */
    processPeaks: () =>
      servers()
        .map(([, e]) => ({ name: `${e.name}${e.root ? "" : " (child)"}`, bytes: e.lifetime }))
        .sort((a, b) => b.bytes - a.bytes),
    /** False when a peak could not be reset (not root): phase peaks are then peaks since each process started. */
    exact: () => exact,
    stop() {
      clearInterval(timer);
    },
  };
}
