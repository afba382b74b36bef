import { spawn } from "node:child_process";
import { trackChild, untrackChild } from "./cleanup.mjs";
import { tail } from "./tail.mjs";

const DEFAULT_TIMEOUT_MS = 10 * 60_000;

/**
 * Runs a client program to its end; resolves to `{ stdout, stderr, seconds }` (wall-clock, spawn to exit).
 * A non-zero exit, a signal or the timeout is an error that shows the command and the end of its output.
 */
export function runCommand(cmd, args, { env, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env });
    trackChild(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout = tail(stdout + d.toString(), 256 * 1024)));
    child.stderr.on("data", (d) => (stderr = tail(stderr + d.toString(), 64 * 1024)));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      untrackChild(child);
      reject(new Error(`${cmd}: ${err.message}`));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      untrackChild(child);
      const seconds = (performance.now() - started) / 1000;
      if (code === 0) return resolve({ stdout, stderr, seconds });
      const why = signal
        ? `was killed by ${signal}${signal === "SIGKILL" ? ` (timeout ${timeoutMs / 1000} s?)` : ""}`
        : `exited with ${code}`;
      reject(
        new Error(
          `${cmd} ${args.join(" ")} ${why} after ${seconds.toFixed(1)} s\n` +
            `--- stderr (tail) ---\n${tail(stderr, 3000)}\n--- stdout (tail) ---\n${tail(stdout, 2000)}`,
        ),
      );
    });
  });
}
