import type { StorageDriver } from "./storage/driver.js";
import { isRepositoryDataDir, layout } from "./storage/layout.js";

/**
 * Repositories are found the way registry:2 finds them: a directory under `repositories/` that holds
 * `_layers` or `_manifests`; names nest, so `a` and `a/b` can both be repositories.
 */
export function createCatalog(storage: StorageDriver) {
  async function walk(name: string, path: string, found: string[]): Promise<void> {
    const entries = await storage.list(path);
    if (name && (entries.includes("_layers") || entries.includes("_manifests"))) found.push(name);
    for (const entry of entries) {
      if (!isRepositoryDataDir(entry)) await walk(name ? `${name}/${entry}` : entry, `${path}/${entry}`, found);
    }
  }

  return {
    async repositories(): Promise<string[]> {
      const found: string[] = [];
      await walk("", layout.repositoriesRoot, found);
      return found.sort();
    },
  };
}

export type Catalog = ReturnType<typeof createCatalog>;

/** Every repository directory, uploads-only ones too (a push that never got to a layer or a manifest). */
export async function repositoryDirectories(storage: StorageDriver): Promise<string[]> {
  const found: string[] = [];
  const walk = async (name: string, path: string): Promise<void> => {
    const entries = await storage.list(path);
    if (name && entries.some(isRepositoryDataDir)) found.push(name);
    for (const entry of entries) {
      if (!isRepositoryDataDir(entry)) await walk(name ? `${name}/${entry}` : entry, `${path}/${entry}`);
    }
  };
  await walk("", layout.repositoriesRoot);
  return found;
}
