// Peak memory of one side's processes (a server, its workers, nginx's master and workers) while it runs,
// over its whole life and over a phase such as one push.

import { processName, processTree, readProcStatus, resetPeakRss } from "./proc-stats.mjs";

const POLL_MS = 100;

const sum = (map) => [...map.values()].reduce((a, b) => a + b, 0);

/**
 * Samples the VmHWM of every process under `rootPids()` (polled, so a worker forked later is found). A peak
 * is the sum of each process's own peak: an upper bound of what they held at one moment.
 */
export function memorySampler(rootPids) {
  const lifetime = new Map();
  const names = new Map();
  let phase = null;
  let exact = true;
  const pids = () => rootPids().flatMap((pid) => processTree(pid));
  const poll = () => {
    for (const pid of pids()) {
      const hwm = readProcStatus(pid)?.hwm;
      if (!hwm) continue;
      lifetime.set(pid, Math.max(lifetime.get(pid) ?? 0, hwm));
      if (!names.has(pid)) names.set(pid, `${processName(pid)}${rootPids().includes(pid) ? "" : " (child)"}`);
      if (phase) phase.set(pid, Math.max(phase.get(pid) ?? 0, hwm));
    }
  };
  poll();
  const timer = setInterval(poll, POLL_MS);
  timer.unref();
  return {
    /** Starts a phase: each process's peak is reset to what it holds now. Its `end()` resolves to the bytes. */
    phase() {
      poll();
      phase = new Map();
      for (const pid of pids()) if (!resetPeakRss(pid)) exact = false;
      poll();
      return {
        end() {
          poll();
          const bytes = sum(phase);
          phase = null;
          return bytes;
        },
      };
    },
    /** The peak over the whole time sampled. */
    lifetimePeak() {
      poll();
      return sum(lifetime);
    },
    /** How many processes were seen. */
    processCount: () => lifetime.size,
    /** The processes seen that are gone now (a worker that died, say): `[name]`. */
    exitedSoFar: () => [...lifetime.keys()].filter((pid) => readProcStatus(pid) === null).map((pid) => names.get(pid)),
    /** Each process's peak over the whole time sampled: `[{ name, bytes }]`, largest first. */
    processPeaks: () =>
      [...lifetime].map(([pid, bytes]) => ({ name: names.get(pid), bytes })).sort((a, b) => b.bytes - a.bytes),
    /** False when a peak could not be reset (not root): phase peaks are then peaks since each process started. */
    exact: () => exact,
    stop() {
      clearInterval(timer);
    },
  };
}
