import { execFile } from "node:child_process";
import { mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface SmallDisk {
  dir: string;
  /** Writes a filler file until the disk takes no more. */
  fill(): Promise<void>;
  /** Removes the filler: the space is back. */
  free(): Promise<void>;
  stop(): Promise<void>;
}

/** A tmpfs of `size` (as `mount -o size=`, e.g. "8m") mounted at `dir` (as root); stop() unmounts it. */
export async function mountSmallDisk(dir: string, size: string): Promise<SmallDisk> {
  await mkdir(dir, { recursive: true });
  await run("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0755`, "tmpfs", dir]);
  const filler = join(dir, "filler");
  return {
    dir,
    async fill() {
      const file = await open(filler, "a");
      const chunk = Buffer.alloc(64 * 1024, 1);
      try {
        for (;;) await file.write(chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
      } finally {
        await file.close();
      }
      // Page-sized remainders of the last chunk: a byte at a time until nothing fits.
      const last = await open(filler, "a");
      try {
        for (;;) await last.write(Buffer.alloc(512, 1));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
      } finally {
        await last.close();
      }
    },
    free: () => rm(filler, { force: true }),
    async stop() {
      await run("umount", ["-l", dir]).catch(() => undefined);
    },
  };
}
