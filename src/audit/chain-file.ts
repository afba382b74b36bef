import { createHash } from "node:crypto";
import {
  closeSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { genesisHash } from "./event.js";

export const currentName = "audit.log";
/** The chain's head (`seq hash`), rewritten in place after every record, so an edited last line shows too. */
export const headName = "audit.head";
/** Rotated files are named by the last record they hold, so names sort in chain order and never collide. */
const rotatedPattern = /^audit-(\d{12})\.log$/;

export interface ChainFileOptions {
  dir: string;
  maxBytes: number;
  /** Start a new file when the UTC day changes. */
  daily: boolean;
  now?: () => Date;
}

export const lineHash = (line: string) => createHash("sha256").update(line).digest("hex");

/** The audit files in chain order: rotated ones oldest first, then the current one. */
export function auditFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const rotated = names.filter((n) => rotatedPattern.test(n)).sort();
  return [...rotated, ...(names.includes(currentName) ? [currentName] : [])].map((n) => join(dir, n));
}

/**
 * The pino destination of the audit log: each line gets `seq` and `prev` (the SHA-256 of the line before
 * it, across rotations) and is written synchronously, so a record exists before the act is answered and a
 * killed process loses nothing it acknowledged. Writers on one host (the server and admin commands) take
 * turns through an exclusive lock file, and each re-reads the tail when the file grew under it.
 */
export function createChainFile(options: ChainFileOptions) {
  const now = options.now ?? (() => new Date());
  mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  const path = join(options.dir, currentName);
  const lockPath = join(options.dir, "audit.lock");
  let fd = -1;
  let headFd = -1;
  let knownSize = -1;
  let lastHash = genesisHash;
  let lastSeq = 0;
  let fileDay = "";

  function open(): void {
    if (fd < 0) fd = openSync(path, "a", 0o600);
    if (headFd < 0) headFd = openSync(join(options.dir, headName), "a+", 0o600);
  }

  /** Reads the chain's head from the last line on disk (current file, else the newest rotated one). */
  function syncHead(): void {
    const size = fstatSync(fd).size;
    if (size === knownSize) return;
    const files = auditFiles(options.dir);
    const last = lastLineOf(files.filter((f) => statSync(f).size > 0).at(-1));
    if (last) {
      lastHash = lineHash(last);
      const record = JSON.parse(last) as { seq?: number; time?: string };
      lastSeq = record.seq ?? 0;
    } else {
      lastHash = genesisHash;
      lastSeq = 0;
    }
    const first = size > 0 ? firstLineOf(path) : undefined;
    fileDay = first ? String((JSON.parse(first) as { time?: string }).time ?? "").slice(0, 10) : "";
    knownSize = size;
  }

  function rotateIfDue(lineBytes: number, day: string): void {
    if (knownSize === 0) return;
    const tooBig = knownSize + lineBytes > options.maxBytes;
    const newDay = options.daily && fileDay !== "" && fileDay !== day;
    if (!tooBig && !newDay) return;
    closeSync(fd);
    fd = -1;
    renameSync(path, join(options.dir, `audit-${String(lastSeq).padStart(12, "0")}.log`));
    open();
    knownSize = 0;
    fileDay = "";
  }

  return {
    /** pino hands each serialized line (ending in `}\n`) to this. */
    write(line: string): void {
      withLock(lockPath, () => {
        open();
        syncHead();
        const day = now().toISOString().slice(0, 10);
        const body = line.trimEnd();
        const chained = `${body.slice(0, -1)},"seq":${lastSeq + 1},"prev":"${lastHash}"}`;
        rotateIfDue(Buffer.byteLength(chained) + 1, day);
        const bytes = writeSync(fd, `${chained}\n`);
        knownSize += bytes;
        lastHash = lineHash(chained);
        lastSeq += 1;
        writeHead(headFd, lastSeq, lastHash);
        if (fileDay === "") fileDay = day;
      });
    },
    close(): void {
      if (fd >= 0) closeSync(fd);
      if (headFd >= 0) closeSync(headFd);
      fd = -1;
      headFd = -1;
    },
  };
}

function writeHead(fd: number, seq: number, hash: string): void {
  ftruncateSync(fd, 0);
  writeSync(fd, `${String(seq).padStart(20, "0")} ${hash}\n`, 0);
}

/** Takes turns with other writers through a lock file holding the owner's PID; a dead owner's lock is taken over. */
function withLock(lockPath: string, task: () => void): void {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const fd = openSync(lockPath, "wx", 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      if (!ownerAlive(lockPath) || Date.now() > deadline) rmSync(lockPath, { force: true });
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
    }
  }
  try {
    task();
  } finally {
    rmSync(lockPath, { force: true });
  }
}

function ownerAlive(lockPath: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(lockPath, "utf8"));
  } catch {
    return true; // just released, or being written: look again
  }
  if (!Number.isInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

function lastLineOf(file: string | undefined): string | undefined {
  if (!file) return undefined;
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    const chunk = Buffer.alloc(Math.min(size, 1 << 20));
    readSync(fd, chunk, 0, chunk.length, size - chunk.length);
    const lines = chunk.toString("utf8").trimEnd().split("\n");
    return lines.at(-1) || undefined;
  } finally {
    closeSync(fd);
  }
}

function firstLineOf(file: string): string | undefined {
  const fd = openSync(file, "r");
  try {
    const chunk = Buffer.alloc(64 * 1024);
    const read = readSync(fd, chunk, 0, chunk.length, 0);
    return chunk.subarray(0, read).toString("utf8").split("\n")[0] || undefined;
  } finally {
    closeSync(fd);
  }
}
