import type { Digest } from "./digest.js";
import type { StorageDriver } from "./storage/driver.js";

/**
 * The storage locks the registry takes, named in one place so every holder of a lock names it the same way.
 * Taken in this order when nested: manifests, then a tag, then blobs; gc holds manifests alone, or a blob.
 */
export const lockKeys = {
  /** A blob's removal by gc against its every use (gc-candidates.ts). */
  blob: (digest: Digest) => `blob\n${digest.text}`,
  /** A manifest's revision link and the tag a put moves to it, against gc removing the revision (gc.ts). */
  manifest: (name: string, digest: Digest) => `manifest\n${name}\n${digest.text}`,
  /** One tag's moves and removal take turns. */
  tag: (name: string, tag: string) => `tag\n${name}\n${tag}`,
  /** One upload session's requests, and gc's sweep of it, take turns. */
  upload: (name: string, id: string) => `upload\n${name}\n${id}`,
};

/**
 * Runs `task` holding every lock in `keys`, taken one by one in sorted order, so two holders of overlapping
 * sets never each wait for a lock the other holds.
 */
export function withLocks<T>(storage: StorageDriver, keys: Iterable<string>, task: () => Promise<T>): Promise<T> {
  const ordered = [...new Set(keys)].sort();
  const hold = (i: number): Promise<T> =>
    i === ordered.length ? task() : storage.withLock(ordered[i] as string, () => hold(i + 1));
  return hold(0);
}
