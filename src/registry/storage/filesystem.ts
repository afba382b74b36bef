import { createHash } from "node:crypto";
import { stageFile, syncDirectory, writeFileAtomic } from "../../fs/atomic-file.js";
import { createBufferPool } from "../../fs/buffer-pool.js";
import { withLock } from "../../fs/lock-file.js";
import { streamToFile } from "../../fs/stream-to-file.js";
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  fsync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { promisify } from "node:util";
import { open, readdir, rm, truncate, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable, type Writable } from "node:stream";
import type { ByteRange, FileInfo, StorageDriver } from "./driver.js";
import { withTypedErrors } from "./errors.js";

/**
 * The filesystem driver: registry:2's `rootdirectory`, with durable, atomic writes. A full disk or an
 * unreachable one reaches callers as `StorageFull` or `StorageUnavailable`.
 */
export function createFilesystemDriver(root: string): StorageDriver {
  const full = (path: string) => join(root, path);
  // Beside registry:2's tree (`docker/registry/v2`), which it never looks outside of.
  const locks = join(root, "locks");
  const lockFile = (key: string) => join(locks, `${createHash("sha256").update(key).digest("hex").slice(0, 40)}.lock`);

  return withTypedErrors({
    async getContent(path) {
      try {
        // Small files only (links, manifests): read from the page cache at once, this costs less than the
        // four thread-pool round trips of an asynchronous read, and a manifest pull makes several.
        return readFileSync(full(path));
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw error;
      }
    },

    async putContent(path, content, options) {
      if (options?.durable !== false) return writeFileAtomic(full(path), content, 0o644);
      // Small and not synced (an upload's start time, its digest so far): at once, as getContent reads.
      const target = full(path);
      inDirectory(target, () => overwrite(target, typeof content === "string" ? Buffer.from(content) : content));
    },

    async reader(path, range?: ByteRange) {
      const file = await openToRead(full(path));
      if (!file) return undefined;
      // 1 MiB reads: with the default 64 KiB, pulls spend their time in per-chunk overhead.
      return file.createReadStream({
        highWaterMark: 1024 * 1024,
        ...(range ? { start: range.start, end: range.end } : {}),
      });
    },

    async send(path, sink, range) {
      const file = await openToRead(full(path));
      if (!file) return false;
      try {
        await sendFile(file, sink, range ?? { start: 0, end: (await file.stat()).size - 1 });
      } finally {
        await file.close();
      }
      return true;
    },

    async append(path, offset, source, observe) {
      const target = full(path);
      // Opened and closed at once, as getContent reads: a thread-pool round trip each cost more than the call.
      let fd = -1;
      inDirectory(target, () => (fd = openSync(target, offset === 0 ? "w" : "r+")));
      try {
        return await streamToFile(source instanceof Readable ? source : Readable.from(source), fd, offset, observe);
      } catch (error) {
        await truncate(target, offset).catch(() => undefined);
        throw error;
      } finally {
        closeSync(fd);
      }
    },

    async truncate(path, size) {
      await truncate(full(path), size);
    },

    async stat(path) {
      // Synchronous for the reason getContent is: one metadata look-up costs less than a thread-pool round trip.
      const info = statSync(full(path), { throwIfNoEntry: false });
      if (!info) return undefined;
      return { size: info.size, modified: info.mtime, isDirectory: info.isDirectory() } satisfies FileInfo;
    },

    async list(path) {
      try {
        return (await readdir(full(path))).sort();
      } catch (error) {
        if (isMissing(error) || (error as NodeJS.ErrnoException).code === "ENOTDIR") return [];
        throw error;
      }
    },

    async moveAndPut(from, to, path, content) {
      const source = full(from);
      const target = full(to);
      const small = full(path);
      const fd = openSync(source, "r");
      const [synced, staged] = await Promise.allSettled([fsyncFd(fd), stageFile(small, content, 0o644)]).finally(() =>
        closeSync(fd),
      );
      if (synced.status === "rejected") {
        if (staged.status === "fulfilled") staged.value.discard();
        throw synced.reason;
      }
      if (staged.status === "rejected") throw staged.reason;
      try {
        inDirectory(target, () => renameSync(source, target));
      } catch (error) {
        staged.value.discard();
        throw error;
      }
      staged.value.rename();
      await Promise.all([syncDirectory(dirname(target)), syncDirectory(dirname(small))]);
    },

    async delete(path, options) {
      if (options?.small) rmSync(full(path), { recursive: true, force: true });
      else await rm(full(path), { recursive: true, force: true });
    },

    async withLock(key, task) {
      // One look-up instead of a thread-pool round trip per lock; made again if an admin cleared it.
      if (!existsSync(locks)) mkdirSync(locks, { recursive: true });
      return withLock(lockFile(key), task);
    },
  });
}

/**
 * Writes `bytes` over the start of `target` (made if missing), cutting it only if it was longer: truncating
 * a file first costs ext4 a journal update, ~25 times the write itself, and an upload rewrites its digest
 * record after every chunk.
 */
function overwrite(target: string, bytes: Buffer): void {
  const fd = openSync(target, constants.O_WRONLY | constants.O_CREAT, 0o644);
  try {
    for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at, bytes.length - at, at);
    if (fstatSync(fd).size > bytes.length) ftruncateSync(fd, bytes.length);
  } finally {
    closeSync(fd);
  }
}

/** Runs `write` (which makes a file at `target`), making the directory first if it is not there. */
function inDirectory(target: string, write: () => void): void {
  try {
    write();
  } catch (error) {
    if (!isMissing(error)) throw error;
    mkdirSync(dirname(target), { recursive: true });
    write();
  }
}

const fsyncFd = promisify(fsync);

// Two buffers a transfer; kept for four transfers at once, beyond that they are made and dropped. 256 KiB
// serves a blob as fast as 1 MiB did, and 8 pulls at once peaked 10 MiB lower.
const sendBuffers = createBufferPool(256 * 1024, 8);

/**
 * Reads the range in 256 KiB chunks into two buffers used in turn — one is read into while the other is
 * being written — so a transfer holds 512 KiB however long it runs. (A read stream allocates a new buffer per chunk;
 * with a few clients pulling at once, the garbage grows faster than the collector looks at it.) The buffers go
 * back to the pool only once the socket has taken every chunk; a transfer that failed may still be writing one.
 */
async function sendFile(file: FileHandle, sink: Writable, range: ByteRange): Promise<void> {
  const buffers: Buffer[] = [];
  const gone = new Promise<never>((_, reject) =>
    sink.once("close", () => reject(Object.assign(new Error("the client went away"), { code: "ECONNRESET" }))),
  );
  gone.catch(() => undefined);
  let written: Promise<void> = Promise.resolve();
  for (let position = range.start, turn = 0; position <= range.end; turn++) {
    const buffer = (buffers[turn % 2] ??= sendBuffers.take());
    const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, range.end + 1 - position), position);
    if (bytesRead === 0) throw new Error(`the file ended ${range.end + 1 - position} bytes early`);
    await Promise.race([written, gone]);
    const chunk = buffer.subarray(0, bytesRead);
    written = new Promise((resolve, reject) => sink.write(chunk, (error) => (error ? reject(error) : resolve())));
    position += bytesRead;
  }
  await Promise.race([written, gone]);
  for (const buffer of buffers) sendBuffers.giveBack(buffer);
}

async function openToRead(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, "r");
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === "ENOENT";
}
