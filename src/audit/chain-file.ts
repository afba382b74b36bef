import { createHash } from "node:crypto";
import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { withLockSync } from "../fs/lock-file.js";
import { genesisHash } from "./event.js";

export const currentName = "audit.log";
/** The chain's head (`seq hash`), rewritten in place after every record, so an edited last line shows too. */
export const headName = "audit.head";
/** Rotated files are named by the last record they hold, so names sort in chain order and never collide. */
const rotatedPattern = /^audit-(\d{12})(-\d+)?\.log$/;

export interface ChainFileOptions {
  dir: string;
  maxBytes: number;
  /** Start a new file when the UTC day changes. */
  daily: boolean;
  now?: () => Date;
}

export const lineHash = (line: string) => createHash("sha256").update(line).digest("hex");

/** An audit record could not be written (a full or failing disk); the act it records must not be acknowledged. */
export class AuditUnavailable extends Error {
  constructor(readonly reason: string) {
    super(`the audit log cannot be written (${reason})`);
    this.name = "AuditUnavailable";
  }
}

/**
 * How long a writer waits for the lock before the act is refused. A record holds it for well under a
 * millisecond, and the wait blocks the whole process, so a longer wait only freezes every other request.
 */
const lockWaitMs = 2_000;
/** Versions before lock files were made whole could leave an empty one behind (a full disk); none is live. */
const emptyLockMs = 10_000;

/** The audit files in chain order: rotated ones oldest first, then the current one. */
export function auditFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const rotated = names.filter((n) => rotatedPattern.test(n)).sort();
  const current = names.includes(currentName) && !isLeftOfRotation(dir, rotated) ? [currentName] : [];
  return [...rotated, ...current].map((n) => join(dir, n));
}

/**
 * Rotation links the current file to its rotated name, then unlinks the current name: a crash between the
 * two leaves one file under both names, which is the rotated file alone.
 */
function isLeftOfRotation(dir: string, rotatedNames: readonly string[]): boolean {
  const newest = rotatedNames.at(-1);
  if (!newest) return false;
  const current = statSync(join(dir, currentName), { throwIfNoEntry: false });
  const rotated = statSync(join(dir, newest), { throwIfNoEntry: false });
  return current !== undefined && rotated !== undefined && current.ino === rotated.ino && current.dev === rotated.dev;
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
  let startOnNewLine = false;

  clearEmptyLock(lockPath);

  function open(): void {
    if (fd < 0) {
      const rotated = readdirSync(options.dir)
        .filter((n) => rotatedPattern.test(n))
        .sort();
      if (isLeftOfRotation(options.dir, rotated)) unlinkSync(path);
      fd = openSync(path, "a", 0o600);
    }
    // Read-write, not append: the head is rewritten in place.
    if (headFd < 0) headFd = openSync(join(options.dir, headName), constants.O_RDWR | constants.O_CREAT, 0o600);
  }

  /** Reads the chain's head from the last line on disk (current file, else the newest rotated one). */
  function syncHead(): void {
    // Another writer may have rotated the file under us: follow the name, not the inode we hold.
    if (statSync(path, { throwIfNoEntry: false })?.ino !== fstatSync(fd).ino) {
      closeSync(fd);
      fd = openSync(path, "a", 0o600);
      knownSize = -1;
    }
    const size = fstatSync(fd).size;
    if (size === knownSize) return;
    const files = auditFiles(options.dir);
    const last = lastLineOf(files.filter((f) => statSync(f).size > 0).at(-1));
    if (last) {
      // A torn or edited last line is chained as it stands; `audit verify` is what reports it.
      lastHash = lineHash(last.text);
      lastSeq = jsonField(last.text, "seq") ?? readHeadSeq() ?? 0;
      startOnNewLine = !last.complete;
    } else {
      lastHash = genesisHash;
      lastSeq = 0;
      startOnNewLine = false;
    }
    const first = size > 0 ? firstLineOf(path) : undefined;
    fileDay = first ? String(jsonField(first, "time") ?? "").slice(0, 10) : "";
    knownSize = size;
  }

  function readHeadSeq(): number | undefined {
    const seq = Number(readFileSync(join(options.dir, headName), "utf8").split(" ")[0]);
    return Number.isInteger(seq) ? seq : undefined;
  }

  function rotateIfDue(lineBytes: number, day: string): void {
    if (knownSize === 0) return;
    const tooBig = knownSize + lineBytes > options.maxBytes;
    const newDay = options.daily && fileDay !== "" && fileDay !== day;
    if (!tooBig && !newDay) return;
    closeSync(fd);
    fd = -1;
    // A hard link then an unlink: unlike a rename, it can never replace a rotated file that is already there.
    const rotated = join(options.dir, `audit-${String(lastSeq).padStart(12, "0")}.log`);
    try {
      linkSync(path, rotated);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      linkSync(path, rotated.replace(/\.log$/, `-${Date.now()}.log`));
    }
    unlinkSync(path);
    open();
    knownSize = 0;
    fileDay = "";
  }

  /** Appends one record and moves the head; a record that cannot be written whole is taken back out. */
  function append(line: string): void {
    open();
    syncHead();
    const day = now().toISOString().slice(0, 10);
    const body = line.trimEnd();
    const chained = `${body.slice(0, -1)},"seq":${lastSeq + 1},"prev":"${lastHash}"}`;
    rotateIfDue(Buffer.byteLength(chained) + 1, day);
    const text = Buffer.from(`${startOnNewLine ? "\n" : ""}${chained}\n`);
    const before = knownSize;
    try {
      if (writeSync(fd, text) !== text.length) throw new AuditUnavailable("the disk took only part of the record");
      writeHead(headFd, lastSeq + 1, lineHash(chained));
    } catch (error) {
      ftruncateSync(fd, before);
      throw error;
    }
    startOnNewLine = false;
    knownSize += text.length;
    lastHash = lineHash(chained);
    lastSeq += 1;
    if (fileDay === "") fileDay = day;
  }

  return {
    /** pino hands each serialized line (ending in `}\n`) to this. */
    write(line: string): void {
      try {
        withLockSync(lockPath, () => append(line), lockWaitMs);
      } catch (error) {
        if (error instanceof AuditUnavailable) throw error;
        const code = (error as NodeJS.ErrnoException).code;
        throw new AuditUnavailable(code ? `${code}: ${(error as Error).message}` : (error as Error).message);
      }
    },
    close(): void {
      if (fd >= 0) closeSync(fd);
      if (headFd >= 0) closeSync(headFd);
      fd = -1;
      headFd = -1;
    },
  };
}

/**
 * The head is one fixed-width line overwritten in place by a single write, so a crash leaves the old head or
 * the new, never an empty one; a head one record behind the log is what a crash right after a line leaves.
 */
function writeHead(fd: number, seq: number, hash: string): void {
  const text = `${String(seq).padStart(20, "0")} ${hash}\n`;
  writeSync(fd, text, 0);
  if (fstatSync(fd).size > text.length) ftruncateSync(fd, text.length);
}

function clearEmptyLock(lockPath: string): void {
  const info = statSync(lockPath, { throwIfNoEntry: false });
  if (info && info.size === 0 && Date.now() - info.mtimeMs > emptyLockMs) rmSync(lockPath, { force: true });
}

/** The last line of a file, and whether it was finished (a write cut short leaves no newline). */
function lastLineOf(file: string | undefined): { text: string; complete: boolean } | undefined {
  if (!file) return undefined;
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    const chunk = Buffer.alloc(Math.min(size, 1 << 20));
    readSync(fd, chunk, 0, chunk.length, size - chunk.length);
    const text = chunk.toString("utf8");
    const line = text.replace(/\n$/, "").split("\n").at(-1);
    return line ? { text: line, complete: text.endsWith("\n") } : undefined;
  } finally {
    closeSync(fd);
  }
}

function jsonField<T extends "seq" | "time">(line: string, field: T): (T extends "seq" ? number : string) | undefined {
  try {
    return (JSON.parse(line) as Record<string, never>)[field];
  } catch {
    return undefined;
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
