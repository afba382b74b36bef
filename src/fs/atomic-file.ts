import { randomUUID } from "node:crypto";
import { constants } from "node:fs";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * Replaces a file so that readers see the old content or the new, never a mix, and a crash keeps one of
 * them: a temp file in the same directory, fsync, rename, fsync of the directory. The mode applies from the
 * moment the file exists (keys are 0600 throughout).
 */
export async function writeFileAtomic(path: string, content: string | Buffer, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${randomUUID()}.tmp`;
  try {
    const file = await open(temp, "wx", mode);
    try {
      await file.writeFile(content);
      await file.chmod(mode); // the umask may have taken bits off at open
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncDirectory(dirname(path));
}

export async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export const writeSecret = (path: string, content: string | Buffer) => writeFileAtomic(path, content, 0o600);
export const writePublic = (path: string, content: string | Buffer) => writeFileAtomic(path, content, 0o644);
