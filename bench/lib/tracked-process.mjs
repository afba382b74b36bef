import { spawn } from "node:child_process";
import { killChild, trackChild, untrackChild } from "./cleanup.mjs";
import { childPids, readCpuSeconds, readProcStatus } from "./proc-stats.mjs";
import { tail } from "./tail.mjs";

const RSS_POLL_MS = 100;
export const STOP_GRACE_MS = 5_000;

/**
 * A spawned server whose output is kept (the tail) and whose memory and CPU time are sampled from /proc
 * once `startSampling()` is called. A detached one (nginx) is measured with its children and killed as a group.
 */
export function spawnTracked(name, cmd, args, options = {}) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
  trackChild(child, { group: options.detached === true });
  let output = "";
  const keep = (data) => {
    output = tail(output + data.toString(), 64 * 1024);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const spawnError = new Promise((_, reject) => child.once("error", reject));
  spawnError.catch(() => {});
  const pids = () => [child.pid, ...(options.detached ? childPids(child.pid) : [])];
  let maxRss = 0;
  const hwm = new Map();
  const cpuAtStart = new Map();
  const cpuLast = new Map();
  const sample = () => {
    let rss = 0;
    for (const pid of pids()) {
      const s = readProcStatus(pid);
      if (s?.rss) rss += s.rss;
      if (s?.hwm) hwm.set(pid, Math.max(hwm.get(pid) ?? 0, s.hwm));
      const cpu = readCpuSeconds(pid);
      if (cpu !== null) {
        if (!cpuAtStart.has(pid)) cpuAtStart.set(pid, cpu);
        cpuLast.set(pid, cpu);
      }
    }
    maxRss = Math.max(maxRss, rss);
  };
  let poller = null;
  return {
    name,
    child,
    describe: () => `${name} (${cmd} ${args.join(" ")})`,
    output: () => output,
    exited,
    spawnError,
    alive: () => child.exitCode === null && child.signalCode === null,
    startSampling() {
      sample();
      poller = setInterval(sample, RSS_POLL_MS);
    },
    async stop() {
      if (poller) clearInterval(poller);
      sample();
      const stopping = performance.now();
      let killed = false;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => {
          killed = true;
          killChild(child, "SIGKILL");
        }, STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      const stopSeconds = (performance.now() - stopping) / 1000;
      // Whatever of an nginx group outlived its master.
      if (options.detached) killChild(child, "SIGKILL");
      untrackChild(child);
      const peaks = [...hwm.values()];
      let cpuSeconds = 0;
      for (const [pid, last] of cpuLast) cpuSeconds += last - cpuAtStart.get(pid);
      return {
        // CPU used from the first sample (server ready, before the push) to the last (after the pull).
        cpuSeconds: Math.round(cpuSeconds * 100) / 100,
        // Sum of each process's own peak: an upper bound when there are several (nginx master + worker).
        peakRssBytes: peaks.length ? peaks.reduce((a, b) => a + b, 0) : null,
        maxPolledRssBytes: maxRss,
        stopSeconds,
        killed,
      };
    },
  };
}
