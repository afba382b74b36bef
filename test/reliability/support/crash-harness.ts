import { execFile } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { checkStorage, type Problem } from "../../../src/registry/fsck.js";
import { createFilesystemDriver } from "../../../src/registry/storage/filesystem.js";
import { cliPath, startPortcullisServe, type PortcullisServe } from "../../support/portcullis-serve.js";
import { createRegistryClient, sha256, type PushedImage, type RegistryClient } from "./registry-client.js";

const run = promisify(execFile);

/** Compiles the kill shim (kill-shim.c) into `dir`; the path of the library to preload. */
export async function buildKillShim(dir: string): Promise<string> {
  const out = join(dir, "kill-shim.so");
  await run("gcc", ["-shared", "-fPIC", "-O1", "-o", out, resolve(import.meta.dirname, "kill-shim.c"), "-ldl"]);
  return out;
}

/** Environment that makes the preloaded shim kill the server on entry to `call` on a path containing `path`. */
export function killAt(shim: string, call: string, path: string, nth = 1): NodeJS.ProcessEnv {
  // libuv may submit file operations through io_uring, which no preloaded library sees.
  return {
    LD_PRELOAD: shim,
    UV_USE_IO_URING: "0",
    KILL_SHIM_CALL: call,
    KILL_SHIM_PATH: path,
    KILL_SHIM_NTH: String(nth),
  };
}

/** `portcullis serve` as one process (so one kill takes the whole server down) in `home`. */
export async function startServer(home: string | undefined, env: NodeJS.ProcessEnv = {}): Promise<PortcullisServe> {
  // The checks after each restart make more requests in a minute than one account's default budget.
  const budgets = {
    PORTCULLIS_RATE_LIMITS_REQUESTS_PER_ACCOUNT_POINTS: "10000000",
    PORTCULLIS_RATE_LIMITS_REQUESTS_PER_ACCOUNT_DURATION_SECONDS: "60",
    PORTCULLIS_RATE_LIMITS_TOKEN_REQUESTS_PER_IP_POINTS: "10000000",
    PORTCULLIS_RATE_LIMITS_TOKEN_REQUESTS_PER_IP_DURATION_SECONDS: "60",
  };
  const start = () =>
    startPortcullisServe({ home, env: { PORTCULLIS_WORKERS: "1", UV_USE_IO_URING: "0", ...budgets, ...env } });
  try {
    return await start();
  } catch (error) {
    // Seen on the shared test machine: a start that exits before printing anything at all (something else
    // ended it); one more try tells that apart from a server that cannot start.
    if (!/exited before it was ready:\s*$/.test((error as Error).message)) throw error;
    return start();
  }
}

export function clientFor(server: PortcullisServe): RegistryClient {
  return createRegistryClient({ url: server.url, ca: server.caPem, user: "admin", password: server.adminPassword });
}

/** Every acknowledged push pulls byte-identical: the manifest by tag and by digest, and every blob. */
export async function expectPullable(client: RegistryClient, images: readonly PushedImage[]): Promise<string[]> {
  const failures: string[] = [];
  for (const image of images) {
    for (const reference of [image.tag, image.digest]) {
      const answer = await client.send("GET", `/v2/${image.repo}/manifests/${reference}`, {
        repo: image.repo,
        headers: { Accept: "application/vnd.oci.image.manifest.v1+json" },
      });
      if (answer.status !== 200 || !answer.body.equals(image.manifest)) {
        failures.push(`${image.repo}:${reference} answered ${answer.status}`);
      }
    }
    for (const [digest, content] of image.blobs) {
      const answer = await client.send("GET", `/v2/${image.repo}/blobs/${digest}`, { repo: image.repo });
      if (answer.status !== 200 || sha256(answer.body) !== sha256(content)) {
        failures.push(`${image.repo}@${digest} answered ${answer.status} with ${answer.body.length} bytes`);
      }
    }
  }
  return failures;
}

/** No listing shows what a GET cannot serve: every repository in the catalog lists tags that all resolve. */
export async function expectListingsServable(client: RegistryClient): Promise<string[]> {
  const token = await client.token(["registry:catalog:*"]);
  const bearer = (JSON.parse(token.body.toString()) as { token: string }).token;
  const catalog = await client.send("GET", "/v2/_catalog?n=10000", { headers: { Authorization: `Bearer ${bearer}` } });
  const failures: string[] = [];
  for (const repo of (JSON.parse(catalog.body.toString()) as { repositories: string[] }).repositories) {
    const tags = await client.send("GET", `/v2/${repo}/tags/list`, { repo });
    if (tags.status !== 200) {
      failures.push(`${repo} is in the catalog but tags/list answered ${tags.status}`);
      continue;
    }
    for (const tag of (JSON.parse(tags.body.toString()) as { tags: string[] | null }).tags ?? []) {
      const answer = await client.send("HEAD", `/v2/${repo}/manifests/${tag}`, {
        repo,
        headers: { Accept: "application/vnd.oci.image.manifest.v1+json" },
      });
      if (answer.status !== 200) failures.push(`${repo}:${tag} is listed but answers ${answer.status}`);
    }
  }
  return failures;
}

/** `portcullis audit verify` on the server's data directory: its output when the chain is not intact. */
export async function auditVerifyProblem(dataDir: string): Promise<string | undefined> {
  try {
    await run(process.execPath, [cliPath, "audit", "verify", "--data", dataDir]);
    return undefined;
  } catch (error) {
    return (error as { stdout?: string }).stdout ?? String(error);
  }
}

/**
 * What the crash left behind once the clock has moved past every grace period (a day and an hour): the
 * problems `fsck --repair` removed, and what a second check still finds (which must be nothing).
 */
export async function repairAndRecheck(dataDir: string): Promise<{ repaired: Problem[]; left: Problem[] }> {
  const storage = createFilesystemDriver(dataDir);
  const later = () => Date.now() + 25 * 60 * 60 * 1000;
  const repaired = await checkStorage(storage, { repair: true, now: later });
  const left = await checkStorage(storage, { repair: false, now: later });
  return { repaired, left };
}

/** Files anywhere under `root` whose name says they are the temp file of an unfinished write. */
export async function tempFilesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true }).catch(() => [] as string[]);
  return entries.filter((entry) => entry.endsWith(".tmp"));
}

/** The `/tmp/portcullis-*` entries that are not test homes: what a killed server process could leave. */
export async function serverLitterInTmp(): Promise<string[]> {
  const entries = await readdir("/tmp");
  return entries.filter((e) => /^portcullis-(?!serve-|registry-|auth-|gateway-|rel-)/.test(e));
}
