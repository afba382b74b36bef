import { randomUUID } from "node:crypto";
import { closeSync, constants, fchmodSync, fsync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { promisify } from "node:util";

const fsyncFd = promisify(fsync);

/**
 * Replaces a file so that readers see the old content or the new, never a mix, and a crash keeps one of
 * them: a temp file in the same directory, fsync, rename, fsync of the directory. The mode applies from the
 * moment the file exists (keys are 0600 throughout). Only the two fsyncs wait in the thread pool: the other
 * steps (small files: links, manifests, keys) are page-cache operations that cost less than a round trip
 * to it, and a layer push makes several such writes.
 */
export async function writeFileAtomic(path: string, content: string | Buffer, mode: number): Promise<void> {
  const staged = await stageFile(path, content, mode);
  staged.rename();
  await syncDirectory(dirname(path));
}

export interface StagedFile {
  /** Puts the synced content in place; the directory still needs a sync to keep the rename. */
  rename(): void;
  discard(): void;
}

/** The first half of `writeFileAtomic`: the content, synced, in a temp file beside `path`. */
export async function stageFile(path: string, content: string | Buffer, mode: number): Promise<StagedFile> {
  const temp = `${path}.${randomUUID()}.tmp`;
  const discard = () => rmSync(temp, { force: true });
  try {
    const fd = openCreating(temp, mode);
    try {
      const bytes = typeof content === "string" ? Buffer.from(content) : content;
      for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at);
      fchmodSync(fd, mode); // the umask may have taken bits off at open
      await fsyncFd(fd);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    discard();
    throw error;
  }
  return {
    rename() {
      try {
        renameSync(temp, path);
      } catch (error) {
        discard();
        throw error;
      }
    },
    discard,
  };
}

/** Opens a new file, making its directory if there is none yet. */
function openCreating(path: string, mode: number): number {
  try {
    return openSync(path, "wx", mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    mkdirSync(dirname(path), { recursive: true });
    return openSync(path, "wx", mode);
  }
}

export async function syncDirectory(path: string): Promise<void> {
  const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

export const writeSecret = (path: string, content: string | Buffer) => writeFileAtomic(path, content, 0o600);
export const writePublic = (path: string, content: string | Buffer) => writeFileAtomic(path, content, 0o644);
