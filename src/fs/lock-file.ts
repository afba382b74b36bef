import { randomBytes } from "node:crypto";
import { closeSync, linkSync, openSync, readFileSync, rmSync, statSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Exclusive locks between the processes of one host (the server's workers and admin commands), as lock
 * files that name their owner. A lock file is made whole before it appears (written under a temporary name,
 * then hard-linked into place), so no reader ever sees one without its owner. A lock whose owner died is
 * taken over, under a second lock so two waiters cannot both clear it; a live owner's lock is never broken.
 */
const owner = () => `${process.pid} ${hostname()}\n`;
/**
 * The locks this process holds. A lock naming this process's PID that is not among them was left by an
 * earlier process with the same PID: a server that is PID 1 in its container has the same PID every start.
 */
const held = new Set<string>();

/** Takes the lock if it is free (or its owner is dead); true when this process now holds it. */
export function tryLock(path: string): boolean {
  const temp = `${path}.${process.pid}.${randomBytes(6).toString("hex")}`;
  try {
    const fd = openSync(temp, "wx", 0o600);
    try {
      writeSync(fd, owner());
    } finally {
      closeSync(fd);
    }
    linkSync(temp, path);
    held.add(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    if (!ownerAlive(path)) takeOver(path);
    return false;
  } finally {
    removeIfThere(temp);
  }
}

export function unlock(path: string): void {
  held.delete(path);
  removeIfThere(path);
}

/** `rmSync(path, { force: true })` for a file, without its look-up first: a lock is taken and freed per request. */
function removeIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}

/** Runs `task` holding the lock, waiting for it without blocking the event loop. */
export async function withLock<T>(path: string, task: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 1; !tryLock(path); wait = Math.min(wait * 2, 50)) {
    if (Date.now() > deadline) throw new LockTimeout(path);
    await sleep(wait);
  }
  try {
    return await task();
  } finally {
    unlock(path);
  }
}

/** Runs `task` holding the lock, blocking while it waits: for writers that must finish before they return. */
export function withLockSync<T>(path: string, task: () => T, timeoutMs = 10_000): T {
  const deadline = Date.now() + timeoutMs;
  while (!tryLock(path)) {
    if (Date.now() > deadline) throw new LockTimeout(path);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
  }
  try {
    return task();
  } finally {
    unlock(path);
  }
}

export class LockTimeout extends Error {
  constructor(readonly path: string) {
    super(`${path} is held by a live process`);
    this.name = "LockTimeout";
  }
}

function takeOver(path: string): void {
  const guard = `${path}.takeover`;
  let fd: number;
  try {
    fd = openSync(guard, "wx", 0o600);
  } catch {
    // Someone else is taking it over; a guard left by a process that died right here is cleared by age.
    const age = Date.now() - (statSync(guard, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
    if (age > 10_000) rmSync(guard, { force: true });
    return;
  }
  try {
    if (!ownerAlive(path)) unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  } finally {
    closeSync(fd);
    rmSync(guard, { force: true });
  }
}

/** Lock files written before owners were recorded whole (a bare PID, or nothing) count as dead after this. */
const unreadableLockMs = 10_000;

function ownerAlive(path: string): boolean {
  let text: string;
  let modified: number;
  try {
    text = readFileSync(path, "utf8");
    modified = statSync(path).mtimeMs;
  } catch {
    return true; // just released: look again
  }
  const [pidText, host] = text.trim().split(" ");
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return Date.now() - modified < unreadableLockMs;
  // A lock taken on another host (a shared filesystem) cannot be checked from here: it is honoured.
  if (host !== undefined && host !== hostname()) return true;
  if (pid === process.pid) return held.has(path);
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}
