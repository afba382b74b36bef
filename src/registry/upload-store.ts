import { randomUUID, type Hash } from "node:crypto";
import type { Readable } from "node:stream";
import type { BlobStore } from "./blob-store.js";
import { digestFromHash, newHash, parseDigest, type Digest, type DigestAlgorithm } from "./digest.js";
import { rangeInvalid, RegistryError, uploadUnknown } from "./errors.js";
import { lockKeys } from "./locks.js";
import type { ByteRange, StorageDriver } from "./storage/driver.js";
import { layout } from "./storage/layout.js";

export interface Chunk {
  body: Readable;
  /** From `Content-Range`, when the client sent one. */
  range?: ByteRange;
  /** From `Content-Length`, when the client sent one. */
  length?: number;
}

interface HashState {
  hash: Hash;
  size: number;
  touched: number;
}

/** A running hash idle this long is dropped (an abandoned upload); if the upload goes on, it is rebuilt from its data. */
const hashIdleMs = 60 * 60 * 1000;
/** An upload session with no activity for this long has expired: it answers unknown and its files are removed. */
export const uploadExpiryMs = 24 * 60 * 60 * 1000;
/** Open sessions one repository may hold; past it, expired ones are swept, and if none was, a new one is refused. */
export const maxOpenUploads = 1_000;
/** How often one process sweeps a repository's expired sessions when it starts a new one there. */
const sweepEveryMs = 60 * 1000;

/**
 * Upload sessions in registry:2's layout (`_uploads/<id>/{data,startedat}`), on storage every server process
 * shares: one session's requests take turns through a storage lock, whichever process they reach. The
 * running sha256 of each session is kept in memory so a chunked upload is hashed once; a process that did not
 * see the chunk before (another worker took it, or it restarted) rebuilds it from the data.
 */
export function createUploadStore(storage: StorageDriver, blobs: BlobStore) {
  const hashes = new Map<string, HashState>();
  const key = (name: string, id: string) => `${name}\n${id}`;
  const withLock = <T>(name: string, id: string, task: () => Promise<T>) =>
    storage.withLock(lockKeys.upload(name, id), task);

  const lastSweep = new Map<string, number>();

  /** The time of a session's last activity: its start, or the last write to its data; undefined when gone. */
  async function lastActive(name: string, id: string): Promise<number | undefined> {
    const started = await storage.stat(layout.uploadStartedAt(name, id));
    if (!started) return undefined;
    const text = (await storage.getContent(layout.uploadStartedAt(name, id)))?.toString("utf8").trim() ?? "";
    const startedAt = Date.parse(text);
    const data = await storage.stat(layout.uploadData(name, id));
    return Math.max(Number.isNaN(startedAt) ? started.modified.getTime() : startedAt, data?.modified.getTime() ?? 0);
  }

  async function size(name: string, id: string): Promise<number> {
    const active = await lastActive(name, id);
    if (active === undefined) throw uploadUnknown(id);
    if (Date.now() - active > uploadExpiryMs) {
      await cancel(name, id);
      throw uploadUnknown(id);
    }
    return (await storage.stat(layout.uploadData(name, id)))?.size ?? 0;
  }

  /**
   * Removes the repository's expired sessions (a client that started an upload and went away, or a process
   * killed mid-upload), and their directories with no `startedat` left by a crash at their creation.
   */
  async function sweep(name: string): Promise<number> {
    lastSweep.set(name, Date.now());
    let open = 0;
    for (const id of await storage.list(layout.uploadsRoot(name))) {
      const active =
        (await lastActive(name, id)) ?? (await storage.stat(layout.uploadDir(name, id)))?.modified.getTime();
      if (active !== undefined && Date.now() - active > uploadExpiryMs) await cancel(name, id);
      else open += 1;
    }
    return open;
  }

  async function checkRoomForOne(name: string): Promise<void> {
    const due = Date.now() - (lastSweep.get(name) ?? 0) > sweepEveryMs;
    const open = due ? await sweep(name) : (await storage.list(layout.uploadsRoot(name))).length;
    if (open < maxOpenUploads) return;
    if (!due && (await sweep(name)) < maxOpenUploads) return;
    throw new RegistryError(
      "TOOMANYREQUESTS",
      "too many upload sessions are open in this repository; finish or cancel some",
      { limit: maxOpenUploads },
    );
  }

  async function hashOfData(name: string, id: string, algorithm: DigestAlgorithm, bytes: number): Promise<Hash> {
    const hash = newHash(algorithm);
    if (bytes === 0) return hash;
    const stream = await storage.reader(layout.uploadData(name, id), { start: 0, end: bytes - 1 });
    if (!stream) throw uploadUnknown(id);
    for await (const chunk of stream) hash.update(chunk as Buffer);
    return hash;
  }

  /**
   * The digest of an upload's first `total` bytes: from this process's running hash, else from the digest
   * the process that took the last chunk recorded (clients often send the chunks and the closing PUT on
   * different connections, so to different processes), else read from the data again.
   */
  async function uploadedDigest(name: string, id: string, algorithm: DigestAlgorithm, total: number): Promise<Digest> {
    if (algorithm === "sha256") {
      const state = hashes.get(key(name, id));
      if (state && state.size === total) return digestFromHash(state.hash.copy(), algorithm);
      const recorded = (await storage.getContent(layout.uploadDigest(name, id)))?.toString("utf8").split(" ");
      if (recorded?.[0] === String(total) && recorded[1]) {
        try {
          return parseDigest(recorded[1].trim());
        } catch {
          // A torn record: read the data instead.
        }
      }
    }
    return digestFromHash(await hashOfData(name, id, algorithm, total), algorithm);
  }

  async function runningHash(name: string, id: string, offset: number): Promise<Hash> {
    const state = hashes.get(key(name, id));
    if (state && state.size === offset) return state.hash.copy();
    return hashOfData(name, id, "sha256", offset);
  }

  async function appendChunk(name: string, id: string, chunk: Chunk): Promise<number> {
    const offset = await size(name, id);
    const { range, length } = chunk;
    if (range) {
      if (range.start !== offset) {
        throw rangeInvalid("chunk does not start where the upload ends", {
          offset,
          range: `${range.start}-${range.end}`,
        });
      }
      if (length !== undefined && length !== range.end - range.start + 1) {
        throw rangeInvalid("Content-Range does not match Content-Length", {
          range: `${range.start}-${range.end}`,
          length,
        });
      }
    }
    const hash = await runningHash(name, id, offset);
    const written = await storage.append(layout.uploadData(name, id), offset, chunk.body, (data) => hash.update(data));
    const expected = range ? range.end - range.start + 1 : length;
    if (expected !== undefined && written !== expected) {
      await storage.truncate(layout.uploadData(name, id), offset);
      throw rangeInvalid("body length does not match the declared range", { expected, received: written });
    }
    hashes.set(key(name, id), { hash, size: offset + written, touched: Date.now() });
    // The data before a chunk never changes, so a record of its first N bytes stays true (or is ignored,
    // once the data has grown past it); losing one only costs a second read.
    const record = `${offset + written} ${digestFromHash(hash.copy(), "sha256").text}`;
    await storage.putContent(layout.uploadDigest(name, id), record, { durable: false }).catch(() => undefined);
    return offset + written;
  }

  async function cancel(name: string, id: string): Promise<void> {
    hashes.delete(key(name, id));
    await storage.delete(layout.uploadDir(name, id));
  }

  return {
    async create(name: string): Promise<string> {
      const now = Date.now();
      for (const [k, state] of hashes) if (now - state.touched > hashIdleMs) hashes.delete(k);
      await checkRoomForOne(name);
      const id = randomUUID();
      // Nothing is acknowledged yet: a session a power cut loses is started again by the client.
      await storage.putContent(layout.uploadStartedAt(name, id), new Date().toISOString(), { durable: false });
      return id;
    },

    size,
    sweep,

    append(name: string, id: string, chunk: Chunk): Promise<number> {
      return withLock(name, id, () => appendChunk(name, id, chunk));
    },

    /** Appends the last chunk if any, verifies the digest, and moves the data into the blob store. */
    complete(name: string, id: string, digest: Digest, last?: Chunk): Promise<number> {
      return withLock(name, id, async () => {
        const total = last ? await appendChunk(name, id, last) : await size(name, id);
        const actual = await uploadedDigest(name, id, digest.algorithm, total);
        if (actual.text !== digest.text) {
          await cancel(name, id);
          throw new RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content", {
            expected: digest.text,
            actual: actual.text,
          });
        }
        if (total === 0) await storage.putContent(layout.uploadData(name, id), Buffer.alloc(0));
        await blobs.commitAndLink(layout.uploadData(name, id), digest, name);
        // Its data is in the blob store now: what is left is its start time and digest record.
        hashes.delete(key(name, id));
        await storage.delete(layout.uploadDir(name, id), { small: true });
        return total;
      });
    },

    cancel(name: string, id: string): Promise<void> {
      return withLock(name, id, async () => {
        await size(name, id);
        await cancel(name, id);
      });
    },
  };
}

export type UploadStore = ReturnType<typeof createUploadStore>;
