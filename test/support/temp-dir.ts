import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TempDir {
  path: string;
  stop(): Promise<void>;
}

export async function makeTempDir(prefix = "portcullis-", parent = tmpdir()): Promise<TempDir> {
  const path = await mkdtemp(join(parent, prefix));
  return { path, stop: () => removeTempDir(path) };
}

export async function removeTempDir(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * Starts something whose files live in a new temp dir: runs `start` with the dir, and removes the dir again
 * when `start` fails. On success the dir is the started thing's to remove, in its stop().
 */
export async function startInTempDir<T>(prefix: string, start: (work: TempDir) => Promise<T>): Promise<T> {
  const work = await makeTempDir(prefix);
  try {
    return await start(work);
  } catch (error) {
    await work.stop();
    throw error;
  }
}
