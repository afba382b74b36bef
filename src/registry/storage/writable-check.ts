import { randomUUID } from "node:crypto";
import { open, rm } from "node:fs/promises";
import { join } from "node:path";

/** Proves a storage root takes writes: a small file is written, synced and removed again. */
export async function checkWritable(root: string): Promise<void> {
  const probe = join(root, `.portcullis-ready-${randomUUID()}`);
  try {
    const file = await open(probe, "wx", 0o600);
    try {
      await file.writeFile("ready\n");
      await file.sync();
    } finally {
      await file.close();
    }
  } catch (error) {
    throw new Error(
      `storage ${root} is not writable: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  } finally {
    await rm(probe, { force: true });
  }
}
