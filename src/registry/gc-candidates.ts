import type { Digest } from "./digest.js";
import { lockKeys } from "./locks.js";
import type { StorageDriver } from "./storage/driver.js";
import { layout } from "./storage/layout.js";

/**
 * The garbage collector's side of the blob race (gc.ts): a blob becomes a candidate when one run finds it
 * unreferenced, and is removed only by a later run that still finds it a candidate. Every use of a blob (a
 * HEAD or GET in a repository, a commit, a mount, a manifest naming it) withdraws its candidacy under the
 * blob's lock first, so a use either comes before the removal's check (and the blob stays) or finds the
 * blob gone, which only happens to a blob nothing used for a whole collection interval.
 */
export async function keepFromCollection(storage: StorageDriver, digest: Digest): Promise<void> {
  const path = layout.gcCandidate(digest);
  if (!(await storage.stat(path))) return;
  await storage.withLock(lockKeys.blob(digest), () => storage.delete(path));
}
