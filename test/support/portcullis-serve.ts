import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { spawnDaemon, type DaemonProcess } from "./daemon-process.js";
import { makeTempDir } from "./temp-dir.js";

export const cliPath = resolve(import.meta.dirname, "../../dist/cli/main.js");

export interface PortcullisServe {
  /** `https://127.0.0.1:PORT` (or the listen host given). */
  url: string;
  port: number;
  /** Everything under one temp dir: `data/`, `certs/`, `serve.log`. */
  home: string;
  dataDir: string;
  certsDir: string;
  caPem: string;
  /** The password of the `admin` user the first start creates (when no users exist). */
  adminPassword: string;
  /** What the process printed so far. */
  output(): Promise<string>;
  process: DaemonProcess;
  stop(): Promise<void>;
}

export interface ServeOptions {
  /** HOST to listen on; 127.0.0.1 by default. The port is always picked free. */
  host?: string;
  /** Extra flags for `portcullis serve`, e.g. `["--upstream", url]` or `["--config", file]`. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Reuse a home from an earlier run (its certs and data) instead of a new temp dir. */
  home?: string;
}

/** Runs the built CLI (`npm run build` first) as `portcullis serve` and waits for its start banner. */
export async function startPortcullisServe(options: ServeOptions = {}): Promise<PortcullisServe> {
  const home = options.home ?? (await makeTempDir("portcullis-serve-")).path;
  const dataDir = join(home, "data");
  const certsDir = join(home, "certs");
  const host = options.host ?? "127.0.0.1";
  const logPath = join(home, `serve-${Date.now()}.log`);
  const child = spawnDaemon(
    process.execPath,
    [cliPath, "serve", "--listen", `${host}:0`, "--data", dataDir, "--certs", certsDir, ...(options.args ?? [])],
    { logPath, cwd: home, env: { ...process.env, PORTCULLIS_LOG_LEVEL: "warn", ...options.env } },
  );
  const deadline = Date.now() + 30_000;
  let port: number | undefined;
  while (Date.now() < deadline) {
    const log = await child.log();
    const match = /https:\/\/\S+:(\d+)\/ {2}\(CA/.exec(log);
    if (match) {
      port = Number(match[1]);
      break;
    }
    if (!child.isRunning()) throw new Error(`portcullis serve exited before it was ready:\n${log}`);
    await sleep(100);
  }
  if (port === undefined) {
    await child.stop();
    throw new Error(`portcullis serve did not print its banner within 30 s:\n${await child.log()}`);
  }
  return {
    url: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    port,
    home,
    dataDir,
    certsDir,
    caPem: await readFile(join(certsDir, "ca.crt"), "utf8"),
    adminPassword: (await readFile(join(certsDir, "admin-password"), "utf8").catch(() => "")).trim(),
    output: () => child.log(),
    process: child,
    stop: () => child.stop(),
  };
}
