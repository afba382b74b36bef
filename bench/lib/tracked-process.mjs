import { spawn } from "node:child_process";
import { killChild, trackChild, untrackChild } from "./cleanup.mjs";
import { tail } from "./tail.mjs";

const STOP_GRACE_MS = 5_000;

function groupAlive(pid) {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A spawned server whose output is kept (the tail). A detached one (nginx, Portcullis with its workers) leads
 * a process group of its own and is killed as a group, so nothing it forked outlives it.
 */
export function spawnTracked(name, cmd, args, options = {}) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
  const group = options.detached === true;
  trackChild(child, { group });
  let output = "";
  const keep = (data) => {
    output = tail(output + data.toString(), 64 * 1024);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const spawnError = new Promise((_, reject) => child.once("error", reject));
  spawnError.catch(() => {});
  return {
    name,
    pid: child.pid,
    describe: () => `${name} (${cmd} ${args.join(" ")})`,
    output: () => output,
    exited,
    spawnError,
    alive: () => child.exitCode === null && child.signalCode === null,
    /**
     * SIGTERM to the process (a leader stops its own workers), SIGKILL after STOP_GRACE_MS. Resolves to
     * `{ stopSeconds, killed, leftovers, ended }`: `leftovers` when processes of its group were still there
     * after it had exited (they are killed then); `ended`, how it exited ("code 0", "signal SIGKILL").
     */
    async stop() {
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
      let leftovers = false;
      if (group) {
        // Give a leader's children the moment they need to follow it before calling them leftovers.
        for (let i = 0; i < 20 && groupAlive(child.pid); i++) await new Promise((r) => setTimeout(r, 50));
        leftovers = groupAlive(child.pid);
        killChild(child, "SIGKILL");
      }
      untrackChild(child);
      const { code, signal } = await exited;
      const ended = signal ? `signal ${signal}` : `code ${code}`;
      return { stopSeconds: (performance.now() - stopping) / 1000, killed, leftovers, ended };
    },
  };
}
