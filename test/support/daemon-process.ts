import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { TempDir } from "./temp-dir.js";

export interface DaemonProcess {
  pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  isRunning(): boolean;
  /** Everything the daemon wrote to stdout and stderr so far. */
  log(): Promise<string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** What a test holds of a daemon it started: its log, and stop(). */
export interface RunningDaemon {
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** A daemon whose files all live in `work`: stop() ends the daemon, then removes `work`. */
export function daemonInDir(daemon: DaemonProcess, work: TempDir): RunningDaemon {
  return {
    log: () => daemon.log(),
    async stop() {
      await daemon.stop();
      await work.stop();
    },
  };
}

export interface DaemonOptions {
  logPath: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Starts a long-running program with stdout and stderr going to `logPath`. */
export function spawnDaemon(file: string, args: readonly string[], options: DaemonOptions): DaemonProcess {
  const logFd = openSync(options.logPath, "a");
  let child: ChildProcess;
  try {
    child = spawn(file, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ["ignore", logFd, logFd],
    });
  } finally {
    closeSync(logFd);
  }
  let running = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => {
      running = false;
      resolve({ code, signal });
    });
    child.once("error", () => {
      running = false;
      resolve({ code: null, signal: null });
    });
  });
  if (child.pid === undefined) throw new Error(`could not start ${file}`);
  const pid = child.pid;
  return {
    pid,
    exited,
    isRunning: () => running,
    log: () => readFile(options.logPath, "utf8").catch(() => ""),
    async stop(graceMs = 15_000) {
      if (!running) return;
      child.kill("SIGTERM");
      const outcome = await Promise.race([exited.then(() => "exited" as const), sleep(graceMs, "timeout" as const)]);
      if (outcome === "timeout") {
        child.kill("SIGKILL");
        await exited;
      }
    },
  };
}

export interface WaitOptions {
  what: string;
  timeoutMs?: number;
  intervalMs?: number;
  /** Stop waiting, with the daemon's log in the error, as soon as this daemon has exited. */
  daemon?: DaemonProcess;
}

/** Polls `check` until it returns true; throws naming `what` (and the daemon's log) on timeout. */
export async function waitUntil(check: () => Promise<boolean>, options: WaitOptions): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (options.daemon !== undefined && !options.daemon.isRunning()) {
      const { code, signal } = await options.daemon.exited;
      throw new Error(
        `${options.what}: the process exited (code ${code}, signal ${signal}) before it was ready:\n${await options.daemon.log()}`,
      );
    }
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    await sleep(options.intervalMs ?? 100);
  }
  const log = options.daemon === undefined ? "" : `\n${await options.daemon.log()}`;
  throw new Error(
    `${options.what}: not ready after ${options.timeoutMs ?? 30_000} ms (last error: ${String(lastError)})${log}`,
  );
}
