import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";

/** The size of every blob's data file under a storage root; a file removed while this looks is left out. */
export async function storedBlobSizes(dataDir: string): Promise<number[]> {
  const root = join(dataDir, "docker/registry/v2/blobs");
  const sizes: number[] = [];
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name !== "data") continue;
    const found = await stat(join(entry.parentPath, entry.name)).catch(() => undefined);
    if (found) sizes.push(found.size);
  }
  return sizes;
}
