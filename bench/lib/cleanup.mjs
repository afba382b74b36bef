// Everything a benchmark starts or creates is tracked here so that any exit path can undo it. A child in a
// process group of its own (detached, like nginx) is killed as a group, so its workers go with it.

import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";

const children = new Map(); // child → { group: boolean }
const tempDirs = new Set();

export function trackChild(child, { group = false } = {}) {
  children.set(child, { group });
}

export function untrackChild(child) {
  children.delete(child);
}

export function killChild(child, signal) {
  if (children.get(child)?.group) {
    try {
      process.kill(-child.pid, signal);
    } catch {
      // the whole group is gone already
    }
  }
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
}

/** A new directory under `base` (the system's temp dir by default), removed at exit if nothing removed it before. */
export async function makeTempDir(prefix, base = os.tmpdir()) {
  const dir = await fsp.mkdtemp(path.join(base, prefix));
  tempDirs.add(dir);
  return dir;
}

export async function removeTempDir(dir) {
  await fsp.rm(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

function cleanupSync() {
  for (const child of children.keys()) killChild(child, "SIGKILL");
  children.clear();
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/**
 * Runs a benchmark's `main`, cleaning up whichever way it ends: on exit, on SIGINT, SIGTERM and SIGHUP (then
 * exiting with the signal's status), and on failure (exit 1, naming the request that failed, if any).
 */
export function runWithCleanup(main) {
  process.on("exit", cleanupSync);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => {
      console.error(`\n${signal}: stopping servers and removing temp dirs`);
      cleanupSync();
      process.exit(128 + os.constants.signals[signal]);
    });
  }
  main().catch((err) => {
    console.error(`\nbenchmark failed: ${err.stack ?? err}`);
    if (err.request) console.error(`while sending ${err.request.method} ${err.request.url}`);
    cleanupSync();
    process.exit(1);
  });
}
